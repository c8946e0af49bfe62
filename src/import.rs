//! `rftpd import-vsftpd [FILE]`: translate a vsftpd.conf into an equivalent rftpd.toml.
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
//!   `pam_service_name`), each with a comment saying why;
//! - learns which keys rftpd supports from [`crate::config`] at run time (the fields of
//!   [`Config`]), never from a list of its own, and checks the whole output with
//!   [`Config::parse`] before printing: a value rftpd rejects becomes a comment with rftpd's
//!   reason, so the printed TOML always parses on this host;
//! - warns on stderr about lines vsftpd itself would refuse (unknown names, bad values) and
//!   about values rftpd rejects; exits 0 unless the file cannot be read (exit 1, naming it).
//!
//! What it never does:
//! - write, rename or remove any file (not even `/etc/rftpd.toml`: redirect stdout yourself),
//!   start, stop or signal any service, or touch the network;
//! - read anything but FILE (the configuration checks of [`Config::parse`] may look at the
//!   list and certificate files the configuration names, as `--check-config` does);
//! - invent a value: each key printed comes from FILE or from vsftpd's documented default;
//! - contain `unsafe` code.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Deserialize;

use crate::config::Config;

/// The file read when no FILE is given.
pub const DEFAULT_VSFTPD_CONF: &str = "/etc/vsftpd.conf";

const USAGE: &str = "\
Usage: rftpd import-vsftpd [FILE]

Reads a vsftpd configuration (default /etc/vsftpd.conf) and prints the equivalent
rftpd.toml on stdout; warnings go to stderr. Typical use:
    rftpd import-vsftpd > /tmp/rftpd.toml
    rftpd --check-config --config /tmp/rftpd.toml && cp /tmp/rftpd.toml /etc/rftpd.toml";

