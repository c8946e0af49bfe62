//! Per-user settings, virtual users and the per-user session limit (issue 16, parts 1, 3, 4):
//! `user_config_dir` files read by the monitor after PAM, `guest_enable` with a real
//! `pam_userdb` database, and `max_per_user` counted by the master.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{
    FtpClient, PamService, Server, TempDir, TestUser, code, curl, describe, ftp_url_at, proc_ids,
    proc_root, rand_hex,
};

/// Fast refusals, and no ban from the many refusals these tests cause on purpose.
const QUIET: &str = "delay_failed_login = 0\nban_failed_logins = 0\nmax_login_fails = 0\n";

/// A root-owned 0755 directory for per-user files.
fn user_config_dir() -> TempDir {
    let dir = TempDir::new();
    fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Write a per-user file the way an operator would: root's, 0644.
fn write_user_file(dir: &TempDir, user: &str, text: &str) {
    let path = dir.join(user);
    let _ = fs::remove_file(&path);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
}

/// Upload `bytes` as `path` with curl; its exit code.
fn upload(server: &Server, user: &str, password: &str, path: &str, bytes: &[u8]) -> i32 {
    let local = TempDir::new();
    let file = local.join("upload");
    fs::write(&file, bytes).unwrap();
    let url = ftp_url_at(server.addr(), user, password, path);
    code(&curl(&["-T", &file.display().to_string(), &url]))
}

/// The one worker of the session `ftp` is logged in to (it is the only session running).
fn only_worker(server: &Server) -> u32 {
    let mut workers = Vec::new();
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            workers = server.workers();
            workers.len() == 1
        }),
        "expected one worker, found {workers:?}"
    );
    workers[0]
}

#[test]
fn a_per_user_file_changes_that_users_jail_and_rights_and_no_one_elses() {
    if !common::require_root() {
        return;
    }
    let (alice, bob) = (TestUser::create(), TestUser::create());
    alice.put_dir("jail");
    alice.put_file("jail/inside.txt", b"in the jail\n");
    alice.put_file("outside.txt", b"outside\n");
    let dir = user_config_dir();
    let jail = alice.home.join("jail");
    write_user_file(
        &dir,
        &alice.name,
        &format!(
            "# alice: her own jail, read-only\nlocal_root = \"{}\"\nwrite_enable = false\n",
            jail.display()
        ),
    );
    let pam = PamService::create(&[]);
    let server = Server::start(
        &format!("user_config_dir = \"{}\"\n{QUIET}", dir.path.display()),
        &pam,
    );

    // alice lands in local_root from her file, and may not write.
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&alice);
    assert_eq!(ftp.pwd(), "/");
    assert_eq!(proc_root(only_worker(&server)), jail, "alice's jail root");
    drop(ftp);
    let out = curl(&[&server.ftp_url(&alice, "inside.txt")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(out.stdout, b"in the jail\n");
    let out = curl(&[&server.ftp_url(&alice, "outside.txt")]);
    assert_ne!(code(&out), 0, "outside.txt is outside alice's jail");
    assert_ne!(
        upload(&server, &alice.name, &alice.password, "new.txt", b"x"),
        0
    );
    assert!(!jail.join("new.txt").exists());

    // bob has no file: the server's settings (his home, writable).
    assert_eq!(
        upload(&server, &bob.name, &bob.password, "new.txt", b"bob\n"),
        0
    );
    assert_eq!(fs::read(bob.home.join("new.txt")).unwrap(), b"bob\n");
    common::wait_until(Duration::from_secs(5), || server.workers().is_empty());
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&bob);
    assert_eq!(proc_root(only_worker(&server)), bob.home, "bob's jail root");
}

/// Puts a bad per-user file in place.
type Prepare<'a> = Box<dyn Fn() + 'a>;

