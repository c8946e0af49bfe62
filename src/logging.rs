//! Logging setup: `tracing` to stderr (systemd's journal picks it up), with libunftp's own
//! `log` records bridged in and its per-command chatter filtered out at the default level.
//!
//! The filter comes from `RFTPD_LOG` (e.g. `debug`, or `info,libunftp=debug`). Nothing logged
//! anywhere in rftpd may contain a password.
//!
//! SECURITY: every line is written through [`EscapingWriter`]: a control character inside a
//! record (a CR, ESC or BEL in a user name, a path, a libunftp message) is written as `\xNN`,
//! so no client can forge a log line or drive a terminal; and a secret the process registered
//! ([`redact`], the one-time login token) is replaced by `***` wherever it appears.

use std::io::Write;
use std::sync::OnceLock;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// A secret of this process that no log line may carry.
static SECRET: OnceLock<String> = OnceLock::new();

/// Never log `secret` in this process (set once; later calls are ignored).
pub fn redact(secret: &str) {
    let _ = SECRET.set(secret.to_string());
}

/// `Display` of a client-supplied string with its control characters escaped (for log fields
/// that the writer would otherwise escape less readably).
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "\\x{:02x}", u32::from(c))?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One record's bytes with control characters escaped (all but a final newline) and the
/// secret removed.
fn clean(record: &[u8]) -> Vec<u8> {
    let (body, newline) = match record.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (record, false),
    };
    let mut out = Vec::with_capacity(record.len() + 8);
    for &b in body {
        if b < 0x20 || b == 0x7f {
            let _ = write!(out, "\\x{b:02x}");
        } else {
            out.push(b);
        }
    }
    if let Some(secret) = SECRET.get().filter(|s| !s.is_empty()) {
        let secret = secret.as_bytes();
        let mut redacted = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(secret) {
                redacted.extend_from_slice(b"***");
                i += secret.len();
            } else {
                redacted.push(out[i]);
                i += 1;
            }
        }
        out = redacted;
    }
    if newline {
        out.push(b'\n');
    }
    out
}

/// stderr, one cleaned record per write (the fmt layer writes each record in one call).
pub struct EscapingWriter;

impl Write for EscapingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(&clean(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for EscapingWriter {
    type Writer = EscapingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter
    }
}

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
        .with_writer(EscapingWriter)
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
    fn control_characters_in_a_record_are_escaped_but_its_newline_kept() {
        assert_eq!(
            clean(b"user=x\r2026 INFO login ok user=root\x1b[1A\x07\n"),
            b"user=x\\x0d2026 INFO login ok user=root\\x1b[1A\\x07\n".to_vec()
        );
        assert_eq!(clean(b"plain\n"), b"plain\n".to_vec());
        assert_eq!(format!("{}", Escaped("a\rb\u{7f}")), "a\\x0db\\x7f");
    }

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