/// Entry point of the subcommand; `args` are the words after `import-vsftpd`.
pub fn main(args: &[String]) -> ExitCode {
    let file = match args {
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
    let result = import(&String::from_utf8_lossy(&bytes), file);
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
    /// [`Config::parse`] (on the host where it was made).
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
        let toml = match &s.toml {
            Some(toml) => toml.clone(),
            // `NAME=` unsets a string setting in vsftpd: rftpd's default when it is unset too.
            None if !rftpd_defaults.contains_key(name) => {
                out.comment(format!("line {}: {name}= (unset), as in rftpd", s.line));
                continue;
            }
            None => toml_string(""),
        };
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
        let special = matches!(name, "listen" | "listen_ipv6" | "pam_service_name");
        if effective(name).is_some() || special || !keys.contains(name) {
            continue;
        }
        if listen.ignores(name).is_some() {
            continue;
        }
        let toml = match option.kind.toml(option.default) {
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

/// Why an unsupported option is not carried over, when nothing more specific is known.
const NOT_IN_RFTPD: &str = "rftpd has no such setting";

/// The value types of vsftpd's settings (its `parseconf.c` tables).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Uint,
    Str,
}

impl Kind {
    /// The TOML for a vsftpd value of this kind: `Ok(None)` = unset (an empty string setting).
    fn toml(self, value: Option<&str>) -> Result<Option<String>, String> {
        let value = value.unwrap_or("");
        match self {
            Kind::Str if value.is_empty() => Ok(None),
            Kind::Str => Ok(Some(toml_string(value))),
            _ if value.is_empty() => Err("missing value (vsftpd refuses to start)".into()),
            Kind::Bool => match value.to_ascii_uppercase().as_str() {
                "YES" | "TRUE" | "1" => Ok(Some("true".into())),
                "NO" | "FALSE" | "0" => Ok(Some("false".into())),
                _ => Err(format!(
                    "`{value}` is not YES or NO (vsftpd refuses to start: bad bool value)"
                )),
            },
            Kind::Uint => uint_toml(value).map(Some),
        }
    }
}

/// vsftpd reads a number that starts with `0` as octal, any other as decimal.
fn uint_toml(value: &str) -> Result<String, String> {
    let octal = value.starts_with('0');
    let radix = if octal { 8 } else { 10 };
    match u32::from_str_radix(value, radix) {
        Ok(n) if octal => Ok(format!("0o{n:03o}")),
        Ok(n) => Ok(n.to_string()),
        Err(_) if octal => Err(format!("`{value}` is not an octal number")),
        Err(_) => Err(format!("`{value}` is not a number")),
    }
}

/// One of vsftpd 3.0.3's settings.
struct VsftpdOption {
    name: &'static str,
    kind: Kind,
    /// The default of Debian 12's vsftpd build (`None` = unset).
    default: Option<&'static str>,
    /// Why rftpd does not carry it over, when rftpd has no key of this name.
    why: Option<&'static str>,
}

const fn opt(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    why: Option<&'static str>,
) -> VsftpdOption {
    VsftpdOption {
        name,
        kind,
        default,
        why,
    }
}

const LOGS: Option<&str> = Some(
    "rftpd logs to standard error, which systemd keeps in the journal \
     (journalctl -u rftpd); it writes no log files",
);
const NO_ANON_EMAIL: Option<&str> = Some("rftpd does not check anonymous passwords");
const NO_CLIENT_CERTS: Option<&str> = Some("rftpd does not ask clients for certificates");
const OWN_ISOLATION: Option<&str> = Some(
    "rftpd isolates each session in its own processes, jailed and without privileges \
     (rftpd(8)); there is nothing to choose",
);
const NO_VIRTUAL_USERS: Option<&str> =
    Some("rftpd serves the host's own accounts only (no guest or virtual users)");
const PERFORMANCE: Option<&str> = Some("a vsftpd performance setting that rftpd does not need");

use Kind::{Bool, Str, Uint};

/// Every setting vsftpd 3.0.3 reads, with Debian 12's defaults (upstream's `tunables.c`,
/// except `listen`, which Debian's build turns off, `pam_service_name` and
/// `secure_chroot_dir`; `pasv_min_port` is upstream's "any port" written as 0).
const VSFTPD_OPTIONS: &[VsftpdOption] = &[
    // Booleans.
    opt("anonymous_enable", Bool, Some("YES"), None),
    opt("local_enable", Bool, Some("NO"), None),
    opt("pasv_enable", Bool, Some("YES"), None),
    opt("port_enable", Bool, Some("YES"), None),
    opt("chroot_local_user", Bool, Some("NO"), None),
    opt("write_enable", Bool, Some("NO"), None),
    opt("anon_upload_enable", Bool, Some("NO"), None),
    opt("anon_mkdir_write_enable", Bool, Some("NO"), None),
    opt("anon_other_write_enable", Bool, Some("NO"), None),
    opt(
        "chown_uploads",
        Bool,
        Some("NO"),
        Some("rftpd does not give uploads away to another owner"),
    ),
    opt("connect_from_port_20", Bool, Some("NO"), None),
    opt("xferlog_enable", Bool, Some("NO"), LOGS),
    opt(
        "dirmessage_enable",
        Bool,
        Some("NO"),
        Some("rftpd shows no .message files"),
    ),
    opt("anon_world_readable_only", Bool, Some("YES"), None),
    opt(
        "async_abor_enable",
        Bool,
        Some("NO"),
        Some("rftpd always handles ABOR"),
    ),
    opt(
        "ascii_upload_enable",
        Bool,
        Some("NO"),
        Some("rftpd transfers files unchanged (binary) only"),
    ),
    opt(
        "ascii_download_enable",
        Bool,
        Some("NO"),
        Some("rftpd transfers files unchanged (binary) only"),
    ),
    opt("one_process_model", Bool, Some("NO"), OWN_ISOLATION),
    opt("xferlog_std_format", Bool, Some("NO"), LOGS),
    opt("pasv_promiscuous", Bool, Some("NO"), None),
    opt("deny_email_enable", Bool, Some("NO"), NO_ANON_EMAIL),
    opt("chroot_list_enable", Bool, Some("NO"), None),
    opt(
        "setproctitle_enable",
        Bool,
        Some("NO"),
        Some("rftpd does not rename its processes"),
    ),
    opt("text_userdb_names", Bool, Some("NO"), None),
    opt("ls_recurse_enable", Bool, Some("NO"), None),
    opt("log_ftp_protocol", Bool, Some("NO"), LOGS),
    opt("guest_enable", Bool, Some("NO"), NO_VIRTUAL_USERS),
    opt("userlist_enable", Bool, Some("NO"), None),
    opt("userlist_deny", Bool, Some("YES"), None),
    opt(
        "use_localtime",
        Bool,
        Some("NO"),
        Some("rftpd lists times in UTC (nothing, not even the time zone, is read inside the jail)"),
    ),
    opt(
        "check_shell",
        Bool,
        Some("YES"),
        Some("with PAM the shell check is PAM's: pam_shells in /etc/pam.d/rftpd"),
    ),
    opt("hide_ids", Bool, Some("NO"), None),
    opt("listen", Bool, Some("NO"), None),
    opt("port_promiscuous", Bool, Some("NO"), None),
    opt("passwd_chroot_enable", Bool, Some("NO"), None),
    opt("no_anon_password", Bool, Some("NO"), None),
    opt(
        "tcp_wrappers",
        Bool,
        Some("NO"),
        Some("rftpd does not read /etc/hosts.allow or /etc/hosts.deny; use a firewall"),
    ),
    opt("use_sendfile", Bool, Some("YES"), PERFORMANCE),
    opt("force_dot_files", Bool, Some("NO"), None),
    opt("listen_ipv6", Bool, Some("NO"), None),
    opt("dual_log_enable", Bool, Some("NO"), LOGS),
    opt("syslog_enable", Bool, Some("NO"), LOGS),
    opt(
        "background",
        Bool,
        Some("NO"),
        Some("rftpd always runs in the foreground; systemd (rftpd.service) runs it as a daemon"),
    ),
    opt(
        "virtual_use_local_privs",
        Bool,
        Some("NO"),
        NO_VIRTUAL_USERS,
    ),
    opt("session_support", Bool, Some("NO"), None),
    opt("download_enable", Bool, Some("YES"), None),
    opt("dirlist_enable", Bool, Some("YES"), None),
    opt("chmod_enable", Bool, Some("YES"), None),
    opt("secure_email_list_enable", Bool, Some("NO"), NO_ANON_EMAIL),
    opt(
        "run_as_launching_user",
        Bool,
        Some("NO"),
        Some("rftpd always starts as root"),
    ),
    opt("no_log_lock", Bool, Some("NO"), LOGS),
    opt("ssl_enable", Bool, Some("NO"), None),
    opt("allow_anon_ssl", Bool, Some("NO"), None),
    opt("force_local_logins_ssl", Bool, Some("YES"), None),
    opt("force_local_data_ssl", Bool, Some("YES"), None),
    opt(
        "ssl_sslv2",
        Bool,
        Some("NO"),
        Some("rftpd never offers SSLv2"),
    ),
    opt(
        "ssl_sslv3",
        Bool,
        Some("NO"),
        Some("rftpd never offers SSLv3"),
    ),
    opt(
        "ssl_tlsv1",
        Bool,
        Some("YES"),
        Some("rftpd offers TLS 1.2 and 1.3 only (ssl_tlsv1_2, ssl_tlsv1_3)"),
    ),
    opt(
        "tilde_user_enable",
        Bool,
        Some("NO"),
        Some("rftpd does not expand ~user paths"),
    ),
    opt("force_anon_logins_ssl", Bool, Some("NO"), None),
    opt("force_anon_data_ssl", Bool, Some("NO"), None),
    opt("mdtm_write", Bool, Some("YES"), None),
    opt("lock_upload_files", Bool, Some("YES"), None),
    opt(
        "pasv_addr_resolve",
        Bool,
        Some("NO"),
        Some("pasv_address must be a numeric IPv4 address for rftpd"),
    ),
    opt("debug_ssl", Bool, Some("NO"), LOGS),
    opt("require_cert", Bool, Some("NO"), NO_CLIENT_CERTS),
    opt("validate_cert", Bool, Some("NO"), NO_CLIENT_CERTS),
    opt("strict_ssl_read_eof", Bool, Some("YES"), None),
    opt("strict_ssl_write_shutdown", Bool, Some("NO"), None),
    opt("ssl_request_cert", Bool, Some("YES"), NO_CLIENT_CERTS),
    opt("delete_failed_uploads", Bool, Some("NO"), None),
    opt("implicit_ssl", Bool, Some("NO"), None),
    opt("ptrace_sandbox", Bool, Some("NO"), OWN_ISOLATION),
    opt("require_ssl_reuse", Bool, Some("YES"), None),
    opt("isolate", Bool, Some("YES"), OWN_ISOLATION),
    opt("isolate_network", Bool, Some("YES"), OWN_ISOLATION),
    opt(
        "ftp_enable",
        Bool,
        Some("YES"),
        Some("rftpd always speaks FTP"),
    ),
    opt(
        "http_enable",
        Bool,
        Some("NO"),
        Some("rftpd does not speak HTTP"),
    ),
    opt("seccomp_sandbox", Bool, Some("NO"), OWN_ISOLATION),
    opt("allow_writeable_chroot", Bool, Some("NO"), None),
    opt("utf8_filesystem", Bool, Some("NO"), None),
    // Numbers.
    opt("accept_timeout", Uint, Some("60"), None),
    opt("connect_timeout", Uint, Some("60"), None),
    opt("local_umask", Uint, Some("077"), None),
    opt("anon_umask", Uint, Some("077"), None),
    opt("ftp_data_port", Uint, Some("20"), None),
    opt("idle_session_timeout", Uint, Some("300"), None),
    opt("data_connection_timeout", Uint, Some("300"), None),
    opt("pasv_min_port", Uint, Some("0"), None),
    opt("pasv_max_port", Uint, Some("0"), None),
    opt("anon_max_rate", Uint, Some("0"), None),
    opt("local_max_rate", Uint, Some("0"), None),
    opt("listen_port", Uint, Some("21"), None),
    opt("max_clients", Uint, Some("2000"), None),
    opt("file_open_mode", Uint, Some("0666"), None),
    opt("max_per_ip", Uint, Some("50"), None),
    opt("trans_chunk_size", Uint, Some("0"), PERFORMANCE),
    opt("delay_failed_login", Uint, Some("1"), None),
    opt("delay_successful_login", Uint, Some("0"), None),
    opt("max_login_fails", Uint, Some("3"), None),
    opt(
        "chown_upload_mode",
        Uint,
        Some("0600"),
        Some("rftpd does not give uploads away to another owner"),
    ),
    // Strings.
    opt(
        "secure_chroot_dir",
        Str,
        Some("/var/run/vsftpd/empty"),
        Some("rftpd needs no empty directory for helper processes"),
    ),
    opt("ftp_username", Str, Some("ftp"), None),
    opt(
        "chown_username",
        Str,
        Some("root"),
        Some("rftpd does not give uploads away to another owner"),
    ),
    opt("xferlog_file", Str, Some("/var/log/xferlog"), LOGS),
    opt("vsftpd_log_file", Str, Some("/var/log/vsftpd.log"), LOGS),
    opt(
        "message_file",
        Str,
        Some(".message"),
        Some("rftpd shows no .message files"),
    ),
    opt(
        "nopriv_user",
        Str,
        Some("nobody"),
        Some("rftpd has no unprivileged helper account to name"),
    ),
    opt("ftpd_banner", Str, None, None),
    opt(
        "banned_email_file",
        Str,
        Some("/etc/vsftpd.banned_emails"),
        NO_ANON_EMAIL,
    ),
    opt(
        "chroot_list_file",
        Str,
        Some("/etc/vsftpd.chroot_list"),
        None,
    ),
    opt("pam_service_name", Str, Some("vsftpd"), None),
    opt("guest_username", Str, Some("ftp"), NO_VIRTUAL_USERS),
    opt("userlist_file", Str, Some("/etc/vsftpd.user_list"), None),
    opt("anon_root", Str, None, None),
    opt("local_root", Str, None, None),
    opt("banner_file", Str, None, None),
    opt("pasv_address", Str, None, None),
    opt("listen_address", Str, None, None),
    opt(
        "user_config_dir",
        Str,
        None,
        Some("rftpd has no per-user configuration files"),
    ),
    opt("listen_address6", Str, None, None),
    opt(
        "cmds_allowed",
        Str,
        None,
        Some("rftpd has no per-command allow or deny lists"),
    ),
    opt("hide_file", Str, None, None),
    opt("deny_file", Str, None, None),
    opt("user_sub_token", Str, None, None),
    opt(
        "email_password_file",
        Str,
        Some("/etc/vsftpd.email_passwords"),
        NO_ANON_EMAIL,
    ),
    opt(
        "rsa_cert_file",
        Str,
        Some("/usr/share/ssl/certs/vsftpd.pem"),
        None,
    ),
    opt(
        "dsa_cert_file",
        Str,
        None,
        Some("rftpd uses rsa_cert_file only"),
    ),
    opt(
        "ssl_ciphers",
        Str,
        Some("ECDHE-RSA-AES256-GCM-SHA384"),
        Some("rftpd uses the TLS library's (rustls) cipher suites"),
    ),
    opt("rsa_private_key_file", Str, None, None),
    opt(
        "dsa_private_key_file",
        Str,
        None,
        Some("rftpd uses rsa_cert_file only"),
    ),
    opt("ca_certs_file", Str, None, NO_CLIENT_CERTS),
    opt(
        "cmds_denied",
        Str,
        None,
        Some("rftpd has no per-command allow or deny lists"),
    ),
    opt("chdir_after_login", Str, None, None),
];

fn vsftpd_option(name: &str) -> Option<&'static VsftpdOption> {
    VSFTPD_OPTIONS.iter().find(|o| o.name == name)
}

/// A valid `NAME=VALUE` line of the vsftpd file.
struct Setting<'a> {
    line: usize,
    option: &'static VsftpdOption,
    /// The value as written.
    raw: &'a str,
    /// Its TOML; `None` = unset (an empty string setting).
    toml: Option<String>,
}

