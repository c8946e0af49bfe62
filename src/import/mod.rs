//! `rftpd import-vsftpd [FILE]`: translate a vsftpd.conf into an equivalent rftpd.toml
//! (and, with `--user-file FILE`, one of vsftpd's per-user files: `user_file`).
//!
//! What it does:
//! - reads one vsftpd configuration file (default `/etc/vsftpd.conf`) the way vsftpd 3.0.3
//!   reads it: `NAME=VALUE` lines, `#` comment lines, the last of repeated settings wins,
//!   `YES`/`TRUE`/`1` and `NO`/`FALSE`/`0` booleans, numbers that start with `0` are octal;
//! - prints on stdout a TOML file that makes rftpd behave as vsftpd did with that file: every
//!   setting rftpd supports is carried over under the same name; every one it does not is
//!   printed as a comment `# vsftpd option NAME=VALUE not carried over: <why>`; settings the
//!   file leaves out take **vsftpd's** built-in default (Debian 12's build) wherever rftpd's
//!   default differs; a few settings are translated (`listen`/`listen_ipv6`,
//!   `pam_service_name`, and `nopriv_user`/`secure_chroot_dir` at vsftpd's own defaults, which
//!   keep rftpd's), each with a comment saying why;
//! - learns which keys rftpd supports from [`crate::config`] at run time (the fields of
//!   [`Config`]), never from a list of its own, and checks the whole output with
//!   [`Config::parse_without_files`] before printing: a value rftpd rejects becomes a comment
//!   with rftpd's reason; a file the output names that is missing or unreadable here is kept
//!   (fail closed: `--check-config` and start-up refuse it) with a comment and a warning;
//! - reads values as vsftpd does: no comments after a value (a string is the rest of the
//!   line, `#` included; a number is its leading digits), a number is octal only when it
//!   starts with `0` (`local_umask=22` is decimal 22 = octal 026, and is warned about);
//! - warns on stderr about lines vsftpd itself would refuse (unknown names, bad values) and
//!   about values rftpd rejects; exits 0 unless the file cannot be read (exit 1, naming it).
//!
//! Layout: this file (the entry point and the translation loop), `table` (every vsftpd
//! setting with its type and default, and why rftpd lacks some), `read` (reading the file
//! as vsftpd does), `special` (the settings that are translated, not copied), `output` (the
//! TOML being built, checked by rftpd's own parser).
//!
//! What it never does:
//! - write, rename or remove any file (not even `/etc/rftpd.toml`: redirect stdout yourself),
//!   start, stop or signal any service, or touch the network;
//! - read anything but FILE (the configuration checks of [`Config::parse`] may look at the
//!   list and certificate files the configuration names, as `--check-config` does);
//! - invent a value: each key printed comes from FILE or from vsftpd's documented default;
//! - contain `unsafe` code.

mod output;
mod read;
mod special;
mod table;
mod user_file;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use serde::Deserialize;

use crate::config::Config;

use output::{Translation, io_message, toml_string};
use read::read_vsftpd;
use special::{Listen, keeps_rftpds_own, pam_service};
use table::{NOT_IN_RFTPD, VSFTPD_OPTIONS};

/// The file read when no FILE is given.
pub const DEFAULT_VSFTPD_CONF: &str = "/etc/vsftpd.conf";

const USAGE: &str = "\
Usage: rftpd import-vsftpd [FILE]
       rftpd import-vsftpd --user-file FILE

Reads a vsftpd configuration (default /etc/vsftpd.conf) and prints the equivalent
rftpd.toml on stdout; warnings go to stderr. Typical use:
    rftpd import-vsftpd > /tmp/rftpd.toml
    rftpd --check-config --config /tmp/rftpd.toml && cp /tmp/rftpd.toml /etc/rftpd.toml
With --user-file, FILE is one of vsftpd's per-user files (user_config_dir): prints the
rftpd per-user file (per-user keys only). A whole directory, as root:
    for f in /etc/vsftpd/users/*; do
        rftpd import-vsftpd --user-file \"$f\" > /etc/rftpd/users/\"${f##*/}\"
    done";

