//! Logging setup: `tracing` to stderr (systemd's journal picks it up), with libunftp's own
//! `log` records bridged in and its per-command chatter filtered out at the default level.
//!
//! The filter comes from `RFTPD_LOG` (e.g. `debug`, or `info,libunftp=debug`). Nothing logged
//! anywhere in rftpd may contain a password.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The default filter: our info, libunftp's warnings only.
pub const DEFAULT_FILTER: &str = "info,libunftp=warn,unftp_sbe_fs=warn,unftp_core=warn";

/// Install the global subscriber; returns the filter string in force (to pass to sessions).
pub fn init() -> String {
    let wanted = std::env::var(crate::master::LOG_ENV).unwrap_or_default();
    let (filter_text, filter) = match wanted.parse::<Targets>() {
        Ok(t) if !wanted.is_empty() => (wanted, t),
        _ => (
            DEFAULT_FILTER.to_string(),
            DEFAULT_FILTER.parse::<Targets>().unwrap_or_default(),
        ),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .try_init();
    // libunftp logs through slog -> log; route those records into tracing.
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(log::LevelFilter::Info)
        .init();
    filter_text
}
