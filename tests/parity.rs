//! vsftpd parity (issue 3): user lists, connection limits, failed logins and the address ban,
//! timeouts, banners, hidden and denied files, dot files, SITE commands, reload on SIGHUP and
//! active mode.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{
    FtpClient, PamService, RFTPD, Server, TempDir, TestUser, code, curl, describe, ftp_url_at,
    list_line, lossy, owner_and_mode, rand_alnum,
};

/// curl's exit code for "the server denied the login".
const LOGIN_DENIED: i32 = 67;

/// A wrong password that is never the right one.
fn wrong_password() -> String {
    format!("Wrong{}", rand_alnum(12))
}

/// `curl ARGS URL` from the source address 127.0.0.2 (another loopback client).
fn curl_from_127_0_0_2(url: &str) -> std::process::Output {
    curl(&["--interface", "127.0.0.2", url])
}

/// Keep connecting until the server greets with 220 (the master learns about ended sessions
/// when it reaps them); `None` if it still refuses after `timeout`.
fn admitted_within(addr: SocketAddr, timeout: Duration) -> Option<FtpClient> {
    let deadline = Instant::now() + timeout;
    loop {
        let ftp = FtpClient::connect(addr);
        if ftp.greeting.0 == 220 {
            return Some(ftp);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection the master refuses: greeted with exactly `reply`, then closed.
fn assert_refused_with(addr: SocketAddr, reply: &str) {
    let mut ftp = FtpClient::connect(addr);
    assert_eq!(
        ftp.greeting,
        (421, reply.to_string()),
        "the connection past the limit"
    );
    assert!(
        ftp.wait_closed(Duration::from_secs(3)).is_some(),
        "the refused connection was not closed"
    );
}

/// The worker processes of `server` once exactly `n` of them exist.
fn wait_for_workers(server: &Server, n: usize) -> Vec<u32> {
    let mut workers = Vec::new();
    let found = common::wait_until(Duration::from_secs(5), || {
        workers = server.workers();
        workers.len() == n
    });
    assert!(found, "expected {n} worker processes, found {workers:?}");
    workers
}

fn names_in(listing: &[u8]) -> Vec<String> {
    lossy(listing)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The file name at the end of an MLSD line (`facts; name`).
fn mlsd_names(listing: &[u8]) -> Vec<String> {
    lossy(listing)
        .lines()
        .filter_map(|l| l.split_once("; ").map(|(_, name)| name.trim().to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// User lists
// ---------------------------------------------------------------------------------------------

/// The refusal at USER: exactly vsftpd's reply, then the connection closes.
fn assert_refused_at_user(server: &Server, user: &TestUser) {
    let mut ftp = FtpClient::connect(server.addr());
    let reply = ftp.cmd(&format!("USER {}", user.name));
    assert_eq!(
        reply,
        (530, "530 Permission denied.".to_string()),
        "USER {}",
        user.name
    );
    assert!(
        ftp.wait_closed(Duration::from_secs(3)).is_some(),
        "the connection stayed open after the user-list refusal"
    );
    let out = curl(&[&server.ftp_url(user, "/")]);
    assert_eq!(code(&out), LOGIN_DENIED, "{}", describe(&out));
    assert!(
        server
            .wait_log_line(
                &["refused at USER by userlist_file", &user.name],
                Duration::from_secs(5)
            )
            .is_some(),
        "no `refused at USER by userlist_file` line for {}",
        user.name
    );
    // The monitor never ran PAM (nor its policy) for this user.
    for line in server.log() {
        assert!(
            !(line.contains("login refused") && line.contains(&user.name)),
            "the monitor was asked about {}: {line}",
            user.name
        );
    }
}

#[test]
fn a_user_on_the_deny_list_is_refused_at_user_without_pam_while_others_log_in() {
    if !common::require_root() {
        return;
    }
    let listed = TestUser::create();
    let other = TestUser::create();
    let pam = PamService::create(&[]);
    let lists = TempDir::new();
    let list = lists.join("user_list");
    fs::write(&list, format!("# deny list\n{}\n", listed.name)).unwrap();
    let server = Server::start(
        &format!(
            "userlist_enable = true\nuserlist_deny = true\nuserlist_file = \"{}\"",
            list.display()
        ),
        &pam,
    );

    assert_refused_at_user(&server, &listed);
    let out = curl(&[&server.ftp_url(&other, "/")]);
    assert_eq!(code(&out), 0, "user not on the list: {}", describe(&out));
}

#[test]
fn with_an_allow_list_only_the_listed_users_may_log_in() {
    if !common::require_root() {
        return;
    }
    let unlisted = TestUser::create();
    let listed = TestUser::create();
    let pam = PamService::create(&[]);
    let lists = TempDir::new();
    let list = lists.join("user_list");
    fs::write(&list, format!("{}\n", listed.name)).unwrap();
    let server = Server::start(
        &format!(
            "userlist_enable = true\nuserlist_deny = false\nuserlist_file = \"{}\"",
            list.display()
        ),
        &pam,
    );

    assert_refused_at_user(&server, &unlisted);
    let out = curl(&[&server.ftp_url(&listed, "/")]);
    assert_eq!(code(&out), 0, "listed user: {}", describe(&out));
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&listed);
    assert_eq!(ftp.pwd(), "/");
}

// ---------------------------------------------------------------------------------------------
// Connection limits
// ---------------------------------------------------------------------------------------------

#[test]
fn max_clients_refuses_the_third_connection_and_admits_again_after_a_kill_and_a_quit() {
    if !common::require_root() {
        return;
    }
    const FULL: &str = "421 There are too many connected users, please try later.";
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("max_clients = 2", &pam);

    let mut first = FtpClient::connect(server.addr());
    assert_eq!(first.greeting.0, 220, "first: {:?}", first.greeting);
    first.login_ok(&user);
    let first_worker = wait_for_workers(&server, 1)[0];
    let mut second = FtpClient::connect(server.addr());
    assert_eq!(second.greeting.0, 220, "second: {:?}", second.greeting);
    // Two sessions, one logged in: two monitors.
    assert!(
        common::wait_until(Duration::from_secs(5), || server.monitors().len() == 2),
        "expected 2 session monitors, found {:?}",
        server.monitors()
    );

    assert_refused_with(server.addr(), FULL);
    assert!(
        server
            .wait_log_line(
                &["connection refused", "max_clients"],
                Duration::from_secs(5)
            )
            .is_some(),
        "the refusal is not logged"
    );

    // A session whose worker is killed frees its place.
    common::signal(first_worker, "KILL");
    let mut third = admitted_within(server.addr(), Duration::from_secs(5))
        .expect("no connection admitted after a session was killed");
    third.login_ok(&user);
    drop(first);
    assert_refused_with(server.addr(), FULL);

    // So does one that QUITs.
    let (reply, text) = second.cmd("QUIT");
    assert_eq!(reply, 221, "QUIT: {text}");
    let mut fourth = admitted_within(server.addr(), Duration::from_secs(5))
        .expect("no connection admitted after a session quit");
    fourth.login_ok(&user);
    assert_refused_with(server.addr(), FULL);
    assert_eq!(
        third.cmd("NOOP").0,
        200,
        "the sessions admitted keep working"
    );
}

#[test]
fn max_per_ip_refuses_the_third_connection_from_one_address_but_not_another_address() {
    if !common::require_root() {
        return;
    }
    const FULL: &str = "421 There are too many connections from your internet address.";
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("max_per_ip = 2", &pam);

    let mut first = FtpClient::connect(server.addr());
    assert_eq!(first.greeting.0, 220, "first: {:?}", first.greeting);
    first.login_ok(&user);
    let first_worker = wait_for_workers(&server, 1)[0];
    let mut second = FtpClient::connect(server.addr());
    assert_eq!(second.greeting.0, 220, "second: {:?}", second.greeting);
    second.login_ok(&user);

    assert_refused_with(server.addr(), FULL);
    // Another client address is not affected (127.0.0.1 still holds two sessions).
    let out = curl_from_127_0_0_2(&server.ftp_url(&user, "/"));
    assert_eq!(
        code(&out),
        0,
        "a client from 127.0.0.2 was not admitted: {}",
        describe(&out)
    );
    assert!(
        server
            .wait_log_line(&["login ok", "127.0.0.2"], Duration::from_secs(5))
            .is_some(),
        "the login from 127.0.0.2 is not logged as such"
    );

    common::signal(first_worker, "KILL");
    let mut third = admitted_within(server.addr(), Duration::from_secs(5))
        .expect("no connection admitted after a session was killed");
    third.login_ok(&user);
    assert_refused_with(server.addr(), FULL);

    let (reply, text) = second.cmd("QUIT");
    assert_eq!(reply, 221, "QUIT: {text}");
    let mut fourth = admitted_within(server.addr(), Duration::from_secs(5))
        .expect("no connection admitted after a session quit");
    fourth.login_ok(&user);
    assert_refused_with(server.addr(), FULL);
}

// ---------------------------------------------------------------------------------------------
// Failed logins
// ---------------------------------------------------------------------------------------------

#[test]
fn the_connection_closes_after_max_login_fails_wrong_passwords() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("max_login_fails = 2\ndelay_failed_login = 0", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    let (reply, text) = ftp.login(&user.name, &wrong_password());
    assert_eq!(reply, 530, "first wrong password: {text}");
    // Still open after one failure: a second attempt is answered.
    let (reply, text) = ftp.login(&user.name, &wrong_password());
    assert_eq!(reply, 530, "second wrong password: {text}");
    assert!(
        ftp.wait_closed(Duration::from_secs(3)).is_some(),
        "the connection stayed open after max_login_fails = 2 failures"
    );
    assert!(
        server
            .wait_log_line(
                &["session ended", "too many failed logins"],
                Duration::from_secs(5)
            )
            .is_some(),
        "the end of the session should give the reason"
    );
}

#[test]
fn delay_failed_login_slows_the_failed_client_only() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("delay_failed_login = 2", &pam);

    let mut guesser = FtpClient::connect(server.addr());
    assert_eq!(guesser.cmd(&format!("USER {}", user.name)).0, 331);
    let mut other = FtpClient::connect(server.addr());

    let start = Instant::now();
    guesser.send(&format!("PASS {}", wrong_password())).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let other_start = Instant::now();
    other.login_ok(&user);
    let other_took = other_start.elapsed();
    let other_done = start.elapsed();

    let (reply, text) = guesser.read_reply().expect("reply to the wrong password");
    let guesser_took = start.elapsed();
    assert_eq!(reply, 530, "wrong password: {text}");
    assert!(
        guesser_took >= Duration::from_secs(2),
        "the 530 came after {guesser_took:?}, before delay_failed_login = 2"
    );
    // PAM's own failure delay must not add to it (rftpd turns pam_faildelay off).
    assert!(
        guesser_took < Duration::from_millis(3500),
        "the 530 came after {guesser_took:?}: more than delay_failed_login = 2"
    );
    assert!(
        other_took < Duration::from_millis(1500),
        "the other client's login took {other_took:?} while the first one waited"
    );
    assert!(
        other_done < guesser_took,
        "the other client finished after the delayed one ({other_done:?} vs {guesser_took:?})"
    );
}

#[test]
fn an_address_with_too_many_failed_logins_is_banned_while_another_address_logs_in() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        "ban_failed_logins = 3\nban_window = 60\nban_time = 60\ndelay_failed_login = 0",
        &pam,
    );

    for attempt in 1..=3 {
        let mut ftp = FtpClient::connect(server.addr());
        assert_eq!(
            ftp.greeting.0, 220,
            "connection {attempt} was refused before the ban: {:?}",
            ftp.greeting
        );
        let (reply, text) = ftp.login(&user.name, &wrong_password());
        assert_eq!(reply, 530, "wrong password {attempt}: {text}");
        assert_eq!(ftp.cmd("QUIT").0, 221);
        assert!(ftp.wait_closed(Duration::from_secs(3)).is_some());
    }
    assert!(
        server
            .wait_log_line(
                &["address banned after repeated failed logins", "127.0.0.1"],
                Duration::from_secs(5)
            )
            .is_some(),
        "no ban logged after three failures"
    );

    let mut banned = FtpClient::connect(server.addr());
    assert_eq!(banned.greeting.0, 421, "banned: {:?}", banned.greeting);
    assert_eq!(
        banned.greeting.1,
        "421 Too many failed logins from your internet address, please try later."
    );
    assert!(banned.wait_closed(Duration::from_secs(3)).is_some());
    // Even the right password does not get a banned address in.
    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_ne!(
        code(&out),
        0,
        "banned address logged in: {}",
        describe(&out)
    );

    let out = curl_from_127_0_0_2(&server.ftp_url(&user, "/"));
    assert_eq!(
        code(&out),
        0,
        "a client from another address is affected by the ban: {}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

#[test]
fn an_idle_logged_in_session_is_closed_with_421_after_idle_session_timeout() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("idle_session_timeout = 2", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let start = Instant::now();
    let rest = ftp
        .wait_closed(Duration::from_secs(8))
        .expect("the idle session was not closed within 8 s");
    let took = start.elapsed();
    assert!(
        rest.starts_with("421"),
        "the idle session should end with a 421 reply, got {rest:?}"
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "closed after {took:?} with idle_session_timeout = 2"
    );
    assert!(
        common::wait_until(Duration::from_secs(5), || server.monitors().is_empty()),
        "the session's processes are still there: {:?}",
        server.monitors()
    );
}

#[test]
fn a_client_that_never_logs_in_is_cut_off_with_421_timeout_after_login_timeout() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 2", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.greeting.0, 220);
    assert_eq!(server.monitors().len(), 1, "one session process");
    let start = Instant::now();
    let rest = ftp
        .wait_closed(Duration::from_secs(8))
        .expect("the silent client was not cut off within 8 s");
    let took = start.elapsed();
    assert_eq!(rest.trim_end(), "421 Timeout.");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "cut off after {took:?} with login_timeout = 2"
    );
    assert!(
        common::wait_until(Duration::from_secs(5), || server.monitors().is_empty()),
        "the session process is still there: {:?}",
        server.monitors()
    );
}

#[test]
fn a_client_sending_an_endless_line_before_login_is_cut_off_and_its_process_exits() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 2", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.greeting.0, 220);
    let session = server.monitors();
    assert_eq!(session.len(), 1, "one session process");
    let start = Instant::now();
    let chunk = vec![b'A'; 64 * 1024];
    let mut sent = 0usize;
    let mut write_failed = false;
    // About 1 MiB over about 3 s, never a newline.
    for _ in 0..16 {
        if ftp.send_raw(&chunk).is_err() {
            write_failed = true;
            break;
        }
        sent += chunk.len();
        std::thread::sleep(Duration::from_millis(190));
    }
    let closed = write_failed || ftp.wait_closed(Duration::from_secs(5)).is_some();
    let took = start.elapsed();
    assert!(
        closed,
        "the connection is still open {took:?} after the line began ({sent} bytes sent)"
    );
    assert!(
        took < Duration::from_secs(9),
        "cut off only after {took:?} with login_timeout = 2"
    );
    assert!(
        common::wait_until(Duration::from_secs(5), || session
            .iter()
            .all(|pid| !common::process_alive(*pid))
            && server.workers().is_empty()),
        "the session's processes are still running: monitors {:?}, workers {:?}",
        server.monitors(),
        server.workers()
    );
    // The relay caps a command line at 4 KiB, so the endless line is cut off as too long
    // (before login_timeout would end it).
    assert!(
        common::wait_until(Duration::from_secs(5), || server
            .log_contains("command line too long")
            || server.log_contains("no login in time")),
        "the log does not say why the client was cut off"
    );
}

#[test]
fn a_download_nobody_reads_ends_with_421_data_timeout() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("data_connection_timeout = 2", &pam);
    // Big enough to fill the kernel's socket buffers on both ends of the data connection.
    let big = user.home.join("big.bin");
    let file = fs::File::create(&big).unwrap();
    file.set_len(64 * 1024 * 1024).unwrap();
    drop(file);
    user.chown(&big);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.cmd("TYPE I").0, 200);
    let data = ftp.epsv_data().expect("data connection");
    let (reply, text) = ftp.cmd("RETR big.bin");
    assert_eq!(reply, 150, "RETR: {text}");
    let start = Instant::now();
    let rest = ftp
        .wait_closed(Duration::from_secs(15))
        .expect("the stalled transfer did not end the session within 15 s");
    let took = start.elapsed();
    assert!(
        rest.contains("421 Data timeout. Reconnect. Sorry."),
        "expected vsftpd's data timeout reply, got {rest:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "the data timeout came after {took:?} with data_connection_timeout = 2"
    );
    drop(data);
    assert!(
        server
            .wait_log_line(&["data connection stalled"], Duration::from_secs(5))
            .is_some(),
        "the log does not say why the session ended"
    );
}

