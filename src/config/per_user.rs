//! Per-user settings (`user_config_dir`): which keys a user's file may set, the check that a
//! login name is a plain name, and [`Config::with_user_file`], which applies one user's file
//! to the server's settings.
//!
//! What it does: parses the text of a per-user file (same syntax and key names as
//! `rftpd.toml`), refuses every key that is not per-session with the file, line and key, and
//! validates the merged settings as a whole. Reading the file (owner, mode, `O_NOFOLLOW`) is
//! the monitor's job (`crate::monitor::user_config`), not this module's.
//!
//! What it must never do: let a per-user file set a key outside [`PER_USER_KEYS`] (listening,
//! PAM, the jail rule, privilege separation, the sandbox, logs: what spans sessions or decides
//! who may log in), return a merged configuration with any problem, read any file, or contain
//! `unsafe` code.

use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::keys::FIELDS;
use super::parse::{describe_value, error_at, syntax_message};
use super::validate::Files;
use super::{Config, ConfigErrors};

/// The keys a `user_config_dir` file may set: the settings of one session, as vsftpd's
/// per-user files are used. A per-session key added to rftpd (the transfer rate limits, say)
/// becomes per-user by being listed here, and nowhere else.
pub const PER_USER_KEYS: &[&str] = &[
    "local_root",
    "allow_writeable_chroot",
    "write_enable",
    "local_umask",
    "file_open_mode",
    "download_enable",
    "dirlist_enable",
    "hide_ids",
    "chmod_enable",
    "hide_file",
    "deny_file",
    "force_dot_files",
    "ls_recurse_enable",
    "mdtm_write",
    "ascii_upload_enable",
    "ascii_download_enable",
    "anon_upload_enable",
    "anon_mkdir_write_enable",
    "anon_other_write_enable",
    "anon_umask",
    "idle_session_timeout",
    "data_connection_timeout",
    "local_max_rate",
    "anon_max_rate",
    "delete_failed_uploads",
];

/// Longest login name used as a file name (the usual `NAME_MAX`).
const MAX_NAME: usize = 255;

/// Whether `name` can name a file in a directory and nothing else: not empty, not `.` or
/// `..`, no `/` and no NUL, at most 255 bytes.
///
/// SECURITY: a login name reaches a path (`<user_config_dir>/<name>`, `user_sub_token` in
/// `local_root`) only after this check, so no name walks out of the directory it is put in.
pub fn plain_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

