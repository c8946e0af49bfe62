//! Issue 16, parts 2 and 5: `local_max_rate` / `anon_max_rate` (a download and an upload of
//! 8 MiB at 2 MB/s take about four seconds, plain and TLS), `delete_failed_uploads` (an upload
//! whose data connection is reset, or that the client aborts with `ABOR`, is deleted when asked
//! and kept otherwise), and `chown_uploads` (an anonymous upload gets `chown_username` and
//! `chown_upload_mode`, done by the monitor; a local user's upload stays the user's).
//!
//! Times: each is checked within ±20 % of its size over the rate (the bound), plus half
//! a second above for curl's start and the login.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    FtpClient, PamService, Server, TempDir, TestUser, code, describe, ftp_url_at, owner_and_mode,
    rand_bytes,
};

/// The limit the timed tests set, in bytes per second.
const RATE: u64 = 2_000_000;
/// The size of the timed transfers.
const SIZE: usize = 8 << 20;

/// What a transfer of `SIZE` at `RATE` must take at least (0.8 of its nominal time).
fn at_least() -> Duration {
    Duration::from_secs_f64(0.8 * SIZE as f64 / RATE as f64)
}

/// The most a timed transfer may take: 1.2 × its nominal time (about 4.2 s), plus the login.
fn at_most() -> Duration {
    Duration::from_secs_f64(1.2 * SIZE as f64 / RATE as f64 + 0.5)
}

/// `curl -sS --max-time 60 ARGS`, timed.
fn timed_curl(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    (out, started.elapsed())
}

fn assert_paced(what: &str, took: Duration) {
    assert!(
        took >= at_least(),
        "{what}: {SIZE} bytes at {RATE} B/s took {took:?}, less than {:?}: not limited",
        at_least()
    );
    assert!(
        took <= at_most(),
        "{what}: took {took:?}, more than {:?}",
        at_most()
    );
    eprintln!("    {what}: {took:?}");
}

/// A download and an upload of `SIZE` bytes through `server` as `user`, each timed and checked
/// for its bytes. `tls`: curl's flags for FTPS.
fn download_and_upload_are_paced(server: &Server, user: &TestUser, tls: &[&str], what: &str) {
    let body = rand_bytes(SIZE);
    user.put_file("big.bin", &body);
    let local = TempDir::new();
    let got = local.join("got.bin");
    let got_arg = got.display().to_string();
    let url = server.ftp_url(user, "big.bin");
    let mut args = tls.to_vec();
    args.extend(["-o", &got_arg, &url]);
    let (out, took) = timed_curl(&args);
    assert_eq!(code(&out), 0, "{what} download: {}", describe(&out));
    assert!(
        fs::read(&got).unwrap() == body,
        "{what}: download corrupted"
    );
    assert_paced(&format!("{what} download"), took);

    let up_url = server.ftp_url(user, "up.bin");
    let mut args = tls.to_vec();
    args.extend(["-T", &got_arg, &up_url]);
    let (out, took) = timed_curl(&args);
    assert_eq!(code(&out), 0, "{what} upload: {}", describe(&out));
    assert!(
        fs::read(user.home.join("up.bin")).unwrap() == body,
        "{what}: upload corrupted"
    );
    assert_paced(&format!("{what} upload"), took);
}

#[test]
fn a_download_and_an_upload_at_local_max_rate_take_their_size_over_the_rate() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(&format!("local_max_rate = {RATE}\n"), &pam);
    download_and_upload_are_paced(&server, &user, &[], "plain");
}

#[test]
fn a_tls_download_and_upload_at_local_max_rate_take_their_size_over_the_rate() {
    if !common::require_root() {
        return;
    }
    let pki = TempDir::new();
    let (cert, key) = common::self_signed_pair(&pki, "server");
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        &format!(
            "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n\
             local_max_rate = {RATE}\n",
            cert.display(),
            key.display()
        ),
        &pam,
    );
    download_and_upload_are_paced(&server, &user, &["--ssl-reqd", "-k"], "TLS");
}

/// An anonymous server: `anon_root` is a root-owned 0755 directory with an `incoming`
/// directory owned by the anonymous account (a fresh test user), uploads allowed.
struct Anon {
    account: TestUser,
    root: TempDir,
    server: Server,
    _pam: PamService,
}

impl Anon {
    fn new(extra: &str) -> Anon {
        let account = TestUser::create();
        let root = TempDir::new();
        fs::set_permissions(&root.path, fs::Permissions::from_mode(0o755)).unwrap();
        let incoming = root.join("incoming");
        fs::create_dir(&incoming).unwrap();
        account.chown(&incoming);
        let pam = PamService::create(&[]);
        let server = Server::start(
            &format!(
                "anonymous_enable = true\nanon_upload_enable = true\nftp_username = \"{}\"\n\
                 anon_root = \"{}\"\n{extra}",
                account.name,
                root.path.display()
            ),
            &pam,
        );
        Anon {
            account,
            root,
            server,
            _pam: pam,
        }
    }

    fn url(&self, path: &str) -> String {
        ftp_url_at(self.server.addr(), "anonymous", "guest", path)
    }
}