/// Reads the file like vsftpd's `parseconf.c`; invalid lines become comments and warnings.
fn read_vsftpd<'a>(text: &'a str, origin: &str, out: &mut Translation) -> Vec<Setting<'a>> {
    let mut settings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        // vsftpd skips empty, all-space and '#' lines, then leading spaces of a setting.
        let trimmed = line.trim_start();
        if trimmed.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, raw) = trimmed.split_once('=').unwrap_or((trimmed, ""));
        let problem = match vsftpd_option(name) {
            None if trimmed.starts_with('#') => continue,
            None => Err(format!(
                "`{name}` is not a vsftpd setting (vsftpd refuses to start: unrecognised variable)"
            )),
            Some(option) => option.kind.toml(Some(raw)).map(|toml| (option, toml)),
        };
        match problem {
            Ok((option, toml)) => settings.push(Setting {
                line: number,
                option,
                raw,
                toml,
            }),
            Err(why) => {
                out.warn(format!("{origin}:{number}: {why}; left out"));
                out.comment(format!("line {number}: `{trimmed}` left out: {why}"));
            }
        }
    }
    settings
}

/// The effective `listen`, `listen_ipv6` and `listen_address6` of the vsftpd file (a line
/// vsftpd would refuse counts as absent: vsftpd's default).
struct Listen {
    v4: bool,
    v6: bool,
    /// `listen_address6` is set to something other than `::`.
    v6_address: bool,
}

