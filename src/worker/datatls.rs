//! TLS on the data connections (`PROT P`), ended here in the worker, as the pre-login
//! process ends the control connection's: libunftp is always handed a plain connection.
//!
//! libunftp 0.24 does data TLS itself with `.unwrap()` on the handshake (a failed handshake
//! panics and the session is lost) and drops an upload's TLS stream without `close_notify`
//! (strict clients such as Python's `ftplib.FTP_TLS` then fail). So the worker never tells
//! libunftp about `PROT P` (the relay answers `PBSZ`/`PROT`); for a protected data connection
//! libunftp gets a stand-in connection inside the worker's namespace (made by the monitor
//! there: the worker may not make a socket), and this module runs the
//! handshake on the client's connection and carries the plain bytes between the two:
//! `close_notify` goes out when libunftp closes its end (after a download, and after an
//! upload is written), and a failed handshake only fails that transfer (the storage layer
//! waits for the outcome before a byte moves and refuses with vsftpd's `522`).
//!
//! The TLS work runs on a thread of its own (its own single-threaded runtime, started at the
//! first protected data connection), beside the thread running libunftp and the storage.
//! A binary `RETR`/`STOR`/`APPE` that the storage layer claims after its checks
//! (`tls_transfer`) goes straight between the file and the client's TLS on that thread,
//! without the stand-in (half the CPU time of such a transfer was the stand-in's loopback
//! copies); everything else (listings, `ASCII` transfers, refusals) is spliced through it.
//! Reads from the client go through a large buffer (rustls asks for 4 KiB at a time).
//!
//! It never parses FTP, never opens a file (a claimed transfer's is opened by the storage
//! layer), and holds no key but the session's certificate key (as libunftp did); the monitor
//! decides every socket it is given.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use crate::tls::DataHandshake;
use crate::worker::tls_transfer::{self, Claim, Offer, Use};

/// What the data connection now in use turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataState {
    /// None has been opened yet.
    None,
    /// Plain (`PROT C` when it was opened).
    Plain,
    /// TLS expected; the handshake has not finished yet.
    Pending,
    /// The TLS handshake succeeded.
    Tls(DataHandshake),
    /// The TLS handshake failed, or the client never connected.
    Failed,
}

/// vsftpd's reply to a failed data handshake (without its "session reuse" tail).
pub const HANDSHAKE_FAILED: &str = "522 SSL connection failed";
/// vsftpd's reply when the data TLS did not resume the control session (`require_ssl_reuse`).
pub const REUSE_REQUIRED: &str = "522 SSL connection failed; session reuse required: see require_ssl_reuse option in rftpd.toml(5)";

/// Buffer per direction of a splice, and of the reads from the client's socket.
const BUFFER: usize = 256 * 1024;
/// After one direction of a spliced connection has ended, how long the other may take.
const GRACE: Duration = Duration::from_secs(30);

/// The session's data protection: `PROT` as the relay last accepted it, the TLS configuration,
/// and the outcome of the latest data connection.
#[derive(Debug)]
pub struct DataTls {
    config: Arc<ServerConfig>,
    /// `PROT P` is in effect.
    protected: AtomicBool,
    /// `force_local_data_ssl` / `force_anon_data_ssl` apply to this session.
    required: bool,
    /// (generation, state) of the latest data connection.
    state: watch::Sender<(u64, DataState)>,
    /// For the handshake, and for the client's connection to a passive port.
    wait: Duration,
    /// The latest handshaken connection's offer to carry a transfer directly (its generation).
    offer: Mutex<Option<(u64, Offer)>>,
}

impl DataTls {
    pub fn new(config: Arc<ServerConfig>, required: bool, protected: bool, wait: Duration) -> Self {
        DataTls {
            config,
            protected: AtomicBool::new(protected),
            required,
            state: watch::Sender::new((0, DataState::None)),
            wait,
            offer: Mutex::new(None),
        }
    }

    pub fn set_protected(&self, private: bool) {
        self.protected.store(private, Ordering::SeqCst);
    }

