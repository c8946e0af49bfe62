//! The master's side of the session spawner: starts it (fork+exec of `rftpd spawner` carrying
//! the validated configuration in its environment), hands it accepted client sockets, retires
//! it on reload, and reads its reports.
//!
//! Everything here is async and never blocks the master's runtime. It never reads from a
//! client socket; it only passes it on (with the client address a PROXY header carried).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::unix::AsyncFd;

use super::{LOG_ENV, Prepared, SESSION_BANNER_ENV, SESSION_CONFIG_ENV, SESSION_USERLIST_ENV};
use crate::protocol::spawner::{MAX_RECORD, Order, Report};
use crate::sys;

/// One running spawner process, as the master sees it.
pub struct SpawnerHandle {
    channel: AsyncFd<OwnedFd>,
    /// Set once the process has been reaped.
    exited: AtomicBool,
    /// Tells this spawner's sessions apart from another's after a reload.
    pub generation: u64,
    pub pid: u32,
}

impl SpawnerHandle {
    /// fork+exec `rftpd spawner` with `prepared`'s configuration; returns the handle and the
    /// process (to reap).
    pub fn start(
        prepared: &Prepared,
        log_filter: &str,
        generation: u64,
    ) -> io::Result<(SpawnerHandle, tokio::process::Child)> {
        let super::subprocess::Launch {
            mut command,
            master_end,
        } = super::subprocess::prepare(
            "spawner",
            &[
                (SESSION_CONFIG_ENV, &prepared.toml),
                (SESSION_USERLIST_ENV, &prepared.user_list),
                (SESSION_BANNER_ENV, &prepared.banner),
                (LOG_ENV, log_filter),
            ],
        )?;
        let child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        Ok((
            SpawnerHandle {
                channel: sys::async_fd(master_end)?,
                exited: AtomicBool::new(false),
                generation,
                pid,
            },
            child,
        ))
    }

    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    pub fn mark_exited(&self) {
        self.exited.store(true, Ordering::Release);
    }

    async fn send(&self, order: Order, fd: Option<std::os::fd::BorrowedFd<'_>>) -> io::Result<()> {
        sys::send_message_async(&self.channel, &order.encode(), fd).await
    }

    /// Hand `client` to the spawner for a new session named `id` (`carried`: the client
    /// address its load balancer's PROXY header named). The master's copy of the socket is
    /// closed when this returns, whatever the outcome.
    pub async fn spawn(
        &self,
        id: u64,
        client: OwnedFd,
        carried: Option<std::net::SocketAddr>,
    ) -> io::Result<()> {
        self.send(
            Order::Spawn {
                id,
                client: carried,
            },
            Some(client.as_fd()),
        )
        .await
    }

    /// Start no more sessions; the spawner exits after its last one.
    pub async fn retire(&self) -> io::Result<()> {
        self.send(Order::Retire, None).await
    }

    /// Answer session `id`'s login claim.
    pub async fn answer(&self, id: u64, granted: bool) -> io::Result<()> {
        self.send(Order::Answer { id, granted }, None).await
    }

    /// The next report, or `None` once the spawner has closed its end (it exited).
    pub async fn next_report(&self) -> io::Result<Option<Report>> {
        let mut buf = [0u8; MAX_RECORD + 1];
        match sys::recv_message_async(&self.channel, &mut buf).await? {
            (0, _) => Ok(None),
            (_, Some(_)) => Err(io::Error::other("the spawner sent a file descriptor")),
            (len, None) => Report::decode(&buf[..len])
                .map(Some)
                .map_err(io::Error::other),
        }
    }
}
