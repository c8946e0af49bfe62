//! Real clients end to end (issue 12): rclone `copy`/`sync` into new nested folders keeping
//! mtimes and `rclone test info`; lftp `mirror -R` keeping mtimes and `mirror` back; tnftp,
//! wget and curl in active mode over `::1`. The packages come from tests/run.sh.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::{PamService, Server, TempDir, TestUser, describe, lossy};

const WRITABLE: &str =
    "write_enable = true\nchroot_local_user = true\nallow_writeable_chroot = true";

/// A program run with a bound on its time (killed after `secs`).
fn run_bounded(program: &str, args: &[&str], secs: u64) -> Output {
    run_bounded_in(Path::new("/"), program, args, secs)
}

/// [`run_bounded`] in the directory `dir`.
fn run_bounded_in(dir: &Path, program: &str, args: &[&str], secs: u64) -> Output {
    let mut full = vec![
        "--kill-after=5".to_string(),
        format!("{secs}"),
        program.to_string(),
    ];
    full.extend(args.iter().map(|a| a.to_string()));
    Command::new("timeout")
        .current_dir(dir)
        .args(&full)
        .output()
        .unwrap_or_else(|e| {
            panic!("run {program}: {e} (is it installed? tests/run.sh installs it)")
        })
}

fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

/// A local tree with nested folders and known mtimes (whole seconds, in the past).
fn local_tree(dir: &TempDir) -> Vec<(&'static str, Vec<u8>, i64)> {
    let files = vec![
        ("top.txt", b"top level\n".to_vec(), 1_500_000_000),
        (
            "a/one.bin",
            (0..=255u8).cycle().take(70_000).collect(),
            1_500_100_000,
        ),
        ("a/b/c/deep.txt", b"deep\n".to_vec(), 1_500_200_000),
        ("a/b/with space.txt", b"spaced\n".to_vec(), 1_500_300_000),
    ];
    for (name, data, mtime) in &files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(*mtime as u64);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    files
}

fn assert_tree(root: &Path, files: &[(&str, Vec<u8>, i64)], what: &str) {
    for (name, data, mtime) in files {
        let path = root.join(name);
        let got = fs::read(&path).unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
        assert_eq!(&got, data, "{what}: contents of {name}");
        let m = fs::metadata(&path).unwrap().mtime();
        assert_eq!(m, *mtime, "{what}: mtime of {name}");
    }
}

fn obscure(password: &str) -> String {
    let out = run_bounded("rclone", &["obscure", password], 30);
    assert_ok(&out, "rclone obscure");
    lossy(&out.stdout).trim().to_string()
}

fn rclone_remote(server: &Server, user: &TestUser, path: &str) -> String {
    format!(
        ":ftp,host=127.0.0.1,port={},user={},pass={}:{path}",
        server.port(),
        user.name,
        obscure(&user.password)
    )
}

#[test]
fn rclone_copies_and_syncs_into_new_nested_folders_keeping_mtimes() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(WRITABLE, &pam);
    let local = TempDir::new();
    let files = local_tree(&local);
    let src = local.join("");
    let src = src.to_str().unwrap();

    let remote = rclone_remote(&server, &user, "new/nested/dir");
    let out = run_bounded(
        "rclone",
        &["copy", "--config", "/dev/null", src, &remote],
        120,
    );
    assert_ok(&out, "rclone copy into new nested folders");
    assert_tree(&user.home.join("new/nested/dir"), &files, "rclone copy");

    // sync into another new folder, then again after a local change (one file removed, one
    // changed): the server follows.
    let remote2 = rclone_remote(&server, &user, "synced/x");
    let out = run_bounded(
        "rclone",
        &["sync", "--config", "/dev/null", src, &remote2],
        120,
    );
    assert_ok(&out, "rclone sync");
    assert_tree(&user.home.join("synced/x"), &files, "rclone sync");
    fs::remove_file(local.join("top.txt")).unwrap();
    let out = run_bounded(
        "rclone",
        &["sync", "--config", "/dev/null", src, &remote2],
        120,
    );
    assert_ok(&out, "second rclone sync");
    assert!(
        !user.home.join("synced/x/top.txt").exists(),
        "sync kept a removed file"
    );
    assert_tree(
        &user.home.join("synced/x"),
        &files[1..],
        "second rclone sync",
    );
    // A check of the copy finds no difference (sizes and times as listed by MLSD).
    let out = run_bounded(
        "rclone",
        &["check", "--config", "/dev/null", src, &remote2],
        120,
    );
    assert_ok(&out, "rclone check");
}

