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
