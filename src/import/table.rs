//! The table of vsftpd 3.0.3's settings: name, value type, Debian 12's default, and, for
//! the ones rftpd lacks, why they are not carried over.
//!
//! What it does: turns one vsftpd value into TOML the way vsftpd reads it (`YES`/`NO`
//! booleans, numbers starting with `0` are octal, empty strings are "unset").
//!
//! What it must never do: list a default vsftpd does not have (each comes from its
//! `tunables.c` or Debian's build), decide which keys rftpd supports (that comes from
//! [`crate::config::Config`] at run time), do I/O, or contain `unsafe` code.

use super::output::toml_string;

/// Why an unsupported option is not carried over, when nothing more specific is known.
pub(super) const NOT_IN_RFTPD: &str = "rftpd has no such setting";

/// The value types of vsftpd's settings (its `parseconf.c` tables).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Bool,
    Uint,
    Str,
}

/// One vsftpd value read as vsftpd reads it.
#[derive(Debug, PartialEq)]
pub(super) struct Read {
    /// Its TOML; `None` = unset (an empty string setting).
    pub(super) toml: Option<String>,
    /// What vsftpd does with this value when that is not what it looks like (a `#` that
    /// does not start a comment, a decimal umask), for the output's comment and a warning.
    pub(super) note: Option<String>,
}

/// The settings whose numbers are file modes: written as `0o…` in rftpd.toml.
const MODES: &[&str] = &[
    "local_umask",
    "anon_umask",
    "file_open_mode",
    "chown_upload_mode",
];

impl Kind {
    /// The TOML for a vsftpd value of this kind, read like vsftpd's `parseconf.c`: no
    /// comments after a value (a string is the whole rest of the line, a number its leading
    /// digits), booleans exactly YES/NO/TRUE/FALSE/1/0, a number starting with `0` octal.
    pub(super) fn read(self, name: &str, value: Option<&str>) -> Result<Read, String> {
        let value = value.unwrap_or("");
        let plain = |toml: Option<String>| Read { toml, note: None };
        match self {
            Kind::Str if value.is_empty() => Ok(plain(None)),
            Kind::Str => Ok(Read {
                toml: Some(toml_string(value)),
                note: value.contains('#').then(|| {
                    format!(
                        "vsftpd reads {name}={value} as the whole rest of the line, `#` \
                         included: it has no comments after a value"
                    )
                }),
            }),
            _ if value.is_empty() => Err("missing value (vsftpd refuses to start)".into()),
            Kind::Bool => match value.to_ascii_uppercase().as_str() {
                "YES" | "TRUE" | "1" => Ok(plain(Some("true".into()))),
                "NO" | "FALSE" | "0" => Ok(plain(Some("false".into()))),
                _ => {
                    let hash = if value.contains('#') {
                        " (vsftpd has no comments after a value: the `#` is part of it)"
                    } else {
                        ""
                    };
                    Err(format!(
                        "`{value}` is not YES or NO{hash} (vsftpd refuses to start: \
                         500 OOPS: bad bool value in config file for: {name})"
                    ))
                }
            },
            Kind::Uint => uint_read(name, value),
        }
    }
}