#[test]
fn rclone_test_info_completes() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(WRITABLE, &pam);
    user.put_dir("info");
    let remote = rclone_remote(&server, &user, "info");
    let out = run_bounded(
        "rclone",
        &[
            "test",
            "info",
            "--config",
            "/dev/null",
            "--check-control",
            "--check-length",
            "--check-normalization",
            "--check-streaming",
            &remote,
        ],
        300,
    );
    assert_ok(&out, "rclone test info");
    let report = lossy(&out.stdout);
    assert!(report.contains("stringNeedsEscaping"), "{report}");
    // rftpd still serves after all of that.
    assert!(
        common::curl(&[&server.ftp_url(&user, "/")])
            .status
            .success()
    );
}

#[test]
fn lftp_mirror_keeps_mtimes_both_ways() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(WRITABLE, &pam);
    let local = TempDir::new();
    let files = local_tree(&local);
    let src = local.join("");
    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; \
         open -u {},{} -p {} 127.0.0.1; mirror -R {} /up/tree; bye",
        user.name,
        user.password,
        server.port(),
        src.display()
    );
    let out = run_bounded("lftp", &["-c", &script], 120);
    assert_ok(&out, "lftp mirror -R");
    assert_tree(&user.home.join("up/tree"), &files, "lftp mirror -R");

    let back = TempDir::new();
    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; \
         open -u {},{} -p {} 127.0.0.1; mirror /up/tree {}; bye",
        user.name,
        user.password,
        server.port(),
        back.join("tree").display()
    );
    let out = run_bounded("lftp", &["-c", &script], 120);
    assert_ok(&out, "lftp mirror");
    assert_tree(&back.join("tree"), &files, "lftp mirror back");
}

/// A server on `::1` (and 127.0.0.1), for the active-mode clients; `None` (after saying why)
/// when the host has no IPv6 loopback.
fn v6_server(pam: &PamService) -> Option<(Server, String)> {
    if !common::ipv6_loopback_configured() {
        println!("SKIP {}: ::1 is not configured on lo", common::test_name());
        return None;
    }
    let server = Server::start(
        &format!("{WRITABLE}\nlisten = true\nlisten_ipv6 = true\nlisten_address6 = \"::1\""),
        pam,
    );
    let port = server
        .addrs()
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener")
        .port();
    Some((server, format!("[::1]:{port}")))
}

#[test]
fn tnftp_active_mode_over_ipv6() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let Some((_server, host)) = v6_server(&pam) else {
        return;
    };
    user.put_file("get6.txt", b"tnftp over six\n");
    let dir = TempDir::new();
    let out_file = dir.join("got.txt");
    let url = format!("ftp://{}:{}@{host}/get6.txt", user.name, user.password);
    let out = run_bounded(
        "tnftp",
        &["-A", "-V", "-o", out_file.to_str().unwrap(), &url],
        60,
    );
    assert_ok(&out, "tnftp -A get over ::1");
    assert_eq!(fs::read(&out_file).unwrap(), b"tnftp over six\n");
    // Upload too (tnftp -u URL FILE stores FILE under the name given).
    fs::write(dir.join("up6.txt"), b"tnftp put\n").unwrap();
    let url = format!("ftp://{}:{}@{host}/", user.name, user.password);
    let out = run_bounded_in(&dir.path, "tnftp", &["-A", "-V", "-u", &url, "up6.txt"], 60);
    assert_ok(&out, "tnftp -A put over ::1");
    assert_eq!(fs::read(user.home.join("up6.txt")).unwrap(), b"tnftp put\n");
}

#[test]
fn wget_and_curl_active_mode_over_ipv6() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let Some((_server, host)) = v6_server(&pam) else {
        return;
    };
    user.put_file("w6.txt", b"wget over six\n");
    let dir = TempDir::new();
    let out_file = dir.join("w.txt");
    let url = format!("ftp://{}:{}@{host}/w6.txt", user.name, user.password);
    let out = run_bounded(
        "wget",
        &[
            "--no-passive-ftp",
            "-q",
            "-t",
            "1",
            "-T",
            "20",
            "-O",
            out_file.to_str().unwrap(),
            &url,
        ],
        60,
    );
    assert_ok(&out, "wget --no-passive-ftp over ::1");
    assert_eq!(fs::read(&out_file).unwrap(), b"wget over six\n");

    let out = common::curl(&["-g", "--ftp-port", "-", &url]);
    assert_ok(&out, "curl --ftp-port - over ::1");
    assert_eq!(out.stdout, b"wget over six\n");
    let listing = common::curl(&[
        "-g",
        "--ftp-port",
        "-",
        &format!("ftp://{}:{}@{host}/", user.name, user.password),
    ]);
    assert_ok(&listing, "curl --ftp-port - LIST over ::1");
    assert!(lossy(&listing.stdout).contains("w6.txt"));
}