/// Not in vsftpd's words only: `accept_timeout` is a documented key (issue 3, part 4).
#[test]

fn a_transfer_whose_passive_connection_never_comes_fails_after_accept_timeout() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("accept_timeout = 2", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text) = ftp.cmd("EPSV");
    assert_eq!(reply, 229, "EPSV: {text}");
    // Never connect to the passive port.
    let start = Instant::now();
    ftp.send("LIST").unwrap();
    ftp.set_read_timeout(Some(Duration::from_secs(10)));
    let mut replies = Vec::new();
    let failed = loop {
        match ftp.read_reply() {
            Ok((code, text)) if code < 400 => replies.push(text),
            Ok((code, text)) => {
                replies.push(text);
                break Some(code);
            }
            Err(_) => break None,
        }
    };
    let took = start.elapsed();
    assert!(
        failed.is_some_and(|c| (400..500).contains(&c)) && took < Duration::from_secs(8),
        "with accept_timeout = 2 the LIST should fail with a 4xx (vsftpd: `425 Failed to \
         establish connection.`) a few seconds after it was sent; after {took:?} got {replies:?}"
    );
    assert_eq!(ftp.cmd("NOOP").0, 200, "the session should stay usable");
}

// ---------------------------------------------------------------------------------------------
// Banners
// ---------------------------------------------------------------------------------------------

