//! The Prometheus endpoint (`metrics_enable`): scraped with curl while real sessions run and
//! after they end (sessions open, logins by result, bytes and transfers by direction and
//! result), the endpoint process's sandbox read from `/proc`, garbage, oversized and stalled
//! requests (answered or dropped, nothing crashes), and nothing listening with metrics off.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{FtpClient, PamService, Server, TestUser, curl, describe, lossy};

const WAIT: Duration = Duration::from_secs(15);

/// A server with metrics on an ephemeral loopback port, and that port.
fn server_with_metrics(pam: &PamService) -> (Server, SocketAddr) {
    server_with_metrics_and(pam, "")
}

fn server_with_metrics_and(pam: &PamService, extra: &str) -> (Server, SocketAddr) {
    let server = Server::start(
        &format!("metrics_enable = true\nmetrics_listen = \"127.0.0.1:0\"\n{extra}"),
        pam,
    );
    let line = server
        .wait_log_line(&["metrics on http://"], WAIT)
        .unwrap_or_else(|| panic!("no metrics address:\n{}", server.log().join("\n")));
    let at = line.find("http://").unwrap() + "http://".len();
    let address = line[at..].split('/').next().unwrap().parse().unwrap();
    (server, address)
}

fn scrape(address: SocketAddr) -> String {
    let out = curl(&[&format!("http://{address}/metrics")]);
    assert_eq!(out.status.code(), Some(0), "scrape: {}", describe(&out));
    lossy(&out.stdout)
}

/// The value of the sample `name` (with its labels, as written: `x_total{a="b"}`).
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrape until `name` is `want` (counts arrive a moment after the client sees its reply).
fn wait_value(address: SocketAddr, name: &str, want: f64) -> String {
    let mut text = String::new();
    let reached = common::wait_until(WAIT, || {
        text = scrape(address);
        value(&text, name) == Some(want)
    });
    assert!(reached, "{name} is not {want}:\n{text}");
    text
}

fn endpoint_pid(server: &Server) -> u32 {
    let mut found = Vec::new();
    common::wait_until(WAIT, || {
        found = common::children_of(server.pid())
            .into_iter()
            .filter(|p| common::comm(*p) == "rftpd-metrics")
            .collect();
        !found.is_empty()
    });
    assert_eq!(found.len(), 1, "one rftpd-metrics process: {found:?}");
    found[0]
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn scrapes_follow_logins_transfers_and_open_sessions() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let (server, address) = server_with_metrics(&pam);
    let first = scrape(address);
    assert_eq!(value(&first, "rftpd_sessions_open"), Some(0.0), "{first}");
    assert_eq!(
        value(&first, "rftpd_logins_total{result=\"ok\"}"),
        Some(0.0)
    );
    assert!(first.contains("# TYPE rftpd_transfers counter"), "{first}");
    assert!(first.trim_end().ends_with("# EOF"), "{first}");

    // A session held open: one open session, one login ok.
    let mut held = FtpClient::connect(server.addr());
    held.login_ok(&user);
    wait_value(address, "rftpd_logins_total{result=\"ok\"}", 1.0);
    let during = wait_value(address, "rftpd_sessions_open", 1.0);
    assert_eq!(
        value(&during, "rftpd_logins_total{result=\"failed\"}"),
        Some(0.0)
    );

    // A wrong password.
    let mut wrong = FtpClient::connect(server.addr());
    assert_eq!(wrong.login(&user.name, "not-the-password").0, 530);
    drop(wrong);
    wait_value(address, "rftpd_logins_total{result=\"failed\"}", 1.0);

    // An upload, a download and a download that fails, each a curl session of its own.
    let up = common::rand_bytes(5000);
    let local = server.dir.join("up.bin");
    std::fs::write(&local, &up).unwrap();
    let out = curl(&[
        "-T",
        local.to_str().unwrap(),
        &server.ftp_url(&user, "up.bin"),
    ]);
    assert_eq!(out.status.code(), Some(0), "upload: {}", describe(&out));
    let down = common::rand_bytes(12345);
    user.put_file("down.bin", &down);
    let out = curl(&[&server.ftp_url(&user, "down.bin")]);
    assert_eq!(out.stdout, down, "download: {}", describe(&out));
    // A download that fails, in the held session.
    assert_eq!(held.cmd("TYPE I").0, 200);
    let (code, _, _) = held.transfer_in("RETR missing.bin");
    assert_eq!(code, 550, "RETR of a missing file");
    wait_value(
        address,
        "rftpd_transfers_total{direction=\"download\",result=\"failed\"}",
        1.0,
    );

    drop(held);
    let after = wait_value(address, "rftpd_sessions_open", 0.0);
    let expect = [
        ("rftpd_logins_total{result=\"ok\"}", 3.0),
        ("rftpd_logins_total{result=\"failed\"}", 1.0),
        ("rftpd_logins_total{result=\"refused\"}", 0.0),
        ("rftpd_transfer_bytes_total{direction=\"upload\"}", 5000.0),
        (
            "rftpd_transfer_bytes_total{direction=\"download\"}",
            12345.0,
        ),
        (
            "rftpd_transfers_total{direction=\"upload\",result=\"ok\"}",
            1.0,
        ),
        (
            "rftpd_transfers_total{direction=\"upload\",result=\"failed\"}",
            0.0,
        ),
        (
            "rftpd_transfers_total{direction=\"download\",result=\"ok\"}",
            1.0,
        ),
        (
            "rftpd_transfers_total{direction=\"download\",result=\"failed\"}",
            1.0,
        ),
        ("rftpd_connections_accepted_total", 4.0),
        ("rftpd_session_duration_seconds_count", 4.0),
        ("rftpd_bans_total", 0.0),
        ("rftpd_spawner_restarts_total", 0.0),
    ];
    for (name, want) in expect {
        assert_eq!(value(&after, name), Some(want), "{name}:\n{after}");
    }
}

