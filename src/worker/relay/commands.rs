//! Commands the relay itself checks or handles before libunftp sees them: RFC 775's X-verbs
//! renamed, PORT/EPRT checked here (and connected by the monitor), and ABOR during a transfer.
//!
//! Runs in the worker, as the logged-in user, jailed. It never opens a data connection itself
//! (the monitor does) and never lets a PORT/EPRT to another host or a privileged port through
//! unless `port_promiscuous` says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::control::port;
use crate::worker::active;
use crate::worker::state::{MonitorClient, SessionShared};

/// RFC 775's X-verbs (XCUP, XCWD, XPWD, XMKD, XRMD), which vsftpd accepts and libunftp does
/// not: the verbs libunftp knows.
pub(super) fn modern_verb(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "XCUP" => "CDUP",
        "XCWD" => "CWD",
        "XPWD" => "PWD",
        "XMKD" => "MKD",
        "XRMD" => "RMD",
        _ => return None,
    })
}

/// A PORT or EPRT: the line for libunftp, or the reply to send instead (vsftpd's words).
pub(super) async fn active_mode(
    shared: &Arc<SessionShared>,
    monitor: &MonitorClient,
    verb: &str,
    arg: &str,
) -> Result<String, &'static str> {
    let config = &shared.config;
    let eprt = verb == "EPRT";
    let target = if eprt {
        port::parse_eprt(arg).ok_or("500 Bad EPRT command.")?
    } else {
        port::parse_port(arg).ok_or("500 Illegal PORT command.")?
    };
    if !port::allowed(target, shared.client_ip, config.port_promiscuous) {
        tracing::warn!(address = %target, "PORT/EPRT to another host or a privileged port refused (port_promiscuous = false)");
        return Err(if eprt {
            "500 Illegal EPRT command."
        } else {
            "500 Illegal PORT command."
        });
    }
    // No passive listener is in play any more (see `SessionShared::passive_client_absent`).
    *shared
        .passive_address
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    active::prepare(shared, monitor, target)
        .await
        .ok_or("425 Failed to establish connection.")
}

/// `ABOR` during a transfer (libunftp would only answer it and let the transfer run): the
/// storage backend ends the transfer, and libunftp gets the `ABOR` once it has, so the
/// transfer's `426` comes before the `ABOR`'s `226`, as with vsftpd. Bounded: at most 5 s.
pub(super) async fn abort_transfer(shared: &SessionShared) {
    shared.request_abort();
    for _ in 0..500 {
        if shared.transfers.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The engine learns of the transfer's end over its own channel; give it that moment.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::command;

    #[test]
    fn x_verbs_become_the_verbs_libunftp_knows() {
        assert_eq!(modern_verb("XPWD"), Some("PWD"));
        assert_eq!(modern_verb("XCUP"), Some("CDUP"));
        assert_eq!(modern_verb("XCWD"), Some("CWD"));
        assert_eq!(modern_verb("XMKD"), Some("MKD"));
        assert_eq!(modern_verb("XRMD"), Some("RMD"));
        assert_eq!(modern_verb("RETR"), None);
        assert_eq!(
            command::parse(b"xcwd sub dir").unwrap().renamed("CWD"),
            "CWD sub dir"
        );
    }
}