#[test]
fn a_bad_per_user_file_refuses_only_that_user_with_the_reason_in_the_log() {
    if !common::require_root() {
        return;
    }
    let (alice, bob) = (TestUser::create(), TestUser::create());
    let dir = user_config_dir();
    let pam = PamService::create(&[]);
    let server = Server::start(
        &format!("user_config_dir = \"{}\"\n{QUIET}", dir.path.display()),
        &pam,
    );
    let file = dir.join(&alice.name);
    let elsewhere = TempDir::new();
    let cases: Vec<(&str, Prepare<'_>)> = vec![
        (
            "is not owned by root",
            Box::new(|| {
                write_user_file(&dir, &alice.name, "write_enable = false\n");
                alice.chown(&file);
            }),
        ),
        (
            "is writable by group or others",
            Box::new(|| {
                write_user_file(&dir, &alice.name, "write_enable = false\n");
                fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
            }),
        ),
        (
            "`listen_port` is not a per-user key",
            Box::new(|| {
                write_user_file(
                    &dir,
                    &alice.name,
                    "write_enable = false\nlisten_port = 2121\n",
                )
            }),
        ),
        (
            "`no_such_key` is not an rftpd key",
            Box::new(|| write_user_file(&dir, &alice.name, "no_such_key = 1\n")),
        ),
        (
            "invalid TOML",
            Box::new(|| write_user_file(&dir, &alice.name, "write_enable = YES\n")),
        ),
        (
            "is a symlink",
            Box::new(|| {
                let target = elsewhere.join("target");
                fs::write(&target, "write_enable = true\n").unwrap();
                let _ = fs::remove_file(&file);
                std::os::unix::fs::symlink(&target, &file).unwrap();
            }),
        ),
        (
            "is not a regular file",
            Box::new(|| {
                let _ = fs::remove_file(&file);
                fs::create_dir(&file).unwrap();
            }),
        ),
    ];
    for (reason, prepare) in &cases {
        let _ = fs::remove_dir(&file);
        prepare();
        let mut ftp = FtpClient::connect(server.addr());
        let (reply, text) = ftp.login(&alice.name, &alice.password);
        assert_eq!(reply, 530, "{reason}: {text}");
        assert!(
            server
                .wait_log_line(
                    &["login refused", reason, &alice.name],
                    Duration::from_secs(5)
                )
                .is_some(),
            "no `login refused` line saying {reason:?} for {}",
            alice.name
        );
        // Only alice: bob, without a file, logs in.
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&bob);
    }
    // The syntax error names the file and line.
    let _ = fs::remove_dir(&file);
    write_user_file(&dir, &alice.name, "\nwrite_enable = YES\n");
    let mut ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.login(&alice.name, &alice.password).0, 530);
    let located = format!("{}:2", file.display());
    assert!(
        server
            .wait_log_line(&["login refused", &located], Duration::from_secs(5))
            .is_some(),
        "the refusal does not name {located}"
    );
    // A good file lets her in again.
    write_user_file(&dir, &alice.name, "write_enable = false\n");
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&alice);
    // A directory others may write refuses everyone (a file could be deleted under it).
    fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o775)).unwrap();
    for user in [&alice, &bob] {
        let mut ftp = FtpClient::connect(server.addr());
        assert_eq!(
            ftp.login(&user.name, &user.password).0,
            530,
            "{}",
            user.name
        );
        assert!(
            server
                .wait_log_line(
                    &[
                        "login refused",
                        "is not owned by root or is writable",
                        &user.name
                    ],
                    Duration::from_secs(5)
                )
                .is_some(),
            "no refusal naming the directory for {}",
            user.name
        );
    }
    fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o755)).unwrap();
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&bob);
}

/// A virtual-user server: `pam_userdb` with two users, `guest_username` a fresh account, and
/// each virtual user jailed in `<root>/<name>` (root's, 0755) with an `upload` directory the
/// guest account owns.
struct Virtual {
    guest: TestUser,
    root: TempDir,
    users: [(String, String); 2],
    server: Server,
    _pam: PamService,
    _dir: TempDir,
}

impl Virtual {
    fn start(extra: &str, user_files: &[(usize, &str)]) -> Virtual {
        let guest = TestUser::create();
        let root = TempDir::new();
        fs::set_permissions(&root.path, fs::Permissions::from_mode(0o755)).unwrap();
        // Names that exist nowhere in NSS.
        let users = [0, 1].map(|_| (format!("rfv{}", rand_hex(8)), common::rand_alnum(16)));
        for (name, _) in &users {
            let home = root.join(name);
            fs::create_dir(&home).unwrap();
            fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
            fs::write(home.join("mine.txt"), format!("{name}\n")).unwrap();
            let upload = home.join("upload");
            fs::create_dir(&upload).unwrap();
            guest.chown(&upload);
        }
        let pam = PamService::userdb(&[(&users[0].0, &users[0].1), (&users[1].0, &users[1].1)]);
        let dir = user_config_dir();
        for (i, text) in user_files {
            write_user_file(&dir, &users[*i].0, text);
        }
        let server = Server::start(
            &format!(
                "guest_enable = true\nguest_username = \"{}\"\nlocal_root = \"{}/$USER\"\n\
                 user_sub_token = \"$USER\"\nuser_config_dir = \"{}\"\n{QUIET}{extra}",
                guest.name,
                root.path.display(),
                dir.path.display()
            ),
            &pam,
        );
        Virtual {
            guest,
            root,
            users,
            server,
            _pam: pam,
            _dir: dir,
        }
    }

