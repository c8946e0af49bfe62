//! vsftpd's log record formats, byte for byte: the wu-ftpd xferlog line (`xferlog_std_format`)
//! and vsftpd's own `vsftpd_log_file` line (`OK LOGIN`, `FAIL LOGIN`, `OK UPLOAD`, …), as
//! vsftpd 3's `logging.c` writes them; and where they go ([`files`]).
//!
//! What it does: formats records from values the monitor vouches for (user, client address,
//! pid, time) and values the worker reported (paths, byte counts, durations), replacing every
//! unprintable character with `?` as vsftpd does, so no client can forge a line.
//!
//! What it must never do: run in a jailed or unprivileged process (only the monitor writes
//! records), carry a password, or contain `unsafe` code.

pub mod files;

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::event::{Direction, Op};

/// vsftpd's `%a %b %e %H:%M:%S %Y` of `time`, read as UTC (vsftpd's default, `use_localtime=NO`;
/// with `use_localtime` the caller passes a time already shifted to the local zone:
/// `files::Outputs::now`).
pub fn ctime(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

/// Text from a client (or the worker) as vsftpd writes it: every unprintable character, and
/// every byte that is not UTF-8, becomes `?`.
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() || c == char::REPLACEMENT_CHARACTER {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A login name as the records show it. SECURITY: the name of a refused login is whatever
/// the client typed; any character outside those of account names (`]`, `"`, space, …)
/// becomes `?`, so a name cannot end the `[user]` field early and forge a `FAIL LOGIN:
/// Client "<someone else>"` for fail2ban (vsftpd writes the name as it came).
pub fn user_field(user: &str) -> String {
    user.chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-$@+".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Who the session is, as the monitor knows it.
#[derive(Debug, Clone)]
pub struct Who<'a> {
    /// The session (monitor) pid.
    pub pid: u32,
    /// The client's address (IPv4-mapped addresses unmapped).
    pub client: IpAddr,
    /// The login name the client gave (`None` before USER/PASS reached the monitor).
    pub user: Option<&'a str>,
    /// An anonymous session: the password it gave (vsftpd logs it as the e-mail address).
    pub anon_password: Option<&'a str>,
}

/// What a vsftpd-format line records.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    Connect,
    Login,
    Transfer {
        direction: Direction,
        path: &'a [u8],
        bytes: u64,
        micros: u64,
    },
    Op {
        op: Op,
        path: &'a [u8],
        to: Option<&'a [u8]>,
    },
    Protocol {
        input: bool,
        line: &'a [u8],
    },
}

fn op_word(op: Op) -> &'static str {
    match op {
        Op::Mkdir => "MKDIR",
        Op::Delete => "DELETE",
        Op::Rmdir => "RMDIR",
        Op::Rename => "RENAME",
        Op::Chmod => "CHMOD",
    }
}

/// One `vsftpd_log_file` line (no newline): `DATE [pid N] [user] OK LOGIN: Client "ip"`.
/// `syslog`: without the date and pid, as vsftpd sends it to syslog.
pub fn vsftpd_line(
    now: SystemTime,
    who: &Who<'_>,
    ok: bool,
    entry: Entry<'_>,
    syslog: bool,
) -> String {
    let mut s = String::new();
    if !syslog {
        s.push_str(&ctime(now));
        s.push_str(&format!(" [pid {}] ", who.pid));
    }
    if let Some(user) = who.user.filter(|u| !u.is_empty()) {
        s.push_str(&format!("[{}] ", user_field(user)));
    }
    let status = !matches!(entry, Entry::Connect | Entry::Protocol { .. });
    if status {
        s.push_str(if ok { "OK " } else { "FAIL " });
    }
    let (word, text, bytes, transfer) = match entry {
        Entry::Connect => ("CONNECT", String::new(), 0, None),
        Entry::Login => ("LOGIN", String::new(), 0, None),
        Entry::Transfer {
            direction,
            path,
            bytes,
            micros,
        } => (
            match direction {
                Direction::Upload => "UPLOAD",
                Direction::Download => "DOWNLOAD",
            },
            printable(path),
            bytes,
            Some(micros),
        ),
        Entry::Op { op, path, to } => {
            let mut text = printable(path);
            if let Some(to) = to {
                text.push(' ');
                text.push_str(&printable(to));
            }
            (op_word(op), text, 0, None)
        }
        Entry::Protocol { input, line } => (
            if input { "FTP command" } else { "FTP response" },
            printable(line),
            0,
            None,
        ),
    };
    s.push_str(word);
    s.push_str(&format!(": Client \"{}\"", who.client));
    if matches!(entry, Entry::Login)
        && let Some(pass) = who.anon_password.filter(|p| !p.is_empty())
    {
        s.push_str(&format!(", anon password \"{pass}\""));
    }
    if !text.is_empty() {
        s.push_str(&format!(", \"{text}\""));
    }
    if !matches!(entry, Entry::Protocol { .. }) {
        if bytes > 0 {
            s.push_str(&format!(", {bytes} bytes"));
        }
        if let Some(micros) = transfer {
            let secs = if micros == 0 {
                0.1
            } else {
                micros as f64 / 1e6
            };
            s.push_str(&format!(", {:.2}Kbyte/sec", bytes as f64 / secs / 1024.0));
        }
    }
    printable(s.as_bytes())
}

/// One transfer for [`xferlog_line`].
#[derive(Debug, Clone, Copy)]
pub struct Xfer<'a> {
    pub direction: Direction,
    pub path: &'a [u8],
    pub bytes: u64,
    pub micros: u64,
    pub ascii: bool,
    pub ok: bool,
}

