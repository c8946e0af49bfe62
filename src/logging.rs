//! Logging setup: `tracing` to stderr (systemd's journal picks it up), with libunftp's own
//! `log` records bridged in and filtered out below errors at the default level: its warnings
//! (a missing file on every failed RETR, rustls's `Illegal SNI extension` for clients that
//! send an IP address as SNI) repeat what rftpd's own lines say. A source path of a crate
//! built from the cargo registry (`/root/.cargo/registry/src/index…/libunftp-0.24.0/src/…`)
//! is shortened to the crate's own path (`libunftp-0.24.0/src/…`) in every line.
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
    let mut out = without_registry_paths(out);
    if newline {
        out.push(b'\n');
    }
    out
}

/// `…/.cargo/registry/src/<index>/crate-1.0/src/x.rs` becomes `crate-1.0/src/x.rs`: no line
/// names the machine the binary was built on.
fn without_registry_paths(line: Vec<u8>) -> Vec<u8> {
    const MARK: &[u8] = b"/.cargo/registry/src/";
    if !line.windows(MARK.len()).any(|w| w == MARK) {
        return line;
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(MARK) {
            // Drop what `out` holds of the path before the mark (back to a quote or space).
            while out
                .last()
                .is_some_and(|b| !matches!(b, b'"' | b' ' | b'\'' | b'('))
            {
                out.pop();
            }
            let index = &line[i + MARK.len()..];
            match index.iter().position(|b| *b == b'/') {
                Some(end) => i += MARK.len() + end + 1,
                None => i = line.len(),
            }
            continue;
        }
        out.push(line[i]);
        i += 1;
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

/// The default filter: our info, libunftp's errors only.
pub const DEFAULT_FILTER: &str = "info,libunftp=error,unftp_sbe_fs=error,unftp_core=error";

/// Install the global subscriber; returns the filter string in force (to pass to sessions).
pub fn init() -> String {
    let wanted = std::env::var(crate::master::LOG_ENV).unwrap_or_default();
    // libunftp's own spans and records stay at errors unless the filter names it.
    let wanted = if wanted.is_empty() || wanted.contains("libunftp") {
        wanted
    } else {
        format!("{wanted},libunftp=error,unftp_sbe_fs=error,unftp_core=error")
    };
    let (filter_text, filter) = match wanted.parse::<Targets>() {
        Ok(t) if !wanted.is_empty() => (wanted, t),
        _ => (
            DEFAULT_FILTER.to_string(),
            DEFAULT_FILTER.parse::<Targets>().unwrap_or_default(),
        ),
    };
    let base = tracing_subscriber::fmt::layer()
        .with_writer(EscapingWriter)
        .with_ansi(false)
        .with_target(false);
    // Under systemd, stderr goes to the journal, which stamps every line itself: a second
    // timestamp in the text only makes `journalctl` lines longer.
    let fmt = if to_journal() {
        base.without_time().boxed()
    } else {
        base.boxed()
    };
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

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` to the device and inode of
/// the stream it connected, which still has to be the process's stderr (a shell started from
/// the service inherits the variable with another stderr).
fn to_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Level cap for bridged `log` records (libunftp, rustls): an explicit `libunftp=LEVEL`
/// directive wins; otherwise a bare `debug`/`trace` default applies; otherwise errors only.
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
        _ => log::LevelFilter::Error,
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
    fn build_paths_are_cut_to_the_crates_own_path() {
        assert_eq!(
            clean(b"WARN x log.file=\"/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/libunftp-0.24.0/src/server/datachan.rs\" log.line=240\n"),
            b"WARN x log.file=\"libunftp-0.24.0/src/server/datachan.rs\" log.line=240\n".to_vec()
        );
        assert_eq!(
            clean(b"panicked at /home/b/.cargo/registry/src/i/rustls-0.23/src/a.rs:1:2"),
            b"panicked at rustls-0.23/src/a.rs:1:2".to_vec()
        );
    }

    #[test]
    fn libunftp_records_are_warnings_only_unless_asked_for() {
        assert_eq!(bridged_level(DEFAULT_FILTER), log::LevelFilter::Error);
        assert_eq!(bridged_level("info"), log::LevelFilter::Error);
        assert_eq!(bridged_level("info,libunftp=warn"), log::LevelFilter::Warn);
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
