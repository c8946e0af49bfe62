//! rftpd behind a load balancer: Debian's HAProxy (started by hand, not as a service) on
//! loopback in front of rftpd nodes on other loopback addresses, with `send-proxy-v2`; the
//! client connects from yet another loopback address, so the address the PROXY header
//! carries differs from the balancer's. The data layout tested is "nodes reachable
//! directly": each node announces its own address in PASV (so clients use PASV, not EPSV).
//!
//! What it must never do: leave HAProxy, a server or a user behind; wait without a bound;
//! pass when HAProxy is missing (tests/run.sh installs it).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PamService, Server, TempDir, TestUser, code, curl, describe};

/// The client's address (never the balancer's).
const CLIENT: &str = "127.0.0.5";
/// Another client.
const OTHER_CLIENT: &str = "127.0.0.6";
/// The address HAProxy connects to the nodes from: the one listed in proxy_protocol_from.
const PROXY_SOURCE: &str = "127.0.0.9";
const NODES: [&str; 2] = ["127.0.0.2", "127.0.0.3"];

/// HAProxy in the foreground with a generated config; killed on drop.
struct Haproxy {
    child: Option<Child>,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Haproxy {
    /// A TCP frontend on `front` (an address of its own per test, as the tests run at once)
    /// balancing (`balance`) over `nodes`, each sent a PROXY v2 header from [`PROXY_SOURCE`].
    fn start(front: &str, nodes: &[SocketAddr], balance: &str) -> Haproxy {
        let haproxy = "/usr/sbin/haproxy";
        assert!(
            std::path::Path::new(haproxy).exists(),
            "haproxy is missing: run tests/run.sh, which installs Debian's haproxy package"
        );
        let dir = TempDir::new();
        let port = free_port(front);
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "    server node{} {n} send-proxy-v2 source {PROXY_SOURCE}\n",
                    i + 1
                )
            })
            .collect();
        let config = format!(
            // noreuseport: a port another process holds is an error, not a shared port.
            "global\n    maxconn 200\n    noreuseport\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    \
             timeout client 60s\n    timeout server 60s\n\nfrontend ftp\n    bind {front}:{port}\n    \
             default_backend nodes\n\nbackend nodes\n    balance {balance}\n{servers}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, &config).unwrap();
        let check = Command::new(haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c: {}\n{config}",
            describe(&check)
        );
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let mut h = Haproxy {
            child: Some(child),
            addr: format!("{front}:{port}").parse().unwrap(),
            _dir: dir,
        };
        // Listening = the port is taken (checked without connecting, which would make a session).
        let listening = common::wait_until(Duration::from_secs(10), || {
            TcpListener::bind(h.addr).is_err()
        });
        let exited = h.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        assert!(
            listening && exited.is_none(),
            "haproxy did not start ({exited:?}):\n{config}"
        );
        h
    }

    fn url(&self, user: &TestUser, path: &str) -> String {
        common::ftp_url_at(self.addr, &user.name, &user.password, path)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port free on `ip` right now.
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A passive range of 20 ports of its own for one node (busy ports are skipped by the scan).
fn pasv_keys(node: &str) -> String {
    let base =
        30000 + (std::process::id() % 500) as u16 * 40 + if node == NODES[0] { 0 } else { 20 };
    format!(
        "pasv_address = \"{node}\"\npasv_min_port = {base}\npasv_max_port = {}\n",
        base + 19
    )
}

/// A node on `node` that takes PROXY headers from [`PROXY_SOURCE`] only.
fn start_node(node: &str, pam: &PamService, extra: &str) -> Server {
    Server::start(
        &format!(
            "listen_address = \"{node}\"\nproxy_protocol = true\n\
             proxy_protocol_from = [\"{PROXY_SOURCE}\"]\n{}{extra}",
            pasv_keys(node)
        ),
        pam,
    )
}

/// curl from `from`, with PASV and the address in its reply (the nodes announce their own;
/// EPSV, or curl's default of ignoring the PASV address, would mean the balancer's).
fn curl_from(from: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "--interface",
        from,
        "--disable-epsv",
        "--no-ftp-skip-pasv-ip",
    ];
    all.extend_from_slice(args);
    curl(&all)
}

/// How many sessions of `user` logged in on `server` with client address `client`.
fn logins(server: &Server, user: &TestUser, client: &str) -> usize {
    let user = format!("user={}", user.name);
    let client = format!("client={client}");
    server
        .log()
        .iter()
        .filter(|l| l.contains("login ok") && l.contains(&user) && l.contains(&client))
        .count()
}

/// Exactly one `login ok` of `user` from `client` in the node's log, within a few seconds (the
/// monitor writes it once the worker reports that it started, after the client's login).
fn assert_logged_in_once(server: &Server, user: &TestUser, client: &str) {
    common::wait_until(Duration::from_secs(5), || logins(server, user, client) >= 1);
    assert_eq!(
        logins(server, user, client),
        1,
        "{}",
        server.log().join("\n")
    );
}