impl Listen {
    fn new<'a>(effective: &dyn Fn(&str) -> Option<&'a Setting<'a>>) -> Listen {
        let flag = |name: &str| effective(name).is_some_and(|s| s.toml.as_deref() == Some("true"));
        let v6_address = effective("listen_address6").is_some_and(|s| {
            !s.raw.is_empty() && s.raw.parse() != Ok(std::net::Ipv6Addr::UNSPECIFIED)
        });
        Listen {
            v4: flag("listen"),
            v6: flag("listen_ipv6"),
            v6_address,
        }
    }

    fn applies(&self, keys: &HashSet<&str>) -> bool {
        keys.contains("listen") && keys.contains("listen_ipv6")
    }

    /// vsftpd ignores an address for a listener it does not run.
    fn ignores(&self, name: &str) -> Option<&'static str> {
        match name {
            "listen_address" if !self.v4 => Some("listen=NO"),
            "listen_address6" if !self.v6 => Some("listen_ipv6=NO"),
            _ => None,
        }
    }

    fn emit(&self, out: &mut Translation, origin: &str) {
        let (v4, v6, note) = match (self.v4, self.v6) {
            (true, false) => (true, false, None),
            (false, true) if !self.v6_address => (
                true,
                true,
                Some(
                    "listen=NO with listen_ipv6=YES (Debian's setting): vsftpd listened on one \
                     IPv6 socket on :: that also accepted IPv4 clients. rftpd serves both from one \
                     process with an IPv4 and an IPv6 socket: listen = true, listen_ipv6 = true."
                        .to_owned(),
                ),
            ),
            (false, true) => (
                false,
                true,
                Some(
                    "listen_ipv6=YES with an IPv6 listen_address6: vsftpd served IPv6 only, \
                     and so does rftpd."
                        .to_owned(),
                ),
            ),
            (true, true) => {
                out.warn(format!(
                    "{origin}: listen=YES and listen_ipv6=YES together make vsftpd refuse to \
                     start; rftpd serves both"
                ));
                (
                    true,
                    true,
                    Some(
                        "listen=YES with listen_ipv6=YES: vsftpd refuses to start with both \
                         (it asks for two copies); rftpd serves IPv4 and IPv6 from one process."
                            .to_owned(),
                    ),
                )
            }
            (false, false) => {
                out.warn(format!(
                    "{origin}: neither listen nor listen_ipv6 is YES, so vsftpd was started by \
                     inetd; rftpd runs as a daemon (rftpd.service) or socket-activated \
                     (rftpd.socket): listen = true"
                ));
                (
                    true,
                    false,
                    Some(
                        "listen=NO with listen_ipv6=NO: vsftpd ran from inetd or xinetd. rftpd \
                         runs as a daemon (systemctl enable --now rftpd) or from systemd's \
                         rftpd.socket; it has no inetd mode. Listening on IPv4 here."
                            .to_owned(),
                    ),
                )
            }
        };
        if let Some(note) = note {
            out.comment(note);
        }
        out.setting("listen", v4.to_string(), "listen".into(), 0);
        out.setting("listen_ipv6", v6.to_string(), "listen_ipv6".into(), 0);
    }
}