    pub fn protected(&self) -> bool {
        self.protected.load(Ordering::SeqCst)
    }

    /// Plain data connections are refused for this session.
    pub fn required(&self) -> bool {
        self.required
    }

    /// A data connection is being opened: its generation.
    pub fn begin(&self, tls: bool) -> u64 {
        let mut generation = 0;
        self.state.send_modify(|(g, s)| {
            *g += 1;
            generation = *g;
            *s = if tls {
                DataState::Pending
            } else {
                DataState::Plain
            };
        });
        generation
    }

    /// The outcome of connection `generation` (ignored if a newer one has begun).
    fn finish(&self, generation: u64, state: DataState) {
        self.state.send_if_modified(|(g, s)| {
            if *g != generation {
                return false;
            }
            *s = state;
            true
        });
    }

    /// Connection `generation` is handshaken and may carry a transfer directly.
    fn offer(&self, generation: u64, offer: Offer) {
        *self.offer.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, offer));
    }

    /// Hand the data connection in use (its handshake done, see [`DataTls::outcome`]) a
    /// protected transfer to carry directly. `Err(claim)`: it cannot (no such connection, or
    /// it is gone); nothing was sent.
    pub fn claim(&self, claim: Claim) -> Result<(), Claim> {
        match self.take_offer() {
            Some(offer) => offer.send(Use::Direct(claim)).map_err(|u| match u {
                Use::Direct(c) => c,
                Use::Splice => unreachable!("sent a claim"),
            }),
            None => Err(claim),
        }
    }

    /// The data connection in use is spliced through libunftp's stand-in (a transfer the
    /// storage layer does not carry directly: libunftp reads the upload from the stand-in).
    pub fn release(&self) {
        if let Some(offer) = self.take_offer() {
            let _ = offer.send(Use::Splice);
        }
    }

    /// Withdraw connection `generation`'s offer (it is being spliced).
    fn take_offer_of(&self, generation: u64) {
        let mut slot = self.offer.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }

    /// The offer of the data connection in use, if it is the latest one.
    fn take_offer(&self) -> Option<Offer> {
        let current = self.state.borrow().0;
        let mut slot = self.offer.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some((generation, offer)) if generation == current => Some(offer),
            _ => None,
        }
    }

    /// How the data connection in use turned out; waits (bounded) for its handshake.
    pub async fn outcome(&self) -> DataState {
        let mut rx = self.state.subscribe();
        let waited = tokio::time::timeout(
            self.wait + Duration::from_secs(1),
            rx.wait_for(|(_, s)| *s != DataState::Pending),
        )
        .await;
        match waited {
            Ok(Ok(state)) => state.1,
            _ => DataState::Failed,
        }
    }
}

/// vsftpd's replies to `PBSZ` and `PROT` (checked by `arguments` first: `line` is `PBSZ 0`,
/// `PROT C` or `PROT P`), which set the protection of the data connections opened from now on.
pub fn protection(data: &DataTls, control_tls: bool, line: &str) -> &'static str {
    let pbsz = line.starts_with("PBSZ");
    match (control_tls, pbsz) {
        (false, true) => "503 PBSZ needs a secure connection.",
        (false, false) => "503 PROT needs a secure connection.",
        (true, true) => "200 PBSZ set to 0.",
        (true, false) if line.ends_with('P') => {
            data.set_protected(true);
            "200 PROT now Private."
        }
        (true, false) => {
            data.set_protected(false);
            "200 PROT now Clear."
        }
    }
}

/// A transfer command under `force_local_data_ssl` / `force_anon_data_ssl` without `PROT P`:
/// vsftpd's refusal, before any data connection is used.
pub fn refusal_before_transfer(data: &DataTls) -> Option<&'static str> {
    if !data.required() || data.protected() {
        return None;
    }
    tracing::warn!(
        "plain-text data connection refused (force_local_data_ssl / force_anon_data_ssl)"
    );
    Some("522 Data connections must be encrypted.")
}