#[test]
fn banner_file_lines_make_a_multi_line_greeting() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let dir = TempDir::new();
    let banner = dir.join("banner.txt");
    fs::write(&banner, "l1\nl2\nl3\n").unwrap();
    let server = Server::start(
        &format!(
            "banner_file = \"{}\"\nftpd_banner = \"ignored\"",
            banner.display()
        ),
        &pam,
    );
    let ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.greeting, (220, "220-l1\n220-l2\n220 l3".to_string()));
}

#[test]
fn ftpd_banner_is_the_one_line_greeting() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("ftpd_banner = \"Hello\"", &pam);
    let ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.greeting, (220, "220 Hello".to_string()));
}

// ---------------------------------------------------------------------------------------------
// Hidden, denied and dot files
// ---------------------------------------------------------------------------------------------

#[test]
fn hide_file_names_are_left_out_of_listings_but_can_be_downloaded_by_name() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("hide_file = \"{*.secret}\"", &pam);
    user.put_file("a.secret", b"hidden but there\n");
    user.put_file("visible.txt", b"visible\n");

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text, list) = ftp.transfer_in("LIST");
    assert_eq!(reply, 226, "LIST: {text}");
    let list = lossy(&list);
    assert!(list_line(&list, "visible.txt").is_some(), "LIST: {list}");
    assert!(
        list_line(&list, "a.secret").is_none(),
        "LIST shows it: {list}"
    );

    let (reply, text, nlst) = ftp.transfer_in("NLST");
    assert_eq!(reply, 226, "NLST: {text}");
    let nlst = names_in(&nlst);
    assert!(nlst.iter().any(|n| n == "visible.txt"), "NLST: {nlst:?}");
    assert!(
        !nlst.iter().any(|n| n.contains("a.secret")),
        "NLST: {nlst:?}"
    );

    let (reply, text, mlsd) = ftp.transfer_in("MLSD");
    assert_eq!(reply, 226, "MLSD: {text}");
    let mlsd = mlsd_names(&mlsd);
    assert!(mlsd.iter().any(|n| n == "visible.txt"), "MLSD: {mlsd:?}");
    assert!(!mlsd.iter().any(|n| n == "a.secret"), "MLSD: {mlsd:?}");

    // As with vsftpd, a hidden file is still there for whoever knows its name.
    let out = curl(&[&server.ftp_url(&user, "a.secret")]);
    assert_eq!(code(&out), 0, "download by name: {}", describe(&out));
    assert_eq!(out.stdout, b"hidden but there\n");
}

