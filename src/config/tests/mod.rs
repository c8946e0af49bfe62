//! Unit tests of the configuration, one file per concern; this file holds their shared
//! helpers (a temp file, error collectors, a config with every field changed).
//!
//! What it must never do: need root, the network, or files outside the temp dir and the
//! source tree; leave files behind.

mod fields;
mod parse;
mod queries;
mod validate;

pub(super) use super::keys::*;
pub(super) use super::parse::*;
pub(super) use super::write::*;
pub(super) use super::*;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file under the temp dir with a unique name, removed on drop.
pub(super) struct TempFile(pub(super) PathBuf);

impl TempFile {
    pub(super) fn new(contents: &str) -> TempFile {
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

pub(super) fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse(text, "/etc/rftpd.toml") {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(ConfigErrors(errors)) => {
            assert!(!errors.is_empty());
            errors
        }
    }
}

pub(super) fn one_error(text: &str) -> ConfigError {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

/// A valid config in which every field differs from its default, except those in
/// [`LEFT_AT_DEFAULT`]. `list` is an existing file; it serves as every file the config
/// names (validation only checks that they can be opened).
pub(super) fn every_field_changed(list: &Path) -> Config {
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
        guest_enable: true,
        guest_username: "virtual".to_owned(),
        virtual_use_local_privs: true,
        user_config_dir: Some(PathBuf::from("/etc/rftpd/users")),
        chown_uploads: true,
        chown_username: "daemon \"x\"".to_owned(),
        chown_upload_mode: Mode(0o644),
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
        mdtm_write: false,
        ascii_upload_enable: true,
        ascii_download_enable: true,
        utf8_filesystem: false,
        delete_failed_uploads: true,
        local_max_rate: 2_000_000,
        anon_max_rate: 4294967295,
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
        max_per_user: 3,
        idle_session_timeout: 0,
        data_connection_timeout: 0,
        accept_timeout: 5,
        connect_timeout: 0,
        login_timeout: 1,
        proxy_protocol: true,
        proxy_protocol_from: vec![
            "127.0.0.1".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        ssl_enable: true,
        rsa_cert_file: list.to_path_buf(),
        rsa_private_key_file: list.to_path_buf(),
        force_local_logins_ssl: false,
        force_local_data_ssl: false,
        require_ssl_reuse: false,
        implicit_ssl: true,
        ssl_tlsv1_2: false,
        ssl_tlsv1_3: true,
        xferlog_enable: true,
        xferlog_file: PathBuf::from("/var/log/ftp \"x\""),
        xferlog_std_format: true,
        vsftpd_log_file: PathBuf::from("/var/log/ftp.log"),
        dual_log_enable: true,
        log_ftp_protocol: true,
        syslog_enable: true,
        use_localtime: true,
        metrics_enable: true,
        metrics_listen: "[::1]:9100".parse().unwrap(),
        nopriv_user: "ftpsecure".to_owned(),
        secure_chroot_dir: PathBuf::from("/var/empty \"jail\""),
        seccomp_sandbox: false,
        isolate: false,
        isolate_network: false,
        worker_max_open_files: 512,
        worker_max_processes: 8192,
        worker_max_memory_mb: 2048,
        session_cgroup: false,
        session_memory_max_mb: 0,
        session_pids_max: 0,
    }
}

/// The fields [`every_field_changed`] keeps at their defaults because no valid config
/// changes them together with the rest: with `ssl_enable` one TLS version must stay on.
/// Covered by its own test.
pub(super) const LEFT_AT_DEFAULT: &[&str] = &["ssl_tlsv1_3"];

/// The `key = …` line of `text`, if any.
pub(super) fn line_of(text: &str, key: &str) -> Option<String> {
    let prefix = format!("{key} = ");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_owned)
}

pub(super) fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The keys whose default is `None` (serde leaves them out of the defaults' TOML).
pub(super) fn optional_keys() -> Vec<&'static str> {
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    FIELDS
        .iter()
        .map(|f| f.name)
        .filter(|name| !defaults.contains_key(*name))
        .collect()
}

/// A path under the temp dir that does not exist.
pub(super) fn missing_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rftpd-missing-{name}-{}", std::process::id()))
}

/// `key = "path"` as a TOML line.
pub(super) fn path_line(key: &str, path: &Path) -> String {
    format!("{key} = {}\n", toml_string(&path.display().to_string()))
}