/// Entry point of the subcommand; `args` are the words after `import-vsftpd`.
pub fn main(args: &[String]) -> ExitCode {
    let (per_user, args) = match args {
        [flag, rest @ ..] if flag == "--user-file" => (true, rest),
        _ => (false, args),
    };
    let file = match args {
        [] if per_user => {
            eprintln!("rftpd: import-vsftpd --user-file needs a FILE\n\n{USAGE}");
            return ExitCode::from(2);
        }
        [] => DEFAULT_VSFTPD_CONF,
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [file] if !file.starts_with('-') || file == "-" => file.as_str(),
        _ => {
            eprintln!("rftpd: import-vsftpd takes at most one FILE\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("rftpd: cannot read {file}: {}", io_message(&e));
            return ExitCode::from(1);
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let result = if per_user {
        user_file::import_user_file(&text, file)
    } else {
        import(&text, file)
    };
    for warning in &result.warnings {
        eprintln!("rftpd import-vsftpd: {warning}");
    }
    print!("{}", result.toml);
    ExitCode::SUCCESS
}

/// What [`import`] produces.
#[derive(Debug)]
pub struct Imported {
    /// The rftpd configuration, ready to save as `/etc/rftpd.toml`; always passes
    /// [`Config::parse_without_files`]. `rftpd --check-config` refuses it when a file it
    /// names (user list, certificate, banner) is missing or unreadable on this host, as
    /// vsftpd would not have worked with it either: see the warnings.
    pub toml: String,
    /// One line per problem, `FILE:LINE: message` where a line is concerned.
    pub warnings: Vec<String>,
}

/// Translate the text of a vsftpd.conf; `origin` names it in comments and warnings.
pub fn import(text: &str, origin: &str) -> Imported {
    let keys: HashSet<&str> = rftpd_keys().iter().copied().collect();
    let mut out = Translation::default();
    let settings = read_vsftpd(text, origin, &mut out);

    // The last occurrence of a name is the one vsftpd uses.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, s) in settings.iter().enumerate() {
        last.insert(s.option.name, i);
    }
    let effective = |name: &str| last.get(name).map(|&i| &settings[i]);
    let listen = Listen::new(&effective);
    let mut listen_done = false;
    let rftpd_defaults = toml::Table::try_from(Config::default()).unwrap_or_default();

    for (i, s) in settings.iter().enumerate() {
        let name = s.option.name;
        if last[name] != i {
            out.comment(format!(
                "line {}: {}={} is overridden by line {} (vsftpd uses the last one)",
                s.line, name, s.raw, settings[last[name]].line
            ));
            continue;
        }
        if matches!(name, "listen" | "listen_ipv6") && listen.applies(&keys) {
            if !listen_done {
                listen.emit(&mut out, origin);
                listen_done = true;
            }
            continue;
        }
        if let Some(ignored) = listen.ignores(name) {
            out.unsupported(s, &format!("vsftpd ignores it because {ignored}"));
            continue;
        }
        if name == "pam_service_name" && keys.contains(name) {
            pam_service(&mut out, Some(s));
            continue;
        }
        if !keys.contains(name) {
            out.unsupported(s, s.option.why.unwrap_or(NOT_IN_RFTPD));
            continue;
        }
        if let Some(why) = keeps_rftpds_own(s) {
            out.unsupported(s, why);
            continue;
        }
        let toml = match &s.toml {
            Some(toml) => toml.clone(),
            // `NAME=` unsets a string setting in vsftpd: rftpd's default when it is unset too.
            None if !rftpd_defaults.contains_key(name) => {
                out.comment(format!("line {}: {name}= (unset), as in rftpd", s.line));
                continue;
            }
            None => toml_string(""),
        };
        if let Some(note) = &s.note {
            out.warn(format!("{origin}:{}: {note}", s.line));
            out.comment(format!("line {}: {note}", s.line));
        }
        if name == "user_config_dir" {
            let why = format!(
                "the files in {} are in vsftpd's syntax: convert each one with \
                 `rftpd import-vsftpd --user-file FILE` (rftpd refuses the login of a user \
                 whose file it cannot read)",
                s.raw
            );
            out.warn(format!("{origin}:{}: {why}", s.line));
            out.comment(format!("line {}: {why}", s.line));
        }
        out.setting(name, toml, format!("{name}={}", s.raw), s.line);
    }

    // Settings the file leaves out: vsftpd used its own default there.
    out.section(format!(
        "vsftpd's defaults that differ from rftpd's (not set in {origin})"
    ));
    if !listen_done && listen.applies(&keys) {
        listen.emit(&mut out, origin);
    }
    if effective("pam_service_name").is_none() && keys.contains("pam_service_name") {
        pam_service(&mut out, None);
    }
    for option in VSFTPD_OPTIONS {
        let name = option.name;
        // nopriv_user, secure_chroot_dir: vsftpd's defaults are its own (keeps_rftpds_own).
        // seccomp_sandbox: Debian's NO works around vsftpd's own filter, not rftpd's, which
        // stays on unless the file turns it off itself.
        let special = matches!(
            name,
            "listen"
                | "listen_ipv6"
                | "pam_service_name"
                | "nopriv_user"
                | "secure_chroot_dir"
                | "seccomp_sandbox"
        );
        if effective(name).is_some() || special || !keys.contains(name) {
            continue;
        }
        if listen.ignores(name).is_some() {
            continue;
        }
        let toml = match option.kind.read(name, option.default).map(|r| r.toml) {
            Ok(Some(toml)) => toml,
            // vsftpd's default is "unset": the same as rftpd's when rftpd leaves it unset too.
            Ok(None) if !rftpd_defaults.contains_key(name) => continue,
            Ok(None) => toml_string(""),
            Err(_) => continue,
        };
        let same = Config::parse(&format!("{name} = {toml}\n"), "<vsftpd default>")
            .is_ok_and(|c| c == Config::default());
        if !same {
            let shown = option.default.unwrap_or("(unset)");
            out.setting(name, toml, format!("{name}={shown} (vsftpd's default)"), 0);
        }
    }

    out.finish(origin)
}

/// The keys rftpd's configuration accepts: the field names of [`Config`], read from its
/// `Deserialize` implementation (which hands them to the deserializer), so the list grows
/// with `Config` without being repeated here.
pub fn rftpd_keys() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names collected")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = Config::deserialize(Probe(&mut fields));
    fields
}