#[test]
fn deny_file_names_cannot_be_downloaded_uploaded_renamed_or_deleted() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("deny_file = \"{*.deny}\"", &pam);
    let denied = user.put_file("x.deny", b"denied\n");
    user.put_file("ok.txt", b"ok\n");

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.cmd("TYPE I").0, 200);

    let (reply, text, data) = ftp.transfer_in("RETR x.deny");
    assert_eq!(reply, 550, "RETR x.deny: {text}");
    assert!(data.is_empty(), "RETR x.deny sent {} bytes", data.len());

    let (reply, text) = ftp.transfer_out("STOR new.deny", b"upload\n");
    assert_eq!(reply, 550, "STOR new.deny: {text}");
    assert!(
        !user.home.join("new.deny").exists(),
        "STOR created new.deny"
    );
    let (reply, text) = ftp.transfer_out("STOR x.deny", b"overwrite\n");
    assert_eq!(reply, 550, "STOR x.deny: {text}");

    let (reply, text) = ftp.cmd("RNFR x.deny");
    assert_eq!(reply, 550, "RNFR x.deny: {text}");
    let (reply, text) = ftp.cmd("RNFR ok.txt");
    assert_eq!(reply, 350, "RNFR ok.txt: {text}");
    let (reply, text) = ftp.cmd("RNTO renamed.deny");
    assert_eq!(reply, 550, "RNTO renamed.deny: {text}");
    assert!(user.home.join("ok.txt").exists(), "ok.txt was renamed");

    let (reply, text) = ftp.cmd("DELE x.deny");
    assert_eq!(reply, 550, "DELE x.deny: {text}");
    let (reply, text) = ftp.cmd("SIZE x.deny");
    assert_eq!(reply, 550, "SIZE x.deny: {text}");

    assert_eq!(fs::read(&denied).unwrap(), b"denied\n", "x.deny changed");
    assert!(
        server
            .wait_log_line(&["refused by deny_file"], Duration::from_secs(5))
            .is_some(),
        "the refusals are not logged"
    );
    // Other names are unaffected.
    let (reply, text, data) = ftp.transfer_in("RETR ok.txt");
    assert_eq!(reply, 226, "RETR ok.txt: {text}");
    assert_eq!(data, b"ok\n");
}

