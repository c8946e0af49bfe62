//! The rftpd configuration: the TOML model, its defaults, and its checks.
//!
//! What it does:
//! - defines [`Config`], one flat table of vsftpd-named keys with their defaults (the shipped
//!   `config/rftpd.toml` repeats those defaults verbatim);
//! - reads and checks a configuration file ([`Config::load`], [`Config::parse`]) and reports
//!   **every** problem it finds at once, each with the file, line, column and key, plus a
//!   suggestion for misspelled keys;
//! - answers the two per-user questions that depend only on the configuration:
//!   the start/jail directory ([`Config::start_dir`]) and whether the user is jailed
//!   ([`Config::is_jailed`]);
//! - serialises a validated configuration back to TOML ([`Config::to_toml_string`]) so the
//!   master can hand it to child processes.
//!
//! What it must never do:
//! - touch the network, or the filesystem beyond reading the configuration file, reading the
//!   chroot list file and checking that listed files exist (no creating, writing, chmod,
//!   chdir, chroot);
//! - change process state (uid, umask, signals, environment) or spawn anything;
//! - accept a configuration it has not fully checked: `load`/`parse` only return `Ok` when
//!   there is no problem at all; unknown keys are errors, never ignored;
//! - contain `unsafe` code.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// Where the daemon looks for its configuration when none is named on the command line.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rftpd.toml";

/// The whole rftpd configuration. Every key is top-level; every key is optional in the file
/// (missing keys take the defaults of [`Config::default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    // --- Listening ---
    /// Serve IPv4 (default true).
    pub listen: bool,
    /// Serve IPv6 (default false). Both true = serve both from one process.
    pub listen_ipv6: bool,
    /// IPv4 address to bind; `None` = 0.0.0.0.
    pub listen_address: Option<Ipv4Addr>,
    /// IPv6 address to bind; `None` = `::`.
    pub listen_address6: Option<Ipv6Addr>,
    /// Control port (default 21).
    pub listen_port: u16,
    /// One-line greeting text; `None` = the server greets `220 (rftpd)`.
    pub ftpd_banner: Option<String>,

    // --- Who may log in ---
    /// Local (PAM) accounts may log in (default true).
    pub local_enable: bool,
    /// PAM service name, i.e. the file in `/etc/pam.d/` (default `rftpd`).
    pub pam_service_name: String,

    // --- Jail ---
    /// Jail local users in their start directory (default true).
    pub chroot_local_user: bool,
    /// Use `chroot_list_file` to invert `chroot_local_user` for the listed users (default false).
    pub chroot_list_enable: bool,
    /// The chroot list: one user name per line (default `/etc/rftpd.chroot_list`).
    pub chroot_list_file: PathBuf,
    /// Allow a jail root the user can write to (default true).
    pub allow_writeable_chroot: bool,
    /// Start/jail directory instead of the home directory; `user_sub_token` is replaced by the
    /// user name.
    pub local_root: Option<String>,
    /// Token in `local_root` replaced by the user name, e.g. `$USER`.
    pub user_sub_token: Option<String>,

    // --- What a logged-in user may do ---
    /// Allow commands that change the filesystem (default true).
    pub write_enable: bool,
    /// Umask for created files and directories (default 0o022).
    pub local_umask: Mode,
    /// Mode of uploaded files before the umask (default 0o666).
    pub file_open_mode: Mode,
    /// Allow RETR (default true).
    pub download_enable: bool,
    /// Allow LIST/NLST/MLSD (default true).
    pub dirlist_enable: bool,
    /// Show every owner and group as `ftp` (default false).
    pub hide_ids: bool,

    // --- Data connections ---
    /// Allow PASV/EPSV (default true).
    pub pasv_enable: bool,
    /// Lowest passive port; 0 together with `pasv_max_port = 0` = any port the kernel picks.
    pub pasv_min_port: u16,
    /// Highest passive port; see `pasv_min_port`.
    pub pasv_max_port: u16,
    /// Address announced in the PASV reply (for NAT); `None` = the control connection's.
    pub pasv_address: Option<Ipv4Addr>,

    // --- Timeouts ---
    /// Seconds of inactivity before `421 Timeout.`; 0 = never (default 300).
    pub idle_session_timeout: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: true,
            listen_ipv6: false,
            listen_address: None,
            listen_address6: None,
            listen_port: 21,
            ftpd_banner: None,
            local_enable: true,
            pam_service_name: "rftpd".to_owned(),
            chroot_local_user: true,
            chroot_list_enable: false,
            chroot_list_file: PathBuf::from("/etc/rftpd.chroot_list"),
            allow_writeable_chroot: true,
            local_root: None,
            user_sub_token: None,
            write_enable: true,
            local_umask: Mode(0o022),
            file_open_mode: Mode(0o666),
            download_enable: true,
            dirlist_enable: true,
            hide_ids: false,
            pasv_enable: true,
            pasv_min_port: 0,
            pasv_max_port: 0,
            pasv_address: None,
            idle_session_timeout: 300,
        }
    }
}

/// The largest value a [`Mode`] may hold when read from TOML.
const MODE_MAX: u32 = 0o7777;

/// A file mode such as a umask. Accepts in TOML: an integer (`0o022`, or decimal 18), or a
/// string of octal digits (`"022"`, `"0022"`, `"0o022"`). Must be <= 0o7777. Serializes as
/// an integer. Displays as four octal digits (`0022`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ModeVisitor)
    }
}

struct ModeVisitor;

impl ModeVisitor {
    fn checked<E: serde::de::Error>(value: u64, shown: &dyn fmt::Display) -> Result<Mode, E> {
        if value > u64::from(MODE_MAX) {
            Err(E::custom(format!("mode {shown} is larger than 0o7777")))
        } else {
            // Cannot truncate: value <= 0o7777.
            Ok(Mode(value as u32))
        }
    }
}

