//! Tests of the per-user questions and the warnings.
//!
//! What it must never do: need root or the network, or leave files behind.

use super::*;

#[test]
fn start_dir_substitutes_the_user_into_local_root() {
    let home = Path::new("/home/alice");
    let mut config = Config::parse(
        "local_root = \"/srv/ftp/$USER/$USER\"\nuser_sub_token = \"$USER\"\n",
        "<input>",
    )
    .unwrap();
    assert_eq!(
        config.start_dir("alice", home),
        PathBuf::from("/srv/ftp/alice/alice")
    );
    config.user_sub_token = None;
    assert_eq!(
        config.start_dir("alice", home),
        PathBuf::from("/srv/ftp/$USER/$USER")
    );
    config.local_root = None;
    assert_eq!(config.start_dir("alice", home), home);
}

#[test]
fn is_jailed_follows_vsftpds_inverted_list_with_chroot_local_user_on() {
    let list = TempFile::new("# exempt users\n\n  alice  \nbob\n#carol\n");
    let mut config = Config {
        chroot_local_user: true,
        chroot_list_enable: true,
        chroot_list_file: list.0.clone(),
        ..Config::default()
    };
    assert!(!config.is_jailed("alice").unwrap());
    assert!(!config.is_jailed("bob").unwrap());
    assert!(config.is_jailed("carol").unwrap());
    assert!(config.is_jailed("dave").unwrap());
    config.chroot_list_enable = false;
    assert!(config.is_jailed("alice").unwrap());
}

#[test]
fn is_jailed_follows_vsftpds_inverted_list_with_chroot_local_user_off() {
    let list = TempFile::new("alice\n");
    let mut config = Config {
        chroot_local_user: false,
        chroot_list_enable: true,
        chroot_list_file: list.0.clone(),
        ..Config::default()
    };
    assert!(config.is_jailed("alice").unwrap());
    assert!(!config.is_jailed("bob").unwrap());
    config.chroot_list_enable = false;
    assert!(!config.is_jailed("alice").unwrap());
}

#[test]
fn is_jailed_returns_an_error_for_an_unreadable_list() {
    let config = Config {
        chroot_list_enable: true,
        chroot_list_file: std::env::temp_dir()
            .join(format!("rftpd-no-list-{}", std::process::id())),
        ..Config::default()
    };
    assert!(config.is_jailed("alice").is_err());
}

#[test]
fn load_user_list_trims_and_skips_blank_and_comment_lines() {
    let list = TempFile::new("# deny these\n\n  alice  \nbob\n#carol\n\tdave\n");
    let config = Config {
        userlist_file: list.0.clone(),
        ..Config::default()
    };
    assert_eq!(config.load_user_list().unwrap(), ["alice", "bob", "dave"]);
    let config = Config {
        userlist_file: missing_path("user-list-load"),
        ..Config::default()
    };
    assert!(config.load_user_list().is_err());
}

#[test]
fn is_anonymous_name_matches_ftp_and_anonymous_in_any_ascii_case() {
    let config = Config::default();
    for name in ["ftp", "FTP", "Ftp", "anonymous", "ANONYMOUS", "AnonYmous"] {
        assert!(config.is_anonymous_name(name), "{name}");
    }
    for name in [
        "",
        "ftp ",
        " ftp",
        "ftpuser",
        "anon",
        "anonymous1",
        "ſtp",
        "root",
    ] {
        assert!(!config.is_anonymous_name(name), "{name:?}");
    }
    // ftp_username is the identity anonymous sessions run as, not a login name.
    let config = Config {
        ftp_username: "anonftp".to_owned(),
        ..Config::default()
    };
    assert!(!config.is_anonymous_name("anonftp"));
    assert!(config.is_anonymous_name("ftp"));
}

#[test]
fn a_promiscuous_active_mode_is_warned_about_and_nothing_else_when_every_feature_is_on() {
    assert_eq!(Config::default().warnings(), Vec::<String>::new());
    let list = TempFile::new("alice\n");
    // Every other setting, TLS, anonymous and active-mode ones included, warns about nothing
    // (with passive mode on, so that the passive ports have an effect).
    let quiet = Config {
        port_promiscuous: false,
        pasv_enable: true,
        ..every_field_changed(&list.0)
    };
    assert_eq!(quiet.warnings(), Vec::<String>::new());
    let config = Config {
        port_enable: true,
        port_promiscuous: true,
        ..Config::default()
    };
    assert_eq!(
        config.warnings(),
        [
            "active mode is on with port_promiscuous = true: clients may make rftpd connect \
          to any address and port (FTP bounce)."
        ]
    );
    let config = Config {
        port_enable: false,
        port_promiscuous: true,
        ..Config::default()
    };
    assert!(config.warnings().is_empty(), "no active mode, no bounce");
}

#[test]
fn keys_set_without_the_key_that_turns_their_feature_on_are_warned_about() {
    let list = TempFile::new("alice\n");
    let config = Config {
        anonymous_enable: false,
        anon_upload_enable: true,
        pasv_enable: false,
        pasv_min_port: 30000,
        pasv_max_port: 30021,
        ssl_enable: false,
        rsa_cert_file: list.0.clone(),
        chroot_list_enable: false,
        chroot_list_file: list.0.clone(),
        userlist_enable: false,
        userlist_file: list.0.clone(),
        ..Config::default()
    };
    let no_effect = |key: &str, needs: &str| {
        format!("`{key}` is set but has no effect because `{needs}` is false")
    };
    assert_eq!(
        config.warnings(),
        [
            no_effect("anon_upload_enable", "anonymous_enable"),
            no_effect("pasv_min_port", "pasv_enable"),
            no_effect("pasv_max_port", "pasv_enable"),
            no_effect("rsa_cert_file", "ssl_enable"),
            no_effect("chroot_list_file", "chroot_list_enable"),
            no_effect("userlist_file", "userlist_enable"),
        ]
    );
    // The same keys with their feature on say nothing.
    let on = Config {
        anonymous_enable: true,
        pasv_enable: true,
        chroot_list_enable: true,
        userlist_enable: true,
        ..config
    };
    assert_eq!(on.warnings(), [no_effect("rsa_cert_file", "ssl_enable")]);
}