#[test]
fn dot_files_are_hidden_from_list_and_nlst_unless_force_dot_files() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    user.put_file(".dotfile", b"dot\n");
    user.put_file("plain.txt", b"plain\n");

    for (extra, shown) in [("", false), ("force_dot_files = true", true)] {
        let server = Server::start(extra, &pam);
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        let (reply, text, list) = ftp.transfer_in("LIST");
        assert_eq!(reply, 226, "LIST: {text}");
        let list = lossy(&list);
        assert!(list_line(&list, "plain.txt").is_some(), "LIST: {list}");
        assert_eq!(
            list_line(&list, ".dotfile").is_some(),
            shown,
            "with {extra:?}, LIST:\n{list}"
        );
        let (reply, text, nlst) = ftp.transfer_in("NLST");
        assert_eq!(reply, 226, "NLST: {text}");
        let nlst = names_in(&nlst);
        assert!(nlst.iter().any(|n| n == "plain.txt"), "NLST: {nlst:?}");
        assert_eq!(
            nlst.iter().any(|n| n == ".dotfile"),
            shown,
            "with {extra:?}, NLST: {nlst:?}"
        );
    }
}

#[test]
fn list_dash_a_shows_dot_files_and_list_dash_r_recurses_only_when_enabled() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    user.put_file(".dotfile", b"dot\n");
    user.put_dir("sub");
    user.put_file("sub/inner.txt", b"inner\n");

    let server = Server::start("", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text, list) = ftp.transfer_in("LIST -a");
    assert_eq!(reply, 226, "LIST -a: {text}");
    assert!(
        list_line(&lossy(&list), ".dotfile").is_some(),
        "LIST -a:\n{}",
        lossy(&list)
    );
    // The option applies to that one command only.
    let (_, _, list) = ftp.transfer_in("LIST");
    assert!(
        list_line(&lossy(&list), ".dotfile").is_none(),
        "LIST after LIST -a:\n{}",
        lossy(&list)
    );
    let (_, _, list) = ftp.transfer_in("LIST -R");
    assert!(
        !lossy(&list).contains("inner.txt"),
        "LIST -R without ls_recurse_enable:\n{}",
        lossy(&list)
    );
    drop(ftp);
    drop(server);

    let server = Server::start("ls_recurse_enable = true", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text, list) = ftp.transfer_in("LIST -R");
    assert_eq!(reply, 226, "LIST -R: {text}");
    let list = lossy(&list);
    assert!(
        list.contains("/sub:"),
        "no header for the subdirectory:\n{list}"
    );
    assert!(list_line(&list, "inner.txt").is_some(), "LIST -R:\n{list}");
}