/// `pam_service_name`: vsftpd's own service file becomes rftpd's.
fn pam_service(out: &mut Translation, setting: Option<&Setting<'_>>) {
    let name = setting.map_or("vsftpd", |s| s.raw);
    if name.is_empty() {
        // vsftpd itself would fail at PAM start; keep rftpd's default.
        out.comment(
            "pam_service_name is empty in vsftpd.conf; rftpd uses its own service, rftpd"
                .to_owned(),
        );
        return;
    }
    let Some(setting) = setting else {
        out.comment(format!(
            "vsftpd used the PAM service `{name}` (/etc/pam.d/{name}); rftpd uses /etc/pam.d/rftpd, \
             which has the rules of Debian's /etc/pam.d/vsftpd (the /etc/ftpusers deny list and \
             pam_shells). If you changed /etc/pam.d/{name}, make the same change in /etc/pam.d/rftpd."
        ));
        return;
    };
    let source = format!("pam_service_name={name}");
    if name == "vsftpd" || name == "ftp" {
        out.comment(format!(
            "pam_service_name={name}: rftpd ships its own PAM service, /etc/pam.d/rftpd, with the \
             rules of Debian's /etc/pam.d/vsftpd (the /etc/ftpusers deny list and pam_shells). \
             If you changed /etc/pam.d/{name}, make the same change in /etc/pam.d/rftpd."
        ));
        out.setting(
            "pam_service_name",
            toml_string("rftpd"),
            source,
            setting.line,
        );
    } else {
        out.comment(format!(
            "pam_service_name={name}: rftpd keeps using /etc/pam.d/{name}; check that it suits \
             rftpd (compare /etc/pam.d/rftpd)."
        ));
        out.setting("pam_service_name", toml_string(name), source, setting.line);
    }
}

/// The output being built: comments and `key = value` lines in order.
#[derive(Default)]
struct Translation {
    items: Vec<Item>,
    warnings: Vec<String>,
}

enum Item {
    Comment(String),
    Section(String),
    Setting {
        key: String,
        toml: String,
        /// `NAME=VALUE` as vsftpd had it, for the comment if rftpd rejects the value.
        source: String,
        /// The line of the vsftpd file (0 = not from a line).
        line: usize,
    },
}

impl Translation {
    fn comment(&mut self, text: String) {
        self.items.push(Item::Comment(text));
    }

    fn section(&mut self, text: String) {
        self.items.push(Item::Section(text));
    }

    fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }

    fn setting(&mut self, key: &str, toml: String, source: String, line: usize) {
        self.items.push(Item::Setting {
            key: key.to_owned(),
            toml,
            source,
            line,
        });
    }

    fn unsupported(&mut self, s: &Setting<'_>, why: &str) {
        self.comment(format!(
            "vsftpd option {}={} not carried over: {why}",
            s.option.name, s.raw
        ));
    }

    /// The TOML text of the current items, and for each output line the item it came from.
    fn render(&self, origin: &str) -> (String, Vec<Option<usize>>) {
        let mut text = String::new();
        let mut owners = Vec::new();
        let mut push = |text: &mut String, line: &str, owner: Option<usize>| {
            text.push_str(line);
            text.push('\n');
            owners.push(owner);
        };
        for line in header(origin).lines() {
            push(&mut text, line, None);
        }
        let mut section_pending = None;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Section(title) => section_pending = Some(title),
                Item::Comment(c) => {
                    if let Some(title) = section_pending.take() {
                        push(&mut text, "", None);
                        push(
                            &mut text,
                            &format!("# --- {} ---", comment_text(title)),
                            None,
                        );
                    }
                    for line in wrap(&comment_text(c), 92) {
                        push(&mut text, &format!("# {line}"), None);
                    }
                }
                Item::Setting { key, toml, .. } => {
                    if let Some(title) = section_pending.take() {
                        push(&mut text, "", None);
                        push(
                            &mut text,
                            &format!("# --- {} ---", comment_text(title)),
                            None,
                        );
                    }
                    push(&mut text, &format!("{key} = {toml}"), Some(i));
                }
            }
        }
        (text, owners)
    }

    /// Check the whole output with rftpd's own parser; settings it rejects become comments.
    fn finish(mut self, origin: &str) -> Imported {
        loop {
            let (text, owners) = self.render(origin);
            let errors = match Config::parse(&text, "<imported>") {
                Ok(config) => {
                    let mut text = text;
                    let warnings = config.warnings();
                    if !warnings.is_empty() {
                        text.push_str("\n# --- rftpd's warnings about this configuration ---\n");
                        for w in warnings {
                            for line in wrap(&comment_text(&w), 92) {
                                let _ = writeln!(text, "# {line}");
                            }
                            self.warnings.push(format!("rftpd warns: {w}"));
                        }
                    }
                    return Imported {
                        toml: text,
                        warnings: self.warnings,
                    };
                }
                Err(errors) => errors.0,
            };
            let mut rejected: Vec<(usize, String)> = Vec::new();
            for e in &errors {
                let by_line = e.line.and_then(|l| owners.get(l - 1).copied().flatten());
                let by_key = || {
                    self.items.iter().position(|item| {
                        matches!(item, Item::Setting { key, .. } if Some(key.as_str()) == e.key.as_deref())
                    })
                };
                if let Some(i) = by_line.or_else(by_key) {
                    let message = match (&e.key, by_line) {
                        (Some(key), Some(j)) if !matches!(&self.items[j], Item::Setting { key: k, .. } if k == key) =>
                        {
                            format!("`{key}`: {}", e.message)
                        }
                        _ => e.message.clone(),
                    };
                    rejected.push((i, message));
                }
            }
            if rejected.is_empty() {
                // Nothing to pin the errors on: carry nothing over rather than print bad TOML.
                for e in &errors {
                    self.warnings
                        .push(format!("rftpd rejects the translation: {e}"));
                }
                rejected = (0..self.items.len())
                    .filter(|&i| matches!(self.items[i], Item::Setting { .. }))
                    .map(|i| (i, "rftpd rejects the translated configuration".to_owned()))
                    .collect();
                if rejected.is_empty() {
                    return Imported {
                        toml: header(origin),
                        warnings: self.warnings,
                    };
                }
            }
            for (i, why) in rejected {
                if let Item::Setting { source, line, .. } = &self.items[i] {
                    let why = format!("rftpd rejects it: {why}");
                    let place = if *line > 0 {
                        format!("{origin}:{line}: ")
                    } else {
                        format!("{origin}: ")
                    };
                    self.warnings
                        .push(format!("{place}{source} not carried over: {why}"));
                    self.items[i] =
                        Item::Comment(format!("vsftpd option {source} not carried over: {why}"));
                }
            }
        }
    }
}

fn header(origin: &str) -> String {
    let origin = comment_text(origin);
    let version = env!("CARGO_PKG_VERSION");
    let paragraphs = [
        format!(
            "rftpd configuration imported from {origin} by `rftpd import-vsftpd` (rftpd {version})."
        ),
        String::new(),
        format!(
            "Each vsftpd setting rftpd supports keeps its name and meaning; each other one is \
             listed as a comment saying why it is not carried over. Settings that {origin} \
             leaves out are written where vsftpd's built-in default differs from rftpd's, so \
             rftpd behaves as vsftpd did. Keys not written here have rftpd's defaults: see \
             rftpd.toml(5)."
        ),
        "Check before use: rftpd --check-config --config THIS_FILE".to_owned(),
    ];
    let mut text = String::new();
    for paragraph in paragraphs {
        for line in wrap(&paragraph, 92) {
            text.push_str(format!("# {line}").trim_end());
            text.push('\n');
        }
    }
    text.push('\n');
    text
}

