//! The rftpd configuration: the TOML model, its defaults, and its checks.
//!
//! What it does:
//! - defines [`Config`], one flat table of vsftpd-named keys with their defaults (the shipped
//!   `config/rftpd.toml` repeats those defaults verbatim);
//! - reads and checks a configuration file ([`Config::load`], [`Config::parse`]) and reports
//!   **every** problem it finds at once, each with the file, line, column and key, plus a
//!   suggestion for misspelled keys;
//! - answers the per-user questions that depend only on the configuration:
//!   the start/jail directory ([`Config::start_dir`]), whether the user is jailed
//!   ([`Config::is_jailed`]), whether a login name is anonymous
//!   ([`Config::is_anonymous_name`]), and reads the user list ([`Config::load_user_list`]);
//! - lists the settings that are accepted but not (fully) enforced ([`Config::warnings`]);
//! - serialises a validated configuration back to TOML ([`Config::to_toml_string`]) so the
//!   master can hand it to child processes.
//!
//! What it must never do:
//! - touch the network, or the filesystem beyond reading the configuration file, reading the
//!   chroot list and user list files, and checking that the files it names exist and can be
//!   opened (no creating, writing, chmod, chdir, chroot; the banner, certificate and key are
//!   read by their users, not here);
//! - change process state (uid, umask, signals, environment) or spawn anything;
//! - accept a configuration it has not fully checked: `load`/`parse` only return `Ok` when
//!   there is no problem at all; unknown keys are errors, never ignored;
//! - contain `unsafe` code.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::Metadata;
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
    /// Multi-line greeting read from this file by the master; wins over `ftpd_banner`
    /// (default `None`). Validation checks only that it is an absolute path to a readable
    /// regular file of at most [`BANNER_FILE_MAX`] bytes.
    pub banner_file: Option<PathBuf>,

    // --- Who may log in ---
    /// Local (PAM) accounts may log in (default true).
    pub local_enable: bool,
    /// PAM service name, i.e. the file in `/etc/pam.d/` (default `rftpd`).
    pub pam_service_name: String,
    /// TEMPORARY (replaced by the config split): the pre-login process's account.
    pub nopriv_user: String,
    /// TEMPORARY: the pre-login process's empty chroot.
    pub secure_chroot_dir: PathBuf,
    /// Open a PAM session (`pam_open_session`) for each login and close it at logout, as
    /// vsftpd's `session_support` (default false: PAM authenticates, checks the account and
    /// establishes credentials only).
    pub session_support: bool,
    /// Check `userlist_file` at `USER`, before the password (default false).
    pub userlist_enable: bool,
    /// With `userlist_enable`: true = the listed users are refused (deny list), false = only
    /// the listed users may log in (allow list) (default true).
    pub userlist_deny: bool,
    /// The user list: one user name per line (default `/etc/rftpd.user_list`); see
    /// [`Config::load_user_list`].
    pub userlist_file: PathBuf,
    /// Let uid 0 log in when PAM accepts it (default false: rftpd refuses root regardless of
    /// PAM). Not a vsftpd option.
    pub allow_root_login: bool,
    /// Close the connection after this many failed logins in it; 0 = unlimited (default 3).
    pub max_login_fails: u32,
    /// Seconds to wait before answering a failed login (default 1).
    pub delay_failed_login: u64,
    /// After this many failed logins from one client address within `ban_window` seconds,
    /// refuse new connections from that address for `ban_time` seconds; 0 = off (default 10).
    /// Not a vsftpd option.
    pub ban_failed_logins: u32,
    /// The window, in seconds, in which `ban_failed_logins` failures are counted (default 300).
    pub ban_window: u64,
    /// Seconds an address stays banned (default 900).
    pub ban_time: u64,
    /// `ftp` and `anonymous` may log in without an account (default false).
    pub anonymous_enable: bool,
    /// The local account anonymous sessions run as; its home is their jail unless `anon_root`
    /// is set (default `ftp`).
    pub ftp_username: String,
    /// Jail and start directory of anonymous sessions instead of `ftp_username`'s home
    /// (default `None`).
    pub anon_root: Option<PathBuf>,
    /// Anonymous users are not asked for a password (default false).
    pub no_anon_password: bool,
    /// Anonymous users may upload (needs `write_enable` too) (default false).
    pub anon_upload_enable: bool,
    /// Anonymous users may create directories (needs `write_enable` too) (default false).
    pub anon_mkdir_write_enable: bool,
    /// Anonymous users may delete and rename (needs `write_enable` too) (default false).
    pub anon_other_write_enable: bool,
    /// Umask for files and directories anonymous users create (default 0o077).
    pub anon_umask: Mode,
    /// Anonymous users may use TLS (default false).
    pub allow_anon_ssl: bool,
    /// With `ssl_enable` and `allow_anon_ssl`: anonymous logins must use TLS (default false).
    pub force_anon_logins_ssl: bool,
    /// With `ssl_enable` and `allow_anon_ssl`: anonymous data connections must use TLS
    /// (default false).
    pub force_anon_data_ssl: bool,

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
    /// Allow `SITE CHMOD` (needs `write_enable` too) (default true).
    pub chmod_enable: bool,
    /// vsftpd pattern (`{*.mp3,*.mov,.private}`, with `*` and `?`) on the last path component:
    /// matching names are left out of listings (default `None`). Validation checks only that
    /// the braces balance.
    pub hide_file: Option<String>,
    /// Same pattern syntax as `hide_file`: matching names are refused for every command
    /// (default `None`).
    pub deny_file: Option<String>,
    /// List dot files even without `-a` (default false).
    pub force_dot_files: bool,
    /// Allow `LIST -R` (default false). Accepted, but not implemented: see [`Config::warnings`].
    pub ls_recurse_enable: bool,

    // --- Data connections ---
    /// Allow PASV/EPSV (default true).
    pub pasv_enable: bool,
    /// Lowest passive port; 0 together with `pasv_max_port = 0` = any port the kernel picks.
    pub pasv_min_port: u16,
    /// Highest passive port; see `pasv_min_port`.
    pub pasv_max_port: u16,
    /// Address announced in the PASV reply (for NAT); `None` = the control connection's.
    pub pasv_address: Option<Ipv4Addr>,
    /// Allow PORT/EPRT (active mode) (default true, as vsftpd). The data connection is made by
    /// the monitor, only to the client's own address and a port of 1024 or above unless
    /// `port_promiscuous`.
    pub port_enable: bool,
    /// Let PORT/EPRT name any address and port, not only the client's own (default false).
    pub port_promiscuous: bool,
    /// Make active data connections from `ftp_data_port` (default false).
    pub connect_from_port_20: bool,
    /// Source port of active data connections with `connect_from_port_20` (default 20).
    pub ftp_data_port: u16,

    // --- Limits and timeouts ---
    /// Most simultaneous connections in all; 0 = unlimited (default 2000).
    pub max_clients: u32,
    /// Most simultaneous connections from one client address; 0 = unlimited (default 50).
    pub max_per_ip: u32,
    /// Seconds of inactivity before `421 Timeout.`; 0 = never (default 300).
    pub idle_session_timeout: u64,
    /// Seconds a data transfer may stall before `421 Data timeout.`; 0 = never (default 300).
    pub data_connection_timeout: u64,
    /// Seconds to wait for the client to connect to a passive port (default 60).
    pub accept_timeout: u64,
    /// Seconds to wait for an active data connection to be established (default 60).
    pub connect_timeout: u64,
    /// Seconds an unauthenticated connection may stay before it is closed; at least 1
    /// (default 60). Not a vsftpd option.
    pub login_timeout: u64,

    // --- TLS (explicit FTPS) ---
    /// Offer `AUTH TLS` (default false).
    pub ssl_enable: bool,
    /// PEM certificate chain (default the Debian snakeoil certificate). Checked only with
    /// `ssl_enable`.
    pub rsa_cert_file: PathBuf,
    /// PEM private key (default the Debian snakeoil key); empty = the key is in
    /// `rsa_cert_file`. Checked only with `ssl_enable`.
    pub rsa_private_key_file: PathBuf,
    /// With `ssl_enable`: local users must log in over TLS (default true).
    pub force_local_logins_ssl: bool,
    /// With `ssl_enable`: local users' data connections must use TLS (`PROT P`) (default true).
    pub force_local_data_ssl: bool,
    /// With `ssl_enable`: data-connection TLS must resume the control connection's session
    /// (default true).
    pub require_ssl_reuse: bool,
    /// TLS from the first byte (port 990 style) (default false). Not supported: `true` is
    /// rejected by validation.
    pub implicit_ssl: bool,
    /// With `ssl_enable`: allow TLS 1.2 (default true).
    pub ssl_tlsv1_2: bool,
    /// With `ssl_enable`: allow TLS 1.3 (default true).
    pub ssl_tlsv1_3: bool,
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
            banner_file: None,
            local_enable: true,
            pam_service_name: "rftpd".to_owned(),
            nopriv_user: "rftpd".to_owned(),
            secure_chroot_dir: PathBuf::from("/run/rftpd/empty"),
            session_support: false,
            userlist_enable: false,
            userlist_deny: true,
            userlist_file: PathBuf::from("/etc/rftpd.user_list"),
            allow_root_login: false,
            max_login_fails: 3,
            delay_failed_login: 1,
            ban_failed_logins: 10,
            ban_window: 300,
            ban_time: 900,
            anonymous_enable: false,
            ftp_username: "ftp".to_owned(),
            anon_root: None,
            no_anon_password: false,
            anon_upload_enable: false,
            anon_mkdir_write_enable: false,
            anon_other_write_enable: false,
            anon_umask: Mode(0o077),
            allow_anon_ssl: false,
            force_anon_logins_ssl: false,
            force_anon_data_ssl: false,
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
            chmod_enable: true,
            hide_file: None,
            deny_file: None,
            force_dot_files: false,
            ls_recurse_enable: false,
            pasv_enable: true,
            pasv_min_port: 0,
            pasv_max_port: 0,
            pasv_address: None,
            port_enable: true,
            port_promiscuous: false,
            connect_from_port_20: false,
            ftp_data_port: 20,
            max_clients: 2000,
            max_per_ip: 50,
            idle_session_timeout: 300,
            data_connection_timeout: 300,
            accept_timeout: 60,
            connect_timeout: 60,
            login_timeout: 60,
            ssl_enable: false,
            rsa_cert_file: PathBuf::from("/etc/ssl/certs/ssl-cert-snakeoil.pem"),
            rsa_private_key_file: PathBuf::from("/etc/ssl/private/ssl-cert-snakeoil.key"),
            force_local_logins_ssl: true,
            force_local_data_ssl: true,
            require_ssl_reuse: true,
            implicit_ssl: false,
            ssl_tlsv1_2: true,
            ssl_tlsv1_3: true,
        }
    }
}

