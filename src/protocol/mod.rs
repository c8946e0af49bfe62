//! Every message that crosses a process boundary, in one place: typed, size-capped and
//! checked on decode. Nothing here decides anything; the receivers do (the monitor's request
//! table, the spawner's loop).
//!
//! - [`spawner`]: master ↔ spawner (admitted connections, how sessions ended).
//! - [`monitor`]: pre-login process and worker → monitor (login, data sockets) and replies.
//! - [`event`]: worker → monitor, what happened in the session (for the logs).
//! - [`link`]: the pre-login process's first words to the worker on their link.
//! - [`exit`]: a session's exit code, read by the spawner and the master.
//! - [`tally`]: monitor → spawner → master, a session's counts for the metrics.
//! - [`metrics`]: master ↔ the metrics endpoint process (scrape requests, the text).
//! - `wire`: the shared encoding.

pub mod event;
pub mod exit;
pub mod link;
pub mod metrics;
pub mod monitor;
pub mod spawner;
pub mod tally;
mod wire;

pub use exit::{ExitReason, SessionEnd};