// ---------------------------------------------------------------------------------------------
// SITE
// ---------------------------------------------------------------------------------------------

#[test]
fn site_chmod_changes_the_mode_on_disk() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let file = user.put_file("mode.txt", b"x\n");
    user.put_dir("sub");
    let nested = user.put_file("sub/inner.txt", b"y\n");

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text) = ftp.cmd("SITE CHMOD 600 mode.txt");
    assert_eq!(reply, 200, "SITE CHMOD: {text}");
    assert_eq!(owner_and_mode(&file).2, 0o600);
    // Relative to the working directory.
    assert_eq!(ftp.cmd("CWD sub").0, 250);
    let (reply, text) = ftp.cmd("SITE CHMOD 640 inner.txt");
    assert_eq!(reply, 200, "SITE CHMOD in sub: {text}");
    assert_eq!(owner_and_mode(&nested).2, 0o640);
    let (reply, text) = ftp.cmd("SITE CHMOD 999 inner.txt");
    assert!((500..600).contains(&reply), "a bad mode is refused: {text}");
    assert_eq!(owner_and_mode(&nested).2, 0o640);
    // Back up with CDUP (which libunftp handles without the storage layer), then XCUP at `/`.
    assert_eq!(ftp.cmd("CDUP").0, 250);
    // vsftpd's X-verbs (RFC 775) work too.
    assert_eq!(ftp.cmd("XCWD sub").0, 250);
    let (reply, text) = ftp.cmd("XPWD");
    assert_eq!(
        (reply, text.contains("\"/sub\"")),
        (257, true),
        "XPWD: {text}"
    );
    assert_eq!(ftp.cmd("XCUP").0, 250);
    assert_eq!(ftp.pwd(), "/");
    let (reply, text) = ftp.cmd("SITE CHMOD 604 mode.txt");
    assert_eq!(reply, 200, "SITE CHMOD after CDUP: {text}");
    assert_eq!(owner_and_mode(&file).2, 0o604);
    assert_eq!(owner_and_mode(&nested).2, 0o640);
}

#[test]
fn site_chmod_is_refused_without_write_enable_or_chmod_enable() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let file = user.put_file("keep.txt", b"x\n");
    for extra in ["write_enable = false", "chmod_enable = false"] {
        let server = Server::start(extra, &pam);
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        let (reply, text) = ftp.cmd("SITE CHMOD 600 keep.txt");
        assert_eq!(reply, 550, "SITE CHMOD with {extra}: {text}");
        assert_eq!(owner_and_mode(&file).2, 0o644, "mode changed with {extra}");
    }
}

#[test]
fn site_help_and_site_umask_answer() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text) = ftp.cmd("SITE HELP");
    assert_eq!(reply, 214, "SITE HELP: {text}");
    assert!(text.contains("CHMOD"), "SITE HELP: {text}");
    let (reply, text) = ftp.cmd("SITE UMASK");
    assert_eq!(reply, 200, "SITE UMASK: {text}");
    assert!(text.contains("0022"), "SITE UMASK: {text}");
}

// ---------------------------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------------------------

/// Replace one exact line of the running server's config file.
fn rewrite_config(server: &Server, from: &str, to: &str) {
    let text = fs::read_to_string(&server.config_file).unwrap();
    assert!(text.contains(from), "{from:?} not in the config:\n{text}");
    fs::write(&server.config_file, text.replace(from, to)).unwrap();
}

fn assert_session_works(ftp: &mut FtpClient, when: &str) {
    let (reply, text) = ftp.cmd("NOOP");
    assert_eq!(reply, 200, "NOOP {when}: {text}");
    assert_eq!(ftp.pwd(), "/", "PWD {when}");
    let (reply, text, list) = ftp.transfer_in("LIST");
    assert_eq!(reply, 226, "LIST {when}: {text}");
    assert!(
        list_line(&lossy(&list), "reload.txt").is_some(),
        "LIST {when}: {}",
        lossy(&list)
    );
}

