//! Tests of the key table, the defaults, the round trip through `to_toml_string`, and the shipped files.
//!
//! What it must never do: need root or the network, or leave files behind.

use super::*;

#[test]
fn defaults_equal_parsing_an_empty_file() {
    assert_eq!(Config::parse("", "<input>"), Ok(Config::default()));
    assert_eq!(
        Config::parse("# only a comment\n\n", "<input>"),
        Ok(Config::default())
    );
    assert_eq!(Config::default().validate(), Ok(()));
}

#[test]
fn utf8_filesystem_is_vsftpds_boolean_and_on_by_default() {
    assert!(Config::default().utf8_filesystem);
    let c = Config::parse("utf8_filesystem = false\n", "<input>").unwrap();
    assert!(!c.utf8_filesystem);
    let err = Config::parse("utf8_filesystem = \"NO\"\n", "<input>").unwrap_err();
    assert!(err.to_string().contains("utf8_filesystem"), "{err}");
}

#[test]
fn a_config_with_every_field_changed_round_trips_through_to_toml_string() {
    let list = TempFile::new("alice\n");
    let config = every_field_changed(&list.0);
    let defaults = Config::default();
    // Every field really differs from its default: each line of the output differs from
    // (or is absent in) the defaults' output.
    let changed = config.to_toml_string();
    let default_text = defaults.to_toml_string();
    for field in FIELDS {
        let line =
            line_of(&changed, field.name).unwrap_or_else(|| panic!("{} not written", field.name));
        if LEFT_AT_DEFAULT.contains(&field.name) {
            assert_eq!(Some(line), line_of(&default_text, field.name));
        } else {
            assert_ne!(
                Some(line),
                line_of(&default_text, field.name),
                "{} is not changed",
                field.name
            );
        }
    }
    let text = config.to_toml_string();
    assert_eq!(
        Config::parse(&text, "<input>"),
        Ok(config.clone()),
        "{text}"
    );
    assert_eq!(
        Config::parse(&defaults.to_toml_string(), "<input>"),
        Ok(defaults)
    );
}

#[test]
fn the_fields_left_at_default_round_trip_or_are_rejected() {
    // ssl_tlsv1_3 = false is valid on its own (and with ssl_enable and ssl_tlsv1_2).
    let config = Config {
        ssl_tlsv1_3: false,
        ..Config::default()
    };
    let text = config.to_toml_string();
    assert_eq!(
        line_of(&text, "ssl_tlsv1_3").as_deref(),
        Some("ssl_tlsv1_3 = false")
    );
    assert_eq!(Config::parse(&text, "<input>"), Ok(config));

    // implicit_ssl = true is written and read back.
    let config = Config {
        implicit_ssl: true,
        ..Config::default()
    };
    let text = config.to_toml_string();
    assert_eq!(
        line_of(&text, "implicit_ssl").as_deref(),
        Some("implicit_ssl = true")
    );
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
    assert_eq!(Config::parse(&text, "<input>"), Ok(config));
}

#[test]
fn derived_serde_agrees_with_parse_and_to_toml_string() {
    let list = TempFile::new("alice\n");
    let config = every_field_changed(&list.0);
    let via_serde: Config = toml::from_str(&config.to_toml_string()).unwrap();
    assert_eq!(via_serde, config);
    let serialized = toml::to_string(&config).unwrap();
    assert_eq!(Config::parse(&serialized, "<input>"), Ok(config));
}

#[test]
fn the_field_table_lists_exactly_the_fields_of_config() {
    let list = TempFile::new("");
    let table = toml::Table::try_from(every_field_changed(&list.0)).unwrap();
    let mut serde_names: Vec<&str> = table.keys().map(String::as_str).collect();
    let mut field_names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    serde_names.sort_unstable();
    field_names.sort_unstable();
    assert_eq!(serde_names, field_names);
}

#[test]
fn the_optional_keys_are_the_option_fields() {
    let expected = [
        "listen_address",
        "listen_address6",
        "ftpd_banner",
        "banner_file",
        "anon_root",
        "user_config_dir",
        "local_root",
        "user_sub_token",
        "hide_file",
        "deny_file",
        "pasv_address",
    ];
    assert_eq!(optional_keys(), expected);
}