/// vsftpd reads a number that starts with `0` as octal, any other as decimal (C `atoi`), in
/// both cases from its leading digits, ignoring whatever follows them.
pub(super) fn uint_read(name: &str, value: &str) -> Result<Read, String> {
    let octal = value.starts_with('0');
    let number = if octal { value } else { value.trim_start() };
    let digits = number
        .find(|c: char| !c.is_ascii_digit())
        .map_or(number, |end| &number[..end]);
    let rest = &number[digits.len()..];
    let radix = if octal { 8 } else { 10 };
    let n = match u32::from_str_radix(digits, radix) {
        Ok(n) => n,
        Err(_) if octal => return Err(format!("`{value}` is not an octal number")),
        Err(_) => return Err(format!("`{value}` is not a number")),
    };
    let mode = MODES.contains(&name);
    let mut notes = Vec::new();
    if !rest.is_empty() {
        let base = if octal { "octal " } else { "" };
        notes.push(format!(
            "vsftpd reads {name}={value} as {base}{digits}: it takes the leading digits and \
             ignores the rest (it has no comments after a value)"
        ));
    }
    if mode && !octal && n != 0 {
        notes.push(format!(
            "vsftpd reads {name}={digits} as decimal {n} = octal {n:03o} (only a number \
             starting with 0 is octal in vsftpd), so that is what is carried over; write \
             {name}=0{digits} in vsftpd.conf, or {name} = \"0{digits}\" here, if octal 0{digits} \
             was meant"
        ));
    }
    Ok(Read {
        toml: Some(if octal || mode {
            format!("0o{n:03o}")
        } else {
            n.to_string()
        }),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// One of vsftpd 3.0.3's settings.
pub(super) struct VsftpdOption {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    /// The default of Debian 12's vsftpd build (`None` = unset).
    pub(super) default: Option<&'static str>,
    /// Why rftpd does not carry it over, when rftpd has no key of this name.
    pub(super) why: Option<&'static str>,
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

const NO_ANON_EMAIL: Option<&str> = Some("rftpd does not check anonymous passwords");
const NO_CLIENT_CERTS: Option<&str> = Some("rftpd does not ask clients for certificates");
const OWN_ISOLATION: Option<&str> = Some(
    "rftpd isolates each session in its own processes, jailed and without privileges \
     (rftpd(8)); there is nothing to choose",
);
const PERFORMANCE: Option<&str> = Some("a vsftpd performance setting that rftpd does not need");

use Kind::{Bool, Str, Uint};

/// Every setting vsftpd 3.0.3 reads, with Debian 12's defaults (upstream's `tunables.c`,
/// except `listen`, which Debian's build turns off, `pam_service_name` and
/// `secure_chroot_dir`; `pasv_min_port` is upstream's "any port" written as 0).
pub(super) const VSFTPD_OPTIONS: &[VsftpdOption] = &[
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
    opt("chown_uploads", Bool, Some("NO"), None),
    opt("connect_from_port_20", Bool, Some("NO"), None),
    opt("xferlog_enable", Bool, Some("NO"), None),
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
    opt("ascii_upload_enable", Bool, Some("NO"), None),
    opt("ascii_download_enable", Bool, Some("NO"), None),
    opt("one_process_model", Bool, Some("NO"), OWN_ISOLATION),
    opt("xferlog_std_format", Bool, Some("NO"), None),
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
    opt("log_ftp_protocol", Bool, Some("NO"), None),
    opt("guest_enable", Bool, Some("NO"), None),
    opt("userlist_enable", Bool, Some("NO"), None),
    opt("userlist_deny", Bool, Some("YES"), None),
    opt("use_localtime", Bool, Some("NO"), None),
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
    opt("dual_log_enable", Bool, Some("NO"), None),
    opt("syslog_enable", Bool, Some("NO"), None),
    opt(
        "background",
        Bool,
        Some("NO"),
        Some("rftpd always runs in the foreground; systemd (rftpd.service) runs it as a daemon"),
    ),
    opt("virtual_use_local_privs", Bool, Some("NO"), None),
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
    opt(
        "no_log_lock",
        Bool,
        Some("NO"),
        Some("rftpd appends each log record in one write (O_APPEND); there is no lock to skip"),
    ),
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
    opt(
        "debug_ssl",
        Bool,
        Some("NO"),
        Some("rftpd logs TLS details with RFTPD_LOG=debug"),
    ),
    opt("require_cert", Bool, Some("NO"), NO_CLIENT_CERTS),
    opt("validate_cert", Bool, Some("NO"), NO_CLIENT_CERTS),
    opt("strict_ssl_read_eof", Bool, Some("YES"), None),
    opt("strict_ssl_write_shutdown", Bool, Some("NO"), None),
    opt("ssl_request_cert", Bool, Some("YES"), NO_CLIENT_CERTS),
    opt("delete_failed_uploads", Bool, Some("NO"), None),
    opt("implicit_ssl", Bool, Some("NO"), None),
    opt("ptrace_sandbox", Bool, Some("NO"), OWN_ISOLATION),
    opt("require_ssl_reuse", Bool, Some("YES"), None),
    opt("isolate", Bool, Some("YES"), None),
    opt("isolate_network", Bool, Some("YES"), None),
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
    opt("seccomp_sandbox", Bool, Some("NO"), None),
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
    opt("chown_upload_mode", Uint, Some("0600"), None),
    // Strings.
    opt(
        "secure_chroot_dir",
        Str,
        Some("/var/run/vsftpd/empty"),
        None,
    ),
    opt("ftp_username", Str, Some("ftp"), None),
    opt("chown_username", Str, Some("root"), None),
    opt("xferlog_file", Str, Some("/var/log/xferlog"), None),
    opt("vsftpd_log_file", Str, Some("/var/log/vsftpd.log"), None),
    opt(
        "message_file",
        Str,
        Some(".message"),
        Some("rftpd shows no .message files"),
    ),
    opt("nopriv_user", Str, Some("nobody"), None),
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
    opt("guest_username", Str, Some("ftp"), None),
    opt("userlist_file", Str, Some("/etc/vsftpd.user_list"), None),
    opt("anon_root", Str, None, None),
    opt("local_root", Str, None, None),
    opt("banner_file", Str, None, None),
    opt("pasv_address", Str, None, None),
    opt("listen_address", Str, None, None),
    opt("user_config_dir", Str, None, None),
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
        Some(
            "rftpd uses a fixed list of cipher suites in its own order \
             (AES-128-GCM first, then AES-256-GCM, then ChaCha20-Poly1305)",
        ),
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

pub(super) fn vsftpd_option(name: &str) -> Option<&'static VsftpdOption> {
    VSFTPD_OPTIONS.iter().find(|o| o.name == name)
}