    fn url(&self, i: usize, path: &str) -> String {
        ftp_url_at(self.server.addr(), &self.users[i].0, &self.users[i].1, path)
    }

    fn upload(&self, i: usize, path: &str) -> i32 {
        upload(
            &self.server,
            &self.users[i].0,
            &self.users[i].1,
            path,
            b"up\n",
        )
    }

    /// Log user `i` in on a control connection and check its worker: `guest_username`'s
    /// ids, jailed in its own directory.
    fn check_jail(&self, i: usize) {
        let (name, password) = &self.users[i];
        let mut ftp = FtpClient::connect(self.server.addr());
        let (reply, text) = ftp.login(name, password);
        assert_eq!(reply, 230, "{name}: {text}");
        assert_eq!(ftp.pwd(), "/");
        let worker = only_worker(&self.server);
        let (uids, gids) = proc_ids(worker);
        assert_eq!(uids, [self.guest.uid; 4], "{name}'s worker uids");
        assert_eq!(gids, [self.guest.gid; 4], "{name}'s worker gids");
        assert_eq!(proc_root(worker), self.root.join(name), "{name}'s jail");
        assert!(
            self.server
                .wait_log_line(&["login ok", name], Duration::from_secs(5))
                .is_some(),
            "the log does not name the virtual user {name}"
        );
        drop(ftp);
        assert!(common::wait_until(Duration::from_secs(5), || self
            .server
            .workers()
            .is_empty()));
    }
}

#[test]
fn two_virtual_users_from_pam_userdb_land_in_their_own_jails_as_guest_username_with_anonymous_rights()
 {
    if !common::require_root() {
        return;
    }
    let v = Virtual::start("", &[]);
    for i in 0..2 {
        v.check_jail(i);
        let out = curl(&[&v.url(i, "mine.txt")]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        assert_eq!(out.stdout, format!("{}\n", v.users[i].0).as_bytes());
        // Anonymous rights: anon_upload_enable is off.
        assert_ne!(v.upload(i, "upload/new.txt"), 0, "upload allowed");
        assert!(!v.root.join(&v.users[i].0).join("upload/new.txt").exists());
    }
    // A wrong password, and a name the database lacks, are refused.
    let mut ftp = FtpClient::connect(v.server.addr());
    assert_eq!(ftp.login(&v.users[0].0, "wrong").0, 530);
    let mut ftp = FtpClient::connect(v.server.addr());
    assert_eq!(ftp.login(&v.guest.name, &v.guest.password).0, 530);
}

#[test]
fn virtual_use_local_privs_gives_virtual_users_local_rights_and_their_files_apply() {
    if !common::require_root() {
        return;
    }
    // The second user's own file takes writing away from them only.
    let v = Virtual::start(
        "virtual_use_local_privs = true\n",
        &[(1, "write_enable = false\n")],
    );
    for i in 0..2 {
        v.check_jail(i);
    }
    assert_eq!(
        v.upload(0, "upload/new.txt"),
        0,
        "local rights: upload allowed"
    );
    let uploaded = v.root.join(&v.users[0].0).join("upload/new.txt");
    assert_eq!(fs::read(&uploaded).unwrap(), b"up\n");
    let meta = fs::metadata(&uploaded).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        v.guest.uid,
        "owned by guest_username"
    );
    assert_ne!(
        v.upload(1, "upload/new.txt"),
        0,
        "its file says write_enable = false"
    );
    assert!(!v.root.join(&v.users[1].0).join("upload/new.txt").exists());
}

/// Log `user` in on a new connection; the reply to PASS.
fn try_login(server: &Server, user: &TestUser) -> (FtpClient, (u16, String)) {
    let mut ftp = FtpClient::connect(server.addr());
    let reply = ftp.login(&user.name, &user.password);
    (ftp, reply)
}