#[test]
fn sighup_applies_a_valid_config_to_new_sessions_and_keeps_the_old_one_on_errors() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    user.put_file("reload.txt", b"r\n");
    let mut server = Server::start("ftpd_banner = \"one\"", &pam);

    let mut old = FtpClient::connect(server.addr());
    assert_eq!(old.greeting, (220, "220 one".to_string()));
    old.login_ok(&user);
    assert_session_works(&mut old, "before any reload");

    rewrite_config(&server, "ftpd_banner = \"one\"", "ftpd_banner = \"two\"");
    common::signal(server.pid(), "HUP");
    assert!(
        server.wait_log("configuration reloaded", Duration::from_secs(5)),
        "no `configuration reloaded` line"
    );
    let fresh = FtpClient::connect(server.addr());
    assert_eq!(fresh.greeting, (220, "220 two".to_string()));
    drop(fresh);
    assert_session_works(&mut old, "after a good reload");

    // An invalid file: the error is logged, the running configuration stays.
    rewrite_config(
        &server,
        "ftpd_banner = \"two\"",
        "ftpd_banner = \"three\"\nno_such_key_at_all = 1",
    );
    common::signal(server.pid(), "HUP");
    assert!(
        server.wait_log("reload refused", Duration::from_secs(5)),
        "no `reload refused` line"
    );
    assert!(
        server.log_contains("no_such_key_at_all"),
        "the log should name the bad key"
    );
    let fresh = FtpClient::connect(server.addr());
    assert_eq!(fresh.greeting, (220, "220 two".to_string()));
    assert_session_works(&mut old, "after a refused reload");
    assert!(server.is_running(), "the master died");
}

// ---------------------------------------------------------------------------------------------
// Active mode
// ---------------------------------------------------------------------------------------------

/// Whether anything connects to `listener` within `wait`.
fn connection_arrives(listener: &TcpListener, wait: Duration) -> bool {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok(_) => return true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    false
}

fn port_argument(port: u16) -> String {
    format!("127,0,0,1,{},{}", port >> 8, port & 0xff)
}

/// A listener on `ip` at a free port at or above 1024 (as root, a port below 1024 can be asked
/// for with `privileged`).
fn listener_on(ip: &str, privileged: bool) -> TcpListener {
    if !privileged {
        return TcpListener::bind((ip, 0)).unwrap();
    }
    (600..1024)
        .rev()
        .find_map(|port| TcpListener::bind((ip, port)).ok())
        .expect("a free port below 1024")
}

#[test]
fn curl_in_active_mode_lists_uploads_and_downloads_over_eprt_and_port() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    // The default: port_enable = true, port_promiscuous = false.
    let server = Server::start("", &pam);
    let local = TempDir::new();
    let data = common::rand_bytes(3 * 1024 * 1024 + 17);
    let up = local.join("up.bin");
    fs::write(&up, &data).unwrap();
    for (mode, extra) in [("EPRT", &[][..]), ("PORT", &["--disable-eprt"][..])] {
        let name = format!("active-{mode}.bin");
        let with = |args: &[&str]| {
            let mut all = vec!["-P", "127.0.0.1"];
            all.extend_from_slice(extra);
            all.extend_from_slice(args);
            curl(&all)
        };
        let out = with(&["-T", up.to_str().unwrap(), &server.ftp_url(&user, &name)]);
        assert_eq!(code(&out), 0, "{mode}: upload: {}", describe(&out));
        assert!(
            fs::read(user.home.join(&name)).unwrap() == data,
            "{mode}: the upload differs"
        );
        let down = local.join(&format!("down-{name}"));
        let out = with(&["-o", down.to_str().unwrap(), &server.ftp_url(&user, &name)]);
        assert_eq!(code(&out), 0, "{mode}: download: {}", describe(&out));
        assert!(
            fs::read(&down).unwrap() == data,
            "{mode}: the download differs"
        );
        let out = with(&["-v", &server.ftp_url(&user, "/")]);
        assert_eq!(code(&out), 0, "{mode}: list: {}", describe(&out));
        assert!(
            list_line(&lossy(&out.stdout), &name).is_some(),
            "{mode}: not listed: {}",
            lossy(&out.stdout)
        );
        assert!(
            lossy(&out.stderr).contains(&format!("> {mode} ")),
            "{mode}: curl did not use {mode}: {}",
            lossy(&out.stderr)
        );
    }
}