/// Text safe inside a TOML comment (no control characters but tab).
fn comment_text(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() && c != '\t' {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Word-wrap a comment at `width` columns (a word longer than that keeps its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// An I/O error's text without the trailing " (os error N)".
fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const DEBIAN: &str = include_str!("../tests/data/vsftpd-debian.conf");

    fn parse(imported: &Imported) -> Config {
        Config::parse(&imported.toml, "<imported>")
            .unwrap_or_else(|e| panic!("{e}\n--- output ---\n{}", imported.toml))
    }

    fn run(text: &str) -> (Config, Imported) {
        let imported = import(text, "test.conf");
        (parse(&imported), imported)
    }

    #[test]
    fn the_keys_are_the_fields_of_config() {
        let keys = rftpd_keys();
        for key in [
            "listen",
            "listen_ipv6",
            "chroot_local_user",
            "pam_service_name",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for key in defaults.keys() {
            assert!(keys.contains(&key.as_str()), "{key} missing from {keys:?}");
        }
        for key in keys {
            assert!(
                !Config::parse(&format!("{key} = []"), "<probe>")
                    .unwrap_err()
                    .to_string()
                    .contains("unknown key"),
                "{key} is not a key rftpd knows"
            );
        }
    }

    #[test]
    fn debians_stock_vsftpd_conf_converts_to_what_vsftpd_did() {
        let (config, imported) = run(DEBIAN);
        assert!(
            imported.warnings.iter().all(|w| !w.contains("left out")),
            "{:?}",
            imported.warnings
        );
        // listen=NO + listen_ipv6=YES: one dual-stack socket in vsftpd, two sockets here.
        assert!(config.listen && config.listen_ipv6);
        assert!(
            imported.toml.contains("also accepted IPv4"),
            "{}",
            imported.toml
        );
        assert_eq!(config.pam_service_name, "rftpd");
        assert!(imported.toml.contains("/etc/pam.d/vsftpd"));
        // Debian's file leaves these at vsftpd's defaults, which differ from rftpd's.
        assert!(!config.write_enable);
        assert!(!config.chroot_local_user);
        assert!(!config.allow_writeable_chroot);
        assert_eq!(config.local_umask, crate::config::Mode(0o077));
        assert!(config.local_enable);
        assert!(!config.anonymous_enable);
        // Every setting of the file is accounted for.
        for line in DEBIAN
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
        {
            let (name, value) = line.split_once('=').unwrap();
            let mapped = imported
                .toml
                .lines()
                .any(|l| l.starts_with(&format!("{name} = ")));
            let commented = imported.toml.contains(&format!(
                "# vsftpd option {name}={value} not carried over: "
            ));
            assert!(mapped || commented, "{line} lost:\n{}", imported.toml);
        }
        assert!(imported.toml.contains(
            "# vsftpd option secure_chroot_dir=/var/run/vsftpd/empty not carried over: "
        ));
    }

    #[test]
    fn the_classic_exercise_jails_users_in_writable_homes() {
        let text = "listen=YES\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\n\
                    local_umask=022\nchroot_local_user=YES\nallow_writeable_chroot=YES\n\
                    pam_service_name=vsftpd\n";
        let (config, imported) = run(text);
        assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
        assert!(config.listen && !config.listen_ipv6);
        assert!(config.chroot_local_user && config.allow_writeable_chroot && config.write_enable);
        assert_eq!(config.local_umask, crate::config::Mode(0o022));
    }

    #[test]
    fn unsupported_options_become_comments_in_the_documented_form() {
        let (_, imported) = run("listen=YES\nxferlog_enable=YES\nuse_localtime=YES\n");
        assert!(imported.toml.contains(
            "# vsftpd option xferlog_enable=YES not carried over: rftpd logs to standard error"
        ));
        assert!(imported.toml.contains(
            "# vsftpd option use_localtime=YES not carried over: rftpd lists times in UTC"
        ));
    }

    #[test]
    fn invalid_lines_are_commented_and_warned_about() {
        let text = "listen=YES\n\
                    write_enable=MAYBE\n\
                    no_such_option=1\n\
                    max_clients\n\
                    listen_port=twenty-one\n\
                    local_umask=089\n\
                    just some words\n\
                    \x20\x20# an indented comment\n\
                    ftpd_banner\n";
        let (config, imported) = run(text);
        let warned = |needle: &str| imported.warnings.iter().any(|w| w.contains(needle));
        assert!(
            warned("test.conf:2: `MAYBE` is not YES or NO"),
            "{:?}",
            imported.warnings
        );
        assert!(warned(
            "test.conf:3: `no_such_option` is not a vsftpd setting"
        ));
        assert!(warned("test.conf:4: missing value"));
        assert!(warned("test.conf:5: `twenty-one` is not a number"));
        assert!(warned("test.conf:6: `089` is not an octal number"));
        assert!(warned(
            "test.conf:7: `just some words` is not a vsftpd setting"
        ));
        assert_eq!(imported.warnings.len(), 6, "{:?}", imported.warnings);
        assert!(
            imported
                .toml
                .contains("# line 2: `write_enable=MAYBE` left out: ")
        );
        // Left out = vsftpd's default (write_enable=NO), not rftpd's.
        assert!(!config.write_enable);
        assert_eq!(config.listen_port, 21);
        assert_eq!(config.ftpd_banner, None);
    }

    #[test]
    fn numbers_are_read_like_vsftpd_reads_them() {
        let (config, _) =
            run("listen=YES\nlisten_port=021\nlocal_umask=022\nfile_open_mode=0644\n");
        assert_eq!(
            config.listen_port, 0o21,
            "a leading 0 means octal in vsftpd"
        );
        assert_eq!(config.local_umask, crate::config::Mode(0o022));
        assert_eq!(config.file_open_mode, crate::config::Mode(0o644));
        let (config, _) = run("listen=YES\nlocal_umask=18\n");
        assert_eq!(config.local_umask, crate::config::Mode(18));
    }

    #[test]
    fn booleans_accept_vsftpds_spellings() {
        let (config, _) = run("listen=true\nwrite_enable=yes\nhide_ids=1\ndirlist_enable=False\n");
        assert!(config.listen && config.write_enable && config.hide_ids && !config.dirlist_enable);
    }

    #[test]
    fn the_last_of_repeated_settings_wins() {
        let (config, imported) = run("listen=YES\nwrite_enable=NO\nwrite_enable=YES\n");
        assert!(config.write_enable);
        assert!(
            imported
                .toml
                .contains("write_enable=NO is overridden by line 3")
        );
    }

    #[test]
    fn every_listen_combination_has_a_listener() {
        let cases = [
            ("listen=YES\n", true, false, 0),
            ("listen=NO\nlisten_ipv6=YES\n", true, true, 0),
            (
                "listen_ipv6=YES\nlisten_address6=2001:db8::1\n",
                false,
                true,
                0,
            ),
            ("listen_ipv6=YES\nlisten_address6=::\n", true, true, 0),
            ("listen=YES\nlisten_ipv6=YES\n", true, true, 1),
            ("anonymous_enable=NO\n", true, false, 1),
        ];
        for (text, v4, v6, warnings) in cases {
            let (config, imported) = run(text);
            assert_eq!((config.listen, config.listen_ipv6), (v4, v6), "{text}");
            assert_eq!(
                imported.warnings.len(),
                warnings,
                "{text}: {:?}",
                imported.warnings
            );
        }
        // An address for a listener vsftpd does not run is ignored by vsftpd, so here too.
        let (config, imported) = run("listen=NO\nlisten_ipv6=YES\nlisten_address=192.0.2.1\n");
        assert_eq!(config.listen_address, None);
        assert!(imported.toml.contains(
            "# vsftpd option listen_address=192.0.2.1 not carried over: vsftpd ignores it because listen=NO"
        ));
    }

    #[test]
    fn a_custom_pam_service_is_kept() {
        let (config, imported) = run("listen=YES\npam_service_name=ftp-ldap\n");
        assert_eq!(config.pam_service_name, "ftp-ldap");
        assert!(imported.toml.contains("/etc/pam.d/ftp-ldap"));
        let (config, _) = run("listen=YES\npam_service_name=ftp\n");
        assert_eq!(config.pam_service_name, "rftpd");
    }

    #[test]
    fn values_rftpd_rejects_become_comments_with_its_reason() {
        let (config, imported) = run(
            "listen=YES\npasv_address=ftp.example.com\npasv_addr_resolve=YES\npasv_min_port=40000\n",
        );
        assert_eq!(config.pasv_address, None);
        assert_eq!((config.pasv_min_port, config.pasv_max_port), (0, 0));
        assert!(
            imported.toml.contains(
                "# vsftpd option pasv_address=ftp.example.com not carried over: rftpd rejects it: "
            ),
            "{}",
            imported.toml
        );
        assert!(
            imported.toml.contains(
                "# vsftpd option pasv_min_port=40000 not carried over: rftpd rejects it: "
            ),
            "{}",
            imported.toml
        );
        assert!(
            imported
                .warnings
                .iter()
                .any(|w| w.starts_with("test.conf:2: pasv_address=")),
            "{:?}",
            imported.warnings
        );
    }

    #[test]
    fn strings_survive_quotes_backslashes_and_crlf() {
        let (config, _) = run("listen=YES\r\nftpd_banner=Say \"hi\" \\o/ \t!\r\n");
        assert_eq!(config.ftpd_banner.as_deref(), Some("Say \"hi\" \\o/ \t!"));
    }

    #[test]
    fn an_empty_file_gives_vsftpds_defaults() {
        let (config, imported) = run("");
        // No listener set: vsftpd ran from inetd (warned); rftpd listens on IPv4.
        assert!(config.listen);
        assert!(!config.write_enable && !config.local_enable && config.anonymous_enable);
        assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
    }

    #[test]
    fn control_characters_never_reach_the_toml() {
        let imported = import("listen=YES\nbogus\x01=\x02\n", "a\x1bb.conf");
        parse(&imported);
        assert!(imported.toml.contains("\\u{1}"), "{}", imported.toml);
    }

    #[test]
    fn the_man_page_documents_every_key() {
        let page = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man/rftpd.toml.5"),
        )
        .unwrap();
        let entry = |key: &str| format!(".TP\n.B {key}\n");
        let missing: Vec<_> = rftpd_keys()
            .iter()
            .filter(|key| !page.contains(&entry(key)))
            .collect();
        assert!(
            missing.is_empty(),
            "packaging/man/rftpd.toml.5 has no `.TP` / `.B KEY` entry for {missing:?}"
        );
    }

    #[test]
    fn the_man_page_states_every_default() {
        let page = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man/rftpd.toml.5"),
        )
        .unwrap();
        let lines: Vec<&str> = page.lines().collect();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut wrong = Vec::new();
        for key in rftpd_keys() {
            let entry = format!(".B {key}");
            let Some(start) =
                (1..lines.len()).find(|&i| lines[i - 1] == ".TP" && lines[i] == entry)
            else {
                continue; // the_man_page_documents_every_key reports it
            };
            let stated = lines[start + 1..]
                .iter()
                .take_while(|l| !l.starts_with(".TP") && !l.starts_with(".SH"))
                .find_map(|l| l.strip_prefix("Default: "));
            let Some(stated) = stated else {
                wrong.push(format!("{key}: no `Default: ` line"));
                continue;
            };
            let value = stated
                .strip_prefix("\\fB")
                .and_then(|v| v.split_once("\\fR"))
                .map(|(v, _)| v.replace("\\-", "-"));
            match (defaults.get(*key), value) {
                (None, None) if stated.starts_with("unset") => {}
                (Some(expected), Some(text)) => {
                    let parsed = format!("v = {text}").parse::<toml::Table>().ok();
                    if parsed.as_ref().and_then(|t| t.get("v")) != Some(expected) {
                        wrong.push(format!("{key}: man page says {text}, rftpd has {expected}"));
                    }
                }
                (expected, _) => wrong.push(format!(
                    "{key}: man page says `{stated}`, rftpd has {}",
                    expected.map_or("unset".to_owned(), |v| v.to_string())
                )),
            }
        }
        assert!(
            wrong.is_empty(),
            "packaging/man/rftpd.toml.5:\n{}",
            wrong.join("\n")
        );
    }
}