/// `needle` in the node's log within a few seconds (its stderr is read as it comes).
fn assert_logged(server: &Server, needle: &str) {
    common::wait_until(Duration::from_secs(5), || server.log_contains(needle));
    assert!(
        server.log_contains(needle),
        "no {needle:?} in:\n{}",
        server.log().join("\n")
    );
}

/// A TCP connection to `to` from `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, socket,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    bind(fd.as_raw_fd(), &SockaddrStorage::from(local)).unwrap();
    connect(fd.as_raw_fd(), &SockaddrStorage::from(to))
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A raw control connection: reply reader and writer.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn new(stream: TcpStream) -> Raw {
        Raw {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    /// One reply (the last line of a multi-line one), or "" once closed.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        for _ in 0..50 {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.len() >= 4 && line.as_bytes()[3] == b' ' {
                return line.trim_end().to_owned();
            }
        }
        all
    }

    fn cmd(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    fn login(&mut self, user: &TestUser) {
        assert!(self.cmd(&format!("USER {}", user.name)).starts_with("331"));
        let reply = self.cmd(&format!("PASS {}", user.password));
        assert!(reply.starts_with("230"), "{reply}");
    }
}

/// A PROXY v2 header for a TCP4 connection from `client` to `to`.
fn v2_header(client: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(c), SocketAddr::V4(t)) = (client, to) else {
        panic!("IPv4 only")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&c.ip().octets());
    h.extend_from_slice(&t.ip().octets());
    h.extend_from_slice(&c.port().to_be_bytes());
    h.extend_from_slice(&t.port().to_be_bytes());
    h
}

