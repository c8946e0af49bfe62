//! One client connection: the `rftpd session` process (the monitor) and the worker it forks.
//!
//! Layout:
//! - [`monitor`]: root, single-threaded; owns PAM, NSS lookups and access policy, answers the
//!   worker's requests, reports how the session ended through its exit code.
//! - [`login`]: the monitor's decision for one USER/PASS pair.
//! - [`worker`]: tokio + libunftp on the one connection; jails itself at login.
//! - [`authenticator`], [`storage`], [`listing`], [`passive`]: the libunftp extension points.
//! - [`protocol`]: the typed messages between worker and monitor.
//!
//! Nothing in here may trust the worker once it has parsed a byte from the network.

pub mod authenticator;
pub mod listing;
pub mod login;
pub mod monitor;
pub mod passive;
pub mod protocol;
pub mod storage;
pub mod worker;

/// How a session ended, as the monitor's exit code. The master reads it to log the end of the
/// session (and, later, to penalise addresses that keep failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitReason {
    /// The client quit or closed the connection.
    Closed = 0,
    /// Something went wrong on our side (or the worker broke the protocol / crashed).
    Error = 1,
    /// Too many failed logins on this connection.
    LoginFailures = 2,
    /// A policy refused the session after login (e.g. writable jail root).
    Refused = 3,
}

impl ExitReason {
    pub fn from_code(code: i32) -> Option<ExitReason> {
        [
            ExitReason::Closed,
            ExitReason::Error,
            ExitReason::LoginFailures,
            ExitReason::Refused,
        ]
        .into_iter()
        .find(|r| *r as i32 == code)
    }

    pub fn describe(self) -> &'static str {
        match self {
            ExitReason::Closed => "closed",
            ExitReason::Error => "error",
            ExitReason::LoginFailures => "too many failed logins",
            ExitReason::Refused => "refused after login",
        }
    }
}