/// Log in, retrying while the master has not yet seen an ended session go (bounded).
fn login_when_counted_down(server: &Server, user: &TestUser) -> FtpClient {
    let mut last = None;
    for _ in 0..50 {
        let (ftp, reply) = try_login(server, user);
        if reply.0 == 230 {
            return ftp;
        }
        last = Some(reply);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never got back in: {last:?}", user.name);
}

#[test]
fn max_per_user_refuses_the_login_over_the_limit_with_421_and_recovers() {
    if !common::require_root() {
        return;
    }
    let (alice, bob) = (TestUser::create(), TestUser::create());
    let pam = PamService::create(&[]);
    let server = Server::start(&format!("max_per_user = 2\n{QUIET}"), &pam);

    let (mut first, reply) = try_login(&server, &alice);
    assert_eq!(reply.0, 230, "{reply:?}");
    let (second, reply) = try_login(&server, &alice);
    assert_eq!(reply.0, 230, "{reply:?}");
    // The third is one too many: 421, and the connection ends.
    let (mut third, reply) = try_login(&server, &alice);
    assert_eq!(
        reply,
        (
            421,
            "421 There are too many connections from your login.".to_owned()
        )
    );
    assert!(
        third.wait_closed(Duration::from_secs(5)).is_some(),
        "still open after 421"
    );
    assert!(
        server
            .wait_log_line(
                &["session refused", "max_per_user reached", &alice.name],
                Duration::from_secs(5)
            )
            .is_some(),
        "no log line for the refusal"
    );
    // Not a failed password: fail2ban's `login refused` / FAIL LOGIN never says so.
    assert!(
        !server
            .log()
            .iter()
            .any(|l| l.contains("login refused") && l.contains(&alice.name)),
        "the refusal was logged as a failed login"
    );
    // Another user is not affected.
    let (_bob, reply) = try_login(&server, &bob);
    assert_eq!(reply.0, 230, "{reply:?}");

    // A session that ends gives its place back.
    assert_eq!(first.cmd("QUIT").0, 221);
    drop(first);
    let back = login_when_counted_down(&server, &alice);
    let (_, reply) = try_login(&server, &alice);
    assert_eq!(reply.0, 421, "the limit holds again: {reply:?}");

    // So does a session whose processes are SIGKILLed (its monitor, and with it the
    // session's PID namespace).
    drop(second);
    drop(back);
    drop(_bob);
    assert!(common::wait_until(Duration::from_secs(10), || server
        .monitors()
        .is_empty()));
    let (kept, reply) = try_login(&server, &alice);
    assert_eq!(reply.0, 230, "{reply:?}");
    let (killed, reply) = try_login(&server, &alice);
    assert_eq!(reply.0, 230, "{reply:?}");
    let monitors = server.monitors();
    assert_eq!(monitors.len(), 2, "{monitors:?}");
    common::signal(monitors[1], "KILL");
    drop(killed);
    let _again = login_when_counted_down(&server, &alice);
    drop(kept);
}

#[test]
fn max_per_user_counts_virtual_users_by_login_name_not_by_the_account_they_run_as() {
    if !common::require_root() {
        return;
    }
    let v = Virtual::start("max_per_user = 1\n", &[]);
    let login = |i: usize| {
        let mut ftp = FtpClient::connect(v.server.addr());
        let reply = ftp.login(&v.users[i].0, &v.users[i].1);
        (ftp, reply)
    };
    let (_first, reply) = login(0);
    assert_eq!(reply.0, 230, "{reply:?}");
    // Same guest_username, another login name: its own count.
    let (_other, reply) = login(1);
    assert_eq!(reply.0, 230, "{reply:?}");
    let (_, reply) = login(0);
    assert_eq!(reply.0, 421, "{reply:?}");
}

/// A per-user `local_max_rate` paces that user's downloads; another user is not limited.
#[test]
fn a_per_user_rate_limit_slows_only_that_users_downloads() {
    if !common::require_root() {
        return;
    }
    const SIZE: usize = 2 * 1024 * 1024;
    const RATE: usize = 1_000_000;
    let (slow, fast) = (TestUser::create(), TestUser::create());
    let bytes = common::rand_bytes(SIZE);
    slow.put_file("big.bin", &bytes);
    fast.put_file("big.bin", &bytes);
    let dir = user_config_dir();
    write_user_file(&dir, &slow.name, &format!("local_max_rate = {RATE}\n"));
    let pam = PamService::create(&[]);
    let server = Server::start(
        &format!("user_config_dir = \"{}\"\n{QUIET}", dir.path.display()),
        &pam,
    );
    let timed = |user: &TestUser| {
        let started = std::time::Instant::now();
        let out = curl(&["-o", "/dev/null", &server.ftp_url(user, "/big.bin")]);
        assert_eq!(code(&out), 0, "{}: {}", user.name, describe(&out));
        started.elapsed()
    };
    let expected = Duration::from_secs_f64(SIZE as f64 / RATE as f64);
    let limited = timed(&slow);
    assert!(
        limited >= expected.mul_f64(0.8) && limited < Duration::from_secs(30),
        "{} with local_max_rate = {RATE} in its file took {limited:?} (expected about {expected:?})",
        slow.name
    );
    let unlimited = timed(&fast);
    assert!(
        unlimited < expected.mul_f64(0.5),
        "{} has no per-user file but took {unlimited:?}",
        fast.name
    );
}