#[test]
fn curl_and_lftp_through_haproxy_log_in_list_upload_and_download_on_both_nodes_with_the_real_client_address()
 {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    user.put_file("hello.txt", b"hello through the balancer\n");
    let pam = PamService::create(&[]);
    let nodes: Vec<Server> = NODES.iter().map(|n| start_node(n, &pam, "")).collect();
    let lb = Haproxy::start(
        "127.0.0.4",
        &[nodes[0].addr(), nodes[1].addr()],
        "roundrobin",
    );
    // Each curl is one session; its login line reaches the node's log shortly after it ends.
    let served = |nodes: &[Server], sessions: usize| -> Vec<usize> {
        let count = || -> Vec<usize> { nodes.iter().map(|n| logins(n, &user, CLIENT)).collect() };
        common::wait_until(Duration::from_secs(5), || {
            count().iter().sum::<usize>() >= sessions
        });
        count()
    };
    let mut sessions = 0usize;

    // Listing and download with curl, twice: round robin takes one to each node.
    for _ in 0..2 {
        sessions += 1;
        let out = curl_from(CLIENT, &[&lb.url(&user, "/")]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        assert!(
            common::lossy(&out.stdout).contains("hello.txt"),
            "{}",
            describe(&out)
        );
        sessions += 1;
        let out = curl_from(CLIENT, &[&lb.url(&user, "/hello.txt")]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        assert_eq!(out.stdout, b"hello through the balancer\n");
    }
    let counts = served(&nodes, sessions);
    assert!(
        counts.iter().all(|c| *c >= 1),
        "each node logs the client address: {counts:?}"
    );
    for node in &nodes {
        assert!(
            !node.log_contains(&format!("client={PROXY_SOURCE}")),
            "a node logged the balancer as the client:\n{}",
            node.log().join("\n")
        );
    }

    // Uploaded through one node, read through the other (the same homes).
    let dir = TempDir::new();
    let upload = dir.join("up.bin");
    let payload = common::rand_bytes(300_000);
    std::fs::write(&upload, &payload).unwrap();
    let before = served(&nodes, sessions);
    sessions += 1;
    let out = curl_from(
        CLIENT,
        &["-T", upload.to_str().unwrap(), &lb.url(&user, "/up.bin")],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let after = served(&nodes, sessions);
    let uploader = (0..2)
        .find(|&i| after[i] > before[i])
        .expect("a node served the upload");
    let mut read_elsewhere = false;
    for _ in 0..4 {
        let before = served(&nodes, sessions);
        sessions += 1;
        let out = curl_from(CLIENT, &[&lb.url(&user, "/up.bin")]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        assert!(out.stdout == payload, "download differs from the upload");
        let after = served(&nodes, sessions);
        if after[1 - uploader] > before[1 - uploader] {
            read_elsewhere = true;
            break;
        }
    }
    assert!(read_elsewhere, "the other node never served the download");

    // lftp: list, upload, download, through the balancer from the client address. In active
    // mode: lftp takes any 127.0.0.x PASV address but 127.0.0.1 for a broken server's and
    // connects to the balancer instead; PORT shows the node checks the carried address.
    let got = dir.join("got.bin");
    let script = format!(
        "set net:socket-bind-ipv4 {CLIENT}; set ftp:passive-mode off; \
         set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; \
         open -u {},{} ftp://{}:{}; ls; put {} -o lftp.bin; get lftp.bin -o {}; bye",
        user.name,
        user.password,
        lb.addr.ip(),
        lb.addr.port(),
        upload.display(),
        got.display()
    );
    let before = served(&nodes, sessions).iter().sum::<usize>();
    sessions += 1;
    let out = Command::new("timeout")
        .args(["60", "lftp", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("run lftp");
    assert!(out.status.success(), "lftp: {}", describe(&out));
    assert!(
        common::lossy(&out.stdout).contains("hello.txt"),
        "{}",
        describe(&out)
    );
    assert!(
        std::fs::read(&got).unwrap() == payload,
        "lftp's download differs"
    );
    assert!(std::fs::read(user.home.join("lftp.bin")).unwrap() == payload);
    assert!(
        served(&nodes, sessions).iter().sum::<usize>() > before,
        "lftp's login is logged with the client address"
    );
}

#[test]
fn a_ban_and_max_per_ip_through_the_balancer_apply_to_the_client_address_not_the_balancers() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let node = start_node(
        NODES[0],
        &pam,
        "max_login_fails = 1\ndelay_failed_login = 0\nban_failed_logins = 2\nmax_per_ip = 2\n",
    );
    let lb = Haproxy::start("127.0.0.14", &[node.addr()], "roundrobin");
    let wrong = common::ftp_url_at(lb.addr, &user.name, "not-the-password", "/");
    for _ in 0..2 {
        let out = curl_from(CLIENT, &[&wrong]);
        assert_ne!(code(&out), 0, "{}", describe(&out));
    }
    let banned = node.wait_log_line(
        &["address banned", &format!("client={CLIENT}")],
        Duration::from_secs(10),
    );
    assert!(
        banned.is_some(),
        "no ban of {CLIENT}:\n{}",
        node.log().join("\n")
    );
    let out = curl_from(CLIENT, &[&lb.url(&user, "/")]);
    assert_ne!(
        code(&out),
        0,
        "the banned client got in: {}",
        describe(&out)
    );
    assert!(
        node.wait_log_line(
            &["connection refused", &format!("client={CLIENT}"), "banned"],
            Duration::from_secs(5)
        )
        .is_some(),
        "{}",
        node.log().join("\n")
    );
    // Another client behind the same balancer is not banned.
    let out = curl_from(OTHER_CLIENT, &[&lb.url(&user, "/")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_logged_in_once(&node, &user, OTHER_CLIENT);

    // max_per_ip counts the client, not the balancer: two from OTHER_CLIENT, a third refused,
    // and one from a third address still admitted.
    assert!(
        node.wait_log_line(
            &["session ended", &format!("client={OTHER_CLIENT}")],
            Duration::from_secs(10)
        )
        .is_some(),
        "{}",
        node.log().join("\n")
    );
    let mut held: Vec<Raw> = (0..2)
        .map(|_| {
            let mut c = Raw::new(connect_from(OTHER_CLIENT, lb.addr));
            assert!(c.reply().starts_with("220"));
            c
        })
        .collect();
    let mut third = Raw::new(connect_from(OTHER_CLIENT, lb.addr));
    let reply = third.reply();
    assert!(
        reply.starts_with("421") && reply.contains("too many connections"),
        "{reply:?}"
    );
    let mut elsewhere = Raw::new(connect_from("127.0.0.7", lb.addr));
    assert!(elsewhere.reply().starts_with("220"));
    for c in &mut held {
        c.cmd("QUIT");
    }
    elsewhere.cmd("QUIT");
}

#[test]
fn a_v1_header_from_a_listed_proxy_is_the_client_for_pam_passive_and_active_checks() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    user.put_file("f.txt", b"one\n");
    let dir = TempDir::new();
    let record = dir.join("rhost.log");
    let script = dir.join("rhost.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$PAM_RHOST\" >> {}\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pam = PamService::create(&[]);
    pam.append(&format!(
        "account optional pam_exec.so {}",
        script.display()
    ));
    let node = start_node(NODES[0], &pam, "");
    let carried = "127.0.0.7";

    let stream = connect_from(PROXY_SOURCE, node.addr());
    (&stream)
        .write_all(
            format!(
                "PROXY TCP4 {carried} {} 50007 {}\r\n",
                NODES[0],
                node.port()
            )
            .as_bytes(),
        )
        .unwrap();
    let mut c = Raw::new(stream);
    assert!(c.reply().starts_with("220"));
    c.login(&user);
    assert_eq!(
        std::fs::read_to_string(&record).unwrap().trim(),
        carried,
        "PAM_RHOST"
    );
    assert_logged_in_once(&node, &user, carried);

    // Passive: a data connection from the balancer's address is the wrong peer (trapped);
    // the one from the carried client address gets the listing.
    let reply = c.cmd("PASV");
    let data_addr = common::pasv_addr(&reply).unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(data_addr.ip(), NODES[0].parse::<IpAddr>().unwrap());
    let intruder = connect_from(PROXY_SOURCE, data_addr);
    assert!(
        node.wait_log_line(
            &[
                "another address than the client's",
                &format!("from={PROXY_SOURCE}")
            ],
            Duration::from_secs(5)
        )
        .is_some(),
        "{}",
        node.log().join("\n")
    );
    drop(intruder);
    let mut data = connect_from(carried, data_addr);
    c.writer.write_all(b"NLST\r\n").unwrap();
    let mut listing = String::new();
    data.read_to_string(&mut listing).unwrap();
    assert!(listing.contains("f.txt"), "{listing:?}");
    assert!(c.reply().starts_with("150"));
    assert!(c.reply().starts_with("226"));

    // Active: PORT to the balancer's address is refused; to the carried address it works.
    let p = |ip: &str, port: u16| {
        format!(
            "PORT {},{},{}",
            ip.replace('.', ","),
            port >> 8,
            port & 0xff
        )
    };
    assert!(
        c.cmd(&p(PROXY_SOURCE, 40000)).starts_with("500"),
        "PORT to the balancer"
    );
    let listener = TcpListener::bind((carried, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(c.cmd(&p(carried, port)).starts_with("200"));
    c.writer.write_all(b"NLST\r\n").unwrap();
    listener.set_nonblocking(false).unwrap();
    let (mut active, from) = listener.accept().unwrap();
    assert_eq!(from.ip(), NODES[0].parse::<IpAddr>().unwrap());
    let mut listing = String::new();
    active.read_to_string(&mut listing).unwrap();
    assert!(listing.contains("f.txt"), "{listing:?}");
    assert!(c.reply().starts_with("150"));
    assert!(c.reply().starts_with("226"));
    c.cmd("QUIT");
}

#[test]
fn a_proxy_header_from_an_unlisted_peer_and_a_listed_peer_without_one_are_refused() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let node = start_node(NODES[0], &pam, "");
    let to = node.addr();
    let forged: SocketAddr = "192.0.2.1:4000".parse().unwrap();

    // Not listed (127.0.0.1, or the client's own address): v1 and v2 headers are refused.
    for from in ["127.0.0.1", CLIENT] {
        let mut c = Raw::new(connect_from(from, to));
        assert!(c.reply().starts_with("220"));
        let reply = c.cmd(&format!("PROXY TCP4 192.0.2.1 {} 4000 21", NODES[0]));
        assert!(reply.starts_with("421"), "{reply:?}");
        assert_eq!(c.reply(), "", "the connection is closed");

        let mut c = Raw::new(connect_from(from, to));
        assert!(c.reply().starts_with("220"));
        c.writer.write_all(&v2_header(forged, to)).unwrap();
        let reply = c.reply();
        assert!(reply.starts_with("421"), "{reply:?}");
    }
    assert_logged(
        &node,
        "PROXY protocol header from an address not in proxy_protocol_from",
    );
    assert!(
        !node.log_contains("client=192.0.2.1"),
        "the forged address was used"
    );
    // Without a header, the same peers are plain clients.
    let mut c = Raw::new(connect_from(CLIENT, to));
    assert!(c.reply().starts_with("220"));
    c.login(&user);
    assert_logged_in_once(&node, &user, CLIENT);
    c.cmd("QUIT");

    // A listed proxy that sends no header: refused at once when it sends something else,
    // within the header deadline when it sends nothing; no greeting either way.
    let mut c = Raw::new(connect_from(PROXY_SOURCE, to));
    c.writer
        .write_all(format!("USER {}\r\n", user.name).as_bytes())
        .unwrap();
    let reply = c.reply();
    assert!(reply.starts_with("421"), "{reply:?}");
    let started = Instant::now();
    let mut c = Raw::new(connect_from(PROXY_SOURCE, to));
    let reply = c.reply();
    assert!(reply.starts_with("421"), "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert_logged(&node, "no PROXY protocol header within");
    assert_logged(&node, "does not start with a PROXY protocol header");
    // And a proper v2 header from it is taken.
    let stream = connect_from(PROXY_SOURCE, to);
    (&stream)
        .write_all(&v2_header("127.0.0.8:4000".parse().unwrap(), to))
        .unwrap();
    let mut c = Raw::new(stream);
    assert!(c.reply().starts_with("220"));
    c.login(&user);
    assert_logged_in_once(&node, &user, "127.0.0.8");
    c.cmd("QUIT");
}