impl serde::de::Visitor<'_> for ModeVisitor {
    type Value = Mode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an octal file mode: an integer such as 0o022 or a string such as \"022\"")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Mode, E> {
        match u64::try_from(v) {
            Ok(u) => Self::checked(u, &format_args!("0o{u:o}")),
            Err(_) => Err(E::custom(format!("mode {v} is negative"))),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Mode, E> {
        Self::checked(v, &format_args!("0o{v:o}"))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mode, E> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(E::custom(format!(
                "{s:?} is not an octal mode (octal digits 0-7 only, e.g. \"022\")"
            )));
        }
        match u64::from_str_radix(digits, 8) {
            Ok(v) => Self::checked(v, &format_args!("{s:?}")),
            Err(_) => Err(E::custom(format!("mode {s:?} is larger than 0o7777"))),
        }
    }
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The path as given, or `<embedded defaults>` / `<input>`.
    pub file: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column (in characters).
    pub column: Option<usize>,
    /// The top-level key concerned.
    pub key: Option<String>,
    /// What is wrong, e.g. "unknown key (did you mean `chroot_local_user`?)".
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COLUMN: key `KEY`: MESSAGE`, omitting the parts that are `None`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(":")?;
        if let Some(key) = &self.key {
            write!(f, " key `{key}`:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// All problems found; never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line (no trailing newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `file` of the errors returned by [`Config::validate`], which does not know the file.
const NO_FILE: &str = "<input>";

/// The shape of a key's value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Port,
    Seconds,
    Str,
    Path,
    Ipv4,
    Ipv6,
    Mode,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean (true/false)",
            Kind::Port => "a port number (an integer from 0 to 65535)",
            Kind::Seconds => "a number of seconds (an integer, 0 or more)",
            Kind::Str => "a string",
            Kind::Path => "a path (a string)",
            Kind::Ipv4 => "an IPv4 address (a string such as \"192.0.2.1\")",
            Kind::Ipv6 => "an IPv6 address (a string such as \"2001:db8::1\")",
            Kind::Mode => {
                "an octal file mode up to 0o7777 (an integer such as 0o022, or a string such as \"022\")"
            }
        }
    }
}

type Setter = fn(&mut Config, ValueDeserializer<'_>) -> Result<(), toml::de::Error>;

/// One top-level key: its name, the shape of its value, and how to store a TOML value into
/// the [`Config`] field of the same name.
struct Field {
    name: &'static str,
    kind: Kind,
    set: Setter,
}

macro_rules! fields {
    ($($name:ident: $kind:ident,)*) => {
        /// Every key of [`Config`], in the order of the struct (and of `config/rftpd.toml`).
        const FIELDS: &[Field] = &[$(Field {
            name: stringify!($name),
            kind: Kind::$kind,
            set: |config, value| {
                config.$name = Deserialize::deserialize(value)?;
                Ok(())
            },
        },)*];
    };
}

fields! {
    listen: Bool,
    listen_ipv6: Bool,
    listen_address: Ipv4,
    listen_address6: Ipv6,
    listen_port: Port,
    ftpd_banner: Str,
    local_enable: Bool,
    pam_service_name: Str,
    chroot_local_user: Bool,
    chroot_list_enable: Bool,
    chroot_list_file: Path,
    allow_writeable_chroot: Bool,
    local_root: Str,
    user_sub_token: Str,
    write_enable: Bool,
    local_umask: Mode,
    file_open_mode: Mode,
    download_enable: Bool,
    dirlist_enable: Bool,
    hide_ids: Bool,
    pasv_enable: Bool,
    pasv_min_port: Port,
    pasv_max_port: Port,
    pasv_address: Ipv4,
    idle_session_timeout: Seconds,
}

/// vsftpd options rftpd does not implement: named as such instead of "did you mean".
const VSFTPD_ONLY: &[&str] = &[
    "accept_timeout",
    "anon_max_rate",
    "anon_mkdir_write_enable",
    "anon_other_write_enable",
    "anon_root",
    "anon_umask",
    "anon_upload_enable",
    "anonymous_enable",
    "async_abor_enable",
    "ascii_download_enable",
    "ascii_upload_enable",
    "background",
    "banner_file",
    "chmod_enable",
    "chown_uploads",
    "connect_from_port_20",
    "connect_timeout",
    "data_connection_timeout",
    "delay_failed_login",
    "deny_file",
    "dual_log_enable",
    "force_dot_files",
    "force_local_data_ssl",
    "force_local_logins_ssl",
    "ftp_data_port",
    "ftp_username",
    "guest_enable",
    "hide_file",
    "implicit_ssl",
    "isolate",
    "isolate_network",
    "local_max_rate",
    "log_ftp_protocol",
    "ls_recurse_enable",
    "max_clients",
    "max_login_fails",
    "max_per_ip",
    "no_anon_password",
    "nopriv_user",
    "passwd_chroot_enable",
    "pasv_promiscuous",
    "port_enable",
    "port_promiscuous",
    "require_ssl_reuse",
    "rsa_cert_file",
    "rsa_private_key_file",
    "seccomp_sandbox",
    "secure_chroot_dir",
    "ssl_enable",
    "syslog_enable",
    "use_localtime",
    "userlist_deny",
    "userlist_enable",
    "userlist_file",
    "vsftpd_log_file",
    "xferlog_enable",
    "xferlog_file",
    "xferlog_std_format",
];

/// Other keys a semantic error about `key` involves: used to locate the error when `key`
/// itself is not written in the file, and to stay quiet when one of them already has an error.
fn related_keys(key: &str) -> &'static [&'static str] {
    match key {
        "listen" => &["listen_ipv6"],
        "pasv_min_port" => &["pasv_max_port"],
        "pasv_max_port" => &["pasv_min_port"],
        "chroot_list_file" => &["chroot_list_enable"],
        "user_sub_token" => &["local_root"],
        _ => &[],
    }
}

/// Where each top-level key sits in the text (the key's byte span).
type Spans = HashMap<String, Range<usize>>;

impl Config {
    /// Reads and validates a file. Every error names the file; I/O errors too
    /// (`cannot read: No such file or directory`).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &file),
            Err(e) => Err(ConfigErrors(vec![ConfigError {
                file,
                line: None,
                column: None,
                key: None,
                message: format!("cannot read: {}", io_message(&e)),
            }])),
        }
    }

    /// Parses and validates text; `origin` is used as `file` in errors.
    ///
    /// Reports every problem: a TOML syntax error (one error, as the document cannot be read
    /// further), or else every unknown key, every value of the wrong type, every nested table,
    /// and every semantic problem found by [`Config::validate`] (except those about keys that
    /// already have an error), sorted by position.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let error = |span: Option<&Range<usize>>, key: Option<&str>, message: String| {
            let (line, column) = match span {
                Some(span) => {
                    let (line, column) = line_column(text, span.start);
                    (Some(line), Some(column))
                }
                None => (None, None),
            };
            ConfigError {
                file: origin.to_owned(),
                line,
                column,
                key: key.map(str::to_owned),
                message,
            }
        };

        let table = match DeTable::parse(text) {
            Ok(table) => table.into_inner(),
            Err(e) => {
                let span = e.span();
                let key = span.as_ref().and_then(|s| key_of_line(text, s.start));
                let message = syntax_message(text, e.message(), span.as_ref());
                return Err(ConfigErrors(vec![error(span.as_ref(), key, message)]));
            }
        };

        let mut config = Config::default();
        let mut errors = Vec::new();
        let mut spans = Spans::new();
        let mut bad_keys = HashSet::new();
        for (key, value) in table {
            let key_span = key.span();
            let value_span = value.span();
            let name: &str = key.get_ref();
            spans.insert(name.to_owned(), key_span.clone());
            let field = FIELDS.iter().find(|f| f.name == name);
            let problem = match (field, value.get_ref()) {
                (None, DeValue::Table(inner)) => Some((&key_span, table_message(None, inner))),
                (None, _) => Some((&key_span, unknown_key_message(name))),
                (Some(field), DeValue::Table(inner)) => {
                    Some((&key_span, table_message(Some(field), inner)))
                }
                (Some(field), found) => {
                    let found = describe_value(found);
                    let hint = quoted_value_hint(field.kind, value.get_ref());
                    match (field.set)(&mut config, ValueDeserializer::from(value)) {
                        Ok(()) => None,
                        Err(_) => Some((
                            &value_span,
                            format!("expected {}, found {found}{hint}", field.kind.expected()),
                        )),
                    }
                }
            };
            if let Some((span, message)) = problem {
                errors.push(error(Some(span), Some(name), message));
                bad_keys.insert(name.to_owned());
            }
        }

        for problem in config.validate().err().unwrap_or_default() {
            let key = problem.key.as_deref().unwrap_or_default();
            let involved = || std::iter::once(key).chain(related_keys(key).iter().copied());
            if involved().any(|k| bad_keys.contains(k)) {
                continue;
            }
            let span = involved().find_map(|k| spans.get(k));
            errors.push(error(span, Some(key), problem.message));
        }

        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }

    /// Semantic checks on an already-typed config (also called by [`Config::parse`]).
    /// Errors have `key` set, `file` = `<input>` and no line/column (`parse` fills those in).
    ///
    /// With `chroot_list_enable`, this checks that `chroot_list_file` can be opened (vsftpd
    /// treats a missing list as fatal); it reads nothing else.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let errors = self.problems();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Exact round-trippable TOML (used to hand the validated config to child processes):
    /// `Config::parse(&c.to_toml_string(), ..) == Ok(c)` for every config that passes
    /// [`Config::validate`]. `None` keys are left out; modes are written as `0o…` integers.
    /// A `chroot_list_file` that is not valid UTF-8 (impossible when read from TOML) is
    /// written lossily.
    pub fn to_toml_string(&self) -> String {
        fn line(out: &mut String, key: &str, value: impl fmt::Display) {
            out.push_str(key);
            out.push_str(" = ");
            out.push_str(&value.to_string());
            out.push('\n');
        }
        fn opt<T: fmt::Display>(out: &mut String, key: &str, value: &Option<T>) {
            if let Some(v) = value {
                line(out, key, toml_string(&v.to_string()));
            }
        }
        let mode = |m: Mode| format!("0o{:03o}", m.0);
        let mut out = String::new();
        let o = &mut out;
        out_comment(o, "Listening");
        line(o, "listen", self.listen);
        line(o, "listen_ipv6", self.listen_ipv6);
        opt(o, "listen_address", &self.listen_address);
        opt(o, "listen_address6", &self.listen_address6);
        line(o, "listen_port", self.listen_port);
        opt(o, "ftpd_banner", &self.ftpd_banner);
        out_comment(o, "Who may log in");
        line(o, "local_enable", self.local_enable);
        line(o, "pam_service_name", toml_string(&self.pam_service_name));
        out_comment(o, "Jail");
        line(o, "chroot_local_user", self.chroot_local_user);
        line(o, "chroot_list_enable", self.chroot_list_enable);
        let list = self.chroot_list_file.to_string_lossy();
        line(o, "chroot_list_file", toml_string(&list));
        line(o, "allow_writeable_chroot", self.allow_writeable_chroot);
        opt(o, "local_root", &self.local_root);
        opt(o, "user_sub_token", &self.user_sub_token);
        out_comment(o, "What a logged-in user may do");
        line(o, "write_enable", self.write_enable);
        line(o, "local_umask", mode(self.local_umask));
        line(o, "file_open_mode", mode(self.file_open_mode));
        line(o, "download_enable", self.download_enable);
        line(o, "dirlist_enable", self.dirlist_enable);
        line(o, "hide_ids", self.hide_ids);
        out_comment(o, "Data connections");
        line(o, "pasv_enable", self.pasv_enable);
        line(o, "pasv_min_port", self.pasv_min_port);
        line(o, "pasv_max_port", self.pasv_max_port);
        opt(o, "pasv_address", &self.pasv_address);
        out_comment(o, "Timeouts");
        line(o, "idle_session_timeout", self.idle_session_timeout);
        out
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
        let listed = self.chroot_list_enable && {
            let list = std::fs::read_to_string(&self.chroot_list_file)?;
            list.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .any(|l| l == user)
        };
        Ok(self.chroot_local_user != listed)
    }

    /// Every semantic problem of this configuration (the body of [`Config::validate`]).
    fn problems(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut add = |key: &str, message: String| {
            problems.push(ConfigError {
                file: NO_FILE.to_owned(),
                line: None,
                column: None,
                key: Some(key.to_owned()),
                message,
            })
        };

        if !self.listen && !self.listen_ipv6 {
            add(
                "listen",
                "`listen` and `listen_ipv6` are both false, so rftpd would accept no connection; \
                 set at least one of them to true"
                    .to_owned(),
            );
        }
        if let Some(banner) = &self.ftpd_banner
            && banner.contains(['\r', '\n', '\0'])
        {
            add(
                "ftpd_banner",
                "must be a single line (no line breaks or NUL characters)".to_owned(),
            );
        }

        let pam = &self.pam_service_name;
        if pam.is_empty() {
            add("pam_service_name", "must not be empty".to_owned());
        } else if pam.contains(['/', '\0']) || pam == "." || pam == ".." {
            add(
                "pam_service_name",
                format!(
                    "{pam:?} is not a service name: it names a file in /etc/pam.d/, \
                     so it must not contain `/`"
                ),
            );
        }

        if self.chroot_list_enable {
            let path = &self.chroot_list_file;
            let shown = path.display();
            let message = if !path.is_absolute() {
                Some(format!("`{shown}` must be an absolute path"))
            } else {
                match std::fs::File::open(path).and_then(|f| f.metadata()) {
                    Ok(meta) if meta.is_dir() => {
                        Some(format!("`{shown}` is a directory, not a list of users"))
                    }
                    Ok(_) => None,
                    Err(e) => Some(format!(
                        "cannot read the chroot list `{shown}`: {} \
                         (it is required because `chroot_list_enable` is true)",
                        io_message(&e)
                    )),
                }
            };
            if let Some(message) = message {
                add("chroot_list_file", message);
            }
        }

        if let Some(root) = &self.local_root
            && (!root.starts_with('/') || root.contains('\0'))
        {
            add(
                "local_root",
                format!("{root:?} must be an absolute path (starting with `/`)"),
            );
        }
        match (&self.user_sub_token, &self.local_root) {
            (Some(token), _) if token.is_empty() => {
                add("user_sub_token", "must not be empty".to_owned());
            }
            (Some(_), None) => add(
                "user_sub_token",
                "is set but `local_root` is not; the token is only replaced in `local_root`"
                    .to_owned(),
            ),
            _ => {}
        }

        for (key, mode) in [
            ("local_umask", self.local_umask),
            ("file_open_mode", self.file_open_mode),
        ] {
            if mode.0 > 0o777 {
                add(
                    key,
                    format!("0o{:o} is too large: at most 0o777 (rwx bits only)", mode.0),
                );
            }
        }

        let (min, max) = (self.pasv_min_port, self.pasv_max_port);
        match (min, max) {
            (0, 0) => {}
            (_, 0) => add(
                "pasv_max_port",
                format!(
                    "must be set too when `pasv_min_port` is set ({min}); \
                     or set both to 0 to let the kernel pick any port"
                ),
            ),
            (0, _) => add(
                "pasv_min_port",
                format!(
                    "must be set too when `pasv_max_port` is set ({max}); \
                     or set both to 0 to let the kernel pick any port"
                ),
            ),
            _ if min > max => add(
                "pasv_min_port",
                format!("{min} is greater than `pasv_max_port` ({max})"),
            ),
            _ => {}
        }

        if self.idle_session_timeout > i64::MAX as u64 {
            add(
                "idle_session_timeout",
                format!("{} is too large", self.idle_session_timeout),
            );
        }
        problems
    }
}

fn out_comment(out: &mut String, section: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("# ");
    out.push_str(section);
    out.push('\n');
}

/// A TOML basic string (one line, escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An I/O error's text without the trailing " (os error N)".
fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_owned)
            .unwrap_or(text),
        None => text,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The bare key at the start of the line holding `offset`, if the line looks like `key = …`.
fn key_of_line(text: &str, offset: usize) -> Option<&str> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim_start();
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    (!key.is_empty() && rest.trim_start().starts_with('=')).then_some(key)
}

/// The message for a TOML syntax error, with a hint for the mistakes vsftpd users make.
fn syntax_message(text: &str, message: &str, span: Option<&Range<usize>>) -> String {
    let token = span
        .and_then(|s| text.get(s.start..s.end.max(s.start)))
        .unwrap_or("");
    let bool_word = ["yes", "no", "true", "false", "on", "off"]
        .iter()
        .any(|w| token.eq_ignore_ascii_case(w));
    let hint = if message.contains("must be quoted") && bool_word {
        " (booleans are written `true` or `false`, lower case, without quotes)"
    } else if message.contains("leading zero") {
        " (write a file mode as 0o022 or \"022\")"
    } else {
        ""
    };
    let message = message
        .strip_suffix(", expected nothing")
        .unwrap_or(message);
    format!("invalid TOML: {message}{hint}")
}

/// A short description of a value as found in the file.
fn describe_value(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => {
            let s: &str = s;
            if s.chars().count() > 40 {
                let short: String = s.chars().take(40).collect();
                format!("the string {short:?}…")
            } else {
                format!("the string {s:?}")
            }
        }
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date/time {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// "; write `true` without quotes" when a quoted value would have been right unquoted.
fn quoted_value_hint(kind: Kind, value: &DeValue<'_>) -> String {
    let DeValue::String(s) = value else {
        return String::new();
    };
    let s = s.trim();
    match kind {
        Kind::Bool => {
            let word = match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" => "true",
                "no" | "false" | "off" => "false",
                _ => return String::new(),
            };
            format!("; write `{word}` without quotes")
        }
        Kind::Port | Kind::Seconds if s.parse::<u64>().is_ok() => {
            format!("; write `{s}` without quotes")
        }
        _ => String::new(),
    }
}

/// The message for a key whose value is a table (a `[section]`, dotted key or inline table).
fn table_message(field: Option<&Field>, inner: &DeTable<'_>) -> String {
    let mut message = match field {
        Some(field) => format!(
            "expected {}, found a table; rftpd keys are all top-level",
            field.kind.expected()
        ),
        None => "nested tables are not supported: rftpd keys are all top-level".to_owned(),
    };
    let known: Vec<String> = inner
        .keys()
        .filter(|k| FIELDS.iter().any(|f| f.name == k.get_ref().as_ref()))
        .map(|k| format!("`{}`", k.get_ref()))
        .collect();
    if !known.is_empty() {
        message.push_str(&format!(
            " (move {} above the first [section] header)",
            known.join(", ")
        ));
    }
    message
}

fn unknown_key_message(key: &str) -> String {
    if VSFTPD_ONLY.contains(&key) {
        return format!("unknown key (`{key}` is a vsftpd option that rftpd does not support)");
    }
    match suggest(key) {
        Some(known) => format!("unknown key (did you mean `{known}`?)"),
        None => "unknown key".to_owned(),
    }
}

/// The closest known key: a case/dash variant, else the nearest within edit distance 3,
/// else the nearest key that the unknown key is a prefix or suffix of (or the reverse).
fn suggest(key: &str) -> Option<&'static str> {
    let normal = key.to_ascii_lowercase().replace('-', "_");
    let names = || FIELDS.iter().map(|f| f.name);
    if let Some(name) = names().find(|n| *n == normal) {
        return Some(name);
    }
    let nearest = |candidates: &mut dyn Iterator<Item = &'static str>| {
        candidates.min_by_key(|n| levenshtein(&normal, n))
    };
    if let Some(best) = nearest(&mut names()).filter(|n| levenshtein(&normal, n) <= 3) {
        return Some(best);
    }
    if normal.len() < 3 {
        return None;
    }
    nearest(&mut names().filter(|n| {
        n.starts_with(&normal)
            || n.ends_with(&normal)
            || normal.starts_with(n)
            || normal.ends_with(n)
    }))
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file under the temp dir with a unique name, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> TempFile {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "rftpd-config-test-{}-{n}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            ));
            std::fs::write(&path, contents).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match Config::parse(text, "/etc/rftpd.toml") {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(ConfigErrors(errors)) => {
                assert!(!errors.is_empty());
                errors
            }
        }
    }

    fn one_error(text: &str) -> ConfigError {
        let mut errors = errors(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.remove(0)
    }

    fn every_field_changed(list: &Path) -> Config {
        Config {
            listen: false,
            listen_ipv6: true,
            listen_address: Some(Ipv4Addr::new(192, 0, 2, 7)),
            listen_address6: Some("2001:db8::21".parse().unwrap()),
            listen_port: 2121,
            ftpd_banner: Some("Welcome \"home\" \\ to rftpd\tnow ünïcode".to_owned()),
            local_enable: false,
            pam_service_name: "ftp".to_owned(),
            chroot_local_user: false,
            chroot_list_enable: true,
            chroot_list_file: list.to_path_buf(),
            allow_writeable_chroot: false,
            local_root: Some("/srv/ftp/$USER".to_owned()),
            user_sub_token: Some("$USER".to_owned()),
            write_enable: false,
            local_umask: Mode(0o077),
            file_open_mode: Mode(0o640),
            download_enable: false,
            dirlist_enable: false,
            hide_ids: true,
            pasv_enable: false,
            pasv_min_port: 40000,
            pasv_max_port: 40100,
            pasv_address: Some(Ipv4Addr::new(198, 51, 100, 1)),
            idle_session_timeout: 0,
        }
    }

    fn manifest_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn defaults_equal_parsing_an_empty_file() {
        assert_eq!(Config::parse("", "<input>"), Ok(Config::default()));
        assert_eq!(
            Config::parse("# only a comment\n\n", "<input>"),
            Ok(Config::default())
        );
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_config_with_every_field_changed_round_trips_through_to_toml_string() {
        let list = TempFile::new("alice\n");
        let config = every_field_changed(&list.0);
        let defaults = Config::default();
        // Every field really differs from its default: each line of the output differs from
        // (or is absent in) the defaults' output.
        let changed = config.to_toml_string();
        let default_text = defaults.to_toml_string();
        for field in FIELDS {
            let prefix = format!("{} = ", field.name);
            let find = |text: &str| {
                text.lines()
                    .find(|l| l.starts_with(&prefix))
                    .map(str::to_owned)
            };
            let line = find(&changed).unwrap_or_else(|| panic!("{} not written", field.name));
            assert_ne!(
                Some(line),
                find(&default_text),
                "{} is not changed",
                field.name
            );
        }
        let text = config.to_toml_string();
        assert_eq!(
            Config::parse(&text, "<input>"),
            Ok(config.clone()),
            "{text}"
        );
        assert_eq!(
            Config::parse(&defaults.to_toml_string(), "<input>"),
            Ok(defaults)
        );
    }

    #[test]
    fn derived_serde_agrees_with_parse_and_to_toml_string() {
        let list = TempFile::new("alice\n");
        let config = every_field_changed(&list.0);
        let via_serde: Config = toml::from_str(&config.to_toml_string()).unwrap();
        assert_eq!(via_serde, config);
        let serialized = toml::to_string(&config).unwrap();
        assert_eq!(Config::parse(&serialized, "<input>"), Ok(config));
    }

    #[test]
    fn the_field_table_lists_exactly_the_fields_of_config() {
        let list = TempFile::new("");
        let table = toml::Table::try_from(every_field_changed(&list.0)).unwrap();
        let mut serde_names: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut field_names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        serde_names.sort_unstable();
        field_names.sort_unstable();
        assert_eq!(serde_names, field_names);
    }

    /// The keys whose default is `None` (serde leaves them out of the defaults' TOML).
    fn optional_keys() -> Vec<&'static str> {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        FIELDS
            .iter()
            .map(|f| f.name)
            .filter(|name| !defaults.contains_key(*name))
            .collect()
    }

    #[test]
    fn the_optional_keys_are_the_option_fields() {
        let expected = [
            "listen_address",
            "listen_address6",
            "ftpd_banner",
            "local_root",
            "user_sub_token",
            "pasv_address",
        ];
        assert_eq!(optional_keys(), expected);
    }

    #[test]
    fn a_misspelled_key_reports_file_line_column_and_a_suggestion() {
        let text = "# rftpd\n\nlisten = true\n\n\nwrite_enable = true\nchroot_local_usr = true\n";
        let error = one_error(text);
        assert_eq!(error.file, "/etc/rftpd.toml");
        assert_eq!(error.line, Some(7));
        assert_eq!(error.column, Some(1));
        assert_eq!(error.key.as_deref(), Some("chroot_local_usr"));
        assert_eq!(
            error.to_string(),
            "/etc/rftpd.toml:7:1: key `chroot_local_usr`: unknown key (did you mean `chroot_local_user`?)"
        );
    }

    #[test]
    fn two_bad_keys_give_two_errors_in_file_order() {
        let errors = errors("wrte_enable = true\nlisten = true\n  umask = \"022\"\n");
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0].line, Some(1));
        assert!(
            errors[0].message.contains("`write_enable`"),
            "{}",
            errors[0]
        );
        assert_eq!((errors[1].line, errors[1].column), (Some(3), Some(3)));
        assert!(errors[1].message.contains("`local_umask`"), "{}", errors[1]);
        let all = ConfigErrors(errors).to_string();
        assert_eq!(all.lines().count(), 2);
    }

    #[test]
    fn an_unrelated_unknown_key_gets_no_suggestion() {
        let error = one_error("zzzzzzzzzz = 1\n");
        assert_eq!(error.message, "unknown key");
    }

    #[test]
    fn a_vsftpd_option_rftpd_lacks_is_named_as_such() {
        let error = one_error("anonymous_enable = false\n");
        assert!(
            error
                .message
                .contains("vsftpd option that rftpd does not support"),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_the_expected_type_and_the_line() {
        let error = one_error("listen = true\nwrite_enable = \"yes\"\n");
        assert_eq!(error.key.as_deref(), Some("write_enable"));
        assert_eq!(error.line, Some(2));
        assert!(
            error.message.contains("expected a boolean (true/false)"),
            "{error}"
        );
        assert!(error.message.contains("\"yes\""), "{error}");
        assert!(
            error.message.contains("write `true` without quotes"),
            "{error}"
        );

        let error = one_error("listen_port = 70000\n");
        assert!(error.message.contains("port number"), "{error}");
        assert!(error.message.contains("70000"), "{error}");

        let error = one_error("pasv_address = \"not an address\"\n");
        assert!(error.message.contains("IPv4 address"), "{error}");
        let error = one_error("idle_session_timeout = -1\n");
        assert!(error.message.contains("seconds"), "{error}");
    }

    #[test]
    fn a_syntax_error_has_a_line_and_column() {
        let error = one_error("listen = true\nlisten_port = = 21\n");
        assert_eq!(error.line, Some(2));
        assert!(error.column.is_some());
        assert!(error.message.starts_with("invalid TOML"), "{error}");
        assert!(
            error.to_string().starts_with("/etc/rftpd.toml:2:"),
            "{error}"
        );
    }

    #[test]
    fn a_duplicate_key_is_a_syntax_error_naming_the_key() {
        let error = one_error("listen = true\nlisten = false\n");
        assert_eq!(error.line, Some(2));
        assert_eq!(error.key.as_deref(), Some("listen"));
    }

    #[test]
    fn vsftpd_style_values_get_a_hint() {
        let error = one_error("write_enable = YES\n");
        assert_eq!(error.line, Some(1));
        assert!(error.message.contains("`true` or `false`"), "{error}");
        let error = one_error("local_umask = 022\n");
        assert!(error.message.contains("0o022"), "{error}");
    }

    #[test]
    fn a_nested_table_is_an_error() {
        let errors =
            errors("listen = true\n[jail]\nchroot_local_user = true\n[listen_port]\nx = 1\n");
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0].key.as_deref(), Some("jail"));
        assert_eq!(errors[0].line, Some(2));
        assert!(errors[0].message.contains("top-level"), "{}", errors[0]);
        assert!(
            errors[0].message.contains("`chroot_local_user`"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[1].key.as_deref(), Some("listen_port"));
        assert!(errors[1].message.contains("top-level"), "{}", errors[1]);
        let error = one_error("pasv.enable = true\n");
        assert!(error.message.contains("top-level"), "{error}");
    }

    #[test]
    fn modes_accept_octal_strings_octal_integers_and_decimal_integers() {
        for text in [
            "local_umask = \"022\"",
            "local_umask = \"0022\"",
            "local_umask = \"0o022\"",
            "local_umask = 0o022",
            "local_umask = 18",
        ] {
            let config = Config::parse(text, "<input>").unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(config.local_umask, Mode(0o022), "{text}");
        }
        assert_eq!(Mode(0o022).to_string(), "0022");
        assert_eq!(Mode(0o7777).to_string(), "7777");
    }

    #[test]
    fn modes_reject_non_octal_digits_and_values_above_0o7777() {
        for text in [
            "local_umask = \"9\"",
            "local_umask = \"\"",
            "local_umask = \"0o\"",
            "local_umask = \"-1\"",
            "local_umask = \"0x12\"",
            "local_umask = \"77777777777777777777777\"",
            "local_umask = 0o10000",
            "local_umask = -1",
            "local_umask = 1.5",
        ] {
            let error = one_error(text);
            assert_eq!(error.key.as_deref(), Some("local_umask"), "{text}");
            assert!(error.message.contains("octal file mode"), "{text}: {error}");
        }
    }

    #[test]
    fn a_mode_between_0o777_and_0o7777_is_rejected_by_validation() {
        let error = one_error("file_open_mode = 0o1666\n");
        assert_eq!(error.key.as_deref(), Some("file_open_mode"));
        assert_eq!(error.line, Some(1));
        assert!(error.message.contains("0o777"), "{error}");
    }

    #[test]
    fn a_pasv_range_with_min_above_max_is_rejected() {
        let error = one_error("pasv_min_port = 50000\npasv_max_port = 40000\n");
        assert_eq!(error.key.as_deref(), Some("pasv_min_port"));
        assert_eq!(error.line, Some(1));
        assert!(
            error.message.contains("50000") && error.message.contains("40000"),
            "{error}"
        );
    }

    #[test]
    fn a_pasv_range_with_only_one_end_set_is_rejected() {
        let error = one_error("pasv_min_port = 40000\n");
        assert_eq!(error.key.as_deref(), Some("pasv_max_port"));
        assert_eq!(
            error.line,
            Some(1),
            "located at pasv_min_port, which is in the file"
        );
        let error = one_error("\npasv_max_port = 40000\n");
        assert_eq!(error.key.as_deref(), Some("pasv_min_port"));
        assert_eq!(error.line, Some(2));
    }

    #[test]
    fn a_pasv_range_of_zero_to_zero_or_a_single_port_is_accepted() {
        assert!(Config::parse("pasv_min_port = 0\npasv_max_port = 0\n", "<input>").is_ok());
        let config = Config::parse("pasv_min_port = 21\npasv_max_port = 21\n", "<input>").unwrap();
        assert_eq!((config.pasv_min_port, config.pasv_max_port), (21, 21));
    }

    #[test]
    fn turning_off_both_listeners_is_rejected() {
        let error = one_error("listen = false\nlisten_ipv6 = false\n");
        assert_eq!(error.key.as_deref(), Some("listen"));
        assert_eq!(error.line, Some(1));
        let config = Config::parse("listen = false\nlisten_ipv6 = true\n", "<input>").unwrap();
        assert!(!config.listen && config.listen_ipv6);
        assert!(Config::parse("listen_ipv6 = true\n", "<input>").is_ok());
    }

    #[test]
    fn listen_port_zero_means_any_free_port() {
        // Used by tests: the master logs the port it got.
        assert_eq!(
            Config::parse("listen_port = 0\n", "<input>")
                .unwrap()
                .listen_port,
            0
        );
    }

    #[test]
    fn idle_session_timeout_zero_is_allowed() {
        let config = Config::parse("idle_session_timeout = 0\n", "<input>").unwrap();
        assert_eq!(config.idle_session_timeout, 0);
    }

    #[test]
    fn an_enabled_chroot_list_with_a_missing_file_is_rejected_naming_the_path() {
        let missing = std::env::temp_dir().join(format!("rftpd-missing-{}", std::process::id()));
        let text = format!(
            "chroot_list_enable = true\nchroot_list_file = {}\n",
            toml_string(&missing.display().to_string())
        );
        let error = one_error(&text);
        assert_eq!(error.key.as_deref(), Some("chroot_list_file"));
        assert_eq!(error.line, Some(2));
        assert!(
            error.message.contains(&missing.display().to_string()),
            "{error}"
        );
        assert!(
            error.message.contains("No such file or directory"),
            "{error}"
        );

        // validate() alone knows the key but not the file or line.
        let config = Config {
            chroot_list_enable: true,
            chroot_list_file: missing.clone(),
            ..Config::default()
        };
        let errors = config.validate().unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, "<input>");
        assert_eq!(errors[0].line, None);

        // Not enabled: the file need not exist.
        let text = format!(
            "chroot_list_file = {}\n",
            toml_string(&missing.display().to_string())
        );
        assert!(Config::parse(&text, "<input>").is_ok());

        let list = TempFile::new("bob\n");
        let text = format!(
            "chroot_list_enable = true\nchroot_list_file = {}\n",
            toml_string(&list.0.display().to_string())
        );
        assert!(Config::parse(&text, "<input>").is_ok());
        let error = one_error("chroot_list_enable = true\nchroot_list_file = \"/\"\n");
        assert!(error.message.contains("directory"), "{error}");
    }

    #[test]
    fn user_sub_token_without_local_root_is_rejected() {
        let error = one_error("user_sub_token = \"$USER\"\n");
        assert_eq!(error.key.as_deref(), Some("user_sub_token"));
        assert_eq!(error.line, Some(1));
        let error = one_error("local_root = \"/srv/$USER\"\nuser_sub_token = \"\"\n");
        assert_eq!(error.key.as_deref(), Some("user_sub_token"));
        let error = one_error("local_root = \"srv/ftp\"\n");
        assert_eq!(error.key.as_deref(), Some("local_root"));
    }

    #[test]
    fn an_empty_or_slashed_pam_service_name_is_rejected() {
        for text in ["pam_service_name = \"\"", "pam_service_name = \"../etc/x\""] {
            let error = one_error(text);
            assert_eq!(error.key.as_deref(), Some("pam_service_name"), "{text}");
        }
    }

    #[test]
    fn a_multi_line_banner_is_rejected() {
        let error = one_error("ftpd_banner = \"hello\\r\\n230 fake\"\n");
        assert_eq!(error.key.as_deref(), Some("ftpd_banner"));
    }

    #[test]
    fn type_errors_and_semantic_errors_are_reported_together() {
        let errors = errors(
            "listen = false\nlisten_ipv6 = false\nwrite_enable = 1\npasv_min_port = \"x\"\npasv_max_port = 10\n",
        );
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_deref().unwrap()).collect();
        // The pasv range is not judged while pasv_min_port itself is wrong.
        assert_eq!(
            keys,
            ["listen", "write_enable", "pasv_min_port"],
            "{errors:#?}"
        );
    }

    #[test]
    fn config_error_display_omits_missing_parts() {
        let mut error = ConfigError {
            file: "f.toml".to_owned(),
            line: Some(3),
            column: Some(5),
            key: Some("listen".to_owned()),
            message: "bad".to_owned(),
        };
        assert_eq!(error.to_string(), "f.toml:3:5: key `listen`: bad");
        error.column = None;
        assert_eq!(error.to_string(), "f.toml:3: key `listen`: bad");
        error.line = None;
        assert_eq!(error.to_string(), "f.toml: key `listen`: bad");
        error.key = None;
        assert_eq!(error.to_string(), "f.toml: bad");
    }

    #[test]
    fn load_names_the_file_when_it_cannot_be_read() {
        let missing = std::env::temp_dir().join(format!("rftpd-no-config-{}", std::process::id()));
        let ConfigErrors(errors) = Config::load(&missing).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            format!(
                "{}: cannot read: No such file or directory",
                missing.display()
            )
        );
    }

    #[test]
    fn load_reads_and_validates_a_file() {
        let file = TempFile::new("listen_port = 2121\nwrte_enable = true\n");
        let ConfigErrors(errors) = Config::load(&file.0).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, file.0.display().to_string());
        assert_eq!(errors[0].line, Some(2));
        let file = TempFile::new("listen_port = 2121\n");
        assert_eq!(Config::load(&file.0).unwrap().listen_port, 2121);
    }

    #[test]
    fn start_dir_substitutes_the_user_into_local_root() {
        let home = Path::new("/home/alice");
        let mut config = Config::parse(
            "local_root = \"/srv/ftp/$USER/$USER\"\nuser_sub_token = \"$USER\"\n",
            "<input>",
        )
        .unwrap();
        assert_eq!(
            config.start_dir("alice", home),
            PathBuf::from("/srv/ftp/alice/alice")
        );
        config.user_sub_token = None;
        assert_eq!(
            config.start_dir("alice", home),
            PathBuf::from("/srv/ftp/$USER/$USER")
        );
        config.local_root = None;
        assert_eq!(config.start_dir("alice", home), home);
    }

    #[test]
    fn is_jailed_follows_vsftpds_inverted_list_with_chroot_local_user_on() {
        let list = TempFile::new("# exempt users\n\n  alice  \nbob\n#carol\n");
        let mut config = Config {
            chroot_local_user: true,
            chroot_list_enable: true,
            chroot_list_file: list.0.clone(),
            ..Config::default()
        };
        assert!(!config.is_jailed("alice").unwrap());
        assert!(!config.is_jailed("bob").unwrap());
        assert!(config.is_jailed("carol").unwrap());
        assert!(config.is_jailed("dave").unwrap());
        config.chroot_list_enable = false;
        assert!(config.is_jailed("alice").unwrap());
    }

    #[test]
    fn is_jailed_follows_vsftpds_inverted_list_with_chroot_local_user_off() {
        let list = TempFile::new("alice\n");
        let mut config = Config {
            chroot_local_user: false,
            chroot_list_enable: true,
            chroot_list_file: list.0.clone(),
            ..Config::default()
        };
        assert!(config.is_jailed("alice").unwrap());
        assert!(!config.is_jailed("bob").unwrap());
        config.chroot_list_enable = false;
        assert!(!config.is_jailed("alice").unwrap());
    }

    #[test]
    fn is_jailed_returns_an_error_for_an_unreadable_list() {
        let config = Config {
            chroot_list_enable: true,
            chroot_list_file: std::env::temp_dir()
                .join(format!("rftpd-no-list-{}", std::process::id())),
            ..Config::default()
        };
        assert!(config.is_jailed("alice").is_err());
    }

    #[test]
    fn suggestions_use_edit_distance_and_prefixes() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
        assert_eq!(suggest("chroot_local_usr"), Some("chroot_local_user"));
        assert_eq!(suggest("Write-Enable"), Some("write_enable"));
        assert_eq!(suggest("umask"), Some("local_umask"));
        assert_eq!(
            suggest("idle_session_timeout_seconds"),
            Some("idle_session_timeout")
        );
        assert_eq!(suggest("qqqqqqqqq"), None);
    }

    #[test]
    fn every_shipped_toml_file_parses() {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "toml") {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        for dir in ["config", "packaging"] {
            walk(&manifest_dir().join(dir), &mut found);
        }
        assert!(
            found.iter().any(|p| p.ends_with("config/rftpd.toml")),
            "{found:?}"
        );
        for path in found {
            if let Err(e) = Config::load(&path) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn the_shipped_config_equals_the_defaults() {
        let path = manifest_dir().join("config/rftpd.toml");
        assert_eq!(Config::load(&path), Ok(Config::default()));
    }

    #[test]
    fn the_shipped_config_mentions_every_key() {
        let text = std::fs::read_to_string(manifest_dir().join("config/rftpd.toml")).unwrap();
        let set = |name: &str| {
            text.lines().any(|l| {
                l.trim_start()
                    .strip_prefix(name)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
        };
        let commented = |name: &str| {
            text.lines().any(|l| {
                l.trim_start()
                    .strip_prefix('#')
                    .map(str::trim_start)
                    .and_then(|l| l.strip_prefix(name))
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
        };
        let optional = optional_keys();
        for field in FIELDS {
            if optional.contains(&field.name) {
                assert!(commented(field.name), "`# {} = ...` missing", field.name);
                assert!(!set(field.name), "{} should be commented out", field.name);
            } else {
                assert!(set(field.name), "`{} = ...` missing", field.name);
            }
        }
    }
}
