//! The TOML writer: [`Config::to_toml_string`], with a `# section` comment before each group.
//!
//! What it does: writes every key of a validated configuration so that parsing the text
//! gives back the same [`Config`] (the master hands it to child processes this way).
//!
//! What it must never do: write a key `parse` would not read back to the same value, write
//! any file itself (it returns a `String`), or contain `unsafe` code.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Config, Mode};

impl Config {
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
        line(o, "guest_enable", self.guest_enable);
        line(o, "guest_username", toml_string(&self.guest_username));
        line(o, "virtual_use_local_privs", self.virtual_use_local_privs);
        opt_path(o, "user_config_dir", &self.user_config_dir);
        line(o, "chown_uploads", self.chown_uploads);
        line(o, "chown_username", toml_string(&self.chown_username));
        line(o, "chown_upload_mode", mode(self.chown_upload_mode));
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
        line(o, "mdtm_write", self.mdtm_write);
        line(o, "ascii_upload_enable", self.ascii_upload_enable);
        line(o, "ascii_download_enable", self.ascii_download_enable);
        line(o, "utf8_filesystem", self.utf8_filesystem);
        line(o, "delete_failed_uploads", self.delete_failed_uploads);
        line(o, "local_max_rate", self.local_max_rate);
        line(o, "anon_max_rate", self.anon_max_rate);
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
        line(o, "max_per_user", self.max_per_user);
        line(o, "idle_session_timeout", self.idle_session_timeout);
        line(o, "data_connection_timeout", self.data_connection_timeout);
        line(o, "accept_timeout", self.accept_timeout);
        line(o, "connect_timeout", self.connect_timeout);
        line(o, "login_timeout", self.login_timeout);
        out_comment(o, "Behind a load balancer");
        line(o, "proxy_protocol", self.proxy_protocol);
        let from: Vec<String> = self
            .proxy_protocol_from
            .iter()
            .map(|n| toml_string(&n.to_string()))
            .collect();
        line(o, "proxy_protocol_from", format!("[{}]", from.join(", ")));
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
        out_comment(o, "Logs");
        line(o, "xferlog_enable", self.xferlog_enable);
        path(o, "xferlog_file", &self.xferlog_file);
        line(o, "xferlog_std_format", self.xferlog_std_format);
        path(o, "vsftpd_log_file", &self.vsftpd_log_file);
        line(o, "dual_log_enable", self.dual_log_enable);
        line(o, "log_ftp_protocol", self.log_ftp_protocol);
        line(o, "syslog_enable", self.syslog_enable);
        line(o, "use_localtime", self.use_localtime);
        out_comment(o, "Metrics");
        line(o, "metrics_enable", self.metrics_enable);
        line(
            o,
            "metrics_listen",
            toml_string(&self.metrics_listen.to_string()),
        );
        out_comment(o, "Privilege separation");
        line(o, "nopriv_user", toml_string(&self.nopriv_user));
        path(o, "secure_chroot_dir", &self.secure_chroot_dir);
        out_comment(o, "Sandbox");
        line(o, "seccomp_sandbox", self.seccomp_sandbox);
        line(o, "isolate", self.isolate);
        line(o, "isolate_network", self.isolate_network);
        line(o, "worker_max_open_files", self.worker_max_open_files);
        line(o, "worker_max_processes", self.worker_max_processes);
        line(o, "worker_max_memory_mb", self.worker_max_memory_mb);
        line(o, "session_cgroup", self.session_cgroup);
        line(o, "session_memory_max_mb", self.session_memory_max_mb);
        line(o, "session_pids_max", self.session_pids_max);
        out
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
pub(super) fn toml_string(s: &str) -> String {
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
