//! Tests of the semantic checks of `Config::validate`.
//!
//! What it must never do: need root or the network, or leave files behind.

use super::*;

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
fn implicit_ssl_is_accepted_and_needs_ssl_enable_to_have_an_effect() {
    let c = Config::parse("implicit_ssl = true\n", "<input>").unwrap();
    assert!(c.implicit_ssl);
    assert_eq!(
        c.keys_without_effect(),
        vec![("implicit_ssl", "ssl_enable")],
        "vsftpd ignores implicit_ssl without ssl_enable"
    );
    assert!(Config::parse("implicit_ssl = false\n", "<input>").is_ok());
}

#[test]
fn the_proxy_protocol_without_a_trusted_proxy_is_rejected_at_its_line() {
    let error = one_error("listen = true\nproxy_protocol = true\n");
    assert_eq!(error.key.as_deref(), Some("proxy_protocol_from"));
    assert_eq!(error.line, Some(2), "located at proxy_protocol: {error}");
    assert!(error.message.contains("is empty"), "{error}");
    let error = one_error("proxy_protocol = true\nproxy_protocol_from = []\n");
    assert_eq!(error.line, Some(2), "{error}");
    let c = Config::parse(
        "proxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]\n",
        "t",
    )
    .unwrap();
    assert!(c.proxy_protocol && c.proxy_protocol_from.len() == 3);
    // A list without proxy_protocol is accepted (and does nothing).
    assert!(Config::parse("proxy_protocol_from = [\"192.0.2.1\"]\n", "t").is_ok());
}

#[test]
fn a_bad_proxy_address_is_named_with_its_line() {
    let error =
        one_error("proxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1\", \"lb.example\"]\n");
    assert_eq!(error.key.as_deref(), Some("proxy_protocol_from"));
    assert_eq!(error.line, Some(2));
    assert!(error.message.contains("\"lb.example\""), "{error}");
    let error = one_error("proxy_protocol_from = [\"10.1.2.3/8\"]\n");
    assert!(error.message.contains("10.0.0.0/8"), "{error}");
    let error = one_error("proxy_protocol_from = \"127.0.0.1\"\n");
    assert!(error.message.contains("a list of addresses"), "{error}");
}

#[test]
fn log_files_must_be_absolute_paths() {
    let e = one_error("vsftpd_log_file = \"rftpd.log\"\n");
    assert_eq!(e.key.as_deref(), Some("vsftpd_log_file"));
    assert!(e.message.contains("absolute"), "{e}");
    let e = one_error("xferlog_file = \"\"\n");
    assert_eq!(e.key.as_deref(), Some("xferlog_file"));
}

#[test]
fn sandbox_limits_too_small_to_run_a_session_are_rejected() {
    for (text, key) in [
        ("worker_max_open_files = 8\n", "worker_max_open_files"),
        ("worker_max_processes = 2\n", "worker_max_processes"),
        ("worker_max_memory_mb = 16\n", "worker_max_memory_mb"),
        ("session_pids_max = 3\n", "session_pids_max"),
        ("session_memory_max_mb = 4\n", "session_memory_max_mb"),
    ] {
        let error = one_error(text);
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
        assert_eq!(error.line, Some(1));
    }
    // 0 = no cgroup limit; every layer may be turned off.
    let config = Config::parse(
        "session_pids_max = 0\nsession_memory_max_mb = 0\nseccomp_sandbox = false\n\
         isolate = false\nisolate_network = false\nsession_cgroup = false\n",
        "t.toml",
    )
    .expect("valid");
    assert!(!config.seccomp_sandbox && !config.isolate && !config.session_cgroup);
}

#[test]
fn every_sandbox_layer_is_on_by_default() {
    let config = Config::default();
    assert!(config.seccomp_sandbox && config.isolate && config.isolate_network);
    assert!(config.session_cgroup);
    assert_eq!(
        (config.session_memory_max_mb, config.session_pids_max),
        (256, 32)
    );
}
