//! The jail: where a user starts, what they can see, and that nothing reaches outside it.
//!
//! Known gap: a user who is not jailed starts at `/` (libunftp has no initial-directory hook);
//! vsftpd starts them in their home. The test for that is ignored until it is fixed.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::{
    FtpClient, PamService, RemoveOnDrop, Server, TempDir, TestUser, code, contains_bytes, curl,
    describe, list_line, lossy,
};

/// What /etc/passwd looks like; no reply or download may ever contain it.
const PASSWD_MARK: &[u8] = b"root:x:0:0";

#[test]
fn jailed_user_starts_at_root_and_sees_their_home_there() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    user.put_file("marker-jailed.txt", b"jailed\n");

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/", "a jailed user must start at the jail root");

    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        list_line(&lossy(&out.stdout), "marker-jailed.txt").is_some(),
        "home not listed at /: {}",
        describe(&out)
    );
    assert!(
        server
            .wait_log_line(
                &["login ok", &user.name, "jailed=true"],
                Duration::from_secs(5)
            )
            .is_some(),
        "the login line should say the user is jailed"
    );
}

#[test]
fn user_who_is_not_jailed_starts_in_their_home() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("chroot_local_user = false", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(
        ftp.pwd(),
        user.home.to_string_lossy(),
        "vsftpd starts a user who is not jailed in their home"
    );
}

#[test]
fn user_who_is_not_jailed_sees_real_paths_and_can_list_their_home() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("chroot_local_user = false", &pam);
    user.put_file("marker-free.txt", b"free\n");
    let home = user.home.to_string_lossy().into_owned();

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text) = ftp.cmd(&format!("CWD {home}"));
    assert_eq!(reply, 250, "CWD {home}: {text}");
    assert_eq!(
        ftp.pwd(),
        home,
        "PWD after CWD to the home shows the real path"
    );

    // %2F: an absolute path, whatever directory the session starts in.
    let out = curl(&[&server.ftp_url(&user, &format!("%2F{}/", home.trim_start_matches('/')))]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        list_line(&lossy(&out.stdout), "marker-free.txt").is_some(),
        "home not listed: {}",
        describe(&out)
    );
    assert!(
        server
            .wait_log_line(
                &["login ok", &user.name, "jailed=false"],
                Duration::from_secs(5)
            )
            .is_some(),
        "the login line should say the user is not jailed"
    );
}

#[test]
fn chroot_list_exempts_the_listed_users_from_the_jail() {
    if !common::require_root() {
        return;
    }
    let free = TestUser::create();
    let jailed = TestUser::create();
    let pam = PamService::create(&[]);
    let lists = TempDir::new();
    let list = lists.join("chroot_list");
    fs::write(
        &list,
        format!("# users who are not jailed\n{}\n", free.name),
    )
    .unwrap();
    let server = Server::start(
        &format!(
            "chroot_local_user = true\nchroot_list_enable = true\nchroot_list_file = \"{}\"",
            list.display()
        ),
        &pam,
    );
    let hostname = fs::read("/etc/hostname").expect("read /etc/hostname");

    // The listed user sees the real filesystem. Listing /etc (which CWD does) races with
    // useradd/userdel of other tests; keep them out meanwhile.
    let quiet = common::accounts_quiet();
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&free);
    let (reply, text) = ftp.cmd("CWD /etc");
    assert_eq!(reply, 250, "the listed user should reach /etc: {text}");
    let out = curl(&[&server.ftp_url(&free, "%2Fetc/hostname")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        out.stdout, hostname,
        "the listed user should get the real /etc/hostname"
    );
    drop(quiet);

    // Anyone else is jailed.
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&jailed);
    let (reply, text) = ftp.cmd("CWD /etc");
    assert!(
        reply >= 500,
        "a user not in the list reached /etc: {reply} {text}"
    );
    assert_eq!(ftp.pwd(), "/");
    let out = curl(&[&server.ftp_url(&jailed, "%2Fetc/hostname")]);
    assert_ne!(
        code(&out),
        0,
        "a jailed user downloaded /etc/hostname: {}",
        describe(&out)
    );
}

/// A jailed user with a marker file and a file to rename; the server with default settings.
struct Escape {
    user: TestUser,
    server: Server,
    _pam: PamService,
}

impl Escape {
    fn setup() -> Escape {
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let server = Server::start("", &pam);
        user.put_file("marker-inside.txt", b"inside\n");
        Escape {
            user,
            server,
            _pam: pam,
        }
    }

    fn logged_in(&self) -> FtpClient {
        let mut ftp = FtpClient::connect(self.server.addr());
        ftp.login_ok(&self.user);
        ftp
    }

