//! Admitting a connection: the PROXY header of a listed load balancer (read in a task of its
//! own, bounded in number), the admission limits (`max_clients`, `max_per_ip`, the
//! failed-login ban), and the hand-over of the socket to the current spawner.
//!
//! Runs in the master, as root. It never reads a byte from a client: only a listed proxy's
//! header, through `super::proxy`; a refused connection gets its `421` as a best-effort write
//! and is closed.

use super::*;

/// A connection from a listed load balancer: read its PROXY header, then admit the client it
/// names (or refuse the connection: a listed proxy must send one).
pub(super) fn through_proxy(mut stream: TcpStream, proxy: SocketAddr, state: &Arc<State>) {
    struct Pending<'a>(&'a AtomicUsize);
    impl Drop for Pending<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    if state.pending_headers.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING_HEADERS {
        state.pending_headers.fetch_sub(1, Ordering::AcqRel);
        state.count(|m| m.refused(metrics::Refused::ProxyBacklog));
        tracing::warn!(proxy = %proxy, "too many PROXY headers being read; connection closed");
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let pending = Pending(&state.pending_headers);
        let carried = proxy::read_header(&mut stream).await;
        drop(pending);
        match carried {
            Ok(proxy::Carried::Client(client)) => {
                tracing::debug!(client = %client, proxy = %proxy, "PROXY protocol header read");
                admit(stream, client, Some(proxy), &state).await;
            }
            Ok(proxy::Carried::Proxy) => {
                tracing::debug!(proxy = %proxy, "PROXY protocol header for the proxy's own connection");
                admit(stream, proxy, None, &state).await;
            }
            Err(e) => {
                tracing::warn!(proxy = %proxy, error = %e, "connection from a listed proxy refused");
                state.count(|m| m.refused(metrics::Refused::ProxyHeader));
                let _ = stream.try_write(b"421 Service not available.\r\n");
            }
        }
    });
}

/// Admit `client` (the socket's peer, or the one `proxy`'s header named) and start its
/// session, or write the refusal and close.
pub(super) async fn admit(
    stream: TcpStream,
    client: SocketAddr,
    proxy: Option<SocketAddr>,
    state: &Arc<State>,
) {
    let prepared = state.prepared();
    let admitted = state
        .admission
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .admit(client.ip(), &prepared.limits, Instant::now());
    match admitted {
        Ok(()) => start_session(stream, client, proxy, state).await,
        Err(refusal) => {
            state.count(|m| m.refused(metrics::Refused::Admission(refusal)));
            let via = proxy.map_or_else(|| "-".to_owned(), |p| p.ip().to_string());
            tracing::warn!(client = %client.ip(), proxy = %via, reason = refusal.describe(), "connection refused");
            // Best effort: a client that does not read its 421 just sees the close.
            let _ = stream.try_write(refusal.reply().as_bytes());
        }
    }
}

/// Hand an admitted connection to the current spawner (`proxy`: the load balancer it came
/// through, whose header named `peer`).
pub(super) async fn start_session(
    stream: TcpStream,
    peer: SocketAddr,
    proxy: Option<SocketAddr>,
    state: &Arc<State>,
) {
    let client = match stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|_| s))
    {
        Ok(s) => OwnedFd::from(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot hand over a connection");
            state.release(peer, 0);
            return;
        }
    };
    let Some(spawner) = state.live_spawner() else {
        state.count(|m| m.refused(metrics::Refused::NoSpawner));
        tracing::error!(client = %peer, "no session spawner is running; connection closed");
        state.release(peer, 0);
        return;
    };
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    state
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            id,
            Session {
                peer,
                started: Instant::now(),
                pid: 0,
                generation: spawner.generation,
                user: None,
            },
        );
    match spawner.spawn(id, client, proxy.map(|_| peer)).await {
        Ok(()) => state.count(|m| m.accepted()),
        Err(e) => {
            state.count(|m| m.refused(metrics::Refused::NoSpawner));
            tracing::error!(client = %peer, error = %e, "cannot hand a connection to the session spawner");
            if state.forget(id).is_some() {
                state.release(peer, 0);
            }
        }
    }
}