/// The largest `banner_file` accepted, in bytes (64 KiB).
pub const BANNER_FILE_MAX: u64 = 64 * 1024;

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
    Count,
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
            Kind::Count => "a count (an integer from 0 to 4294967295)",
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
    banner_file: Path,
    local_enable: Bool,
    pam_service_name: Str,
    session_support: Bool,
    userlist_enable: Bool,
    userlist_deny: Bool,
    userlist_file: Path,
    allow_root_login: Bool,
    max_login_fails: Count,
    delay_failed_login: Seconds,
    ban_failed_logins: Count,
    ban_window: Seconds,
    ban_time: Seconds,
    anonymous_enable: Bool,
    ftp_username: Str,
    anon_root: Path,
    no_anon_password: Bool,
    anon_upload_enable: Bool,
    anon_mkdir_write_enable: Bool,
    anon_other_write_enable: Bool,
    anon_umask: Mode,
    allow_anon_ssl: Bool,
    force_anon_logins_ssl: Bool,
    force_anon_data_ssl: Bool,
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
    chmod_enable: Bool,
    hide_file: Str,
    deny_file: Str,
    force_dot_files: Bool,
    ls_recurse_enable: Bool,
    pasv_enable: Bool,
    pasv_min_port: Port,
    pasv_max_port: Port,
    pasv_address: Ipv4,
    port_enable: Bool,
    port_promiscuous: Bool,
    connect_from_port_20: Bool,
    ftp_data_port: Port,
    max_clients: Count,
    max_per_ip: Count,
    idle_session_timeout: Seconds,
    data_connection_timeout: Seconds,
    accept_timeout: Seconds,
    connect_timeout: Seconds,
    login_timeout: Seconds,
    ssl_enable: Bool,
    rsa_cert_file: Path,
    rsa_private_key_file: Path,
    force_local_logins_ssl: Bool,
    force_local_data_ssl: Bool,
    require_ssl_reuse: Bool,
    implicit_ssl: Bool,
    ssl_tlsv1_2: Bool,
    ssl_tlsv1_3: Bool,
}

