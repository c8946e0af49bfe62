//! RFC 3659 facts for `MLSD` and `MLST`: `type`, `size`, `modify`, `perm`, `UNIX.mode`,
//! `UNIX.owner`, `UNIX.group`, the selection `OPTS MLST` makes (§7.9), and the `FEAT` line that
//! announces them.
//!
//! `perm` (§7.5.5) is computed for the logged-in user from the file's mode bits and the
//! process's own ids (the worker already runs as the user), together with what the session's
//! rights allow (`write_enable`, the anonymous rights, `download_enable`, `dirlist_enable`). It
//! never looks up a name (owners are numeric, or `ftp` with `hide_ids`, as in `LIST`) and never
//! lets a name break a line (names go through `listing::wire_name`).

use std::time::{SystemTime, UNIX_EPOCH};

use unftp_core::storage::Metadata;

use super::Rights;
use super::fsmeta::FileMeta;
use super::listing::{civil_from_days, wire_name};

/// The facts rftpd knows, in the order they are announced and written.
const FACTS: [&str; 7] = [
    "type",
    "size",
    "modify",
    "perm",
    "UNIX.mode",
    "UNIX.owner",
    "UNIX.group",
];

/// A selection of facts (bit `i` is `FACTS[i]`); every fact by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactSet(u8);

impl Default for FactSet {
    fn default() -> Self {
        FactSet((1 << FACTS.len()) - 1)
    }
}

impl FactSet {
    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }

    /// `OPTS MLST type;size;…`: the known facts named (any case; unknown ones ignored, as
    /// RFC 3659 §7.9 says), and the reply `200 MLST OPTS type;size;`.
    pub fn select(list: &str) -> (FactSet, String) {
        let mut set = FactSet(0);
        for wanted in list.trim().split(';') {
            if let Some(i) = FACTS
                .iter()
                .position(|f| f.eq_ignore_ascii_case(wanted.trim()))
            {
                set.0 |= 1 << i;
            }
        }
        let names: String = (0..FACTS.len())
            .filter(|&i| set.has(i))
            .map(|i| format!("{};", FACTS[i]))
            .collect();
        (set, format!("200 MLST OPTS {names}"))
    }

    /// The `FEAT` line: every fact, a `*` after the selected ones.
    pub fn feat_line(self) -> String {
        let facts: String = (0..FACTS.len())
            .map(|i| format!("{}{};", FACTS[i], if self.has(i) { "*" } else { "" }))
            .collect();
        format!(" MLST {facts}")
    }
}

/// `YYYYMMDDHHMMSS` in UTC (RFC 3659 §2.3), as MDTM and the `modify` fact give it.
pub fn timestamp(t: SystemTime) -> String {
    let mut out = String::with_capacity(14);
    let _ = write_timestamp(&mut out, t);
    out
}

/// [`timestamp`] appended to `out`.
fn write_timestamp(out: &mut String, t: SystemTime) -> std::fmt::Result {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    std::fmt::Write::write_fmt(
        out,
        format_args!(
            "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
            s / 3600,
            (s % 3600) / 60,
            s % 60
        ),
    )
}

/// `YYYYMMDDHHMMSS` (optionally with `.fff`) in UTC → a time; `None` if malformed.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let (whole, _fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<i64>().ok();
    let (year, month, day) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hour, minute, second) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    // Days from the civil date (inverse of civil_from_days).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Who is asking, for `perm`: the process's ids (the worker runs as the user).
#[derive(Debug, Clone)]
pub struct Asker {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Asker {
    pub fn current() -> Asker {
        Asker {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            groups: nix::unistd::getgroups()
                .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                .unwrap_or_default(),
        }
    }

    /// The `rwx` bits of `meta` that apply to this user (root would pass every check, but
    /// the worker never runs as root).
    fn bits(&self, meta: &FileMeta) -> u32 {
        let mode = meta.permissions().0;
        if meta.uid() == self.uid {
            (mode >> 6) & 7
        } else if meta.gid() == self.gid || self.groups.contains(&meta.gid()) {
            (mode >> 3) & 7
        } else {
            mode & 7
        }
    }
}

/// What the facts of one listing need besides each entry.
pub(super) struct FactContext<'a> {
    pub(super) facts: FactSet,
    pub(super) rights: &'a Rights,
    pub(super) asker: &'a Asker,
    pub(super) hide_ids: bool,
    /// The directory holding the entries (for `d`/`f`: deleting or renaming needs it
    /// writable); `None` if unknown.
    pub(super) parent: Option<&'a FileMeta>,
}