#[test]
fn port_and_eprt_to_another_host_or_a_privileged_port_are_refused_before_any_connection() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    // The client is 127.0.0.1; 127.0.0.2 is another host as far as rftpd can tell.
    let elsewhere = listener_on("127.0.0.2", false);
    let port = elsewhere.local_addr().unwrap().port();
    let (reply, text) = ftp.cmd(&format!("PORT 127,0,0,2,{},{}", port >> 8, port & 0xff));
    assert_eq!((reply, text.as_str()), (500, "500 Illegal PORT command."));
    let (reply, text) = ftp.cmd(&format!("EPRT |1|127.0.0.2|{port}|"));
    assert_eq!((reply, text.as_str()), (500, "500 Illegal EPRT command."));
    // The client's own address, but a privileged port.
    let low = listener_on("127.0.0.1", true);
    let low_port = low.local_addr().unwrap().port();
    let (reply, text) = ftp.cmd(&format!("PORT {}", port_argument(low_port)));
    assert_eq!((reply, text.as_str()), (500, "500 Illegal PORT command."));
    let (reply, text) = ftp.cmd("PORT 1,2,3");
    assert_eq!((reply, text.as_str()), (500, "500 Illegal PORT command."));
    // A transfer after the refused commands must not use them either.
    let (reply, text) = ftp.cmd("LIST");
    assert_ne!(reply, 150, "LIST after refused PORTs: {text}");
    for (listener, what) in [(&elsewhere, "127.0.0.2"), (&low, "a port below 1024")] {
        assert!(
            !connection_arrives(listener, Duration::from_secs(1)),
            "rftpd connected to {what}"
        );
    }
    assert_eq!(ftp.cmd("NOOP").0, 200, "the session goes on");
    assert!(server.log_contains("port_promiscuous = false"));

    // port_promiscuous = true lets it through (and says so at startup).
    let server = Server::start("port_promiscuous = true", &pam);
    assert!(server.wait_log("FTP bounce", Duration::from_secs(5)));
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text) = ftp.cmd(&format!("EPRT |1|127.0.0.2|{port}|"));
    assert_eq!(reply, 200, "promiscuous EPRT: {text}");
    assert!(connection_arrives(&elsewhere, Duration::from_secs(5)));
}

#[test]
fn without_port_enable_port_and_eprt_are_unknown_commands_and_nothing_connects() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("port_enable = false", &pam);
    let listener = listener_on("127.0.0.1", false);
    let port = listener.local_addr().unwrap().port();
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    let (reply, text) = ftp.cmd(&format!("PORT {}", port_argument(port)));
    assert_eq!((reply, text.as_str()), (500, "500 Unknown command."));
    let (reply, text) = ftp.cmd(&format!("EPRT |1|127.0.0.1|{port}|"));
    assert_eq!((reply, text.as_str()), (500, "500 Unknown command."));
    let (reply, text) = ftp.cmd("LIST");
    assert_ne!(reply, 150, "LIST after a refused PORT: {text}");
    assert!(
        !connection_arrives(&listener, Duration::from_secs(1)),
        "rftpd connected to the address named in PORT/EPRT"
    );
}

#[test]
fn connect_from_port_20_makes_active_connections_from_ftp_data_port() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    user.put_file("listed.txt", b"x\n");
    // A free port stands in for 20, so the test does not depend on what else runs here.
    let data_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start(
        &format!("connect_from_port_20 = true\nftp_data_port = {data_port}"),
        &pam,
    );
    for round in 0..2 {
        let listener = listener_on("127.0.0.1", false);
        let port = listener.local_addr().unwrap().port();
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        let (reply, text) = ftp.cmd(&format!("PORT {}", port_argument(port)));
        assert_eq!(reply, 200, "round {round}: PORT: {text}");
        let (mut data, from) = listener.accept().unwrap();
        assert_eq!(from.port(), data_port, "round {round}: source port");
        let (reply, text) = ftp.cmd("NLST");
        assert_eq!(reply, 150, "round {round}: NLST: {text}");
        let mut listing = String::new();
        std::io::Read::read_to_string(&mut data, &mut listing).unwrap();
        assert!(listing.contains("listed.txt"), "round {round}: {listing:?}");
        let (reply, text) = ftp.read_reply().unwrap();
        assert_eq!(reply, 226, "round {round}: {text}");
        assert_eq!(ftp.cmd("QUIT").0, 221);
    }
}

#[test]
fn check_config_warns_about_a_promiscuous_active_mode_only() {
    if !common::require_root() {
        return;
    }
    common::ensure_service_account();
    let dir = TempDir::new();
    let file = dir.join("rftpd.toml");
    for (text, warned) in [
        ("port_enable = true\n", false),
        ("port_promiscuous = true\n", true),
        ("port_enable = false\nport_promiscuous = true\n", false),
    ] {
        fs::write(&file, text).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let out = std::process::Command::new(RFTPD)
            .arg("--check-config")
            .arg("--config")
            .arg(&file)
            .env_remove("RFTPD_LOG")
            .output()
            .expect("run rftpd --check-config");
        assert_eq!(out.status.code(), Some(0), "{text:?}: {}", describe(&out));
        assert_eq!(
            lossy(&out.stderr).contains("FTP bounce"),
            warned,
            "{text:?}: {}",
            lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Root (cheap: the login tests cover it with curl; this checks the raw reply)
// ---------------------------------------------------------------------------------------------

#[test]
fn root_is_refused_with_530_whatever_the_password() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    let (reply, text) = ftp.login("root", &wrong_password());
    assert_eq!(reply, 530, "root: {text}");
    let out = curl(&[&ftp_url_at(server.addr(), "root", "anything", "/")]);
    assert_eq!(code(&out), LOGIN_DENIED, "{}", describe(&out));
}
