//! The rftpd configuration: the TOML model, its defaults, and its checks.
//!
//! What it does:
//! - defines [`Config`], one flat table of vsftpd-named keys with their defaults (the shipped
//!   `config/rftpd.toml` repeats those defaults verbatim);
//! - reads and checks a configuration file ([`Config::load_and_check_host`], [`Config::parse`]) and reports
//!   **every** problem it finds at once, each with the file, line, column and key, plus a
//!   suggestion for misspelled keys; checks the `nopriv_user` account and the
//!   `secure_chroot_dir` directory against this host ([`Config::check_host`]);
//! - answers the per-user questions that depend only on the configuration:
//!   the start/jail directory ([`Config::start_dir`]), whether the user is jailed
//!   ([`Config::is_jailed`]), whether a login name is anonymous
//!   ([`Config::is_anonymous_name`]), and reads the user list ([`Config::load_user_list`]);
//! - lists the settings that are accepted but not (fully) enforced ([`Config::warnings`]);
//! - serialises a validated configuration back to TOML ([`Config::to_toml_string`]) so the
//!   master can hand it to child processes.
//!
//! Layout (one concern per file):
//! - this file: the [`Config`] struct, its defaults, and the re-exports;
//! - `keys`: the table of every key (name, value shape, setter), the vsftpd-only names;
//! - `parse`: reading TOML, unknown-key errors with file:line and the closest key;
//! - `validate`: the semantic checks of [`Config::validate`];
//! - `write`: the commented TOML writer, [`Config::to_toml_string`];
//! - `host`: the checks against this host (account, empty jail) and the loaders running them;
//! - `queries`: the per-user questions and [`Config::warnings`];
//! - `network`: the [`Network`] value type (an address or `address/prefix`);
//! - `mode`, `error`: the [`Mode`] value type and [`ConfigError`]/[`ConfigErrors`].
//!
//! What it must never do:
//! - touch the network, or the filesystem beyond reading the configuration file, reading the
//!   chroot list and user list files, and checking that the files it names exist and can be
//!   opened, statting `secure_chroot_dir` and looking `nopriv_user` up in NSS (no creating,
//!   writing, chmod, chdir, chroot; the banner, certificate and key are read by their users,
//!   not here);
//! - change process state (uid, umask, signals, environment) or spawn anything;
//! - accept a configuration it has not fully checked: `load`/`parse` only return `Ok` when
//!   there is no problem at all; unknown keys are errors, never ignored;
//! - contain `unsafe` code.

