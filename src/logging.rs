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
    // libunftp's own spans and records stay at warnings unless the filter names it.
    let wanted = if wanted.is_empty() || wanted.contains("libunftp") {
        wanted
    } else {
        format!("{wanted},libunftp=warn,unftp_sbe_fs=warn,unftp_core=warn")
    };
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
    // A global filter, so libunftp's `#[instrument]` spans (which carry whole session structs)
    // are never even created unless asked for.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
    // libunftp logs through slog -> log; route those records into tracing. Bridged records
    // arrive under one target, so their level is capped here instead.
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(bridged_level(&filter_text))
        .init();
    filter_text
}

/// Level cap for libunftp's bridged `log` records: an explicit `libunftp=LEVEL` directive wins;
/// otherwise a bare `debug`/`trace` default applies; otherwise warnings only.
fn bridged_level(filter: &str) -> log::LevelFilter {
    let level = |name: &str| name.parse::<log::LevelFilter>().ok();
    let directives: Vec<&str> = filter.split(',').map(str::trim).collect();
    if let Some(l) = directives
        .iter()
        .find_map(|d| d.strip_prefix("libunftp="))
        .and_then(level)
    {
        return l;
    }
    match directives
        .iter()
        .find(|d| !d.contains('='))
        .and_then(|d| level(d))
    {
        Some(l) if l >= log::LevelFilter::Debug => l,
        _ => log::LevelFilter::Warn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libunftp_records_are_warnings_only_unless_asked_for() {
        assert_eq!(bridged_level(DEFAULT_FILTER), log::LevelFilter::Warn);
        assert_eq!(bridged_level("info"), log::LevelFilter::Warn);
        assert_eq!(bridged_level("debug"), log::LevelFilter::Debug);
        assert_eq!(
            bridged_level("info,libunftp=debug"),
            log::LevelFilter::Debug
        );
        assert_eq!(
            bridged_level("trace,libunftp=error"),
            log::LevelFilter::Error
        );
    }
}
