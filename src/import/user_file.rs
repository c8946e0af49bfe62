//! `rftpd import-vsftpd --user-file FILE`: translate one vsftpd per-user file (a file of
//! vsftpd's `user_config_dir`) into the TOML rftpd reads from its own `user_config_dir`.
//!
//! What it does: reads FILE as vsftpd reads any configuration file (`read`), keeps the last
//! occurrence of each setting, and prints only the settings the file makes (a per-user file
//! overrides; it has no defaults of its own): each per-user key of rftpd
//! ([`PER_USER_KEYS`]) as `key = value`, every other one as a comment saying why it is not
//! carried over. The result is checked with [`Config::with_user_file`]; what rftpd would
//! refuse is warned about (rftpd then refuses that user's login: fail closed).
//!
//! What it must never do: print a key that is not per-user, write any file (the operator
//! redirects stdout; the owner and mode rules are theirs to keep), or contain `unsafe` code.

use std::collections::HashMap;

use crate::config::Config;
use crate::config::per_user::PER_USER_KEYS;

use super::output::{Translation, comment_text};
use super::read::read_vsftpd;
use super::table::NOT_IN_RFTPD;
use super::{Imported, rftpd_keys};

/// Translate the text of one vsftpd per-user file; `origin` names it in comments and warnings.
pub fn import_user_file(text: &str, origin: &str) -> Imported {
    let mut scratch = Translation::default();
    let settings = read_vsftpd(text, origin, &mut scratch);
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, s) in settings.iter().enumerate() {
        last.insert(s.option.name, i);
    }
    let mut out = format!(
        "# rftpd per-user file, from the vsftpd per-user file {}\n\
         # Install it as root, mode 0644 or stricter, under rftpd's user_config_dir.\n",
        comment_text(origin)
    );
    let mut warnings = Vec::new();
    for (i, s) in settings.iter().enumerate() {
        let name = s.option.name;
        let from = format!("line {}: {name}={}", s.line, comment_text(s.raw));
        if last[name] != i {
            out.push_str(&format!("# {from} is overridden by a later line\n"));
            continue;
        }
        if !PER_USER_KEYS.contains(&name) {
            let why = if rftpd_keys().contains(&name) {
                "not a per-user key in rftpd (set it in rftpd.toml if it is for everyone)"
            } else {
                s.option.why.unwrap_or(NOT_IN_RFTPD)
            };
            out.push_str(&format!("# {from} not carried over: {why}\n"));
            warnings.push(format!("{origin}:{}: {name}: {why}; left out", s.line));
            continue;
        }
        match &s.toml {
            Some(toml) => out.push_str(&format!("{name} = {toml}\n")),
            None => out.push_str(&format!("# {from} (unset): the server's setting applies\n")),
        }
        if let Some(note) = &s.note {
            warnings.push(format!("{origin}:{}: {note}", s.line));
        }
    }
    if let Err(errors) = Config::default().with_user_file(&out, "<output>") {
        for e in errors.0 {
            warnings.push(format!(
                "rftpd would refuse this file (and the user's login): {e}"
            ));
        }
    }
    Imported {
        toml: out,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vsftpd_per_user_file_becomes_the_per_user_keys_only() {
        let vsftpd = "local_root=/srv/ftp/alice\nwrite_enable=NO\nlocal_umask=077\n\
                      listen_port=2121\nwrite_enable=YES\n";
        let imported = import_user_file(vsftpd, "/etc/vsftpd/users/alice");
        let config = Config::default()
            .with_user_file(&imported.toml, "out")
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
        assert_eq!(config.local_root.as_deref(), Some("/srv/ftp/alice"));
        assert!(config.write_enable, "the last line wins");
        assert_eq!(config.local_umask.0, 0o077);
        assert_eq!(config.listen_port, Config::default().listen_port);
        assert!(
            imported
                .toml
                .contains("# line 4: listen_port=2121 not carried over")
        );
        assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
    }

    #[test]
    fn a_value_rftpd_refuses_is_warned_about() {
        let imported = import_user_file("local_root=relative/path\n", "f");
        assert!(
            imported.warnings.iter().any(|w| w.contains("would refuse")),
            "{:?}",
            imported.warnings
        );
    }
}
