//! The checks of a configuration against this host: [`Config::check_host`], and the loaders
//! that run it after parsing, for start-up, `--check-config` and reload.
//!
//! What it does: looks up `nopriv_user` in the passwd database (it must exist and not be
//! uid 0) and stats `secure_chroot_dir` (it must be a directory owned by root, not writable by
//! group or others), as vsftpd requires of its unprivileged helper and its empty jail.
//!
//! What it must never do: create, chmod or chown anything (the package and the test harness
//! make the account and the directory), accept what it cannot look up (an NSS or stat error
//! is a problem: fail closed), run inside `Config::parse` (the spawner and the importer parse
//! configurations that are not checked against this host), or contain `unsafe` code.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::{NO_FILE, io_message};
use super::parse::{locate, read};
use super::{Config, ConfigError, ConfigErrors};

/// `file` of the errors about the embedded defaults (no configuration file).
pub(super) const EMBEDDED: &str = "<embedded defaults>";

impl Config {
    /// Reads, validates and checks a file against this host: [`Config::parse`], then
    /// [`Config::check_host`] with its errors placed at the line of their key (or marked
    /// `(default)` when the file does not set the key). What start-up, `--check-config` and
    /// reload use.
    pub fn load_and_check_host(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read(path)?;
        let file = path.display().to_string();
        let config = Config::parse(&text, &file)?;
        config
            .check_host()
            .map_err(|problems| locate(Some(&text), &file, problems))?;
        Ok(config)
    }

    /// The embedded defaults, checked against this host (no configuration file).
    pub fn default_and_check_host() -> Result<Config, ConfigErrors> {
        let config = Config::default();
        config
            .check_host()
            .map_err(|problems| locate(None, EMBEDDED, problems))?;
        Ok(config)
    }

