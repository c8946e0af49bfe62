//! Who may log in: PAM passwords, the PAM deny list, root, `local_enable`; PAM sessions
//! (`session_support`).
//!
//! Known gap: libunftp answers a refused login with `530 Authentication failed` where vsftpd
//! says `530 Login incorrect.`; these tests only check the code (530, curl exit 67).

mod common;

use std::time::Duration;

use common::{
    FtpClient, PamService, Server, TestUser, code, curl, describe, ftp_url_at, list_line, lossy,
};

/// curl's exit code for "the server denied the login".
const LOGIN_DENIED: i32 = 67;

#[test]
fn correct_password_lists_the_home() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    user.put_file("hello-from-the-test.txt", b"hello\n");

    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "listing failed: {}", describe(&out));
    let listing = lossy(&out.stdout);
    let line = list_line(&listing, "hello-from-the-test.txt")
        .unwrap_or_else(|| panic!("the file is not in the listing:\n{listing}"));
    assert!(
        line.contains(&user.name),
        "the file should be shown as owned by {}: {line}",
        user.name
    );
    assert!(
        server
            .wait_log_line(&["login ok", &user.name], Duration::from_secs(5))
            .is_some(),
        "no `login ok` log line for {}",
        user.name
    );
    for l in server.log() {
        assert!(
            !l.contains(&user.password),
            "the log contains the password: {l}"
        );
    }
}

#[test]
fn wrong_password_is_refused_with_530_and_logged() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let wrong = format!("Wrong{}", common::rand_alnum(12));

    let out = curl(&[&ftp_url_at(server.addr(), &user.name, &wrong, "/")]);
    assert_eq!(code(&out), LOGIN_DENIED, "{}", describe(&out));

    let mut ftp = FtpClient::connect(server.addr());
    let (reply, text) = ftp.login(&user.name, &wrong);
    assert_eq!(reply, 530, "PASS with a wrong password: {text}");

    let line = server
        .wait_log_line(&["login refused", &user.name], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no `login refused` line naming {}", user.name));
    assert!(
        line.contains("127.0.0.1"),
        "the refusal should name the client address: {line}"
    );
    assert!(
        line.to_lowercase().contains("authentication failed"),
        "the refusal should give PAM's reason: {line}"
    );
    drop(ftp);
    for l in server.log() {
        assert!(
            !l.contains(&wrong),
            "the log contains the wrong password: {l}"
        );
        assert!(
            !l.contains(&user.password),
            "the log contains the user's password: {l}"
        );
    }
}

#[test]
fn unknown_user_is_refused_and_logged() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let nobody = common::unique_name("rftnouser");

    let out = curl(&[&ftp_url_at(server.addr(), &nobody, "Whatever123", "/")]);
    assert_eq!(code(&out), LOGIN_DENIED, "{}", describe(&out));
    assert!(
        server
            .wait_log_line(&["login refused", &nobody], Duration::from_secs(5))
            .is_some(),
        "no `login refused` line naming {nobody}"
    );
}

#[test]
fn user_in_the_pam_deny_list_is_refused_even_with_the_right_password() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[&user.name]);
    let server = Server::start("", &pam);

    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(
        code(&out),
        LOGIN_DENIED,
        "a denied user logged in: {}",
        describe(&out)
    );
    assert!(
        server
            .wait_log_line(&["login refused", &user.name], Duration::from_secs(5))
            .is_some(),
        "no `login refused` line naming {}",
        user.name
    );
}

#[test]
fn root_is_refused_with_any_password() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    for password in ["root", "", "Secret123"] {
        let out = curl(&[&ftp_url_at(server.addr(), "root", password, "/")]);
        assert_eq!(
            code(&out),
            LOGIN_DENIED,
            "root with password {password:?}: {}",
            describe(&out)
        );
    }
    let mut ftp = FtpClient::connect(server.addr());
    let (reply, text) = ftp.login("root", "x");
    assert_eq!(reply, 530, "PASS for root: {text}");
}

#[test]
fn local_enable_false_refuses_everyone() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("local_enable = false", &pam);

    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(
        code(&out),
        LOGIN_DENIED,
        "logged in with local_enable = false: {}",
        describe(&out)
    );
    let line = server
        .wait_log_line(&["login refused", &user.name], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no `login refused` line naming {}", user.name));
    assert!(
        line.contains("local_enable"),
        "the refusal should name local_enable: {line}"
    );
}

/// A PAM service whose `session` stack also runs a script that appends
/// `PAM_TYPE PAM_USER` to a file; returns the service, the file and the temp dir holding both.
fn pam_with_session_recorder() -> (PamService, std::path::PathBuf, common::TempDir) {
    let dir = common::TempDir::new();
    let record = dir.path.join("pam-session.log");
    let script = dir.path.join("record-session.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PAM_TYPE $PAM_USER\" >> {}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pam = PamService::create(&[]);
    pam.append(&format!(
        "session optional pam_exec.so {}",
        script.display()
    ));
    (pam, record, dir)
}

#[test]
fn session_support_opens_a_pam_session_at_login_and_closes_it_at_logout() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let (pam, record, _dir) = pam_with_session_recorder();
    let server = Server::start("session_support = true", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/");
    let opened = std::fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(
        opened.lines().collect::<Vec<_>>(),
        [format!("open_session {}", user.name)],
        "the PAM session is open while the user is logged in"
    );
    assert_eq!(ftp.cmd("QUIT").0, 221);
    let closed = common::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&record)
            .unwrap_or_default()
            .contains("close_session")
    });
    assert!(closed, "the PAM session was not closed at logout");
    assert_eq!(
        std::fs::read_to_string(&record)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        [
            format!("open_session {}", user.name),
            format!("close_session {}", user.name)
        ]
    );
}

#[test]
fn without_session_support_no_pam_session_is_opened() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let (pam, record, _dir) = pam_with_session_recorder();
    // The default, as in vsftpd.
    let server = Server::start("", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/");
    assert_eq!(ftp.cmd("QUIT").0, 221);
    assert!(
        common::wait_until(Duration::from_secs(5), || server.monitors().is_empty()),
        "the session did not end"
    );
    assert!(
        !record.exists(),
        "a PAM session module ran without session_support: {:?}",
        std::fs::read_to_string(&record)
    );
}

#[test]
fn a_user_name_that_is_not_ascii_is_refused_like_vsftpd_without_asking_pam_and_the_session_goes_on()
{
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    // Latin-1 `café`, then the UTF-8 spelling: vsftpd refuses both with 530 (its user names
    // are printable ASCII); neither reaches PAM or NSS.
    for name in [&b"caf\xe9"[..], "café".as_bytes()] {
        let mut line = b"USER ".to_vec();
        line.extend_from_slice(name);
        line.extend_from_slice(b"\r\n");
        ftp.send_raw(&line).unwrap();
        let (reply, text) = ftp.read_reply().unwrap();
        assert_eq!(reply, 331, "USER with bytes {name:?}: {text}");
        let (reply, text) = ftp.cmd("PASS Whatever123");
        assert_eq!(reply, 530, "PASS after USER {name:?}: {text}");
        assert!(
            !text.contains("valid"),
            "the client is not told why: {text}"
        );
    }
    assert!(
        server
            .wait_log_line(
                &["login refused", "not a valid user name"],
                Duration::from_secs(5)
            )
            .is_some(),
        "no `login refused` line saying the name is not valid"
    );
    // The same session still logs a real user in (two failures are under max_login_fails).
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/");
}