#[test]
fn anon_max_rate_paces_anonymous_sessions_and_leaves_local_users_alone() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new(&format!("anon_max_rate = {RATE}\nlocal_enable = true\n"));
    let body = rand_bytes(SIZE);
    fs::write(a.root.join("big.bin"), &body).unwrap();
    let (out, took) = timed_curl(&["-o", "/dev/null", &a.url("big.bin")]);
    assert_eq!(code(&out), 0, "anonymous download: {}", describe(&out));
    assert_paced("anonymous download", took);

    let user = TestUser::create();
    user.put_file("big.bin", &body);
    let (out, took) = timed_curl(&["-o", "/dev/null", &a.server.ftp_url(&user, "big.bin")]);
    assert_eq!(code(&out), 0, "local download: {}", describe(&out));
    assert!(
        took < at_least(),
        "a local user's download took {took:?}: anon_max_rate must not apply to it"
    );
}

#[test]
fn anonymous_uploads_get_chown_username_and_chown_upload_mode_and_local_ones_stay_the_users() {
    if !common::require_root() {
        return;
    }
    let owner = TestUser::create();
    let a = Anon::new(&format!(
        "chown_uploads = true\nchown_username = \"{}\"\nchown_upload_mode = 0o640\n\
         local_enable = true\n",
        owner.name
    ));
    let local = TempDir::new();
    let source = local.join("source.bin");
    fs::write(&source, rand_bytes(300_000)).unwrap();
    let source_arg = source.display().to_string();
    for name in ["first.bin", "second.bin"] {
        let out = common::curl(&["-T", &source_arg, &a.url(&format!("incoming/{name}"))]);
        assert_eq!(code(&out), 0, "anonymous upload {name}: {}", describe(&out));
        let path = a.root.join("incoming").join(name);
        let (uid, _, mode) = owner_and_mode(&path);
        assert_eq!(uid, owner.uid, "{name}: owner");
        assert_ne!(uid, a.account.uid, "{name}: still the anonymous account's");
        assert_eq!(mode, 0o640, "{name}: mode {mode:o}");
        assert_eq!(fs::read(&path).unwrap(), fs::read(&source).unwrap());
    }
    // A local user's upload is not given away.
    let user = TestUser::create();
    let out = common::curl(&["-T", &source_arg, &a.server.ftp_url(&user, "mine.bin")]);
    assert_eq!(code(&out), 0, "local upload: {}", describe(&out));
    let (uid, _, mode) = owner_and_mode(&user.home.join("mine.bin"));
    assert_eq!(uid, user.uid, "a local user's upload changed owner");
    assert_eq!(mode, 0o644, "a local user's upload: mode {mode:o}");
    assert!(
        !a.server.log_contains("broke the monitor protocol"),
        "{:?}",
        a.server.log()
    );
}

/// How a test upload fails.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The client resets the data connection halfway.
    Reset,
    /// The client sends `ABOR` halfway (the data connection left open).
    Abort,
}

/// Start a `STOR name`, send 1 MiB, then fail it as `how`. Returns the replies that followed.
fn failed_upload(ftp: &mut FtpClient, name: &str, how: Failure) -> Vec<(u16, String)> {
    let mut data = ftp.epsv_data().expect("data connection");
    let (code, text) = ftp.cmd(&format!("STOR {name}"));
    assert_eq!(code, 150, "STOR: {text}");
    data.write_all(&rand_bytes(1 << 20)).expect("send data");
    data.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut replies = Vec::new();
    match how {
        Failure::Reset => {
            let linger = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            nix::sys::socket::setsockopt(&data, nix::sys::socket::sockopt::Linger, &linger)
                .expect("SO_LINGER 0");
            drop(data);
            replies.push(ftp.read_reply().expect("reply after the reset"));
        }
        Failure::Abort => {
            ftp.send("ABOR").unwrap();
            let first = ftp.read_reply().expect("first reply to ABOR");
            let done = first.0 == 226 || first.0 == 225;
            replies.push(first);
            if !done {
                replies.push(ftp.read_reply().expect("second reply to ABOR"));
            }
            drop(data);
        }
    }
    replies
}

fn exists_after_a_moment(path: &Path, expected: bool) -> bool {
    // The file is removed before the failure's reply; allow a moment anyway.
    common::wait_until(Duration::from_secs(3), || path.exists() == expected)
}

#[test]
fn a_reset_or_aborted_upload_is_deleted_with_delete_failed_uploads_and_kept_without() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    for delete in [true, false] {
        let server = Server::start(&format!("delete_failed_uploads = {delete}\n"), &pam);
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        assert_eq!(ftp.cmd("TYPE I").0, 200);
        for how in [Failure::Reset, Failure::Abort] {
            let name = format!("failed-{how:?}-{delete}.bin");
            let replies = failed_upload(&mut ftp, &name, how);
            assert!(
                replies[0].0 >= 400,
                "{how:?}: the failed upload's reply {replies:?}"
            );
            if let Failure::Abort = how {
                assert_eq!(
                    replies.iter().map(|r| r.0).collect::<Vec<_>>(),
                    [426, 226],
                    "{how:?}: vsftpd's replies to ABOR during a transfer: {replies:?}"
                );
            }
            let path = user.home.join(&name);
            assert!(
                exists_after_a_moment(&path, !delete),
                "{how:?}, delete_failed_uploads = {delete}: the file {}",
                if delete { "was kept" } else { "was deleted" }
            );
            // The session goes on.
            let (code, text) = ftp.transfer_out(&format!("STOR ok-{how:?}-{delete}.bin"), b"fine");
            assert_eq!(code, 226, "{how:?}: an upload after the failed one: {text}");
        }
        // A complete upload is never deleted.
        assert_eq!(
            fs::read(user.home.join(format!("ok-Abort-{delete}.bin"))).unwrap(),
            b"fine"
        );
        drop(ftp);
    }
}