    /// `/tmp/<unique>`, removed at the end if the server created it after all.
    fn outside_target() -> (String, RemoveOnDrop) {
        let name = common::unique_name("rftpd-escape-");
        let guard = RemoveOnDrop(PathBuf::from("/tmp").join(&name));
        (name, guard)
    }
}

#[test]
fn cwd_above_the_jail_root_stays_at_the_root() {
    if !common::require_root() {
        return;
    }
    let e = Escape::setup();
    let mut ftp = e.logged_in();
    for path in ["/..", "..", "../../..", "/../../../etc/.."] {
        let (reply, text) = ftp.cmd(&format!("CWD {path}"));
        assert_eq!(ftp.pwd(), "/", "after CWD {path} ({reply} {text})");
        let (reply, text, data) = ftp.transfer_in("LIST");
        assert_eq!(reply, 226, "LIST after CWD {path}: {text}");
        let listing = lossy(&data);
        assert!(
            list_line(&listing, "marker-inside.txt").is_some(),
            "after CWD {path} the listing is not the home:\n{listing}"
        );
    }
}

#[test]
fn files_outside_the_jail_cannot_be_downloaded() {
    if !common::require_root() {
        return;
    }
    let e = Escape::setup();
    for path in [
        "%2Fetc/passwd",
        "../../etc/passwd",
        "../../../../../../etc/passwd",
        "/etc/../../etc/passwd",
    ] {
        let out = curl(&["--path-as-is", &e.server.ftp_url(&e.user, path)]);
        assert_ne!(code(&out), 0, "RETR {path} succeeded: {}", describe(&out));
        assert!(
            !contains_bytes(&out.stdout, PASSWD_MARK),
            "RETR {path} returned /etc/passwd"
        );
    }
    let mut ftp = e.logged_in();
    ftp.cmd("TYPE I");
    for path in [
        "/etc/passwd",
        "../../etc/passwd",
        "../../../../../../etc/passwd",
    ] {
        let (reply, text, data) = ftp.transfer_in(&format!("RETR {path}"));
        assert!(reply >= 400, "RETR {path}: {reply} {text}");
        assert!(
            !contains_bytes(&data, PASSWD_MARK),
            "RETR {path} returned /etc/passwd"
        );
    }
}

#[test]
fn uploads_outside_the_jail_create_nothing_there() {
    if !common::require_root() {
        return;
    }
    let e = Escape::setup();
    let local = TempDir::new();
    let payload = local.join("payload");
    fs::write(&payload, b"escaped\n").unwrap();

    let (name, _guard) = Escape::outside_target();
    let out = curl(&[
        "--path-as-is",
        "-T",
        payload.to_str().unwrap(),
        &e.server.ftp_url(&e.user, &format!("../../tmp/{name}")),
    ]);
    assert!(
        !PathBuf::from("/tmp").join(&name).exists(),
        "STOR ../../tmp/{name} created /tmp/{name}: {}",
        describe(&out)
    );

    let (name2, _guard2) = Escape::outside_target();
    let mut ftp = e.logged_in();
    ftp.cmd("TYPE I");
    for path in [format!("../../tmp/{name2}"), format!("/../tmp/{name2}")] {
        let reply = ftp.transfer_out(&format!("STOR {path}"), b"escaped\n");
        assert!(
            !PathBuf::from("/tmp").join(&name2).exists(),
            "STOR {path} created /tmp/{name2} ({reply:?})"
        );
    }
}

#[test]
fn symlinks_in_the_home_do_not_lead_outside() {
    if !common::require_root() {
        return;
    }
    let e = Escape::setup();
    let to_passwd = e.user.home.join("link-to-passwd");
    let to_root = e.user.home.join("link-to-root");
    std::os::unix::fs::symlink("/etc/passwd", &to_passwd).unwrap();
    std::os::unix::fs::symlink("/", &to_root).unwrap();
    e.user.chown(&to_passwd);
    e.user.chown(&to_root);

    for path in [
        "link-to-passwd",
        "link-to-root/etc/passwd",
        "link-to-root/../etc/passwd",
    ] {
        let out = curl(&["--path-as-is", &e.server.ftp_url(&e.user, path)]);
        assert!(
            !contains_bytes(&out.stdout, PASSWD_MARK),
            "{path} returned /etc/passwd: {}",
            describe(&out)
        );
    }
    // Through the link to /, the user sees the jail root (their home), not the real /.
    let out = curl(&[&e.server.ftp_url(&e.user, "link-to-root/")]);
    let listing = lossy(&out.stdout);
    assert!(
        list_line(&listing, "etc").is_none(),
        "link-to-root/ lists the real root: {listing}"
    );

    let mut ftp = e.logged_in();
    ftp.cmd("TYPE I");
    for path in ["link-to-passwd", "link-to-root/etc/passwd"] {
        let (_, _, data) = ftp.transfer_in(&format!("RETR {path}"));
        assert!(
            !contains_bytes(&data, PASSWD_MARK),
            "RETR {path} returned /etc/passwd"
        );
    }
}

