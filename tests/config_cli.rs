//! The command line and configuration checking. These need no root: nothing here logs in.

mod common;

use std::fs;
use std::process::{Command, Output, Stdio};

use common::{RFTPD, TempDir, lossy};

fn rftpd(args: &[&str]) -> Output {
    common::ensure_service_account();
    Command::new(RFTPD)
        .args(args)
        .env_remove("RFTPD_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run rftpd")
}

fn config_file(dir: &TempDir, text: &str) -> String {
    let path = dir.join("rftpd.toml");
    fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    )
}

#[test]
fn check_config_names_the_file_line_and_misspelled_key_and_suggests_the_right_one() {
    let dir = TempDir::new();
    let file = config_file(
        &dir,
        "listen = true\n# a comment\nchroot_local_usr = true\nwrite_enable = true\n",
    );
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(
        !out.status.success(),
        "a misspelled key was accepted: {}",
        show(&out)
    );
    let err = lossy(&out.stderr);
    assert!(
        err.contains(&format!("{file}:3")),
        "should name {file} line 3: {err}"
    );
    assert!(
        err.contains("chroot_local_usr"),
        "should name the key: {err}"
    );
    assert!(
        err.contains("chroot_local_user"),
        "should suggest chroot_local_user: {err}"
    );
}

#[test]
fn check_config_names_the_key_and_line_of_a_wrong_type() {
    let dir = TempDir::new();
    let file = config_file(&dir, "listen = true\n\nlisten_port = \"twenty-one\"\n");
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(
        !out.status.success(),
        "a string port was accepted: {}",
        show(&out)
    );
    let err = lossy(&out.stderr);
    assert!(
        err.contains(&format!("{file}:3")),
        "should name {file} line 3: {err}"
    );
    assert!(err.contains("listen_port"), "should name the key: {err}");

    let file = config_file(&dir, "write_enable = \"YES\"\n");
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(
        !out.status.success(),
        "a vsftpd-style YES was accepted: {}",
        show(&out)
    );
    let err = lossy(&out.stderr);
    assert!(
        err.contains(&format!("{file}:1")) && err.contains("write_enable"),
        "{err}"
    );
}

#[test]
fn check_config_accepts_a_valid_file() {
    let dir = TempDir::new();
    let file = config_file(
        &dir,
        "listen = true\nlisten_port = 2121\nchroot_local_user = true\nlocal_umask = \"077\"\nhide_ids = true\n",
    );
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(
        out.status.success(),
        "a valid file was refused: {}",
        show(&out)
    );
}

#[test]
fn the_shipped_default_config_is_valid() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rftpd.toml");
    let out = rftpd(&["--check-config", "--config", shipped]);
    assert!(
        out.status.success(),
        "config/rftpd.toml is refused: {}",
        show(&out)
    );
}

#[test]
fn server_with_a_bad_config_exits_before_listening() {
    let dir = TempDir::new();
    let file = config_file(
        &dir,
        "listen_address = \"127.0.0.1\"\nlisten_port = 0\nchroot_local_usr = true\n",
    );
    let (status, output) = common::start_expecting_exit(std::path::Path::new(&file));
    assert!(
        status != Some(0),
        "rftpd exited 0 with a bad config: {output}"
    );
    assert!(
        !output.contains("listening on"),
        "rftpd listened with a bad config: {output}"
    );
    assert!(
        output.contains("chroot_local_usr"),
        "the reason should name the key: {output}"
    );
}

