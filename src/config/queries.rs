//! The questions about a session that depend only on the configuration: the start/jail
//! directory, whether a user is jailed, whether a name is anonymous, the user list, and the
//! start-up warnings.
//!
//! What it does: answers from the configuration, reading the chroot list and user list files
//! when asked.
//!
//! What it must never do: turn an unreadable list into an answer (callers get the `Err` and
//! must fail closed), write anything, change process state, or contain `unsafe` code.

use std::io;
use std::path::{Path, PathBuf};

use super::Config;

impl Config {
    /// Human-readable warnings about settings that are accepted but not (fully) enforced, for
    /// the master to log at start. Empty when there is nothing to say. Independent of
    /// [`Config::validate`]: call it on a validated configuration.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.port_enable && self.port_promiscuous {
            warnings.push(
                "active mode is on with port_promiscuous = true: clients may make rftpd \
                 connect to any address and port (FTP bounce)."
                    .to_owned(),
            );
        }
        if self.metrics_enable
            && !crate::jail::netns::unmapped(self.metrics_listen.ip()).is_loopback()
        {
            warnings.push(format!(
                "metrics_listen = \"{}\" is not a loopback address: anyone who can reach it \
                 reads the metrics (no password); firewall it or put a proxy with \
                 authentication in front",
                self.metrics_listen
            ));
        }
        for (key, needs) in self.keys_without_effect() {
            warnings.push(format!(
                "`{key}` is set but has no effect because `{needs}` is false"
            ));
        }
        warnings
    }

    /// The keys that are set (differ from rftpd's default) but do nothing in this
    /// configuration, each with the key that turns its feature on and is false.
    pub fn keys_without_effect(&self) -> Vec<(&'static str, &'static str)> {
        let d = Config::default();
        let mut found = Vec::new();
        let mut check = |needs: &'static str, on: bool, keys: &[(&'static str, bool)]| {
            if on {
                return;
            }
            for (key, set) in keys {
                if *set {
                    found.push((*key, needs));
                }
            }
        };
        // Virtual users without local privileges get the anonymous rights and umask too.
        let anonymous_rights =
            self.anonymous_enable || (self.guest_enable && !self.virtual_use_local_privs);
        check(
            "anonymous_enable",
            anonymous_rights,
            &[
                ("anon_upload_enable", self.anon_upload_enable),
                ("anon_mkdir_write_enable", self.anon_mkdir_write_enable),
                ("anon_other_write_enable", self.anon_other_write_enable),
                ("anon_umask", self.anon_umask != d.anon_umask),
            ],
        );
        check(
            "anonymous_enable",
            self.anonymous_enable,
            &[
                ("anon_root", self.anon_root.is_some()),
                ("no_anon_password", self.no_anon_password),
            ],
        );
        check(
            "guest_enable",
            self.guest_enable,
            &[
                ("guest_username", self.guest_username != d.guest_username),
                ("virtual_use_local_privs", self.virtual_use_local_privs),
            ],
        );
        check(
            "pasv_enable",
            self.pasv_enable,
            &[
                ("pasv_min_port", self.pasv_min_port != d.pasv_min_port),
                ("pasv_max_port", self.pasv_max_port != d.pasv_max_port),
                ("pasv_address", self.pasv_address.is_some()),
            ],
        );
        check(
            "ssl_enable",
            self.ssl_enable,
            &[
                ("rsa_cert_file", self.rsa_cert_file != d.rsa_cert_file),
                (
                    "rsa_private_key_file",
                    self.rsa_private_key_file != d.rsa_private_key_file,
                ),
                ("implicit_ssl", self.implicit_ssl),
            ],
        );
        check(
            "metrics_enable",
            self.metrics_enable,
            &[("metrics_listen", self.metrics_listen != d.metrics_listen)],
        );
        check(
            "chroot_list_enable",
            self.chroot_list_enable,
            &[(
                "chroot_list_file",
                self.chroot_list_file != d.chroot_list_file,
            )],
        );
        check(
            "userlist_enable",
            self.userlist_enable,
            &[
                ("userlist_file", self.userlist_file != d.userlist_file),
                ("userlist_deny", self.userlist_deny != d.userlist_deny),
            ],
        );
        found
    }

    /// Whether `user` is one of the names vsftpd treats as anonymous: `ftp` or `anonymous`,
    /// ASCII case-insensitively (vsftpd upper-cases the name and compares with `FTP` and
    /// `ANONYMOUS`). Does not look at `anonymous_enable`: the caller decides what such a name
    /// means when anonymous logins are off.
    pub fn is_anonymous_name(&self, user: &str) -> bool {
        user.eq_ignore_ascii_case("ftp") || user.eq_ignore_ascii_case("anonymous")
    }

    /// The names in `userlist_file`: one per line, whitespace trimmed, blank lines and lines
    /// starting with `#` left out, in file order. Reads the file whatever `userlist_enable`
    /// says; the list only means something when `userlist_enable` is true.
    ///
    /// # Errors
    /// An unreadable file is returned as `Err`. **Callers must fail closed**: with
    /// `userlist_enable`, treat an `Err` as "refuse the login", never as an empty list.
    pub fn load_user_list(&self) -> io::Result<Vec<String>> {
        read_name_list(&self.userlist_file)
    }

    /// The start/jail directory for a user: `local_root` with every occurrence of
    /// `user_sub_token` replaced by `user` (if the token is set and not empty), else `home`.
    pub fn start_dir(&self, user: &str, home: &Path) -> PathBuf {
        match (&self.local_root, &self.user_sub_token) {
            (Some(root), Some(token)) if !token.is_empty() => {
                PathBuf::from(root.replace(token, user))
            }
            (Some(root), _) => PathBuf::from(root),
            (None, _) => home.to_path_buf(),
        }
    }

    /// Whether this user is jailed: `chroot_local_user` XOR (`chroot_list_enable` and `user`
    /// is listed in `chroot_list_file`) — vsftpd's inverted list semantics: with
    /// `chroot_local_user = false` the listed users are jailed, with `true` the listed users
    /// are *not* jailed.
    ///
    /// The list file is read only when `chroot_list_enable` is true: one user per line,
    /// whitespace trimmed, blank lines and lines starting with `#` ignored.
    ///
    /// # Errors
    /// An unreadable list file is returned as `Err`. **Callers must fail closed**: treat an
    /// `Err` as "jailed" (or refuse the login), never as "not jailed".
    pub fn is_jailed(&self, user: &str) -> io::Result<bool> {
        let listed = self.chroot_list_enable
            && read_name_list(&self.chroot_list_file)?
                .iter()
                .any(|l| l == user);
        Ok(self.chroot_local_user != listed)
    }
}

/// A list of user names: one per line, whitespace trimmed, blank lines and lines starting
/// with `#` left out.
fn read_name_list(path: &Path) -> io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}