impl FactContext<'_> {
    /// RFC 3659 §7.5.5's letters for `meta` (already followed if it is a link).
    fn write_perm(&self, p: &mut String, meta: &FileMeta) {
        let r = self.rights;
        let bits = self.asker.bits(meta);
        let (read, write, exec) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
        let parent_writable = self.parent.is_some_and(|p| self.asker.bits(p) & 3 == 3);
        if meta.is_dir() {
            if r.upload && write && exec {
                p.push('c');
            }
            if r.modify && parent_writable {
                p.push_str("df");
            }
            if exec {
                p.push('e');
            }
            if r.dirlist && read && exec {
                p.push('l');
            }
            if r.mkdir && write && exec {
                p.push('m');
            }
            if r.modify && write && exec {
                p.push('p');
            }
        } else {
            if r.modify && write {
                p.push('a');
            }
            if r.modify && parent_writable {
                p.push_str("df");
            }
            if r.download && read {
                p.push('r');
            }
            if r.modify && write {
                p.push('w');
            }
        }
    }

    /// `fact=value;…; name` (without the line end). `meta` is the entry as listed (a link
    /// itself); `followed` what it points to, when that could be read.
    pub fn line(&self, name: &str, meta: &FileMeta, followed: Option<&FileMeta>) -> String {
        let mut out = String::with_capacity(128);
        self.write_line(&mut out, name, meta, followed);
        out
    }

    /// [`Self::line`] appended to `out`, without a string per fact (an `MLSD` of 10,000
    /// entries writes 70,000 facts).
    pub fn write_line(
        &self,
        out: &mut String,
        name: &str,
        meta: &FileMeta,
        followed: Option<&FileMeta>,
    ) {
        use std::fmt::Write;
        let shown = followed.unwrap_or(meta);
        for (i, fact) in FACTS.iter().enumerate() {
            if !self.facts.has(i) {
                continue;
            }
            out.push_str(fact);
            out.push('=');
            // Writing to a String cannot fail.
            let _ = match i {
                0 if meta.is_symlink() && followed.is_none() => {
                    out.push_str("OS.unix=symlink");
                    Ok(())
                }
                0 if shown.is_dir() => {
                    out.push_str("dir");
                    Ok(())
                }
                0 if shown.is_file() => {
                    out.push_str("file");
                    Ok(())
                }
                0 => {
                    out.push_str("OS.unix=special");
                    Ok(())
                }
                1 => write!(out, "{}", shown.len()),
                2 => write_timestamp(out, shown.modified().unwrap_or(UNIX_EPOCH)),
                3 => {
                    self.write_perm(out, shown);
                    Ok(())
                }
                4 => write!(out, "{:04o}", shown.permissions().0 & 0o7777),
                5 | 6 if self.hide_ids => {
                    out.push_str("ftp");
                    Ok(())
                }
                5 => write!(out, "{}", shown.uid()),
                _ => write!(out, "{}", shown.gid()),
            };
            out.push(';');
        }
        out.push(' ');
        out.push_str(&wire_name(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opts_mlst_selects_known_facts_in_order() {
        let (set, reply) = FactSet::select("size;TYPE;bogus;unix.mode;");
        assert_eq!(reply, "200 MLST OPTS type;size;UNIX.mode;");
        assert_eq!(
            set.feat_line(),
            " MLST type*;size*;modify;perm;UNIX.mode*;UNIX.owner;UNIX.group;"
        );
        let (none, reply) = FactSet::select("");
        assert_eq!(reply, "200 MLST OPTS ");
        assert_eq!(none.0, 0);
        assert_eq!(
            FactSet::default().feat_line(),
            " MLST type*;size*;modify*;perm*;UNIX.mode*;UNIX.owner*;UNIX.group*;"
        );
    }

    #[test]
    fn timestamps_round_trip_in_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(timestamp(t), "20231114221320");
        assert_eq!(parse_timestamp("20231114221320"), Some(t));
        assert_eq!(parse_timestamp("20231114221320.123"), Some(t));
        assert_eq!(parse_timestamp("19700101000000"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_timestamp("20000229120000").map(timestamp).as_deref(),
            Some("20000229120000")
        );
        for bad in [
            "",
            "2023111422132",
            "2023131422132x",
            "20231314221320",
            "abc",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
