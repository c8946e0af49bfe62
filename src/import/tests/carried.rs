//! Unit tests of what the importer carries over as it is, for `--check-config` to judge
//! (allow lists, certificates, banners whose files are missing), vsftpd's comment and umask
//! syntax, defaults left out, implicit TLS and the sandbox keys.
//!
//! What it must never do: need root or the network, or write any file.

use super::*;

#[test]
fn an_allow_list_whose_file_is_missing_is_carried_over_for_check_config_to_refuse() {
    let text = "listen=YES\nlocal_enable=YES\nuserlist_enable=YES\nuserlist_deny=NO\n\
                userlist_file=/nonexistent/rftpd-test/user_list\n";
    let imported = import(text, "test.conf");
    let config = Config::parse_without_files(&imported.toml, "<imported>").unwrap();
    assert!(config.userlist_enable && !config.userlist_deny);
    assert_eq!(
        config.userlist_file,
        Path::new("/nonexistent/rftpd-test/user_list")
    );
    let errors = Config::parse(&imported.toml, "<imported>").unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].key.as_deref(), Some("userlist_file"));
    assert!(
        imported.warnings.iter().any(|w| w.starts_with(
            "test.conf:5: userlist_file=/nonexistent/rftpd-test/user_list: rftpd --check-config \
             refuses the imported configuration on this host: `userlist_file`: cannot read the \
             user list"
        ) && w.contains("500 OOPS: cannot read user list file")),
        "{:?}",
        imported.warnings
    );
    // Without userlist_file, vsftpd's default list is the one carried over (and refused).
    let imported = import(
        "listen=YES\nuserlist_enable=YES\nuserlist_deny=NO\n",
        "test.conf",
    );
    let config = Config::parse_without_files(&imported.toml, "<imported>").unwrap();
    assert_eq!(config.userlist_file, Path::new("/etc/vsftpd.user_list"));
}

#[test]
fn a_missing_certificate_and_an_unreadable_banner_are_carried_over_not_dropped() {
    let text = "listen=YES\nssl_enable=YES\nrsa_cert_file=/nonexistent/cert.pem\n\
                banner_file=/nonexistent/banner\n";
    let imported = import(text, "test.conf");
    let config = Config::parse_without_files(&imported.toml, "<imported>").unwrap();
    assert_eq!(config.rsa_cert_file, Path::new("/nonexistent/cert.pem"));
    assert_eq!(
        config.banner_file.as_deref(),
        Some(Path::new("/nonexistent/banner"))
    );
    let errors = Config::parse(&imported.toml, "<imported>").unwrap_err();
    let keys: Vec<_> = errors.0.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(keys, ["rsa_cert_file", "banner_file"], "{errors}");
    assert!(
        imported
            .toml
            .contains("# rftpd --check-config refuses the imported configuration on this host:"),
        "{}",
        imported.toml
    );
}

#[test]
fn a_comment_after_a_value_is_read_as_vsftpd_reads_it() {
    let text = "listen=YES\npasv_min_port=30000\npasv_max_port=30021 # comment\n\
                ftpd_banner=Hello # there\n";
    let (config, imported) = run(text);
    assert_eq!(config.pasv_max_port, 30021, "the leading digits");
    assert_eq!(config.ftpd_banner.as_deref(), Some("Hello # there"));
    for (line, note) in [
        (
            3,
            "vsftpd reads pasv_max_port=30021 # comment as 30021: it takes the leading digits \
             and ignores the rest (it has no comments after a value)",
        ),
        (
            4,
            "vsftpd reads ftpd_banner=Hello # there as the whole rest of the line, `#` \
             included: it has no comments after a value",
        ),
    ] {
        assert!(
            imported
                .warnings
                .contains(&format!("test.conf:{line}: {note}")),
            "{:?}",
            imported.warnings
        );
    }
    assert!(
        imported
            .toml
            .contains("# line 3: vsftpd reads pasv_max_port="),
        "{}",
        imported.toml
    );
}

#[test]
fn a_comment_after_a_boolean_is_an_error_naming_the_line_as_vsftpd_dies_on_it() {
    let imported = import(
        "listen=YES\nwrite_enable=YES # allow uploads\n",
        "test.conf",
    );
    assert!(
        imported.warnings.contains(
            &"test.conf:2: `YES # allow uploads` is not YES or NO (vsftpd has no comments \
              after a value: the `#` is part of it) (vsftpd refuses to start: 500 OOPS: bad \
              bool value in config file for: write_enable); left out"
                .to_owned()
        ),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn a_umask_is_octal_only_when_it_starts_with_0_as_in_vsftpd() {
    let (config, imported) = run("listen=YES\nlocal_umask=022\nanon_umask=22\n");
    assert_eq!(config.local_umask, crate::config::Mode(0o022));
    assert_eq!(config.anon_umask, crate::config::Mode(22));
    assert!(imported.toml.contains("\nlocal_umask = 0o022\n"));
    assert!(
        imported.toml.contains("\nanon_umask = 0o026\n"),
        "written in octal, never as a bare decimal: {}",
        imported.toml
    );
    assert!(
        imported.warnings.iter().any(|w| w.starts_with(
            "test.conf:3: vsftpd reads anon_umask=22 as decimal 22 = octal 026 (only a number \
             starting with 0 is octal in vsftpd)"
        )),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn vsftpds_defaults_without_effect_are_not_written() {
    let (_, imported) = run("listen=YES\n");
    for key in ["chroot_list_file", "userlist_file", "rsa_private_key_file"] {
        assert!(
            !imported.toml.contains(&format!("\n{key} = ")),
            "{key}: {}",
            imported.toml
        );
    }
    assert!(
        !imported.warnings.iter().any(|w| w.contains("no effect")),
        "{:?}",
        imported.warnings
    );
}

#[test]
fn implicit_ssl_is_carried_over() {
    let text = "listen=YES\nlisten_port=990\nssl_enable=YES\nimplicit_ssl=YES\n\
                rsa_cert_file=/nonexistent/cert.pem\n";
    let imported = import(text, "test.conf");
    let config = Config::parse_without_files(&imported.toml, "<imported>").unwrap();
    assert!(
        config.implicit_ssl && config.ssl_enable,
        "{}",
        imported.toml
    );
    assert_eq!(config.listen_port, 990);
    let (config, _) = run("listen=YES\n");
    assert!(!config.implicit_ssl, "vsftpd's default is NO");
}

#[test]
fn the_sandbox_keys_are_carried_over_but_debians_seccomp_default_is_not() {
    let (config, _) = run("listen=YES\n");
    assert!(config.seccomp_sandbox && config.isolate && config.isolate_network);
    let (config, _) = run("listen=YES\nseccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\n");
    assert!(!config.seccomp_sandbox && !config.isolate && !config.isolate_network);
}