/// vsftpd options rftpd does not implement: named as such instead of "did you mean".
const VSFTPD_ONLY: &[&str] = &[
    "anon_max_rate",
    "anon_world_readable_only",
    "ascii_download_enable",
    "ascii_upload_enable",
    "async_abor_enable",
    "background",
    "ca_certs_file",
    "chown_uploads",
    "debug_ssl",
    "dsa_cert_file",
    "dsa_private_key_file",
    "dual_log_enable",
    "guest_enable",
    "isolate",
    "isolate_network",
    "local_max_rate",
    "log_ftp_protocol",
    "nopriv_user",
    "passwd_chroot_enable",
    "pasv_promiscuous",
    "seccomp_sandbox",
    "secure_chroot_dir",
    "ssl_ciphers",
    "ssl_request_cert",
    "ssl_sslv2",
    "ssl_sslv3",
    "ssl_tlsv1",
    "ssl_tlsv1_1",
    "strict_ssl_read_eof",
    "strict_ssl_write_shutdown",
    "syslog_enable",
    "use_localtime",
    "validate_cert",
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
        "userlist_file" => &["userlist_enable"],
        "ban_window" | "ban_time" => &["ban_failed_logins"],
        "rsa_cert_file" | "rsa_private_key_file" => &["ssl_enable"],
        "ssl_tlsv1_2" => &["ssl_tlsv1_3", "ssl_enable"],
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
    /// It opens, but does not read, the files the configuration depends on: `chroot_list_file`
    /// with `chroot_list_enable` and `userlist_file` with `userlist_enable` (vsftpd treats a
    /// missing list as fatal), `banner_file` when set (also checking its size), and with
    /// `ssl_enable` `rsa_cert_file` and a non-empty `rsa_private_key_file`. Each must be an
    /// absolute path to a regular file.
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
    /// A path that is not valid UTF-8 (impossible when read from TOML) is written lossily.
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
        fn path(out: &mut String, key: &str, value: &Path) {
            line(out, key, toml_string(&value.to_string_lossy()));
        }
        fn opt_path(out: &mut String, key: &str, value: &Option<PathBuf>) {
            if let Some(v) = value {
                path(out, key, v);
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
        opt_path(o, "banner_file", &self.banner_file);
        out_comment(o, "Who may log in");
        line(o, "local_enable", self.local_enable);
        line(o, "pam_service_name", toml_string(&self.pam_service_name));
        line(o, "session_support", self.session_support);
        line(o, "userlist_enable", self.userlist_enable);
        line(o, "userlist_deny", self.userlist_deny);
        path(o, "userlist_file", &self.userlist_file);
        line(o, "allow_root_login", self.allow_root_login);
        line(o, "max_login_fails", self.max_login_fails);
        line(o, "delay_failed_login", self.delay_failed_login);
        line(o, "ban_failed_logins", self.ban_failed_logins);
        line(o, "ban_window", self.ban_window);
        line(o, "ban_time", self.ban_time);
        line(o, "anonymous_enable", self.anonymous_enable);
        line(o, "ftp_username", toml_string(&self.ftp_username));
        opt_path(o, "anon_root", &self.anon_root);
        line(o, "no_anon_password", self.no_anon_password);
        line(o, "anon_upload_enable", self.anon_upload_enable);
        line(o, "anon_mkdir_write_enable", self.anon_mkdir_write_enable);
        line(o, "anon_other_write_enable", self.anon_other_write_enable);
        line(o, "anon_umask", mode(self.anon_umask));
        line(o, "allow_anon_ssl", self.allow_anon_ssl);
        line(o, "force_anon_logins_ssl", self.force_anon_logins_ssl);
        line(o, "force_anon_data_ssl", self.force_anon_data_ssl);
        out_comment(o, "Jail");
        line(o, "chroot_local_user", self.chroot_local_user);
        line(o, "chroot_list_enable", self.chroot_list_enable);
        path(o, "chroot_list_file", &self.chroot_list_file);
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
        line(o, "chmod_enable", self.chmod_enable);
        opt(o, "hide_file", &self.hide_file);
        opt(o, "deny_file", &self.deny_file);
        line(o, "force_dot_files", self.force_dot_files);
        line(o, "ls_recurse_enable", self.ls_recurse_enable);
        out_comment(o, "Data connections");
        line(o, "pasv_enable", self.pasv_enable);
        line(o, "pasv_min_port", self.pasv_min_port);
        line(o, "pasv_max_port", self.pasv_max_port);
        opt(o, "pasv_address", &self.pasv_address);
        line(o, "port_enable", self.port_enable);
        line(o, "port_promiscuous", self.port_promiscuous);
        line(o, "connect_from_port_20", self.connect_from_port_20);
        line(o, "ftp_data_port", self.ftp_data_port);
        out_comment(o, "Limits and timeouts");
        line(o, "max_clients", self.max_clients);
        line(o, "max_per_ip", self.max_per_ip);
        line(o, "idle_session_timeout", self.idle_session_timeout);
        line(o, "data_connection_timeout", self.data_connection_timeout);
        line(o, "accept_timeout", self.accept_timeout);
        line(o, "connect_timeout", self.connect_timeout);
        line(o, "login_timeout", self.login_timeout);
        out_comment(o, "TLS (explicit FTPS)");
        line(o, "ssl_enable", self.ssl_enable);
        path(o, "rsa_cert_file", &self.rsa_cert_file);
        path(o, "rsa_private_key_file", &self.rsa_private_key_file);
        line(o, "force_local_logins_ssl", self.force_local_logins_ssl);
        line(o, "force_local_data_ssl", self.force_local_data_ssl);
        line(o, "require_ssl_reuse", self.require_ssl_reuse);
        line(o, "implicit_ssl", self.implicit_ssl);
        line(o, "ssl_tlsv1_2", self.ssl_tlsv1_2);
        line(o, "ssl_tlsv1_3", self.ssl_tlsv1_3);
        out
    }

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
        warnings
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

        if let Some(path) = &self.banner_file {
            match check_file(
                path,
                "the banner file",
                "a text file",
                "`banner_file` is set",
            ) {
                Ok(meta) if meta.len() > BANNER_FILE_MAX => add(
                    "banner_file",
                    format!(
                        "`{}` is {} bytes long; a banner file may be at most {BANNER_FILE_MAX} \
                         bytes (64 KiB)",
                        path.display(),
                        meta.len()
                    ),
                ),
                Ok(_) => {}
                Err(message) => add("banner_file", message),
            }
        }

        if self.userlist_enable
            && let Err(message) = check_file(
                &self.userlist_file,
                "the user list",
                "a list of users",
                "`userlist_enable` is true",
            )
        {
            add("userlist_file", message);
        }

        if self.ban_failed_logins > 0 {
            for (key, value) in [("ban_window", self.ban_window), ("ban_time", self.ban_time)] {
                if value == 0 {
                    add(
                        key,
                        format!(
                            "must be at least 1 while `ban_failed_logins` is {} \
                             (set `ban_failed_logins = 0` to turn banning off)",
                            self.ban_failed_logins
                        ),
                    );
                }
            }
        }

        let user = &self.ftp_username;
        if user.is_empty() {
            add("ftp_username", "must not be empty".to_owned());
        } else if user.contains('\0') {
            add(
                "ftp_username",
                format!("{user:?} must not contain a NUL character"),
            );
        }
        if let Some(root) = &self.anon_root
            && (!root.is_absolute() || root.as_os_str().as_encoded_bytes().contains(&0))
        {
            add(
                "anon_root",
                format!("`{}` must be an absolute path", root.display()),
            );
        }

        if self.chroot_list_enable
            && let Err(message) = check_file(
                &self.chroot_list_file,
                "the chroot list",
                "a list of users",
                "`chroot_list_enable` is true",
            )
        {
            add("chroot_list_file", message);
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
            ("anon_umask", self.anon_umask),
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

        for (key, pattern) in [
            ("hide_file", &self.hide_file),
            ("deny_file", &self.deny_file),
        ] {
            if let Some(pattern) = pattern
                && !braces_balance(pattern)
            {
                add(
                    key,
                    format!(
                        "{pattern:?} has unbalanced braces: every `{{` needs a matching `}}` \
                         after it, e.g. \"{{*.mp3,*.mov,.private}}\""
                    ),
                );
            }
        }

        for (key, seconds) in [
            ("delay_failed_login", self.delay_failed_login),
            ("ban_window", self.ban_window),
            ("ban_time", self.ban_time),
            ("idle_session_timeout", self.idle_session_timeout),
            ("data_connection_timeout", self.data_connection_timeout),
            ("accept_timeout", self.accept_timeout),
            ("connect_timeout", self.connect_timeout),
            ("login_timeout", self.login_timeout),
        ] {
            if seconds > i64::MAX as u64 {
                add(key, format!("{seconds} is too large"));
            }
        }
        if self.login_timeout == 0 {
            add("login_timeout", "must be at least 1".to_owned());
        }

        if self.ssl_enable {
            if !self.ssl_tlsv1_2 && !self.ssl_tlsv1_3 {
                add(
                    "ssl_tlsv1_2",
                    "`ssl_tlsv1_2` and `ssl_tlsv1_3` are both false, so no TLS version is \
                     left; turn at least one of them on (or turn `ssl_enable` off)"
                        .to_owned(),
                );
            }
            let because = "`ssl_enable` is true";
            if let Err(message) = check_file(
                &self.rsa_cert_file,
                "the certificate file",
                "a PEM file",
                because,
            ) {
                add("rsa_cert_file", message);
            }
            if !self.rsa_private_key_file.as_os_str().is_empty()
                && let Err(message) = check_file(
                    &self.rsa_private_key_file,
                    "the private key file",
                    "a PEM file",
                    because,
                )
            {
                add("rsa_private_key_file", message);
            }
        }
        if self.implicit_ssl {
            add(
                "implicit_ssl",
                "implicit_ssl is not supported: the FTP engine (libunftp) only does explicit \
                 TLS (AUTH TLS); use ssl_enable with port 21"
                    .to_owned(),
            );
        }
        problems
    }
}

/// Checks a file named in the configuration without reading it: `path` must be absolute and
/// name a regular file that can be opened for reading. Returns its metadata, or the problem:
/// `what` names the file ("the chroot list"), `kind` says what it should be ("a list of
/// users"), `because` why it is needed ("`chroot_list_enable` is true").
fn check_file(path: &Path, what: &str, kind: &str, because: &str) -> Result<Metadata, String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("`{shown}` must be an absolute path"));
    }
    let cannot_read = |e: io::Error| {
        format!(
            "cannot read {what} `{shown}`: {} (it is required because {because})",
            io_message(&e)
        )
    };
    // Metadata first, so that opening a FIFO cannot block.
    let meta = std::fs::metadata(path).map_err(cannot_read)?;
    if meta.is_dir() {
        return Err(format!("`{shown}` is a directory, not {kind}"));
    }
    if !meta.is_file() {
        return Err(format!("`{shown}` is not a regular file, so not {kind}"));
    }
    std::fs::File::open(path).map_err(cannot_read)?;
    Ok(meta)
}

