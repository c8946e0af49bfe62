//! Name rules shared by the monitor and the worker: vsftpd's user list, and the
//! `hide_file` / `deny_file` patterns.
//!
//! Pure functions over strings: no I/O, no privileges. The monitor's use of [`UserList`] is the
//! authoritative one; the worker applies the same list at `USER` only to answer early.

use std::collections::HashSet;
use std::path::Path;

use crate::config::Config;

/// vsftpd's `userlist_enable` / `userlist_deny` / `userlist_file`.
#[derive(Debug, Clone, Default)]
pub struct UserList {
    enabled: bool,
    deny: bool,
    names: HashSet<String>,
}

impl UserList {
    /// Built from the config and the list text the master read (one name per line).
    pub fn new(config: &Config, text: &str) -> UserList {
        UserList {
            enabled: config.userlist_enable,
            deny: config.userlist_deny,
            names: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
        }
    }

    /// Whether `user` is refused before any password is asked for: listed on a deny list, or
    /// missing from an allow list.
    pub fn refuses(&self, user: &str) -> bool {
        self.enabled && (self.names.contains(user) == self.deny)
    }
}

/// A vsftpd file pattern such as `{*.mp3,*.mov,.private}`: alternatives with `*` and `?`.
#[derive(Debug, Clone, Default)]
pub struct NamePattern {
    alternatives: Vec<String>,
}

impl NamePattern {
    pub fn parse(text: Option<&str>) -> NamePattern {
        let Some(text) = text else {
            return NamePattern::default();
        };
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        NamePattern {
            alternatives: inner
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    /// Whether one file name matches any alternative.
    pub fn matches_name(&self, name: &str) -> bool {
        self.alternatives
            .iter()
            .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }

    /// Whether any component of `path` matches.
    pub fn matches_path(&self, path: &Path) -> bool {
        !self.alternatives.is_empty()
            && path.components().any(|c| match c {
                std::path::Component::Normal(n) => self.matches_name(&n.to_string_lossy()),
                _ => false,
            })
    }
}

/// `*` = any run of bytes, `?` = one byte, everything else literal.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_and_allow_lists_invert() {
        let mut config = Config {
            userlist_enable: true,
            userlist_deny: true,
            ..Config::default()
        };
        let deny = UserList::new(&config, "alice\n# comment\n\n bob \n");
        assert!(deny.refuses("alice") && deny.refuses("bob") && !deny.refuses("carol"));
        config.userlist_deny = false;
        let allow = UserList::new(&config, "alice\n");
        assert!(!allow.refuses("alice") && allow.refuses("carol"));
        config.userlist_enable = false;
        assert!(!UserList::new(&config, "alice\n").refuses("alice"));
    }

    #[test]
    fn vsftpd_patterns_match_names_and_path_components() {
        let p = NamePattern::parse(Some("{*.mp3,.private,h?llo}"));
        assert!(
            p.matches_name("song.mp3") && p.matches_name(".private") && p.matches_name("hallo")
        );
        assert!(
            !p.matches_name("song.mp4")
                && !p.matches_name("hello.txt")
                && !p.matches_name("x.private")
        );
        assert!(p.matches_path(Path::new("/a/.private/b")));
        assert!(!p.matches_path(Path::new("/a/b")));
        assert!(!NamePattern::parse(None).matches_path(Path::new("/x.mp3")));
        assert!(NamePattern::parse(Some("*secret*")).matches_name("topsecret.txt"));
    }
}