#[test]
fn a_session_refused_for_a_writable_jail_root_counts_as_refused_not_ok() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let (server, address) = server_with_metrics_and(&pam, "allow_writeable_chroot = false\n");
    let mut ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.login(&user.name, &user.password).0, 500);
    drop(ftp);
    let text = wait_value(address, "rftpd_logins_total{result=\"refused\"}", 1.0);
    assert_eq!(
        value(&text, "rftpd_logins_total{result=\"ok\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "rftpd_logins_total{result=\"failed\"}"),
        Some(0.0),
        "{text}"
    );
}

#[test]
fn bans_and_the_connections_they_refuse_are_counted() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let (server, address) = server_with_metrics_and(
        &pam,
        "ban_failed_logins = 2\ndelay_failed_login = 0\nmax_login_fails = 0\n",
    );
    let mut ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.login(&user.name, "wrong-1").0, 530);
    assert_eq!(ftp.login(&user.name, "wrong-2").0, 530);
    drop(ftp);
    wait_value(address, "rftpd_bans_total", 1.0);
    // The next connection from the banned address is refused by the master.
    let mut refused = TcpStream::connect(server.addr()).unwrap();
    refused.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = String::new();
    let _ = refused.read_to_string(&mut reply);
    assert!(reply.starts_with("421 "), "{reply:?}");
    let text = wait_value(
        address,
        "rftpd_connections_refused_total{reason=\"banned\"}",
        1.0,
    );
    assert_eq!(
        value(&text, "rftpd_logins_total{result=\"failed\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "rftpd_connections_accepted_total"),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn the_endpoint_runs_as_nopriv_user_without_capabilities_under_seccomp() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let (server, address) = server_with_metrics(&pam);
    // Its first answer comes after its sandbox is complete.
    assert!(scrape(address).contains("rftpd_sessions_open"));
    let pid = endpoint_pid(&server);
    let nopriv = common::run("id", ["-u", "rftpd"]);
    let uid = lossy(&nopriv.stdout).trim().to_string();
    let uids: Vec<String> = status_field(pid, "Uid")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(uids, vec![uid.clone(); 4], "Uid of the endpoint");
    assert_eq!(status_field(pid, "CapEff"), "0000000000000000");
    assert_eq!(status_field(pid, "CapBnd"), "0000000000000000");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "Seccomp"), "2");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        std::path::Path::new("/run/rftpd/empty"),
        "chrooted into secure_chroot_dir"
    );
    // Its own network namespace: it reaches nothing but the socket it was given.
    assert_ne!(
        std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap(),
        std::fs::read_link(format!("/proc/{}/ns/net", server.pid())).unwrap()
    );
    // And it still answers.
    assert!(scrape(address).contains("rftpd_sessions_open"));
}

/// Send `request` raw and read what comes back (empty if the connection was reset).
fn raw(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let _ = stream.write_all(request);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    lossy(&reply)
}

#[test]
fn garbage_huge_and_stalled_requests_are_refused_and_nothing_crashes() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let (mut server, address) = server_with_metrics(&pam);
    let pid = endpoint_pid(&server);
    let status = |reply: &str| reply.lines().next().unwrap_or("").to_string();
    assert_eq!(
        status(&raw(address, b"\x00\xff\x1b garbage\r\n\r\n")),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(&raw(address, b"GET /etc/passwd HTTP/1.1\r\n\r\n")),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status(&raw(
            address,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        )),
        "HTTP/1.1 405 Method Not Allowed"
    );
    // 1 MiB without a blank line: at most 8 KiB is read, then 431 (or a reset, since the
    // rest is never read).
    let huge = vec![b'A'; 1 << 20];
    let reply = raw(address, &huge);
    assert!(
        reply.is_empty() || status(&reply) == "HTTP/1.1 431 Request Header Fields Too Large",
        "{reply:.200}"
    );
    // A client that sends nothing holds the endpoint for at most its 5 s timeout.
    let stalled = TcpStream::connect(address).unwrap();
    let started = std::time::Instant::now();
    let text = scrape(address);
    assert!(text.contains("rftpd_sessions_open"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(12));
    drop(stalled);
    // The same endpoint process and the same master, both alive.
    assert_eq!(endpoint_pid(&server), pid);
    assert!(server.is_running());
    // The FTP side is unaffected.
    let mut ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.cmd("SYST").0, 215);
}

#[test]
fn with_metrics_off_nothing_listens() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    // A port free a moment ago, named but not enabled.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start(&format!("metrics_listen = \"127.0.0.1:{port}\"\n"), &pam);
    assert!(
        server.wait_log(
            "`metrics_listen` is set but has no effect because `metrics_enable` is false",
            WAIT
        ),
        "{}",
        server.log().join("\n")
    );
    assert!(!server.log_contains("metrics on http://"));
    assert!(
        common::children_of(server.pid())
            .iter()
            .all(|p| common::comm(*p) != "rftpd-metrics")
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
