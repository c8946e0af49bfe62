//! Anonymous FTP (issue 3, part 5): `ftp` and `anonymous` log in without an account, jailed in
//! `anon_root` as `ftp_username`, with the anonymous write rights and umask.
//!
//! The account anonymous sessions run as is a fresh test user (`ftp_username`), so the tests
//! neither need nor touch the system's `ftp` account.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::{
    FtpClient, PamService, Server, TempDir, TestUser, code, curl, describe, ftp_url_at, list_line,
    lossy, owner_and_mode, proc_ids, proc_root,
};

/// curl's exit code for "the server denied the login".
const LOGIN_DENIED: i32 = 67;

const WRITABLE_ROOT_REFUSAL: &str =
    "500 OOPS: rftpd: refusing to run with writable root inside chroot()";

/// An anonymous server: `anon_root` is a root-owned 0755 directory holding `pub.txt` and an
/// `incoming` directory owned by the anonymous account.
struct Anon {
    account: TestUser,
    root: TempDir,
    server: Server,
    _pam: PamService,
}

impl Anon {
    fn new(extra: &str) -> Anon {
        Anon::with_root(extra, |_, _| {})
    }

    /// Like [`Anon::new`], with `prepare(account, anon_root)` run before the server starts.
    fn with_root(extra: &str, prepare: impl FnOnce(&TestUser, &TempDir)) -> Anon {
        let account = TestUser::create();
        let root = TempDir::new();
        fs::set_permissions(&root.path, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("pub.txt"), b"public file\n").unwrap();
        let incoming = root.join("incoming");
        fs::create_dir(&incoming).unwrap();
        fs::set_permissions(&incoming, fs::Permissions::from_mode(0o755)).unwrap();
        account.chown(&incoming);
        prepare(&account, &root);
        let pam = PamService::create(&[]);
        let server = Server::start(
            &format!(
                "anonymous_enable = true\nftp_username = \"{}\"\nanon_root = \"{}\"\n{extra}",
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

    fn url(&self, user: &str, password: &str, path: &str) -> String {
        ftp_url_at(self.server.addr(), user, password, path)
    }

    fn incoming(&self, name: &str) -> PathBuf {
        self.root.join("incoming").join(name)
    }

    fn logged_in(&self) -> FtpClient {
        let mut ftp = FtpClient::connect(self.server.addr());
        let (reply, text) = ftp.login("anonymous", "guest@example.com");
        assert_eq!(reply, 230, "anonymous login: {text}");
        ftp
    }
}

#[test]
fn anonymous_and_ftp_download_and_list_with_any_password() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("");

    for (user, password) in [("anonymous", "guest"), ("ftp", "whatever"), ("FTP", "x")] {
        let out = curl(&[&a.url(user, password, "pub.txt")]);
        assert_eq!(code(&out), 0, "{user}: {}", describe(&out));
        assert_eq!(out.stdout, b"public file\n", "{user}");
    }
    // curl's own anonymous login (no user in the URL).
    let bare = format!("ftp://127.0.0.1:{}/pub.txt", a.server.port());
    let out = curl(&[&bare]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(out.stdout, b"public file\n");

    let out = curl(&[&a.url("anonymous", "x", "/")]);
    assert_eq!(code(&out), 0, "LIST: {}", describe(&out));
    let listing = lossy(&out.stdout);
    assert!(list_line(&listing, "pub.txt").is_some(), "LIST: {listing}");
    assert!(list_line(&listing, "incoming").is_some(), "LIST: {listing}");

    let mut ftp = a.logged_in();
    assert_eq!(ftp.pwd(), "/");
    assert!(
        a.server
            .wait_log_line(&["login ok", "anonymous=true"], Duration::from_secs(5))
            .is_some(),
        "no `login ok` line for the anonymous session"
    );
}

#[test]
fn anonymous_uploads_directories_and_deletes_are_refused_by_default() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("");
    let mut ftp = a.logged_in();

    let (reply, text) = ftp.transfer_out("STOR up.txt", b"upload\n");
    assert_eq!(reply, 550, "STOR at the root: {text}");
    let (reply, text) = ftp.transfer_out("STOR incoming/up.txt", b"upload\n");
    assert_eq!(
        reply, 550,
        "STOR in the anonymous account's own directory: {text}"
    );
    assert!(!a.root.join("up.txt").exists() && !a.incoming("up.txt").exists());

    let (reply, text) = ftp.cmd("MKD incoming/newdir");
    assert_eq!(reply, 550, "MKD: {text}");
    assert!(!a.incoming("newdir").exists());
    let (reply, text) = ftp.cmd("DELE pub.txt");
    assert_eq!(reply, 550, "DELE: {text}");
    assert!(a.root.join("pub.txt").exists());

    let local = TempDir::new();
    let up = local.join("up.txt");
    fs::write(&up, b"upload\n").unwrap();
    let out = curl(&[
        "-T",
        up.to_str().unwrap(),
        &a.url("anonymous", "x", "curl.txt"),
    ]);
    assert_ne!(code(&out), 0, "curl upload: {}", describe(&out));
    assert!(!a.root.join("curl.txt").exists());
}

#[test]
fn anon_upload_enable_allows_new_files_only_owned_by_the_anonymous_account_with_anon_umask() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("write_enable = true\nanon_upload_enable = true");
    let mut ftp = a.logged_in();
    assert_eq!(ftp.cmd("TYPE I").0, 200);

    let (reply, text) = ftp.transfer_out("STOR incoming/new.bin", b"first upload\n");
    assert_eq!(reply, 226, "STOR: {text}");
    let file = a.incoming("new.bin");
    assert_eq!(fs::read(&file).unwrap(), b"first upload\n");
    assert_eq!(
        owner_and_mode(&file),
        (a.account.uid, a.account.gid, 0o600),
        "owner and mode (anon_umask 077 on 0666)"
    );

    // No overwrite, no append, no delete, no rename, no mkdir.
    let (reply, text) = ftp.transfer_out("STOR incoming/new.bin", b"overwritten\n");
    // vsftpd creates an anonymous upload with O_EXCL: an existing name is its 553.
    assert_eq!(reply, 553, "overwrite: {text}");
    let (reply, text) = ftp.transfer_out("APPE incoming/new.bin", b"appended\n");
    assert!(reply >= 400, "APPE: {text}");
    assert_eq!(
        fs::read(&file).unwrap(),
        b"first upload\n",
        "the upload changed"
    );
    let (reply, text) = ftp.cmd("DELE incoming/new.bin");
    assert_eq!(reply, 550, "DELE: {text}");
    if ftp.cmd("RNFR incoming/new.bin").0 == 350 {
        let (reply, text) = ftp.cmd("RNTO incoming/renamed.bin");
        assert_eq!(reply, 550, "RNTO: {text}");
    }
    assert!(file.exists() && !a.incoming("renamed.bin").exists());
    let (reply, text) = ftp.cmd("MKD incoming/d");
    assert_eq!(reply, 550, "MKD without anon_mkdir_write_enable: {text}");

    // The root itself is not writable by the account: the kernel refuses there.
    let (reply, text) = ftp.transfer_out("STOR at-root.bin", b"x");
    assert!(reply >= 400, "STOR at the read-only root: {text}");
    assert!(!a.root.join("at-root.bin").exists());
}

#[test]
fn anon_umask_sets_the_mode_of_anonymous_uploads() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("anon_upload_enable = true\nanon_umask = 0o027");
    let mut ftp = a.logged_in();
    let (reply, text) = ftp.transfer_out("STOR incoming/masked.txt", b"m\n");
    assert_eq!(reply, 226, "STOR: {text}");
    assert_eq!(owner_and_mode(&a.incoming("masked.txt")).2, 0o640);
}