mod error;
mod host;
mod keys;
mod mode;
mod network;
mod parse;
pub mod per_user;
mod queries;
mod validate;
mod write;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, ConfigErrors};
pub use mode::Mode;
pub use network::Network;
pub use per_user::plain_user_name;

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
    /// vsftpd's virtual users: every non-anonymous login PAM accepts runs as
    /// `guest_username` (the login name need not exist in NSS), jailed, with the anonymous
    /// rights unless `virtual_use_local_privs` (default false).
    pub guest_enable: bool,
    /// The local account virtual users (`guest_enable`) run as (default `ftp`).
    pub guest_username: String,
    /// With `guest_enable`: virtual users get the local users' rights, umask and jail rule
    /// instead of the anonymous ones (default false).
    pub virtual_use_local_privs: bool,
    /// A directory of per-user files, each named after a login name and written in this
    /// file's syntax with only the per-session keys; read by the monitor after PAM accepted
    /// the login (default `None`). See `crate::monitor::user_config`.
    pub user_config_dir: Option<PathBuf>,
    /// Give files anonymous users upload to `chown_username`, with `chown_upload_mode`
    /// (default false). Done by the monitor, on the open file the worker hands it.
    pub chown_uploads: bool,
    /// Owner of anonymous uploads with `chown_uploads` (default `root`).
    pub chown_username: String,
    /// Mode of anonymous uploads with `chown_uploads` (default 0o600; permission bits only).
    pub chown_upload_mode: Mode,

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
    /// Let `MDTM time path`, `MFMT` and `SITE UTIME` set modification times (needs
    /// `write_enable` too) (default true).
    pub mdtm_write: bool,
    /// Under `TYPE A`, turn CRLF into LF on uploads (default false: bytes unchanged).
    pub ascii_upload_enable: bool,
    /// Under `TYPE A`, turn LF into CRLF on downloads (default false: bytes unchanged).
    pub ascii_download_enable: bool,
    /// vsftpd's key: list `UTF8` in `FEAT` (RFC 2640), saying the names on disk are UTF-8
    /// (default true; vsftpd's default is NO). Names go through byte for byte either way, and
    /// `OPTS UTF8 ON` is answered `200` either way, as vsftpd 3.0.3 does.
    pub utf8_filesystem: bool,
    /// Delete the file of an upload that did not complete (connection lost, ABOR, a write
    /// error) (default false).
    pub delete_failed_uploads: bool,
    /// Most bytes per second one local user's session transfers, each direction
    /// (0 = unlimited, the default).
    pub local_max_rate: u32,
    /// Most bytes per second one anonymous session transfers, each direction (0 = unlimited,
    /// the default).
    pub anon_max_rate: u32,

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
    /// Most simultaneous logged-in sessions of one login name, counted by the master; 0 =
    /// unlimited (default 0). Not a vsftpd option (ProFTPD's `MaxClientsPerUser`).
    pub max_per_user: u32,
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

    // --- Behind a load balancer ---
    /// Read a PROXY protocol (v1 or v2) header at the start of every control connection from
    /// an address in `proxy_protocol_from`, and take the client address it carries as the
    /// client's (default false). Not a vsftpd option.
    pub proxy_protocol: bool,
    /// The load balancers allowed to send a PROXY header: addresses or networks (default
    /// empty; must not be empty with `proxy_protocol`). A listed peer that sends no header is
    /// refused; any other peer that sends one is refused. Not a vsftpd option.
    pub proxy_protocol_from: Vec<Network>,

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

    // --- Logs ---
    /// Write a record of every upload and download, as vsftpd's `xferlog_enable` (default
    /// false, as vsftpd; the shipped `config/rftpd.toml` sets true, as Debian's vsftpd.conf):
    /// to `vsftpd_log_file` in vsftpd's format, or with `xferlog_std_format` to `xferlog_file`
    /// in the wu-ftpd xferlog format. The journal gets every record whatever this says.
    pub xferlog_enable: bool,
    /// The wu-ftpd format transfer log (default `/var/log/xferlog`).
    pub xferlog_file: PathBuf,
    /// With `xferlog_enable`: write `xferlog_file` (wu-ftpd xferlog lines, transfers only)
    /// instead of `vsftpd_log_file` (default false).
    pub xferlog_std_format: bool,
    /// vsftpd's own log format: logins, transfers, directory operations (default
    /// `/var/log/rftpd.log`; vsftpd's default is `/var/log/vsftpd.log`).
    pub vsftpd_log_file: PathBuf,
    /// Write both `xferlog_file` and `vsftpd_log_file` (default false).
    pub dual_log_enable: bool,
    /// Also record every FTP command and reply (before login too) in `vsftpd_log_file` (PASS never
    /// shown) (default false).
    pub log_ftp_protocol: bool,
    /// Send the `vsftpd_log_file` lines to syslog (facility ftp) instead of the file (default
    /// false).
    pub syslog_enable: bool,
    /// Times in `vsftpd_log_file` and `xferlog_file` in the host's local time zone (read from
    /// `/etc/localtime` or `TZ` before any jail) instead of GMT, as vsftpd's `use_localtime`
    /// (default false, as vsftpd). The journal's own times are the journal's.
    pub use_localtime: bool,

    // --- Metrics (not vsftpd options) ---
    /// Serve Prometheus metrics on `metrics_listen` (`GET /metrics`) from a sandboxed
    /// process of their own (default false).
    pub metrics_enable: bool,
    /// The metrics endpoint's address and port (default `127.0.0.1:9464`, loopback only;
    /// another address is accepted with a warning: the metrics need no password).
    pub metrics_listen: std::net::SocketAddr,

    // --- Privilege separation ---
    /// The account the pre-login process of each session runs as, as vsftpd's `nopriv_user`
    /// (default `rftpd`). It must have a passwd entry and a uid other than 0: checked at
    /// start-up and by `--check-config` ([`Config::check_host`]).
    pub nopriv_user: String,
    /// An empty directory the pre-login process chroots into, as vsftpd's `secure_chroot_dir`
    /// (default `/run/rftpd/empty`). It must be an absolute path to a directory owned by root
    /// and not writable by group or others: checked by [`Config::check_host`].
    pub secure_chroot_dir: PathBuf,

    // --- Sandbox (each session's processes; see `crate::jail::sandbox`) ---
    /// A seccomp allow-list in the pre-login process and the worker; a system call outside
    /// it kills the process (default true, vsftpd's key).
    pub seccomp_sandbox: bool,
    /// Each session in new PID, IPC, UTS and mount namespaces (default true, vsftpd's key;
    /// vsftpd's covers PID and IPC).
    pub isolate: bool,
    /// The pre-login processes in an empty network namespace (default true, vsftpd's key).
    /// The worker always has a network namespace of its own: its relay needs one.
    pub isolate_network: bool,
    /// The worker's `RLIMIT_NOFILE` (default 256).
    pub worker_max_open_files: u32,
    /// The worker's `RLIMIT_NPROC`: processes and threads of the logged-in user's uid on the
    /// whole host, counted by the kernel (default 4096).
    pub worker_max_processes: u32,
    /// The worker's `RLIMIT_AS` in MiB (default 1024).
    pub worker_max_memory_mb: u32,
    /// A cgroup per session where the host delegates a cgroup v2 subtree (default true).
    pub session_cgroup: bool,
    /// The session cgroup's `memory.max` in MiB; 0 = no limit (default 256).
    pub session_memory_max_mb: u32,
    /// The session cgroup's `pids.max`; 0 = no limit (default 32).
    pub session_pids_max: u32,
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
            guest_enable: false,
            guest_username: "ftp".to_owned(),
            virtual_use_local_privs: false,
            user_config_dir: None,
            chown_uploads: false,
            chown_username: "root".to_owned(),
            chown_upload_mode: Mode(0o600),
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
            mdtm_write: true,
            ascii_upload_enable: false,
            ascii_download_enable: false,
            utf8_filesystem: true,
            delete_failed_uploads: false,
            local_max_rate: 0,
            anon_max_rate: 0,
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
            max_per_user: 0,
            idle_session_timeout: 300,
            data_connection_timeout: 300,
            accept_timeout: 60,
            connect_timeout: 60,
            login_timeout: 60,
            proxy_protocol: false,
            proxy_protocol_from: Vec::new(),
            ssl_enable: false,
            rsa_cert_file: PathBuf::from("/etc/ssl/certs/ssl-cert-snakeoil.pem"),
            rsa_private_key_file: PathBuf::from("/etc/ssl/private/ssl-cert-snakeoil.key"),
            force_local_logins_ssl: true,
            force_local_data_ssl: true,
            require_ssl_reuse: true,
            implicit_ssl: false,
            ssl_tlsv1_2: true,
            ssl_tlsv1_3: true,
            xferlog_enable: false,
            xferlog_file: PathBuf::from("/var/log/xferlog"),
            xferlog_std_format: false,
            vsftpd_log_file: PathBuf::from("/var/log/rftpd.log"),
            dual_log_enable: false,
            log_ftp_protocol: false,
            syslog_enable: false,
            use_localtime: false,
            metrics_enable: false,
            metrics_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9464)),
            nopriv_user: "rftpd".to_owned(),
            secure_chroot_dir: PathBuf::from("/run/rftpd/empty"),
            seccomp_sandbox: true,
            isolate: true,
            isolate_network: true,
            worker_max_open_files: 256,
            worker_max_processes: 4096,
            worker_max_memory_mb: 1024,
            session_cgroup: true,
            session_memory_max_mb: 256,
            session_pids_max: 32,
        }
    }
}

/// The largest `banner_file` accepted, in bytes (64 KiB).
pub const BANNER_FILE_MAX: u64 = 64 * 1024;
