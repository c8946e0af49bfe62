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
    fn user_of(&self, uid: u32) -> String {
        if self.hide_ids {
            "ftp".into()
        } else if uid == self.uid {
            self.user.clone()
        } else {
            uid.to_string()
        }
    }

    fn group_of(&self, gid: u32) -> String {
        if self.hide_ids {
            "ftp".into()
        } else if gid == self.gid {
            self.group.clone()
        } else {
            gid.to_string()
        }
    }
}

/// `(year, month 1-12, day)` of a count of days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
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
pub fn format_time(t: SystemTime, now: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let month = MONTHS[(month - 1) as usize];
    const HALF_YEAR: i64 = 182 * 86_400;
    if (unix_seconds(now) - secs).abs() < HALF_YEAR {
        let in_day = secs.rem_euclid(86_400);
        format!(
            "{month} {day:02} {:02}:{:02}",
            in_day / 3600,
            (in_day % 3600) / 60
        )
    } else {
        format!("{month} {day:02}  {year}")
    }
}

fn mode_string(meta: &impl Metadata) -> String {
    let mode = meta.permissions().0;
    let kind = if meta.is_symlink() {
        'l'
    } else if meta.is_dir() {
        'd'
    } else {
        '-'
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
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

/// One `MLSD` line (without the CRLF): the facts libunftp gives (`type`, `size`, `modify` in
/// UTC, `unix.uid`/`unix.gid` when not 0), a space, the name.
pub fn mlsd_entry(name: &str, meta: &impl Metadata) -> String {
    let mut facts = format!(
        "type={};size={};",
        if meta.is_dir() { "dir" } else { "file" },
        meta.len()
    );
    if let Ok(t) = meta.modified() {
        let secs = unix_seconds(t);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let in_day = secs.rem_euclid(86_400);
        facts.push_str(&format!(
            "modify={year:04}{month:02}{day:02}{:02}{:02}{:02};",
            in_day / 3600,
            (in_day % 3600) / 60,
            in_day % 60
        ));
    }
    if meta.uid() > 0 {
        facts.push_str(&format!("unix.uid={};", meta.uid()));
    }
    if meta.gid() > 0 {
        facts.push_str(&format!("unix.gid={};", meta.gid()));
    }
    format!("{facts} {}", wire_name(name))
}

/// One `LIST` line (without the CRLF).
pub fn format_entry(
    name: &str,
    meta: &impl Metadata,
    owners: &OwnerNames,
    now: SystemTime,
) -> String {
    let time = meta
        .modified()
        .map(|t| format_time(t, now))
        .unwrap_or_else(|_| "Jan 01  1970".into());
    let mut line = format!(
        "{} {:>4} {:<8} {:<8} {:>8} {} {}",
        mode_string(meta),
        meta.links(),
        owners.user_of(meta.uid()),
        owners.group_of(meta.gid()),
        meta.len(),
        time,
        wire_name(name)
    );
    if meta.is_symlink()
        && let Some(target) = meta.readlink()
    {
        line.push_str(" -> ");
        line.push_str(&wire_name(&target.to_string_lossy()));
    }
    line
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