/// Whether every `{` in a vsftpd filename pattern is closed by a later `}` and every `}`
/// closes an earlier `{`.
fn braces_balance(pattern: &str) -> bool {
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '{' => depth += 1,
            '}' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
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
        Kind::Port | Kind::Count | Kind::Seconds if s.parse::<u64>().is_ok() => {
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
/// else the nearest key that the unknown key is a prefix or suffix of (or the reverse),
/// preferring keys that are not about anonymous users (`umask` means `local_umask` far more
/// often than `anon_umask`).
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
    names()
        .filter(|n| {
            n.starts_with(&normal)
                || n.ends_with(&normal)
                || normal.starts_with(n)
                || normal.ends_with(n)
        })
        .min_by_key(|n| (n.starts_with("anon_"), levenshtein(&normal, n)))
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

    /// A valid config in which every field differs from its default, except those in
    /// [`LEFT_AT_DEFAULT`]. `list` is an existing file; it serves as every file the config
    /// names (validation only checks that they can be opened).
    fn every_field_changed(list: &Path) -> Config {
        Config {
            listen: false,
            listen_ipv6: true,
            listen_address: Some(Ipv4Addr::new(192, 0, 2, 7)),
            listen_address6: Some("2001:db8::21".parse().unwrap()),
            listen_port: 2121,
            ftpd_banner: Some("Welcome \"home\" \\ to rftpd\tnow ünïcode".to_owned()),
            banner_file: Some(list.to_path_buf()),
            local_enable: false,
            pam_service_name: "ftp".to_owned(),
            nopriv_user: "rftpd".to_owned(),
            secure_chroot_dir: PathBuf::from("/run/rftpd/empty"),
            session_support: true,
            userlist_enable: true,
            userlist_deny: false,
            userlist_file: list.to_path_buf(),
            allow_root_login: true,
            max_login_fails: 0,
            delay_failed_login: 5,
            ban_failed_logins: 4,
            ban_window: 60,
            ban_time: 3600,
            anonymous_enable: true,
            ftp_username: "anonftp".to_owned(),
            anon_root: Some(PathBuf::from("/srv/ftp \"pub\"")),
            no_anon_password: true,
            anon_upload_enable: true,
            anon_mkdir_write_enable: true,
            anon_other_write_enable: true,
            anon_umask: Mode(0o022),
            allow_anon_ssl: true,
            force_anon_logins_ssl: true,
            force_anon_data_ssl: true,
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
            chmod_enable: false,
            hide_file: Some("{*.mp3,*.mov,.private}".to_owned()),
            deny_file: Some("*.exe".to_owned()),
            force_dot_files: true,
            ls_recurse_enable: true,
            pasv_enable: false,
            pasv_min_port: 40000,
            pasv_max_port: 40100,
            pasv_address: Some(Ipv4Addr::new(198, 51, 100, 1)),
            port_enable: false,
            port_promiscuous: true,
            connect_from_port_20: true,
            ftp_data_port: 2020,
            max_clients: 0,
            max_per_ip: 0,
            idle_session_timeout: 0,
            data_connection_timeout: 0,
            accept_timeout: 5,
            connect_timeout: 0,
            login_timeout: 1,
            ssl_enable: true,
            rsa_cert_file: list.to_path_buf(),
            rsa_private_key_file: list.to_path_buf(),
            force_local_logins_ssl: false,
            force_local_data_ssl: false,
            require_ssl_reuse: false,
            implicit_ssl: false,
            ssl_tlsv1_2: false,
            ssl_tlsv1_3: true,
        }
    }

    /// The fields [`every_field_changed`] keeps at their defaults because no valid config
    /// changes them together with the rest: with `ssl_enable` one TLS version must stay on,
    /// and `implicit_ssl = true` is always rejected. Each is covered by its own test.
    const LEFT_AT_DEFAULT: &[&str] = &["implicit_ssl", "ssl_tlsv1_3"];

    /// The `key = …` line of `text`, if any.
    fn line_of(text: &str, key: &str) -> Option<String> {
        let prefix = format!("{key} = ");
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .map(str::to_owned)
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
            let line = line_of(&changed, field.name)
                .unwrap_or_else(|| panic!("{} not written", field.name));
            if LEFT_AT_DEFAULT.contains(&field.name) {
                assert_eq!(Some(line), line_of(&default_text, field.name));
            } else {
                assert_ne!(
                    Some(line),
                    line_of(&default_text, field.name),
                    "{} is not changed",
                    field.name
                );
            }
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
    fn the_fields_left_at_default_round_trip_or_are_rejected() {
        // ssl_tlsv1_3 = false is valid on its own (and with ssl_enable and ssl_tlsv1_2).
        let config = Config {
            ssl_tlsv1_3: false,
            ..Config::default()
        };
        let text = config.to_toml_string();
        assert_eq!(
            line_of(&text, "ssl_tlsv1_3").as_deref(),
            Some("ssl_tlsv1_3 = false")
        );
        assert_eq!(Config::parse(&text, "<input>"), Ok(config));

        // implicit_ssl = true is written and read back by serde, but never validates.
        let config = Config {
            implicit_ssl: true,
            ..Config::default()
        };
        let text = config.to_toml_string();
        assert_eq!(
            line_of(&text, "implicit_ssl").as_deref(),
            Some("implicit_ssl = true")
        );
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
        let ConfigErrors(errors) = Config::parse(&text, "<input>").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].key.as_deref(), Some("implicit_ssl"));
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
            "banner_file",
            "anon_root",
            "local_root",
            "user_sub_token",
            "hide_file",
            "deny_file",
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
        for text in ["guest_enable = false\n", "ssl_tlsv1 = true\n"] {
            let error = one_error(text);
            assert!(
                error
                    .message
                    .contains("vsftpd option that rftpd does not support"),
                "{error}"
            );
        }
        // Every key rftpd has is accepted, never named as a vsftpd-only option.
        for field in FIELDS {
            assert!(!VSFTPD_ONLY.contains(&field.name), "{}", field.name);
        }
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

    /// A path under the temp dir that does not exist.
    fn missing_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rftpd-missing-{name}-{}", std::process::id()))
    }

    /// `key = "path"` as a TOML line.
    fn path_line(key: &str, path: &Path) -> String {
        format!("{key} = {}\n", toml_string(&path.display().to_string()))
    }

    #[test]
    fn the_new_keys_have_the_documented_defaults() {
        let c = Config::default();
        assert!(!c.userlist_enable && c.userlist_deny);
        assert_eq!(c.userlist_file, Path::new("/etc/rftpd.user_list"));
        assert!(!c.allow_root_login);
        assert_eq!((c.max_login_fails, c.delay_failed_login), (3, 1));
        assert_eq!(
            (c.ban_failed_logins, c.ban_window, c.ban_time),
            (10, 300, 900)
        );
        assert!(!c.anonymous_enable && !c.no_anon_password);
        assert_eq!(c.ftp_username, "ftp");
        assert_eq!(c.anon_root, None);
        assert!(!c.anon_upload_enable && !c.anon_mkdir_write_enable);
        assert!(!c.anon_other_write_enable);
        assert_eq!(c.anon_umask, Mode(0o077));
        assert!(!c.allow_anon_ssl && !c.force_anon_logins_ssl && !c.force_anon_data_ssl);
        assert_eq!((c.max_clients, c.max_per_ip), (2000, 50));
        assert_eq!(
            (
                c.idle_session_timeout,
                c.data_connection_timeout,
                c.accept_timeout,
                c.connect_timeout,
                c.login_timeout
            ),
            (300, 300, 60, 60, 60)
        );
        assert!(c.port_enable && !c.port_promiscuous && !c.connect_from_port_20);
        assert_eq!(c.ftp_data_port, 20);
        assert_eq!((c.banner_file.as_ref(), c.hide_file.as_ref()), (None, None));
        assert_eq!(c.deny_file, None);
        assert!(!c.force_dot_files && !c.ls_recurse_enable && c.chmod_enable);
        assert!(!c.ssl_enable && !c.implicit_ssl);
        assert_eq!(
            c.rsa_cert_file,
            Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem")
        );
        assert_eq!(
            c.rsa_private_key_file,
            Path::new("/etc/ssl/private/ssl-cert-snakeoil.key")
        );
        assert!(c.force_local_logins_ssl && c.force_local_data_ssl && c.require_ssl_reuse);
        assert!(c.ssl_tlsv1_2 && c.ssl_tlsv1_3);
    }

    #[test]
    fn counts_reject_negative_and_too_large_values() {
        for text in [
            "max_clients = -1",
            "max_per_ip = 4294967296",
            "max_login_fails = 1.5",
        ] {
            let error = one_error(text);
            assert!(error.message.contains("a count"), "{text}: {error}");
        }
        let error = one_error("ban_failed_logins = \"5\"");
        assert!(
            error.message.contains("write `5` without quotes"),
            "{error}"
        );
        let config = Config::parse("max_clients = 4294967295\nmax_per_ip = 0\n", "<input>");
        assert_eq!(config.unwrap().max_clients, u32::MAX);
    }

    #[test]
    fn an_enabled_user_list_with_a_missing_file_is_rejected_naming_the_path() {
        let missing = missing_path("user-list");
        let text = format!(
            "userlist_enable = true\n{}",
            path_line("userlist_file", &missing)
        );
        let error = one_error(&text);
        assert_eq!(error.key.as_deref(), Some("userlist_file"));
        assert_eq!(error.line, Some(2));
        let shown = missing.display().to_string();
        assert!(error.message.contains(&shown), "{error}");
        assert!(error.message.contains("No such file"), "{error}");
        assert!(error.message.contains("`userlist_enable`"), "{error}");

        // Only the switch in the file: the error is located there.
        let config = Config {
            userlist_file: missing.clone(),
            ..Config::default()
        };
        assert!(config.validate().is_ok(), "not enabled: not checked");
        let error = one_error("\nuserlist_enable = true\n");
        assert_eq!(error.key.as_deref(), Some("userlist_file"));
        assert_eq!(error.line, Some(2));
        assert!(error.message.contains("/etc/rftpd.user_list"), "{error}");

        let list = TempFile::new("alice\n");
        let text = format!(
            "userlist_enable = true\nuserlist_deny = false\n{}",
            path_line("userlist_file", &list.0)
        );
        let config = Config::parse(&text, "<input>").unwrap();
        assert!(config.userlist_enable && !config.userlist_deny);
        let error = one_error("userlist_enable = true\nuserlist_file = \"/\"\n");
        assert!(error.message.contains("directory"), "{error}");
        let error = one_error("userlist_enable = true\nuserlist_file = \"users\"\n");
        assert!(error.message.contains("absolute"), "{error}");
    }

    #[test]
    fn load_user_list_trims_and_skips_blank_and_comment_lines() {
        let list = TempFile::new("# deny these\n\n  alice  \nbob\n#carol\n\tdave\n");
        let config = Config {
            userlist_file: list.0.clone(),
            ..Config::default()
        };
        assert_eq!(config.load_user_list().unwrap(), ["alice", "bob", "dave"]);
        let config = Config {
            userlist_file: missing_path("user-list-load"),
            ..Config::default()
        };
        assert!(config.load_user_list().is_err());
    }

    #[test]
    fn is_anonymous_name_matches_ftp_and_anonymous_in_any_ascii_case() {
        let config = Config::default();
        for name in ["ftp", "FTP", "Ftp", "anonymous", "ANONYMOUS", "AnonYmous"] {
            assert!(config.is_anonymous_name(name), "{name}");
        }
        for name in [
            "",
            "ftp ",
            " ftp",
            "ftpuser",
            "anon",
            "anonymous1",
            "ſtp",
            "root",
        ] {
            assert!(!config.is_anonymous_name(name), "{name:?}");
        }
        // ftp_username is the identity anonymous sessions run as, not a login name.
        let config = Config {
            ftp_username: "anonftp".to_owned(),
            ..Config::default()
        };
        assert!(!config.is_anonymous_name("anonftp"));
        assert!(config.is_anonymous_name("ftp"));
    }

    #[test]
    fn banning_needs_a_window_and_a_time() {
        for key in ["ban_window", "ban_time"] {
            let error = one_error(&format!("{key} = 0\n"));
            assert_eq!(error.key.as_deref(), Some(key));
            assert_eq!(error.line, Some(1));
            assert!(error.message.contains("`ban_failed_logins`"), "{error}");
            let text = format!("ban_failed_logins = 0\n{key} = 0\n");
            assert!(Config::parse(&text, "<input>").is_ok(), "{text}");
        }
        // A bad ban_failed_logins hides the consequences.
        let error = one_error("ban_failed_logins = -1\nban_window = 0\n");
        assert_eq!(error.key.as_deref(), Some("ban_failed_logins"));
    }

    #[test]
    fn login_timeout_must_be_at_least_one_second() {
        let error = one_error("login_timeout = 0\n");
        assert_eq!(error.key.as_deref(), Some("login_timeout"));
        assert_eq!(error.message, "must be at least 1");
        let config = Config::parse("login_timeout = 1\n", "<input>").unwrap();
        assert_eq!(config.login_timeout, 1);
        for text in [
            "data_connection_timeout = 0",
            "accept_timeout = 0",
            "connect_timeout = 0",
            "delay_failed_login = 0",
        ] {
            assert!(Config::parse(text, "<input>").is_ok(), "{text}");
        }
    }

    #[test]
    fn seconds_beyond_i64_are_rejected_by_validate() {
        let config = Config {
            delay_failed_login: u64::MAX,
            data_connection_timeout: u64::MAX,
            login_timeout: u64::MAX,
            ..Config::default()
        };
        let errors = config.validate().unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_deref().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "delay_failed_login",
                "data_connection_timeout",
                "login_timeout"
            ]
        );
    }

    #[test]
    fn anonymous_settings_are_checked() {
        let error = one_error("ftp_username = \"\"\n");
        assert_eq!(error.key.as_deref(), Some("ftp_username"));
        let error = one_error("ftp_username = \"a\\u0000b\"\n");
        assert_eq!(error.key.as_deref(), Some("ftp_username"));
        let error = one_error("anon_root = \"srv/ftp\"\n");
        assert_eq!(error.key.as_deref(), Some("anon_root"));
        assert!(error.message.contains("absolute"), "{error}");
        let error = one_error("anon_umask = 0o1777\n");
        assert_eq!(error.key.as_deref(), Some("anon_umask"));
        let config = Config::parse(
            "anonymous_enable = true\nanon_root = \"/srv/ftp\"\nanon_umask = \"022\"\n",
            "<input>",
        )
        .unwrap();
        assert_eq!(config.anon_root, Some(PathBuf::from("/srv/ftp")));
        assert_eq!(config.anon_umask, Mode(0o022));
        let error = one_error("anon_root = 1\n");
        assert!(error.message.contains("a path"), "{error}");
    }

    #[test]
    fn banner_file_must_be_a_readable_file_of_at_most_64_kib() {
        let missing = missing_path("banner");
        let error = one_error(&path_line("banner_file", &missing));
        assert_eq!(error.key.as_deref(), Some("banner_file"));
        assert_eq!(error.line, Some(1));
        assert!(
            error.message.contains(&missing.display().to_string()),
            "{error}"
        );
        assert!(error.message.contains("No such file"), "{error}");

        let error = one_error("banner_file = \"/\"\n");
        assert!(error.message.contains("directory"), "{error}");
        let error = one_error("banner_file = \"banner.txt\"\n");
        assert!(error.message.contains("absolute"), "{error}");
        let error = one_error("banner_file = \"/dev/null\"\n");
        assert!(error.message.contains("regular file"), "{error}");

        let largest = TempFile::new(&"x".repeat(64 * 1024));
        let config = Config::parse(&path_line("banner_file", &largest.0), "<input>").unwrap();
        assert_eq!(config.banner_file.as_deref(), Some(largest.0.as_path()));
        let too_large = TempFile::new(&"x".repeat(64 * 1024 + 1));
        let error = one_error(&path_line("banner_file", &too_large.0));
        assert!(error.message.contains("65537 bytes"), "{error}");
        assert!(error.message.contains("65536"), "{error}");
    }

    #[test]
    fn hide_and_deny_patterns_need_balanced_braces() {
        for key in ["hide_file", "deny_file"] {
            for pattern in ["{*.mp3,*.mov", "*.mp3}", "}{", "{a}}", "{{a}"] {
                let error = one_error(&format!("{key} = {}\n", toml_string(pattern)));
                assert_eq!(error.key.as_deref(), Some(key), "{pattern}");
                assert!(error.message.contains("unbalanced"), "{error}");
            }
            for pattern in ["{*.mp3,*.mov,.private}", "*.exe", "", "{a}{b}", "{{a}}"] {
                let text = format!("{key} = {}\n", toml_string(pattern));
                assert!(Config::parse(&text, "<input>").is_ok(), "{text}");
            }
        }
    }

    #[test]
    fn tls_files_are_checked_only_with_ssl_enable() {
        let missing = missing_path("cert");
        let text = format!(
            "{}{}",
            path_line("rsa_cert_file", &missing),
            path_line("rsa_private_key_file", &missing)
        );
        assert!(
            Config::parse(&text, "<input>").is_ok(),
            "ssl off: unchecked"
        );
        assert!(Config::default().validate().is_ok());

        let errors = errors(&format!("ssl_enable = true\n{text}"));
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_deref().unwrap()).collect();
        assert_eq!(
            keys,
            ["rsa_cert_file", "rsa_private_key_file"],
            "{errors:#?}"
        );
        assert_eq!((errors[0].line, errors[1].line), (Some(2), Some(3)));
        for error in &errors {
            assert!(
                error.message.contains(&missing.display().to_string()),
                "{error}"
            );
            assert!(error.message.contains("`ssl_enable`"), "{error}");
        }

        // The default (snakeoil) paths are named, located at ssl_enable, when they are absent.
        let config = Config {
            ssl_enable: true,
            rsa_cert_file: missing.clone(),
            rsa_private_key_file: PathBuf::new(),
            ..Config::default()
        };
        let errors = config.validate().unwrap_err();
        assert_eq!(
            errors.len(),
            1,
            "an empty key path is not checked: {errors:#?}"
        );

        let pem = TempFile::new("-----BEGIN CERTIFICATE-----\n");
        let text = format!(
            "ssl_enable = true\n{}rsa_private_key_file = \"\"\n",
            path_line("rsa_cert_file", &pem.0)
        );
        let config = Config::parse(&text, "<input>").unwrap();
        assert_eq!(config.rsa_private_key_file, PathBuf::new());
        assert_eq!(
            Config::parse(&config.to_toml_string(), "<input>"),
            Ok(config)
        );
        let error = one_error("ssl_enable = true\nrsa_cert_file = \"cert.pem\"\n");
        assert!(error.message.contains("absolute"), "{error}");
    }

    #[test]
    fn ssl_needs_at_least_one_tls_version() {
        let pem = TempFile::new("pem\n");
        let files = format!(
            "{}{}",
            path_line("rsa_cert_file", &pem.0),
            path_line("rsa_private_key_file", &pem.0)
        );
        let text = format!("ssl_enable = true\n{files}ssl_tlsv1_2 = false\nssl_tlsv1_3 = false\n");
        let error = one_error(&text);
        assert_eq!(error.key.as_deref(), Some("ssl_tlsv1_2"));
        assert_eq!(error.line, Some(4));
        for versions in ["ssl_tlsv1_2 = false\n", "ssl_tlsv1_3 = false\n"] {
            let text = format!("ssl_enable = true\n{files}{versions}");
            assert!(Config::parse(&text, "<input>").is_ok(), "{text}");
        }
        let text = "ssl_tlsv1_2 = false\nssl_tlsv1_3 = false\n";
        assert!(Config::parse(text, "<input>").is_ok(), "ssl off: unchecked");
    }

    #[test]
    fn implicit_ssl_is_rejected() {
        let error = one_error("implicit_ssl = true\n");
        assert_eq!(error.key.as_deref(), Some("implicit_ssl"));
        assert_eq!(error.line, Some(1));
        assert_eq!(
            error.message,
            "implicit_ssl is not supported: the FTP engine (libunftp) only does explicit TLS \
             (AUTH TLS); use ssl_enable with port 21"
        );
        assert!(Config::parse("implicit_ssl = false\n", "<input>").is_ok());
    }

    #[test]
    fn only_a_promiscuous_active_mode_is_warned_about() {
        assert_eq!(Config::default().warnings(), Vec::<String>::new());
        let list = TempFile::new("alice\n");
        // Every other setting, TLS, anonymous and active-mode ones included, warns about nothing.
        let quiet = Config {
            port_promiscuous: false,
            ..every_field_changed(&list.0)
        };
        assert_eq!(quiet.warnings(), Vec::<String>::new());
        let config = Config {
            port_enable: true,
            port_promiscuous: true,
            ..Config::default()
        };
        assert_eq!(
            config.warnings(),
            [
                "active mode is on with port_promiscuous = true: clients may make rftpd connect \
              to any address and port (FTP bounce)."
            ]
        );
        let config = Config {
            port_enable: false,
            port_promiscuous: true,
            ..Config::default()
        };
        assert!(config.warnings().is_empty(), "no active mode, no bounce");
    }

    #[test]
    fn suggestions_use_edit_distance_and_prefixes() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
        assert_eq!(suggest("chroot_local_usr"), Some("chroot_local_user"));
        assert_eq!(suggest("Write-Enable"), Some("write_enable"));
        assert_eq!(suggest("umask"), Some("local_umask"));
        assert_eq!(suggest("anon_umsk"), Some("anon_umask"));
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
    fn the_readme_configuration_reference_lists_every_key() {
        let text = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
        for field in FIELDS {
            let row = format!("| `{}` |", field.name);
            assert!(
                text.contains(&row),
                "README.md has no row for {}",
                field.name
            );
        }
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
