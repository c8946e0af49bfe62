//! The control connection's wire format, as every process that reads it sees it: lines with an
//! exact length cap ([`line`]), one parser for a command's verb and argument ([`command`]), and
//! the PORT/EPRT address arguments ([`port`]).
//!
//! The pre-login process and the worker both read client lines through these, and the worker
//! hands libunftp only lines rebuilt from what this parser saw — so no check can be bypassed
//! by a line the FTP engine would split differently. Nothing here has any privilege or state.

pub mod command;
pub mod features;
pub mod line;
pub mod port;