/// One wu-ftpd xferlog line (no newline), as vsftpd writes it:
/// `DATE SECS HOST BYTES PATH TYPE _ DIR MODE USER ftp 0 * STATUS`.
pub fn xferlog_line(now: SystemTime, who: &Who<'_>, x: Xfer<'_>) -> String {
    // Whole seconds, at least 1 (vsftpd: `delta_sec <= 0` becomes 1).
    let secs = (x.micros / 1_000_000).max(1);
    // Fields are separated by spaces: a space in a name becomes `_` (vsftpd does the same for
    // the path; the user field is made safe the same way).
    let field = |text: String| -> String {
        let t: String = text
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        if t.is_empty() { "*".into() } else { t }
    };
    let (mode, user) = match who.anon_password {
        Some(pass) => ("a", field(printable(pass.as_bytes()))),
        None => ("r", field(user_field(who.user.unwrap_or("")))),
    };
    let line = format!(
        "{} {} {} {} {} {} _ {} {} {} ftp 0 * {}",
        ctime(now),
        secs,
        who.client,
        x.bytes,
        field(printable(x.path)),
        if x.ascii { "a" } else { "b" },
        match x.direction {
            Direction::Upload => "i",
            Direction::Download => "o",
        },
        mode,
        user,
        if x.ok { "c" } else { "i" },
    );
    printable(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn dates_are_vsftpds_ctime_in_utc() {
        assert_eq!(ctime(at(0)), "Thu Jan  1 00:00:00 1970");
        // date -u -d @1796177464
        assert_eq!(ctime(at(1796177464)), "Wed Dec  2 02:11:04 2026");
        assert_eq!(ctime(at(951_782_400)), "Tue Feb 29 00:00:00 2000");
    }

    fn who<'a>(user: Option<&'a str>, anon: Option<&'a str>) -> Who<'a> {
        Who {
            pid: 1234,
            client: "192.0.2.7".parse().unwrap(),
            user,
            anon_password: anon,
        }
    }

    #[test]
    fn vsftpd_lines_match_vsftpds_logging_c() {
        let t = at(951_782_400);
        let w = who(Some("alice"), None);
        assert_eq!(
            vsftpd_line(t, &who(None, None), true, Entry::Connect, false),
            "Tue Feb 29 00:00:00 2000 [pid 1234] CONNECT: Client \"192.0.2.7\""
        );
        assert_eq!(
            vsftpd_line(t, &w, false, Entry::Login, false),
            "Tue Feb 29 00:00:00 2000 [pid 1234] [alice] FAIL LOGIN: Client \"192.0.2.7\""
        );
        assert_eq!(
            vsftpd_line(t, &who(Some("ftp"), Some("me@x")), true, Entry::Login, true),
            "[ftp] OK LOGIN: Client \"192.0.2.7\", anon password \"me@x\""
        );
        let up = Entry::Transfer {
            direction: Direction::Upload,
            path: b"/d/f 1",
            bytes: 4096,
            micros: 2_000_000,
        };
        assert_eq!(
            vsftpd_line(t, &w, true, up, false),
            "Tue Feb 29 00:00:00 2000 [pid 1234] [alice] OK UPLOAD: Client \"192.0.2.7\", \
             \"/d/f 1\", 4096 bytes, 2.00Kbyte/sec"
        );
        let empty = Entry::Transfer {
            direction: Direction::Download,
            path: b"/nope",
            bytes: 0,
            micros: 0,
        };
        assert!(
            vsftpd_line(t, &w, false, empty, false)
                .ends_with("[alice] FAIL DOWNLOAD: Client \"192.0.2.7\", \"/nope\", 0.00Kbyte/sec")
        );
        let forged = who(Some("x] FAIL LOGIN: Client \"10.0.0.1\","), None);
        assert!(
            vsftpd_line(t, &forged, false, Entry::Login, true).starts_with(
                "[x??FAIL?LOGIN??Client??10.0.0.1??] FAIL LOGIN: Client \"192.0.2.7\""
            )
        );
        let rename = Entry::Op {
            op: Op::Rename,
            path: b"/a",
            to: Some(b"/b\r\n"),
        };
        assert!(
            vsftpd_line(t, &w, true, rename, false)
                .ends_with("[alice] OK RENAME: Client \"192.0.2.7\", \"/a /b??\"")
        );
        let cmd = Entry::Protocol {
            input: true,
            line: b"MKD x",
        };
        assert!(
            vsftpd_line(t, &w, true, cmd, false)
                .ends_with("[alice] FTP command: Client \"192.0.2.7\", \"MKD x\"")
        );
    }

    #[test]
    fn xferlog_lines_have_the_fourteen_wu_ftpd_fields() {
        let t = at(951_782_400);
        let x = Xfer {
            direction: Direction::Download,
            path: b"/pub/a file",
            bytes: 10,
            micros: 300,
            ascii: false,
            ok: true,
        };
        assert_eq!(
            xferlog_line(t, &who(Some("alice"), None), x),
            "Tue Feb 29 00:00:00 2000 1 192.0.2.7 10 /pub/a_file b _ o r alice ftp 0 * c"
        );
        let x = Xfer {
            direction: Direction::Upload,
            micros: 2_500_000,
            ok: false,
            ..x
        };
        assert_eq!(
            xferlog_line(t, &who(Some("ftp"), Some("guest here")), x),
            "Tue Feb 29 00:00:00 2000 2 192.0.2.7 10 /pub/a_file b _ i a guest_here ftp 0 * i"
        );
    }
}
