//! IPv4 and IPv6 served by one server at once.

mod common;

use std::net::SocketAddr;

use common::{
    FtpClient, PamService, Server, TestUser, code, curl, describe, ftp_url_at, list_line, lossy,
};

#[test]
fn one_server_serves_sessions_over_ipv6_and_ipv4() {
    if !common::require_root() {
        return;
    }
    if !common::ipv6_loopback_configured() {
        eprintln!(
            "SKIPPED {}: ::1 is not configured on lo (/proc/net/if_inet6)",
            common::test_name()
        );
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        "listen = true\nlisten_ipv6 = true\nlisten_address6 = \"::1\"",
        &pam,
    );
    user.put_file("over-both.txt", b"both families\n");

    let v6: SocketAddr = *server
        .addrs()
        .iter()
        .find(|a| a.is_ipv6())
        .unwrap_or_else(|| panic!("no IPv6 listener in {:?}", server.addrs()));
    let v4: SocketAddr = *server
        .addrs()
        .iter()
        .find(|a| a.is_ipv4())
        .unwrap_or_else(|| panic!("no IPv4 listener in {:?}", server.addrs()));
    assert_eq!(v6.ip().to_string(), "::1");

    // -g: no globbing of the brackets; curl uses EPSV over IPv6.
    let out = curl(&["-g", &ftp_url_at(v6, &user.name, &user.password, "/")]);
    assert_eq!(code(&out), 0, "listing over IPv6: {}", describe(&out));
    assert!(
        list_line(&lossy(&out.stdout), "over-both.txt").is_some(),
        "listing over IPv6: {}",
        describe(&out)
    );
    let out = curl(&[
        "-g",
        &ftp_url_at(v6, &user.name, &user.password, "over-both.txt"),
    ]);
    assert_eq!(code(&out), 0, "download over IPv6: {}", describe(&out));
    assert_eq!(out.stdout, b"both families\n");

    let out = curl(&[&ftp_url_at(v4, &user.name, &user.password, "over-both.txt")]);
    assert_eq!(
        code(&out),
        0,
        "download over IPv4 from the same server: {}",
        describe(&out)
    );
    assert_eq!(out.stdout, b"both families\n");

    let mut ftp = FtpClient::connect(v6);
    ftp.login_ok(&user);
    assert!(
        server
            .wait_log_line(
                &["login ok", &user.name, "client=::1"],
                std::time::Duration::from_secs(5)
            )
            .is_some(),
        "the login over IPv6 should be logged with the client address ::1"
    );
    // Active mode over IPv6 (issue 12, part 8; more in tests/conformance.rs and
    // tests/clients.rs): EPRT |2| to the client's own address is connected.
    let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (reply, text) = ftp.cmd(&format!("EPRT |2|::1|{port}|"));
    assert_eq!(reply, 200, "EPRT over IPv6: {text}");
    let (mut data, _) = listener.accept().expect("the active connection");
    let (reply, text) = ftp.cmd("LIST");
    assert_eq!(reply, 150, "LIST over EPRT: {text}");
    let mut listing = String::new();
    std::io::Read::read_to_string(&mut data, &mut listing).unwrap();
    assert!(list_line(&listing, "over-both.txt").is_some(), "{listing}");
    assert_eq!(ftp.read_reply().unwrap().0, 226);
    assert_eq!(ftp.cmd("NOOP").0, 200);
}