/// The thread the data connections' TLS runs on (started at the first one).
fn runtime() -> io::Result<tokio::runtime::Handle> {
    static HANDLE: Mutex<Option<tokio::runtime::Handle>> = Mutex::new(None);
    let mut handle = HANDLE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(h) = &*handle {
        return Ok(h.clone());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let h = rt.handle().clone();
    std::thread::Builder::new()
        .name("data-tls".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    *handle = Some(h.clone());
    Ok(h)
}

/// Passive mode under `PROT P`: `listener` is the monitor's (the client connects there);
/// `stand_in`, the socket returned for libunftp to listen on, was made by the monitor inside
/// the namespace on the same port (libunftp names its port in the `227`/`229` reply), and
/// holds in its queue a connection from the client's address (libunftp drops a data
/// connection from another address than the control connection's; the monitor's listener
/// only ever passes the client's) whose other end is `engine`. The client's connection is
/// accepted and the TLS is ended between it and `engine`.
pub fn passive(
    data: &Arc<DataTls>,
    listener: OwnedFd,
    stand_in: OwnedFd,
    engine: std::net::TcpStream,
) -> io::Result<TcpSocket> {
    let listener = std::net::TcpListener::from(listener);
    listener.set_nonblocking(true)?;
    let stand_in = std::net::TcpStream::from(stand_in);
    stand_in.set_nonblocking(true)?;
    let generation = data.begin(true);
    let data = data.clone();
    runtime()?.spawn(async move {
        let accepted = async {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let (real, _) = listener.accept().await?;
            let engine = TcpStream::from_std(engine)?;
            io::Result::Ok((real, engine))
        };
        match tokio::time::timeout(data.wait, accepted).await {
            Ok(Ok((real, engine))) => terminate(&data, generation, real, engine).await,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "passive data connection failed");
                data.finish(generation, DataState::Failed)
            }
            Err(_) => data.finish(generation, DataState::Failed),
        }
    });
    Ok(TcpSocket::from_std_stream(stand_in))
}

/// Active mode under `PROT P`: the connection the monitor made (`real`) and libunftp's
/// connection to the stand-in (`engine`); the TLS is ended between the two.
pub fn active(
    data: &Arc<DataTls>,
    generation: u64,
    real: std::net::TcpStream,
    engine: std::net::TcpStream,
) {
    let data = data.clone();
    let spawned = runtime().map(|rt| {
        rt.spawn(async move {
            match (TcpStream::from_std(real), TcpStream::from_std(engine)) {
                (Ok(real), Ok(engine)) => terminate(&data, generation, real, engine).await,
                _ => data.finish(generation, DataState::Failed),
            }
        })
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the data TLS thread");
    }
}

/// The handshake on the client's connection, its outcome recorded, then the splice.
async fn terminate(data: &DataTls, generation: u64, real: TcpStream, engine: TcpStream) {
    let acceptor = tokio_rustls::TlsAcceptor::from(data.config.clone());
    let io = tokio::io::BufReader::with_capacity(BUFFER, real);
    let tls = match tokio::time::timeout(data.wait, acceptor.accept(io)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "data connection TLS handshake failed");
            return data.finish(generation, DataState::Failed);
        }
        Err(_) => {
            tracing::info!(
                seconds = data.wait.as_secs(),
                "no data connection TLS handshake in time"
            );
            return data.finish(generation, DataState::Failed);
        }
    };
    let mut tls = tls;
    let kind = match tls.get_ref().1.handshake_kind() {
        Some(rustls::HandshakeKind::Resumed) => DataHandshake::Resumed,
        _ => DataHandshake::Full,
    };
    // A whole chunk of a transfer is encrypted and sent with one `writev`.
    tls.get_mut()
        .1
        .set_buffer_limit(Some(tls_transfer::SEND_BUFFER));
    let (offer, offered) = tokio::sync::oneshot::channel();
    data.offer(generation, offer);
    data.finish(generation, DataState::Tls(kind));
    // The storage layer claims the connection for a RETR/STOR, or releases it; libunftp
    // writing (a listing) or closing its end (a refusal) means it is spliced.
    let claimed = tokio::select! {
        use_of = offered => match use_of {
            Ok(Use::Direct(claim)) => Some(claim),
            Ok(Use::Splice) | Err(_) => None,
        },
        _ = engine.readable() => None,
    };
    match claimed {
        Some(claim) => tls_transfer::run(tls, claim).await,
        None => {
            data.take_offer_of(generation);
            splice(tls, engine).await;
        }
    }
}

