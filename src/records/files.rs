//! Where records go: `xferlog_file`, `vsftpd_log_file` and syslog, chosen as vsftpd's
//! `vsf_log_init` chooses them, and written by the monitor (root, outside every jail).
//!
//! Each record is one `write` to a file opened `O_APPEND` for that record alone and closed
//! again: records of concurrent sessions never interleave, and a log rotated away (renamed by
//! logrotate) is left alone at the next record, which creates the new file — so rotation
//! needs no signal and no `copytruncate` (packaging/logrotate.d/rftpd). The files are made
//! mode 0600, as vsftpd makes them.
//!
//! What it must never do: be used by a jailed or unprivileged process, follow a name given by
//! a client, or fail a session because a log cannot be written (the error is logged once).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;

/// syslog facility `LOG_FTP` (11 << 3).
const LOG_FTP: u8 = 88;

/// The outputs in force for this session's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// wu-ftpd format transfers.
    pub xferlog: Option<PathBuf>,
    /// vsftpd format, everything.
    pub vsftpd_log: Option<PathBuf>,
    /// vsftpd format (without date and pid) to syslog.
    pub syslog: bool,
    /// Command and reply lines too.
    pub protocol: bool,
    /// Dates in local time (`use_localtime`), not GMT.
    pub local_time: bool,
}

impl Outputs {
    /// vsftpd's `vsf_log_init`: no file without `xferlog_enable` or `dual_log_enable`; then
    /// the xferlog with `xferlog_std_format` or `dual_log_enable`, vsftpd's log without
    /// `xferlog_std_format` or with `dual_log_enable` (but not with `syslog_enable`, which
    /// takes its place); syslog whenever `syslog_enable`.
    pub fn from_config(c: &Config) -> Outputs {
        let any_file = c.xferlog_enable || c.dual_log_enable;
        Outputs {
            xferlog: (any_file && (c.dual_log_enable || c.xferlog_std_format))
                .then(|| c.xferlog_file.clone()),
            vsftpd_log: (any_file
                && (c.dual_log_enable || !c.xferlog_std_format)
                && !c.syslog_enable)
                .then(|| c.vsftpd_log_file.clone()),
            syslog: c.syslog_enable,
            protocol: c.log_ftp_protocol,
            local_time: c.use_localtime,
        }
    }

    /// The time to write in a record made now: the wall clock of the host's time zone with
    /// `use_localtime` (vsftpd's `localtime()`), else UTC.
    pub fn now(&self) -> std::time::SystemTime {
        let now = std::time::SystemTime::now();
        if !self.local_time {
            return now;
        }
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match crate::sys::utc_offset(secs) {
            Some(offset) if offset >= 0 => now + std::time::Duration::from_secs(offset as u64),
            Some(offset) => now - std::time::Duration::from_secs(offset.unsigned_abs()),
            None => now,
        }
    }

    /// Whether any vsftpd-format output is on.
    pub fn vsftpd_format(&self) -> bool {
        self.vsftpd_log.is_some() || self.syslog
    }
}

static WRITE_FAILED: AtomicBool = AtomicBool::new(false);

fn failed_once(what: &Path, e: &std::io::Error) {
    if !WRITE_FAILED.swap(true, Ordering::Relaxed) {
        tracing::error!(file = %what.display(), error = %e, "cannot write a log record");
    }
}

/// Append one line (a newline is added) to `path`, in one write.
pub fn append(path: &Path, line: &str) {
    let mut record = Vec::with_capacity(line.len() + 1);
    record.extend_from_slice(line.as_bytes());
    record.push(b'\n');
    let result = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(path)
        .and_then(|mut f| f.write_all(&record));
    if let Err(e) = result {
        failed_once(path, &e);
    }
}

/// Send one line to syslog (`/dev/log`), facility ftp; `severe`: a failed login (warning).
pub fn syslog(line: &str, severe: bool) {
    let priority = LOG_FTP + if severe { 4 } else { 6 };
    let message = format!("<{priority}>rftpd[{}]: {line}", crate::monitor::host_pid());
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to(message.as_bytes(), "/dev/log"));
    if let Err(e) = sent {
        failed_once(Path::new("/dev/log"), &e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_follow_vsftpds_log_init() {
        let c = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            Outputs::from_config(&c)
        };
        assert_eq!(c(&|_| {}), Outputs::default());
        let debian = c(&|c| c.xferlog_enable = true);
        assert_eq!(debian.vsftpd_log, Some(PathBuf::from("/var/log/rftpd.log")));
        assert_eq!(debian.xferlog, None);
        let std = c(&|c| {
            c.xferlog_enable = true;
            c.xferlog_std_format = true;
        });
        assert_eq!(std.xferlog, Some(PathBuf::from("/var/log/xferlog")));
        assert_eq!(std.vsftpd_log, None);
        let dual = c(&|c| c.dual_log_enable = true);
        assert!(dual.xferlog.is_some() && dual.vsftpd_log.is_some());
        let sys = c(&|c| {
            c.xferlog_enable = true;
            c.syslog_enable = true;
        });
        assert!(sys.syslog && sys.vsftpd_log.is_none() && sys.vsftpd_format());
    }

    #[test]
    fn records_are_appended_whole_to_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rftpd-records-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let path = dir.join("log");
        append(&path, "one");
        append(&path, "two");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // rotated away: the next record makes a new file
        std::fs::rename(&path, dir.join("log.1")).unwrap();
        append(&path, "three");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