#[test]
fn the_new_keys_have_the_documented_defaults() {
    let c = Config::default();
    assert!(!c.userlist_enable && c.userlist_deny);
    assert_eq!(c.userlist_file, Path::new("/etc/rftpd.user_list"));
    assert!(!c.allow_root_login);
    assert_eq!((c.max_login_fails, c.delay_failed_login), (3, 1));
    assert_eq!(
        (c.ban_failed_logins, c.ban_window, c.ban_time),
        (10, 300, 900)
    );
    assert!(!c.anonymous_enable && !c.no_anon_password);
    assert_eq!(c.ftp_username, "ftp");
    assert_eq!(c.anon_root, None);
    assert!(!c.anon_upload_enable && !c.anon_mkdir_write_enable);
    assert!(!c.anon_other_write_enable);
    assert_eq!(c.anon_umask, Mode(0o077));
    assert!(!c.allow_anon_ssl && !c.force_anon_logins_ssl && !c.force_anon_data_ssl);
    assert_eq!((c.max_clients, c.max_per_ip), (2000, 50));
    assert_eq!(
        (
            c.idle_session_timeout,
            c.data_connection_timeout,
            c.accept_timeout,
            c.connect_timeout,
            c.login_timeout
        ),
        (300, 300, 60, 60, 60)
    );
    assert!(c.port_enable && !c.port_promiscuous && !c.connect_from_port_20);
    assert_eq!(c.ftp_data_port, 20);
    assert_eq!((c.banner_file.as_ref(), c.hide_file.as_ref()), (None, None));
    assert_eq!(c.deny_file, None);
    assert!(!c.force_dot_files && !c.ls_recurse_enable && c.chmod_enable);
    // vsftpd's defaults: mdtm_write YES, no ASCII conversion.
    assert!(c.mdtm_write && !c.ascii_upload_enable && !c.ascii_download_enable);
    assert!(c.utf8_filesystem);
    assert!(!c.ssl_enable && !c.implicit_ssl);
    assert_eq!(
        c.rsa_cert_file,
        Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem")
    );
    assert_eq!(
        c.rsa_private_key_file,
        Path::new("/etc/ssl/private/ssl-cert-snakeoil.key")
    );
    assert!(c.force_local_logins_ssl && c.force_local_data_ssl && c.require_ssl_reuse);
    assert!(c.ssl_tlsv1_2 && c.ssl_tlsv1_3);
    assert_eq!(c.nopriv_user, "rftpd");
    assert_eq!(c.secure_chroot_dir, Path::new("/run/rftpd/empty"));
}

#[test]
fn every_shipped_toml_file_parses() {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for dir in ["config", "packaging"] {
        walk(&manifest_dir().join(dir), &mut found);
    }
    assert!(
        found.iter().any(|p| p.ends_with("config/rftpd.toml")),
        "{found:?}"
    );
    for path in found {
        if let Err(e) = Config::load(&path) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_shipped_config_equals_the_defaults() {
    let path = manifest_dir().join("config/rftpd.toml");
    // One documented difference: xferlog_enable is vsftpd's NO by default, and the shipped
    // file says YES as Debian's vsftpd.conf does.
    let shipped = Config {
        xferlog_enable: true,
        ..Config::default()
    };
    assert_eq!(Config::load(&path), Ok(shipped));
}

#[test]
fn the_readme_configuration_reference_lists_every_key() {
    let text = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    for field in FIELDS {
        let row = format!("| `{}` |", field.name);
        assert!(
            text.contains(&row),
            "README.md has no row for {}",
            field.name
        );
    }
}

#[test]
fn the_shipped_config_mentions_every_key() {
    let text = std::fs::read_to_string(manifest_dir().join("config/rftpd.toml")).unwrap();
    let set = |name: &str| {
        text.lines().any(|l| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
    };
    let commented = |name: &str| {
        text.lines().any(|l| {
            l.trim_start()
                .strip_prefix('#')
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix(name))
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
    };
    let optional = optional_keys();
    for field in FIELDS {
        if optional.contains(&field.name) {
            assert!(commented(field.name), "`# {} = ...` missing", field.name);
            assert!(!set(field.name), "{} should be commented out", field.name);
        } else {
            assert!(set(field.name), "`{} = ...` missing", field.name);
        }
    }
}
