//! Tests of reading TOML: syntax, unknown keys, types, modes, suggestions, `load`.
//!
//! What it must never do: need root or the network, or leave files behind.

use super::*;

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
    for text in ["anon_world_readable_only = false\n", "ssl_tlsv1 = true\n"] {
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
    let errors = errors("listen = true\n[jail]\nchroot_local_user = true\n[listen_port]\nx = 1\n");
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
fn modes_accept_octal_strings_and_octal_integers() {
    for text in [
        "local_umask = \"022\"",
        "local_umask = \"0022\"",
        "local_umask = \"0o022\"",
        "local_umask = 0o022",
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
        default: false,
    };
    assert_eq!(error.to_string(), "f.toml:3:5: key `listen`: bad");
    error.column = None;
    assert_eq!(error.to_string(), "f.toml:3: key `listen`: bad");
    error.line = None;
    assert_eq!(error.to_string(), "f.toml: key `listen`: bad");
    error.default = true;
    assert_eq!(error.to_string(), "f.toml: key `listen` (default): bad");
    error.default = false;
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
fn a_mode_written_as_a_decimal_integer_is_refused_with_the_octal_value_probably_meant() {
    let error = one_error("listen = true\nlocal_umask = 22\n");
    assert_eq!(error.key.as_deref(), Some("local_umask"));
    assert_eq!((error.line, error.column), (Some(2), Some(15)));
    assert_eq!(
        error.message,
        "`local_umask = 22` is decimal 22 = octal 026; modes are octal: write \"022\" \
         (or 0o022) for octal 022, or 0o026 for the mode it is now"
    );
    let error = one_error("file_open_mode = 18\n");
    assert_eq!(
        error.message,
        "`file_open_mode = 18` is decimal 18 = octal 022; modes are octal: write 0o022 for \
         the mode it is now"
    );
    // 0 is the same in every base; strings and 0o integers are octal already.
    for text in ["anon_umask = 0", "anon_umask = \"22\"", "anon_umask = 0o22"] {
        Config::parse(text, "<input>").unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn parse_without_files_accepts_what_only_the_missing_files_make_parse_refuse() {
    let text = "userlist_enable = true\nuserlist_file = \"/nonexistent/list\"\n\
                ssl_enable = true\nrsa_cert_file = \"/nonexistent/cert.pem\"\n\
                banner_file = \"/nonexistent/banner\"\n";
    let errors = Config::parse(text, "<input>").unwrap_err().0;
    let keys: Vec<_> = errors.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(
        keys,
        ["userlist_file", "rsa_cert_file", "banner_file"],
        "{errors:?}"
    );
    let config = Config::parse_without_files(text, "<input>").unwrap();
    assert_eq!(config.userlist_file, PathBuf::from("/nonexistent/list"));
    assert!(Config::parse_without_files("local_umask = 22", "<input>").is_err());
}
