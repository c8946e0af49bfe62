//! systemd integration for the master: readiness notification (`Type=notify`) and listening
//! sockets passed by socket activation (`LISTEN_FDS`).
//!
//! Both are optional: without `NOTIFY_SOCKET` nothing is sent, without `LISTEN_FDS` the master
//! binds its own sockets. It never reads or writes anything else of systemd's.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tokio::net::TcpListener;

/// First descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// Send a notification (e.g. `READY=1`) to the service manager, if there is one.
pub fn notify(state: &str) -> io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(&path)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// Listening sockets passed by systemd for this process, if any.
pub fn passed_listeners() -> io::Result<Vec<TcpListener>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !for_us || count <= 0 {
        return Ok(Vec::new());
    }
    let mut listeners = Vec::new();
    for raw in LISTEN_FDS_START..LISTEN_FDS_START + count {
        let fd = crate::sys::take_inherited_fd(raw)?;
        let std_listener = std::net::TcpListener::from(fd);
        std_listener
            .local_addr()
            .map_err(|e| io::Error::other(format!("passed fd {raw} is not a TCP socket: {e}")))?;
        std_listener.set_nonblocking(true)?;
        listeners.push(TcpListener::from_std(std_listener)?);
    }
    Ok(listeners)
}