    /// Checks the parts of a validated configuration that depend on this host, not on the
    /// text: the `nopriv_user` account and the `secure_chroot_dir` directory. Errors have
    /// `key` set, `file` = `<input>` and no line (the loaders above fill those in).
    ///
    /// Looks accounts up through NSS and stats the directory; any failure to do so is an
    /// error (fail closed).
    pub fn check_host(&self) -> Result<(), Vec<ConfigError>> {
        let mut problems = Vec::new();
        let mut add = |key: &str, message: String| {
            problems.push(ConfigError {
                file: NO_FILE.to_owned(),
                line: None,
                column: None,
                key: Some(key.to_owned()),
                message,
                default: false,
            })
        };
        let user = &self.nopriv_user;
        let uid = nix::unistd::User::from_name(user)
            .map(|found| found.map(|u| u.uid.as_raw()))
            .map_err(|e| io_message(&io::Error::from(e)));
        if let Some(message) = nopriv_user_problem(user, uid) {
            add("nopriv_user", message);
        }
        if self.chown_uploads && self.anonymous_enable {
            // vsftpd refuses an unknown chown_username too (when an anonymous user logs in).
            let owner = &self.chown_username;
            match nix::unistd::User::from_name(owner) {
                Ok(Some(_)) => {}
                Ok(None) => add(
                    "chown_username",
                    format!("`{owner}` has no passwd entry (chown_uploads gives uploads to it)"),
                ),
                Err(e) => add(
                    "chown_username",
                    format!(
                        "cannot look up the account `{owner}`: {}",
                        io_message(&io::Error::from(e))
                    ),
                ),
            }
        }
        let dir = &self.secure_chroot_dir;
        let found = std::fs::metadata(dir).map(|m| DirFacts {
            is_dir: m.is_dir(),
            uid: m.uid(),
            mode: m.mode(),
        });
        if let Some(message) = secure_chroot_dir_problem(dir, found) {
            add("secure_chroot_dir", message);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// What the account lookup of `user` found: its uid, no entry, or why the lookup failed.
fn nopriv_user_problem(user: &str, uid: Result<Option<u32>, String>) -> Option<String> {
    match uid {
        Ok(Some(0)) => Some(format!(
            "`{user}` has uid 0: the pre-login process must run as an unprivileged account"
        )),
        Ok(Some(_)) => None,
        Ok(None) => Some(format!(
            "`{user}` has no passwd entry; create it, e.g. `adduser --system --group \
             --no-create-home --home /nonexistent --shell /usr/sbin/nologin {user}`"
        )),
        // SECURITY: fail closed: an account that cannot be looked up is not known to be safe.
        Err(why) => Some(format!("cannot look up the account `{user}`: {why}")),
    }
}

/// The facts about `secure_chroot_dir` that decide whether it is a safe jail.
struct DirFacts {
    is_dir: bool,
    uid: u32,
    mode: u32,
}

const MAKE_IT: &str = "it must be an empty directory owned by root, e.g. \
                       `install -d -o root -g root -m 0555 DIR`";

fn secure_chroot_dir_problem(dir: &Path, found: io::Result<DirFacts>) -> Option<String> {
    let shown = dir.display();
    let facts = match found {
        Ok(facts) => facts,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(format!("`{shown}` does not exist; {MAKE_IT}"));
        }
        // SECURITY: fail closed: a directory that cannot be examined is not known to be safe.
        Err(e) => return Some(format!("cannot read `{shown}`: {}", io_message(&e))),
    };
    if !facts.is_dir {
        return Some(format!("`{shown}` is not a directory; {MAKE_IT}"));
    }
    // SECURITY: the pre-login process is jailed here; an owner other than root, or group or
    // other write, would let someone else put files (or links) into its jail.
    if facts.uid != 0 {
        return Some(format!(
            "`{shown}` is owned by uid {}, not by root (uid 0); {MAKE_IT}",
            facts.uid
        ));
    }
    if facts.mode & 0o022 != 0 {
        return Some(format!(
            "`{shown}` is writable by group or others (mode {:04o}); make it 0555 or 0755",
            facts.mode & 0o7777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn facts(is_dir: bool, uid: u32, mode: u32) -> io::Result<DirFacts> {
        Ok(DirFacts { is_dir, uid, mode })
    }

    #[test]
    fn the_nopriv_user_must_exist_and_not_be_root() {
        assert_eq!(nopriv_user_problem("rftpd", Ok(Some(101))), None);
        let root = nopriv_user_problem("root", Ok(Some(0))).unwrap();
        assert!(root.contains("`root` has uid 0"), "{root}");
        let missing = nopriv_user_problem("ghost", Ok(None)).unwrap();
        assert!(missing.contains("`ghost` has no passwd entry"), "{missing}");
        let failed = nopriv_user_problem("x", Err("NSS down".into())).unwrap();
        assert!(
            failed.contains("cannot look up the account `x`: NSS down"),
            "{failed}"
        );
    }

    #[test]
    fn the_secure_chroot_dir_must_be_a_root_owned_directory_without_group_or_other_write() {
        let dir = Path::new("/run/rftpd/empty");
        assert_eq!(
            secure_chroot_dir_problem(dir, facts(true, 0, 0o40555)),
            None
        );
        assert_eq!(
            secure_chroot_dir_problem(dir, facts(true, 0, 0o40755)),
            None
        );
        let cases = [
            (facts(false, 0, 0o100444), "is not a directory"),
            (
                facts(true, 1000, 0o40555),
                "is owned by uid 1000, not by root",
            ),
            (
                facts(true, 0, 0o40775),
                "writable by group or others (mode 0775)",
            ),
            (
                facts(true, 0, 0o40757),
                "writable by group or others (mode 0757)",
            ),
            (
                Err(io::Error::from(io::ErrorKind::NotFound)),
                "`/run/rftpd/empty` does not exist",
            ),
            (
                Err(io::Error::from_raw_os_error(13)),
                "cannot read `/run/rftpd/empty`: Permission denied",
            ),
        ];
        for (found, expected) in cases {
            let message = secure_chroot_dir_problem(dir, found).unwrap();
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn a_world_writable_secure_chroot_dir_is_refused_and_a_0555_one_accepted() {
        let dir = std::env::temp_dir().join(format!("rftpd-empty-test-{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap();
        let config = Config {
            nopriv_user: "nobody".to_owned(),
            secure_chroot_dir: dir.clone(),
            ..Config::default()
        };
        let check = |mode: u32| {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            config.check_host()
        };
        let wide = check(0o777).unwrap_err();
        let narrow = check(0o555);
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(wide.len(), 1, "{wide:?}");
        assert_eq!(wide[0].key.as_deref(), Some("secure_chroot_dir"));
        assert!(
            wide[0].message.contains("(mode 0777)"),
            "{}",
            wide[0].message
        );
        if nix::unistd::geteuid().is_root() {
            assert_eq!(narrow, Ok(()));
        } else {
            // Not root: the directory is ours, which is the one remaining problem.
            let narrow = narrow.unwrap_err();
            assert_eq!(narrow.len(), 1, "{narrow:?}");
            assert!(
                narrow[0].message.contains("not by root"),
                "{}",
                narrow[0].message
            );
        }
    }

    #[test]
    fn host_errors_name_the_line_of_their_key_or_say_the_default_was_used() {
        let problem = |key: &str| ConfigError {
            file: NO_FILE.to_owned(),
            line: None,
            column: None,
            key: Some(key.to_owned()),
            message: "`x` does not exist".to_owned(),
            default: false,
        };
        let text = "listen = true\nsecure_chroot_dir = \"/x\"\n";
        let located = locate(
            Some(text),
            "/etc/rftpd.toml",
            vec![problem("secure_chroot_dir"), problem("nopriv_user")],
        );
        let shown: Vec<String> = located.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "/etc/rftpd.toml:2:1: key `secure_chroot_dir`: `x` does not exist",
                "/etc/rftpd.toml: key `nopriv_user` (default): `x` does not exist",
            ]
        );
        let embedded = locate(None, EMBEDDED, vec![problem("nopriv_user")]);
        assert_eq!(
            embedded.to_string(),
            "<embedded defaults>: key `nopriv_user` (default): `x` does not exist"
        );
    }

    #[test]
    fn an_unknown_nopriv_user_and_root_are_refused_by_check_host() {
        let dir = std::env::temp_dir();
        for user in ["rftpd-no-such-user-xyz", "root"] {
            let config = Config {
                nopriv_user: user.to_owned(),
                secure_chroot_dir: dir.clone(),
                ..Config::default()
            };
            let errors = config.check_host().unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.key.as_deref() == Some("nopriv_user")),
                "{errors:?}"
            );
        }
    }
}
