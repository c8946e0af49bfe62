//! Unit tests of `rftpd import-vsftpd`: Debian's stock file, vsftpd's value syntax, the
//! listener and PAM translations, rejected values, and the man page's key list and defaults.
//!
//! What it must never do: need root or the network, or write any file.

use super::*;
use std::path::Path;

mod carried;
mod documentation;

const DEBIAN: &str = include_str!("../../../tests/data/vsftpd-debian.conf");

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
        // (`[]` is a valid value of a list key such as proxy_protocol_from.)
        assert!(
            !Config::parse(&format!("{key} = []"), "<probe>")
                .err()
                .is_some_and(|e| e.to_string().contains("unknown key")),
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
    // Debian's file names vsftpd's own empty directory: rftpd keeps its own.
    assert_eq!(config.secure_chroot_dir, Path::new("/run/rftpd/empty"));
    assert_eq!(config.nopriv_user, "rftpd");
    assert!(
        imported
            .toml
            .contains("# vsftpd option secure_chroot_dir=/var/run/vsftpd/empty not carried over:"),
        "{}",
        imported.toml
    );
}

#[test]
fn nopriv_user_and_secure_chroot_dir_are_carried_over_unless_they_are_vsftpds_own() {
    let (config, imported) =
        run("listen=YES\nnopriv_user=ftpsecure\nsecure_chroot_dir=/srv/ftp-empty\n");
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_eq!(config.nopriv_user, "ftpsecure");
    assert_eq!(config.secure_chroot_dir, Path::new("/srv/ftp-empty"));
    let (config, _) = run("listen=YES\nnopriv_user=nobody\n");
    assert_eq!(config.nopriv_user, "rftpd");
    assert_eq!(config.secure_chroot_dir, Path::new("/run/rftpd/empty"));
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
    let (config, imported) =
        run("listen=YES\nxferlog_enable=YES\nuse_localtime=YES\nsetproctitle_enable=YES\n");
    assert!(imported.toml.contains("xferlog_enable = true"));
    // use_localtime is carried over with vsftpd's meaning.
    assert!(config.use_localtime);
    assert!(
        imported.toml.contains(
            "# vsftpd option setproctitle_enable=YES not carried over: rftpd does not rename its processes"
        ),
        "{}",
        imported.toml
    );
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
    let (config, _) = run("listen=YES\nlisten_port=021\nlocal_umask=022\nfile_open_mode=0644\n");
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
fn times_and_ascii_settings_are_carried_over() {
    let (config, _) = run("mdtm_write=NO\nascii_upload_enable=YES\nascii_download_enable=YES\n");
    assert!(!config.mdtm_write && config.ascii_upload_enable && config.ascii_download_enable);
    let (config, _) = run("");
    assert!(config.mdtm_write && !config.ascii_upload_enable && !config.ascii_download_enable);
}

#[test]
fn rate_limits_failed_upload_deletion_and_upload_chowning_are_carried_over() {
    let (config, imported) = run("local_max_rate=2000000\nanon_max_rate=500000\n\
         delete_failed_uploads=YES\nchown_uploads=YES\nchown_username=daemon\n\
         chown_upload_mode=0644\n");
    assert_eq!(config.local_max_rate, 2_000_000, "{}", imported.toml);
    assert_eq!(config.anon_max_rate, 500_000);
    assert!(config.delete_failed_uploads && config.chown_uploads);
    assert_eq!(config.chown_username, "daemon");
    assert_eq!(config.chown_upload_mode.0, 0o644);
    for key in ["local_max_rate", "chown_uploads", "chown_username"] {
        assert!(
            !imported.toml.contains(&format!("# {key}")),
            "{key} commented out:\n{}",
            imported.toml
        );
    }
    // vsftpd's defaults come along when the file does not set them.
    let (config, _) = run("listen=YES\n");
    assert_eq!((config.local_max_rate, config.anon_max_rate), (0, 0));
    assert!(!config.delete_failed_uploads && !config.chown_uploads);
    assert_eq!(config.chown_username, "root");
    assert_eq!(config.chown_upload_mode.0, 0o600);
}

#[test]
fn utf8_filesystem_is_carried_over_and_vsftpds_default_no_kept() {
    let (config, _) = run("utf8_filesystem=YES\n");
    assert!(config.utf8_filesystem);
    // vsftpd lists no UTF8 in FEAT unless told to: an imported config does the same.
    let (config, imported) = run("listen=YES\n");
    assert!(!config.utf8_filesystem, "{}", imported.toml);
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
        imported
            .toml
            .contains("# vsftpd option pasv_min_port=40000 not carried over: rftpd rejects it: "),
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