#[test]
fn anon_mkdir_write_enable_allows_mkd() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("anon_mkdir_write_enable = true");
    let mut ftp = a.logged_in();
    let (reply, text) = ftp.cmd("MKD incoming/made");
    assert_eq!(reply, 257, "MKD: {text}");
    let dir = a.incoming("made");
    assert!(dir.is_dir(), "MKD created nothing");
    assert_eq!(owner_and_mode(&dir), (a.account.uid, a.account.gid, 0o700));
    // Uploads are still off.
    let (reply, text) = ftp.transfer_out("STOR incoming/made/x.txt", b"x");
    assert_eq!(reply, 550, "STOR without anon_upload_enable: {text}");
}

#[test]
fn anon_other_write_enable_allows_delete_and_rename() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("anon_other_write_enable = true");
    for name in ["old.txt", "move.txt"] {
        fs::write(a.incoming(name), b"old\n").unwrap();
        a.account.chown(&a.incoming(name));
    }
    let mut ftp = a.logged_in();
    let (reply, text) = ftp.cmd("DELE incoming/old.txt");
    assert_eq!(reply, 250, "DELE: {text}");
    assert!(!a.incoming("old.txt").exists(), "DELE left the file");
    let (reply, text) = ftp.cmd("RNFR incoming/move.txt");
    assert_eq!(reply, 350, "RNFR: {text}");
    let (reply, text) = ftp.cmd("RNTO incoming/moved.txt");
    assert_eq!(reply, 250, "RNTO: {text}");
    assert!(a.incoming("moved.txt").exists() && !a.incoming("move.txt").exists());
}

