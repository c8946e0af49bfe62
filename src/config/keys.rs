//! The key table: one [`Field`] per top-level key of [`Config`] (name, value shape, setter),
//! in the order of the struct, plus the vsftpd options rftpd lacks and which keys relate.
//!
//! What it does: lets `parse` store any key's value without a `match` per key, lets error
//! messages name the expected type, and gives the suggestion and docs tests their key list.
//!
//! What it must never do: list a key that is not a field of [`Config`] or leave one out (a
//! unit test walks both), read files, or contain `unsafe` code.

use serde::Deserialize;
use toml::de::ValueDeserializer;

use super::Config;

/// The shape of a key's value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Port,
    Count,
    Seconds,
    Str,
    Path,
    Ipv4,
    Ipv6,
    Mode,
    Networks,
    SocketAddress,
}

impl Kind {
    pub(super) fn expected(self) -> &'static str {
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
            Kind::Networks => {
                "a list of addresses or networks (such as [\"192.0.2.10\", \"10.0.0.0/8\"])"
            }
            Kind::SocketAddress => {
                "an address and port (a string such as \"127.0.0.1:9464\" or \"[::1]:9464\")"
            }
        }
    }
}

pub(super) type Setter = fn(&mut Config, ValueDeserializer<'_>) -> Result<(), toml::de::Error>;

/// One top-level key: its name, the shape of its value, and how to store a TOML value into
/// the [`Config`] field of the same name.
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) set: Setter,
}

macro_rules! fields {
    ($($name:ident: $kind:ident,)*) => {
        /// Every key of [`Config`], in the order of the struct (and of `config/rftpd.toml`).
        pub(super) const FIELDS: &[Field] = &[$(Field {
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
    guest_enable: Bool,
    guest_username: Str,
    virtual_use_local_privs: Bool,
    user_config_dir: Path,
    chown_uploads: Bool,
    chown_username: Str,
    chown_upload_mode: Mode,
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
    mdtm_write: Bool,
    ascii_upload_enable: Bool,
    ascii_download_enable: Bool,
    utf8_filesystem: Bool,
    delete_failed_uploads: Bool,
    local_max_rate: Count,
    anon_max_rate: Count,
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
    max_per_user: Count,
    idle_session_timeout: Seconds,
    data_connection_timeout: Seconds,
    accept_timeout: Seconds,
    connect_timeout: Seconds,
    login_timeout: Seconds,
    proxy_protocol: Bool,
    proxy_protocol_from: Networks,
    ssl_enable: Bool,
    rsa_cert_file: Path,
    rsa_private_key_file: Path,
    force_local_logins_ssl: Bool,
    force_local_data_ssl: Bool,
    require_ssl_reuse: Bool,
    implicit_ssl: Bool,
    ssl_tlsv1_2: Bool,
    ssl_tlsv1_3: Bool,
    xferlog_enable: Bool,
    xferlog_file: Path,
    xferlog_std_format: Bool,
    vsftpd_log_file: Path,
    dual_log_enable: Bool,
    log_ftp_protocol: Bool,
    syslog_enable: Bool,
    use_localtime: Bool,
    metrics_enable: Bool,
    metrics_listen: SocketAddress,
    nopriv_user: Str,
    secure_chroot_dir: Path,
    seccomp_sandbox: Bool,
    isolate: Bool,
    isolate_network: Bool,
    worker_max_open_files: Count,
    worker_max_processes: Count,
    worker_max_memory_mb: Count,
    session_cgroup: Bool,
    session_memory_max_mb: Count,
    session_pids_max: Count,
}

/// vsftpd options rftpd does not implement: named as such instead of "did you mean".
pub(super) const VSFTPD_ONLY: &[&str] = &[
    "anon_world_readable_only",
    "async_abor_enable",
    "background",
    "ca_certs_file",
    "debug_ssl",
    "dsa_cert_file",
    "dsa_private_key_file",
    "passwd_chroot_enable",
    "pasv_promiscuous",
    "ssl_ciphers",
    "ssl_request_cert",
    "ssl_sslv2",
    "ssl_sslv3",
    "ssl_tlsv1",
    "ssl_tlsv1_1",
    "strict_ssl_read_eof",
    "strict_ssl_write_shutdown",
    "validate_cert",
];

/// Other keys a semantic error about `key` involves: used to locate the error when `key`
/// itself is not written in the file, and to stay quiet when one of them already has an error.
pub(super) fn related_keys(key: &str) -> &'static [&'static str] {
    match key {
        "listen" => &["listen_ipv6"],
        "pasv_min_port" => &["pasv_max_port"],
        "pasv_max_port" => &["pasv_min_port"],
        "chroot_list_file" => &["chroot_list_enable"],
        "user_sub_token" => &["local_root"],
        "userlist_file" => &["userlist_enable"],
        "ban_window" | "ban_time" => &["ban_failed_logins"],
        "proxy_protocol_from" => &["proxy_protocol"],
        "metrics_listen" => &["metrics_enable"],
        "rsa_cert_file" | "rsa_private_key_file" => &["ssl_enable"],
        "ssl_tlsv1_2" => &["ssl_tlsv1_3", "ssl_enable"],
        "chown_username" | "chown_upload_mode" => &["chown_uploads"],
        _ => &[],
    }
}