#[test]
fn version_prints_the_name_and_version() {
    let out = rftpd(&["--version"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(lossy(&out.stdout).trim(), "rftpd 0.1.0");
}

#[test]
fn help_exits_0_and_shows_usage() {
    let out = rftpd(&["--help"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = lossy(&out.stdout);
    assert!(
        text.contains("--config") && text.contains("--check-config"),
        "usage should list the options: {text}"
    );
}

#[test]
fn an_unknown_flag_exits_2() {
    let out = rftpd(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        lossy(&out.stderr).contains("--no-such-flag"),
        "the error should name the flag: {}",
        show(&out)
    );
}

/// `--check-config` on `text` (written to a file), which must fail; returns the file and stderr.
fn refused(dir: &TempDir, text: &str) -> (String, String) {
    let file = config_file(dir, text);
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(
        !out.status.success(),
        "--check-config accepted {text:?}: {}",
        show(&out)
    );
    (file, lossy(&out.stderr))
}

#[test]
fn check_config_refuses_a_nopriv_user_with_no_account_naming_file_line_and_key() {
    let dir = TempDir::new();
    let (file, err) = refused(
        &dir,
        "listen = true\nnopriv_user = \"rftpd-no-such-account\"\n",
    );
    assert!(
        err.contains(&format!(
            "{file}:2:1: key `nopriv_user`: `rftpd-no-such-account` has no passwd entry"
        )),
        "{err}"
    );
}

#[test]
fn check_config_refuses_an_unknown_chown_username_and_a_set_id_chown_upload_mode_naming_the_lines()
{
    let dir = TempDir::new();
    let (file, err) = refused(
        &dir,
        "anonymous_enable = true\nchown_uploads = true\n\
         chown_username = \"rftpd-no-such-owner\"\n",
    );
    assert!(
        err.contains(&format!(
            "{file}:3:1: key `chown_username`: `rftpd-no-such-owner` has no passwd entry"
        )),
        "{err}"
    );
    let (file, err) = refused(&dir, "chown_uploads = true\nchown_upload_mode = 0o4755\n");
    assert!(
        err.contains(&format!(
            "{file}:2:1: key `chown_upload_mode`: 0o4755 is too large"
        )),
        "{err}"
    );
}

#[test]
fn check_config_refuses_a_missing_secure_chroot_dir_naming_file_line_and_key() {
    let dir = TempDir::new();
    let missing = dir.join("no-such-empty");
    let (file, err) = refused(
        &dir,
        &format!(
            "listen = true\n\nsecure_chroot_dir = \"{}\"\n",
            missing.display()
        ),
    );
    assert!(
        err.contains(&format!(
            "{file}:3:1: key `secure_chroot_dir`: `{}` does not exist",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn check_config_refuses_a_world_writable_secure_chroot_dir_naming_file_line_and_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o777)).unwrap();
    let (file, err) = refused(
        &dir,
        &format!("secure_chroot_dir = \"{}\"\n", empty.display()),
    );
    // Not root, the directory is also not root's: that is reported first.
    let why = if common::euid() == 0 {
        "is writable by group or others (mode 0777)"
    } else {
        "not by root"
    };
    assert!(
        err.contains(&format!(
            "{file}:1:1: key `secure_chroot_dir`: `{}` ",
            empty.display()
        )) && err.contains(why),
        "{err}"
    );
}

#[test]
fn check_config_refuses_root_as_nopriv_user_naming_file_line_and_key() {
    let dir = TempDir::new();
    let (file, err) = refused(&dir, "listen = true\nnopriv_user = \"root\"\n");
    assert!(
        err.contains(&format!("{file}:2:1: key `nopriv_user`: `root` has uid 0")),
        "{err}"
    );
}

#[test]
fn check_config_accepts_the_defaults_once_the_account_and_directory_exist() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new();
    let file = config_file(&dir, "listen = true\n");
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(out.status.success(), "{}", show(&out));
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rftpd.toml");
    let out = rftpd(&["--check-config", "--config", shipped]);
    assert!(out.status.success(), "{}", show(&out));
}

/// Import `vsftpd` (written to a temp file) and run `--check-config` on the result.
fn import_then_check(dir: &TempDir, vsftpd: &str) -> (String, String, Output) {
    let conf = dir.join("vsftpd.conf");
    fs::write(&conf, vsftpd).unwrap();
    let out = rftpd(&["import-vsftpd", &conf.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let file = config_file(dir, &lossy(&out.stdout));
    let check = rftpd(&["--check-config", "--config", &file]);
    (file, lossy(&out.stdout), check)
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
        + 1
}

#[test]
fn an_allow_list_whose_file_is_missing_imports_to_a_config_check_config_refuses_naming_the_line() {
    let dir = TempDir::new();
    let missing = dir.join("no-such-user_list");
    let (file, toml, check) = import_then_check(
        &dir,
        &format!(
            "listen=YES\nlocal_enable=YES\nuserlist_enable=YES\nuserlist_deny=NO\nuserlist_file={}\n",
            missing.display()
        ),
    );
    assert!(
        !check.status.success(),
        "anyone could log in: {}",
        show(&check)
    );
    let line = line_of(&toml, "userlist_file");
    let err = lossy(&check.stderr);
    assert!(
        err.contains(&format!(
            "{file}:{line}:1: key `userlist_file`: cannot read the user list"
        )),
        "{err}"
    );
}

#[test]
fn a_missing_certificate_and_an_unreadable_banner_import_to_a_config_check_config_refuses() {
    let dir = TempDir::new();
    let (file, toml, check) = import_then_check(
        &dir,
        &format!(
            "listen=YES\nssl_enable=YES\nrsa_cert_file={}\nbanner_file={}\n",
            dir.join("no-cert.pem").display(),
            dir.join("no-banner").display()
        ),
    );
    assert!(!check.status.success(), "{}", show(&check));
    let err = lossy(&check.stderr);
    for (key, what) in [
        ("rsa_cert_file", "cannot read the certificate file"),
        ("banner_file", "cannot read the banner file"),
    ] {
        let line = line_of(&toml, key);
        assert!(
            err.contains(&format!("{file}:{line}:1: key `{key}`: {what}")),
            "{key}: {err}"
        );
    }
}

#[test]
fn a_comment_after_a_number_or_a_string_imports_as_vsftpd_reads_it() {
    let dir = TempDir::new();
    let (_, toml, _) = import_then_check(
        &dir,
        "listen=YES\npasv_min_port=30000\npasv_max_port=30021 # comment\nftpd_banner=Hi # there\n",
    );
    assert!(toml.contains("\npasv_max_port = 30021\n"), "{toml}");
    assert!(toml.contains("\nftpd_banner = \"Hi # there\"\n"), "{toml}");
    assert!(toml.contains("# line 3: vsftpd reads pasv_max_port=30021 # comment as 30021"));
}

#[test]
fn a_vsftpd_umask_with_a_leading_0_imports_as_octal_and_one_without_as_the_decimal_vsftpd_read() {
    let dir = TempDir::new();
    let (_, toml, _) = import_then_check(&dir, "listen=YES\nlocal_umask=022\nanon_umask=22\n");
    assert!(toml.contains("\nlocal_umask = 0o022\n"), "{toml}");
    assert!(toml.contains("\nanon_umask = 0o026\n"), "{toml}");
    assert!(toml.contains("vsftpd reads anon_umask=22 as decimal 22 = octal 026"));
}

#[test]
fn check_config_refuses_a_decimal_umask_and_says_which_octal_value_was_meant() {
    let dir = TempDir::new();
    let file = config_file(&dir, "listen = true\nlocal_umask = 22\n");
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{file}:2:15: key `local_umask`: `local_umask = 22` is decimal 22 = octal 026; modes \
             are octal: write \"022\" (or 0o022) for octal 022, or 0o026 for the mode it is now"
        )),
        "{err}"
    );
}

#[test]
fn check_config_warns_about_keys_without_effect() {
    let dir = TempDir::new();
    let file = config_file(
        &dir,
        "listen = true\nanonymous_enable = false\nanon_upload_enable = true\n\
         pasv_enable = false\npasv_min_port = 30000\npasv_max_port = 30021\n",
    );
    let out = rftpd(&["--check-config", "--config", &file]);
    assert!(out.status.success(), "{}", show(&out));
    let err = lossy(&out.stderr);
    for warning in [
        "warning: `anon_upload_enable` is set but has no effect because `anonymous_enable` is false",
        "warning: `pasv_min_port` is set but has no effect because `pasv_enable` is false",
        "warning: `pasv_max_port` is set but has no effect because `pasv_enable` is false",
    ] {
        assert!(err.contains(warning), "{warning}: {err}");
    }
}

#[test]
fn import_vsftpd_user_file_prints_a_per_user_file_rftpd_accepts() {
    let dir = TempDir::new();
    let users = dir.join("users");
    fs::create_dir(&users).unwrap();
    let vsftpd_file = dir.join("alice.vsftpd");
    fs::write(
        &vsftpd_file,
        "local_root=/srv/ftp/alice\nwrite_enable=NO\nlisten_port=2121\n",
    )
    .unwrap();
    let out = rftpd(&[
        "import-vsftpd",
        "--user-file",
        &vsftpd_file.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let toml = lossy(&out.stdout);
    assert!(toml.contains("local_root = \"/srv/ftp/alice\"\n"), "{toml}");
    assert!(toml.contains("write_enable = false\n"), "{toml}");
    assert!(!toml.contains("listen_port ="), "{toml}");
    assert!(lossy(&out.stderr).contains("listen_port"), "{}", show(&out));
    // The main import carries user_config_dir over and says the files need converting.
    let main = dir.join("vsftpd.conf");
    fs::write(
        &main,
        format!("listen=YES\nuser_config_dir={}\n", users.display()),
    )
    .unwrap();
    let out = rftpd(&["import-vsftpd", &main.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        lossy(&out.stdout).contains(&format!("user_config_dir = \"{}\"", users.display())),
        "{}",
        show(&out)
    );
    assert!(lossy(&out.stderr).contains("--user-file"), "{}", show(&out));
    // Without a FILE it is a usage error.
    assert_eq!(
        rftpd(&["import-vsftpd", "--user-file"]).status.code(),
        Some(2)
    );
}