#[test]
fn mkdir_and_rename_outside_the_jail_create_nothing_there() {
    if !common::require_root() {
        return;
    }
    let e = Escape::setup();
    e.user.put_file("to-move.txt", b"move me\n");
    let mut ftp = e.logged_in();

    let (dir, _guard) = Escape::outside_target();
    for path in [format!("../../tmp/{dir}"), format!("/../../tmp/{dir}")] {
        let reply = ftp.cmd(&format!("MKD {path}"));
        assert!(
            !PathBuf::from("/tmp").join(&dir).exists(),
            "MKD {path} created /tmp/{dir} ({reply:?})"
        );
    }

    let (moved, _guard2) = Escape::outside_target();
    for path in [format!("../../tmp/{moved}"), format!("/../../tmp/{moved}")] {
        let (reply, text) = ftp.cmd("RNFR to-move.txt");
        assert_eq!(reply, 350, "RNFR to-move.txt: {text}");
        let reply = ftp.cmd(&format!("RNTO {path}"));
        assert!(
            !PathBuf::from("/tmp").join(&moved).exists(),
            "RNTO {path} created /tmp/{moved} ({reply:?})"
        );
        // If the rename happened inside the jail, move the file back for the next attempt.
        if !e.user.home.join("to-move.txt").exists() {
            let inside = e.user.home.join("tmp").join(&moved);
            if inside.exists() {
                fs::rename(&inside, e.user.home.join("to-move.txt")).unwrap();
            }
        }
    }
}

#[test]
fn writable_jail_root_is_refused_when_allow_writeable_chroot_is_false() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("allow_writeable_chroot = false", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    let (reply, text) = ftp.cmd(&format!("USER {}", user.name));
    assert_eq!(reply, 331, "USER: {text}");
    ftp.send(&format!("PASS {}", user.password)).unwrap();
    let rest = ftp.read_until_closed();
    assert!(
        rest.contains("500 OOPS: rftpd: refusing to run with writable root inside chroot()"),
        "expected vsftpd's refusal after PASS, got: {rest:?}"
    );
    // A refused session must not be usable afterwards.
    assert!(
        ftp.try_cmd("PWD").is_err(),
        "the session still answers after the refusal"
    );

    let line = server
        .wait_log_line(&[&user.name, "writable"], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no log line says why {} was refused", user.name));
    assert!(
        line.contains("allow_writeable_chroot"),
        "the log should name the option: {line}"
    );

    // curl sees the same reply.
    let out = curl(&["-v", &server.ftp_url(&user, "/")]);
    assert_ne!(
        code(&out),
        0,
        "curl logged in and listed: {}",
        describe(&out)
    );
    assert!(
        lossy(&out.stderr)
            .contains("500 OOPS: rftpd: refusing to run with writable root inside chroot()"),
        "curl did not see the refusal: {}",
        describe(&out)
    );
}

#[test]
fn read_only_jail_root_is_accepted_when_allow_writeable_chroot_is_false() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("allow_writeable_chroot = false", &pam);
    user.put_file("marker-readonly.txt", b"ro\n");
    fs::set_permissions(&user.home, fs::Permissions::from_mode(0o555)).unwrap();

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/");
    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        list_line(&lossy(&out.stdout), "marker-readonly.txt").is_some(),
        "home not listed: {}",
        describe(&out)
    );
}

#[test]
fn local_root_with_user_sub_token_jails_the_user_there() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let base = PathBuf::from(format!("/srv/rftpd-test-{}", common::rand_hex(10)));
    let _base_guard = RemoveOnDrop(base.clone());
    let root = base.join(&user.name);
    fs::create_dir_all(&root).unwrap();
    user.chown(&root);
    fs::write(root.join("marker-local-root.txt"), b"local root\n").unwrap();
    user.chown(&root.join("marker-local-root.txt"));
    user.put_file("marker-home.txt", b"home\n");

    let server = Server::start(
        &format!(
            "local_root = \"{}/$USER\"\nuser_sub_token = \"$USER\"",
            base.display()
        ),
        &pam,
    );
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/");

    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let listing = lossy(&out.stdout);
    assert!(
        list_line(&listing, "marker-local-root.txt").is_some(),
        "local_root not listed at /: {listing}"
    );
    assert!(
        list_line(&listing, "marker-home.txt").is_none(),
        "the home was listed instead of local_root: {listing}"
    );
    assert!(
        server
            .wait_log_line(
                &["login ok", &user.name, &root.to_string_lossy()],
                Duration::from_secs(5)
            )
            .is_some(),
        "the login line should name the start directory {}",
        root.display()
    );
}
