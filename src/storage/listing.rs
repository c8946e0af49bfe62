//! `LIST` lines in the classic `ls -l` shape that FTP clients parse, with times in UTC.
//!
//! Owner and group are shown by name only for the session's own user and primary group (names
//! learned by the monitor before the jail); every other id is shown as a number, because
//! nothing may be looked up inside the jail. `hide_ids` shows `ftp` for all of them.

use std::time::{SystemTime, UNIX_EPOCH};

use unftp_core::storage::Metadata;

/// Names the session may show for ids.
#[derive(Debug, Clone)]
pub struct OwnerNames {
    pub uid: u32,
    pub user: String,
    pub gid: u32,
    pub group: String,
    pub hide_ids: bool,
}

impl OwnerNames {
    #[cfg(test)]
    fn user_of(&self, uid: u32) -> String {
        let mut out = String::new();
        self.write_id(&mut out, uid, self.uid, &self.user);
        out.trim_end().to_string()
    }

    #[cfg(test)]
    fn group_of(&self, gid: u32) -> String {
        let mut out = String::new();
        self.write_id(&mut out, gid, self.gid, &self.group);
        out.trim_end().to_string()
    }

    /// `id` as shown, left-aligned in at least 8 columns: `ftp` with `hide_ids`, `name` for
    /// the session's own id, else the number.
    fn write_id(&self, out: &mut String, id: u32, own: u32, name: &str) {
        use std::fmt::Write;
        let _ = if self.hide_ids {
            write!(out, "{:<8}", "ftp")
        } else if id == own {
            write!(out, "{name:<8}")
        } else {
            write!(out, "{id:<8}")
        };
    }
}

/// `(year, month 1-12, day)` of a count of days since 1970-01-01 (proleptic Gregorian).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `Nov 29 17:05` for times within six months of `now`, else `Nov 29  2025` (as `ls` and vsftpd).
#[cfg(test)]
pub fn format_time(t: SystemTime, now: SystemTime) -> String {
    let mut out = String::with_capacity(12);
    write_time(&mut out, t, now);
    out
}

/// [`format_time`] appended to `out`.
fn write_time(out: &mut String, t: SystemTime, now: SystemTime) {
    use std::fmt::Write;
    let secs = unix_seconds(t);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let month = MONTHS[(month - 1) as usize];
    const HALF_YEAR: i64 = 182 * 86_400;
    let _ = if (unix_seconds(now) - secs).abs() < HALF_YEAR {
        let in_day = secs.rem_euclid(86_400);
        write!(
            out,
            "{month} {day:02} {:02}:{:02}",
            in_day / 3600,
            (in_day % 3600) / 60
        )
    } else {
        write!(out, "{month} {day:02}  {year}")
    };
}

/// `drwxr-xr-x` appended to `out`.
fn write_mode(out: &mut String, meta: &impl Metadata) {
    let mode = meta.permissions().0;
    let kind = if meta.is_symlink() {
        'l'
    } else if meta.is_dir() {
        'd'
    } else {
        '-'
    };
    out.push(kind);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
}

/// A name as it may appear in a listing line. SECURITY: a CR is sent as CR NUL (RFC 959's
/// Telnet convention, RFC 2640 §3.1) and an LF as NUL (vsftpd's mapping), so a file name can
/// never end a line — nor, in a `STAT` reply on the control connection, forge a reply.
pub fn wire_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(['\r', '\n']) {
        std::borrow::Cow::Owned(name.replace('\r', "\r\0").replace('\n', "\0"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// One `LIST` line (without the CRLF).
pub fn format_entry(
    name: &str,
    meta: &impl Metadata,
    owners: &OwnerNames,
    now: SystemTime,
) -> String {
    let mut line = String::with_capacity(80);
    write_entry(&mut line, name, meta, owners, now);
    line
}

/// [`format_entry`] appended to `out`, with no string per field (a `LIST` of 10,000 entries
/// has 70,000 of them).
pub fn write_entry(
    out: &mut String,
    name: &str,
    meta: &impl Metadata,
    owners: &OwnerNames,
    now: SystemTime,
) {
    use std::fmt::Write;
    write_mode(out, meta);
    let _ = write!(out, " {:>4} ", meta.links());
    owners.write_id(out, meta.uid(), owners.uid, &owners.user);
    out.push(' ');
    owners.write_id(out, meta.gid(), owners.gid, &owners.group);
    let _ = write!(out, " {:>8} ", meta.len());
    match meta.modified() {
        Ok(t) => write_time(out, t, now),
        Err(_) => out.push_str("Jan 01  1970"),
    }
    out.push(' ');
    out.push_str(&wire_name(name));
    if meta.is_symlink()
        && let Some(target) = meta.readlink()
    {
        out.push_str(" -> ");
        out.push_str(&wire_name(&target.to_string_lossy()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_722), (2023, 12, 31));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!(format_time(t, t), "Nov 14 22:13");
        assert_eq!(
            format_time(t, t + Duration::from_secs(400 * 86_400)),
            "Nov 14  2023"
        );
    }

    #[test]
    fn hide_ids_shows_ftp_and_other_ids_stay_numeric() {
        let mut o = OwnerNames {
            uid: 1000,
            user: "alice".into(),
            gid: 100,
            group: "users".into(),
            hide_ids: false,
        };
        assert_eq!(o.user_of(1000), "alice");
        assert_eq!(o.user_of(0), "0");
        assert_eq!(o.group_of(100), "users");
        o.hide_ids = true;
        assert_eq!(o.user_of(1000), "ftp");
        assert_eq!(o.group_of(5), "ftp");
    }
}