#[test]
fn the_anonymous_worker_runs_as_ftp_username_jailed_in_anon_root() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("");
    let mut ftp = a.logged_in();
    assert_eq!(ftp.pwd(), "/");
    let mut workers = Vec::new();
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            workers = a.server.workers();
            workers.len() == 1
        }),
        "expected one worker, found {workers:?}"
    );
    let (uids, gids) = proc_ids(workers[0]);
    assert_eq!(uids, [a.account.uid; 4], "worker uids");
    assert_eq!(gids, [a.account.gid; 4], "worker gids");
    assert_eq!(proc_root(workers[0]), a.root.path, "worker root directory");
    // Nothing above anon_root is reachable.
    let (reply, _) = ftp.cmd("CWD ..");
    assert!(reply == 250 || reply == 550);
    assert_eq!(ftp.pwd(), "/");
}

#[test]
fn an_anon_root_writable_by_the_anonymous_account_is_refused_even_with_allow_writeable_chroot() {
    if !common::require_root() {
        return;
    }
    let a = Anon::with_root("allow_writeable_chroot = true", |account, root| {
        account.chown(&root.path);
    });
    let mut ftp = FtpClient::connect(a.server.addr());
    let (reply, text) = ftp.cmd("USER anonymous");
    assert_eq!(reply, 331, "USER: {text}");
    ftp.send("PASS guest@example.com").unwrap();
    let rest = ftp
        .wait_closed(Duration::from_secs(5))
        .expect("the session stayed open");
    assert!(
        rest.contains(WRITABLE_ROOT_REFUSAL),
        "expected vsftpd's refusal, got {rest:?}"
    );
    assert!(
        a.server
            .wait_log_line(&["refusing session", "writable"], Duration::from_secs(5))
            .is_some(),
        "the log does not say why"
    );
    let out = curl(&["-v", &a.url("anonymous", "x", "pub.txt")]);
    assert_ne!(code(&out), 0, "curl downloaded: {}", describe(&out));
    assert!(
        lossy(&out.stderr).contains(WRITABLE_ROOT_REFUSAL),
        "curl did not see the refusal: {}",
        describe(&out)
    );
}

#[test]
fn anonymous_logins_are_refused_when_anonymous_enable_is_off() {
    if !common::require_root() {
        return;
    }
    let account = TestUser::create();
    let root = TempDir::new();
    fs::set_permissions(&root.path, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("pub.txt"), b"public file\n").unwrap();
    let pam = PamService::create(&[]);
    // Everything else configured for anonymous FTP, but not switched on (the default).
    let server = Server::start(
        &format!(
            "ftp_username = \"{}\"\nanon_root = \"{}\"",
            account.name,
            root.path.display()
        ),
        &pam,
    );
    for user in ["anonymous", "ftp"] {
        let mut ftp = FtpClient::connect(server.addr());
        let (reply, text) = ftp.login(user, "guest@example.com");
        assert_eq!(reply, 530, "{user}: {text}");
        let out = curl(&[&ftp_url_at(server.addr(), user, "guest", "pub.txt")]);
        assert_eq!(code(&out), LOGIN_DENIED, "{user}: {}", describe(&out));
    }
    assert!(
        !server.log_contains("anonymous=true"),
        "an anonymous session was granted"
    );
}

/// vsftpd's `no_anon_password = YES` logs `anonymous` in at `USER` (230, no `PASS`). rftpd
/// accepts the key; it must either behave so or say that it does not (issue 3, part 5; the
/// same rule as issue 4 part 3: no silently accepted option).
#[test]
fn no_anon_password_logs_in_at_user_or_check_config_says_it_is_not_honoured() {
    if !common::require_root() {
        return;
    }
    let a = Anon::new("no_anon_password = true");
    let mut ftp = FtpClient::connect(a.server.addr());
    let (reply, text) = ftp.cmd("USER anonymous");
    if reply == 230 {
        assert_eq!(ftp.pwd(), "/");
        return;
    }
    let out = std::process::Command::new(common::RFTPD)
        .arg("--check-config")
        .arg("--config")
        .arg(&a.server.config_file)
        .env_remove("RFTPD_LOG")
        .output()
        .expect("run rftpd --check-config");
    assert!(
        lossy(&out.stderr).contains("no_anon_password"),
        "USER anonymous with no_anon_password = true answered {text:?} (vsftpd: 230), and \
         --check-config does not warn about it: {}",
        describe(&out)
    );
}