/// Carry plain bytes between the client's TLS and libunftp's connection. Each side's end is
/// passed on: libunftp's close becomes `close_notify` (and FIN) to the client, the client's
/// `close_notify` or FIN becomes a FIN to libunftp (vsftpd's default `strict_ssl_read_eof =
/// NO`: an upload may end with a bare FIN).
async fn splice<T: AsyncRead + AsyncWrite + Unpin>(tls: T, engine: TcpStream) {
    let (mut tls_read, mut tls_write) = tokio::io::split(tls);
    let (mut engine_read, mut engine_write) = engine.into_split();
    let up = async {
        if let Err(Stop::Writing) = pump(&mut tls_read, &mut engine_write).await {
            // libunftp stopped reading (a refused or failed upload): the rest of the client's
            // upload is read and dropped, so the client finishes sending, gets `close_notify`
            // and reads the refusal in step (bounded by GRACE once libunftp's side is done).
            let _ = pump(&mut tls_read, &mut tokio::io::sink()).await;
        }
        let _ = engine_write.shutdown().await;
    };
    let down = async {
        let _ = pump(&mut engine_read, &mut tls_write).await;
        let _ = tls_write.shutdown().await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut up => { let _ = tokio::time::timeout(GRACE, down).await; }
        () = &mut down => { let _ = tokio::time::timeout(GRACE, up).await; }
    }
}

/// Why a [`pump`] stopped early.
enum Stop {
    Reading,
    Writing,
}

/// Copy until `r` ends (Ok), or an error on either side.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: &mut W,
) -> Result<(), Stop> {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = r.read(&mut buf).await.map_err(|_| Stop::Reading)?;
        if n == 0 {
            return w.flush().await.map_err(|_| Stop::Writing);
        }
        w.write_all(&buf[..n]).await.map_err(|_| Stop::Writing)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> DataTls {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        DataTls::new(Arc::new(config), true, false, Duration::from_secs(1))
    }

    #[derive(Debug)]
    struct NoCert;
    impl rustls::server::ResolvesServerCert for NoCert {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            None
        }
    }

    #[tokio::test]
    async fn a_stale_connection_never_overwrites_the_newer_ones_outcome() {
        let d = data();
        assert_eq!(d.outcome().await, DataState::None);
        let first = d.begin(true);
        let second = d.begin(true);
        d.finish(first, DataState::Tls(DataHandshake::Resumed));
        d.finish(second, DataState::Failed);
        assert_eq!(d.outcome().await, DataState::Failed);
        d.begin(false);
        assert_eq!(d.outcome().await, DataState::Plain);
    }

    #[tokio::test]
    async fn an_outcome_that_never_comes_counts_as_a_failure() {
        let mut d = data();
        d.wait = Duration::ZERO;
        d.begin(true);
        assert_eq!(d.outcome().await, DataState::Failed);
    }

    #[test]
    fn pbsz_and_prot_answer_as_vsftpd_and_set_the_protection() {
        let d = data();
        assert_eq!(
            protection(&d, false, "PROT P"),
            "503 PROT needs a secure connection."
        );
        assert_eq!(
            protection(&d, false, "PBSZ 0"),
            "503 PBSZ needs a secure connection."
        );
        assert!(!d.protected());
        assert_eq!(
            refusal_before_transfer(&d),
            Some("522 Data connections must be encrypted.")
        );
        assert_eq!(protection(&d, true, "PBSZ 0"), "200 PBSZ set to 0.");
        assert_eq!(protection(&d, true, "PROT P"), "200 PROT now Private.");
        assert!(d.protected());
        assert_eq!(refusal_before_transfer(&d), None);
        assert_eq!(protection(&d, true, "PROT C"), "200 PROT now Clear.");
        assert!(!d.protected());
    }
}