impl Config {
    /// The settings of one user's session: these settings with the keys of the per-user file
    /// `text` (named `origin` in errors) applied. Every problem is reported at once, each
    /// with file, line and key: a syntax error, a key that is not per-user (or not a key at
    /// all), a value of the wrong type, and the semantic problems of the merged settings.
    pub fn with_user_file(&self, text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let error = |offset: Option<usize>, key: Option<&str>, message: String| {
            error_at(text, origin, offset, key, message)
        };
        let table = match DeTable::parse(text) {
            Ok(table) => table.into_inner(),
            Err(e) => {
                let span = e.span();
                let message = syntax_message(text, e.message(), span.as_ref());
                return Err(ConfigErrors(vec![error(
                    span.map(|s| s.start),
                    None,
                    message,
                )]));
            }
        };
        let mut merged = self.clone();
        let mut errors = Vec::new();
        let mut spans = Vec::new();
        for (key, value) in table {
            let name: &str = key.get_ref();
            let at = Some(key.span().start);
            let field = FIELDS.iter().find(|f| f.name == name);
            let Some(field) = field.filter(|f| PER_USER_KEYS.contains(&f.name)) else {
                let what = if field.is_some() {
                    "is not a per-user key"
                } else {
                    "is not an rftpd key"
                };
                errors.push(error(
                    at,
                    Some(name),
                    format!(
                        "`{name}` {what}; a user_config_dir file may set only: {}",
                        PER_USER_KEYS.join(", ")
                    ),
                ));
                continue;
            };
            if let DeValue::Table(_) = value.get_ref() {
                errors.push(error(
                    at,
                    Some(name),
                    "expected a value, found a table".into(),
                ));
                continue;
            }
            let found = describe_value(value.get_ref());
            let value_at = Some(value.span().start);
            if (field.set)(&mut merged, ValueDeserializer::from(value)).is_err() {
                errors.push(error(
                    value_at,
                    Some(name),
                    format!("expected {}, found {found}", field.kind.expected()),
                ));
                continue;
            }
            spans.push((name.to_owned(), key.span().start));
        }
        if errors.is_empty() {
            for problem in merged.problems(Files::Skip) {
                let at = spans
                    .iter()
                    .find(|(k, _)| Some(k.as_str()) == problem.key.as_deref())
                    .map(|(_, at)| *at);
                errors.push(error(at, problem.key.as_deref(), problem.message));
            }
        }
        if errors.is_empty() {
            Ok(merged)
        } else {
            errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_can_name_a_per_user_file() {
        assert!(plain_user_name("alice"));
        assert!(plain_user_name("v.user-1@example"));
        for bad in ["", ".", "..", "a/b", "../etc", "/", "a\0b"] {
            assert!(!plain_user_name(bad), "{bad:?}");
        }
        assert!(!plain_user_name(&"x".repeat(256)));
        assert!(plain_user_name("..."));
    }

    #[test]
    fn a_user_file_changes_only_the_keys_it_sets() {
        let base = Config::default();
        let text = "local_root = \"/srv/ftp/alice\"\nwrite_enable = false\nlocal_umask = 0o077\n";
        let merged = base.with_user_file(text, "/etc/rftpd/users/alice").unwrap();
        assert_eq!(merged.local_root.as_deref(), Some("/srv/ftp/alice"));
        assert!(!merged.write_enable);
        assert_eq!(merged.local_umask.0, 0o077);
        assert_eq!(
            Config {
                local_root: None,
                write_enable: true,
                local_umask: base.local_umask,
                ..merged
            },
            base
        );
        assert_eq!(base.with_user_file("", "f"), Ok(Config::default()));
    }

    #[test]
    fn a_key_that_is_not_per_user_is_refused_with_file_line_and_key() {
        let text = "write_enable = false\nlisten_port = 2121\nbogus = 1\n";
        let errors = Config::default()
            .with_user_file(text, "/etc/rftpd/users/bob")
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].file, "/etc/rftpd/users/bob");
        assert_eq!(errors[0].line, Some(2));
        assert_eq!(errors[0].key.as_deref(), Some("listen_port"));
        assert!(
            errors[0].message.contains("not a per-user key"),
            "{errors:?}"
        );
        assert_eq!(errors[1].line, Some(3));
        assert_eq!(errors[1].key.as_deref(), Some("bogus"));
    }

    #[test]
    fn syntax_type_and_semantic_errors_are_refused() {
        let base = Config::default();
        let syntax = base
            .with_user_file("write_enable = YES\n", "f")
            .unwrap_err();
        assert_eq!(syntax.0[0].line, Some(1));
        assert!(syntax.0[0].message.contains("invalid TOML"), "{syntax}");
        let kind = base
            .with_user_file("\nwrite_enable = \"no\"\n", "f")
            .unwrap_err();
        assert_eq!(kind.0[0].line, Some(2));
        assert_eq!(kind.0[0].key.as_deref(), Some("write_enable"));
        let relative = base
            .with_user_file("local_root = \"srv\"\n", "f")
            .unwrap_err();
        assert_eq!(relative.0[0].key.as_deref(), Some("local_root"));
        assert_eq!(relative.0[0].line, Some(1));
        let table = base.with_user_file("[x]\nwrite_enable = true\n", "f");
        assert!(table.is_err());
    }

    #[test]
    fn every_per_user_key_is_a_key() {
        for key in PER_USER_KEYS {
            assert!(FIELDS.iter().any(|f| f.name == *key), "{key}");
        }
    }
}
