//! One test per finding of the security audit; each proves the fixed behaviour:
//!
//! 1. a command line holding a control character (other than its final CRLF) is refused with
//!    `500` and the session goes on;
//! 2. sessions always end: an abandoned TLS handshake after a split `AUTH`, a silent client, a
//!    partial line — and their connection slots are given back;
//! 3. a bare CR cannot smuggle `USER`/`PASS`, `PORT`, `EPRT` or `RNFR` past the checks;
//! 4. one session cannot take the whole passive port range;
//! 5. a data connection from the wrong address does not break the passive transfer;
//! 6. the log never holds raw control bytes, invalid UTF-8 or forged lines;
//! 7. refused logins take the same time whatever the reason;
//! 8. `SITE CHMOD` never sets setuid, setgid or sticky bits;
//! 9. the command line cap is exactly 4096 bytes with CRLF, and longer lines do not end the
//!    session;
//! 10. the one-time login token (and the password) never reach the log, even at trace level;
//! 11. file names cannot forge control-connection replies.
//!
//! Clients that must send odd bytes use raw sockets and read replies strictly (3 digits, then
//! a space or a dash; a multi-line reply ends with the same code and a space).

mod common;

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    PamService, Server, TempDir, TestUser, code, curl, describe, lossy, pasv_addr, rand_bytes,
};

// ---------------------------------------------------------------------------------------------
// A strict raw control-connection client
// ---------------------------------------------------------------------------------------------

/// One reply: its code and its lines (CRLF removed, lossily decoded).
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A control connection that writes exact bytes and reads replies strictly.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    /// Connect and read the `220` greeting.
    fn connect(addr: SocketAddr) -> Raw {
        let mut raw = Raw::connect_silent(addr);
        let greeting = raw
            .reply()
            .unwrap_or_else(|e| panic!("greeting from {addr}: {e}"));
        assert_eq!(greeting.code, 220, "greeting: {greeting:?}");
        raw
    }

    /// Connect without reading anything.
    fn connect_silent(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// One line, without its CRLF (at most 64 KiB, so a broken server cannot flood us).
    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "control connection closed",
            ));
        }
        if line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply line without a newline: {:?}", lossy(&line)),
            ));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// One reply, read strictly (RFC 959 4.2).
    fn reply(&mut self) -> io::Result<Reply> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let first = self.line()?;
        let code: u16 = first
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok()?.parse().ok())
            .ok_or_else(|| bad(format!("not an FTP reply: {:?}", lossy(&first))))?;
        let mut lines = vec![lossy(&first)];
        match first.get(3) {
            None | Some(b' ') => {}
            Some(b'-') => {
                let end = format!("{code} ");
                for _ in 0..100_000 {
                    let line = self.line()?;
                    let done = line.starts_with(end.as_bytes());
                    lines.push(lossy(&line));
                    if done {
                        return Ok(Reply { code, lines });
                    }
                }
                return Err(bad(format!("endless multi-line reply {code}")));
            }
            Some(_) => return Err(bad(format!("not an FTP reply: {:?}", lossy(&first)))),
        }
        Ok(Reply { code, lines })
    }

    /// Send exact bytes, read one reply.
    fn raw(&mut self, bytes: &[u8]) -> io::Result<Reply> {
        self.send(bytes)?;
        self.reply()
    }

    /// Send `line` + CRLF, read one reply; panics if the connection fails.
    fn cmd(&mut self, line: &str) -> Reply {
        self.raw(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// USER + PASS, insisting on 331 and 230.
    fn login_ok(&mut self, user: &TestUser) {
        let r = self.cmd(&format!("USER {}", user.name));
        assert_eq!(r.code, 331, "USER {}: {r:?}", user.name);
        let r = self
            .raw(format!("PASS {}\r\n", user.password).as_bytes())
            .unwrap_or_else(|e| panic!("PASS: {e}"));
        assert_eq!(r.code, 230, "login of {}: {r:?}", user.name);
    }

    /// Replies until the first that is not preliminary (1xx), at most `n`; errors end early.
    fn final_reply(&mut self, n: usize) -> Option<Reply> {
        for _ in 0..n {
            match self.reply() {
                Ok(r) if r.code < 200 => continue,
                Ok(r) => return Some(r),
                Err(_) => return None,
            }
        }
        None
    }

    fn set_read_timeout(&self, t: Duration) {
        let _ = self.writer.set_read_timeout(Some(t));
    }

    /// Wait until the server closes the connection; true if it did within `timeout`.
    fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.set_read_timeout(left);
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

/// Assert a `500` reply to `bytes`, then `200` to a following `NOOP`.
fn assert_refused_and_session_goes_on(ftp: &mut Raw, bytes: &[u8]) {
    let reply = ftp
        .raw(bytes)
        .unwrap_or_else(|e| panic!("reply to {:?}: {e}", lossy(bytes)));
    assert_eq!(
        reply.code,
        500,
        "{:?} should be refused with 500: {reply:?}",
        lossy(bytes)
    );
    let noop = ftp
        .raw(b"NOOP\r\n")
        .unwrap_or_else(|e| panic!("NOOP after {:?}: {e}", lossy(bytes)));
    assert_eq!(
        noop.code,
        200,
        "NOOP after {:?} (nothing after the refused line may be acted on): {noop:?}",
        lossy(bytes)
    );
}

// ---------------------------------------------------------------------------------------------
// Setup helpers
// ---------------------------------------------------------------------------------------------

/// A throw-away self-signed certificate; `config(extra)` turns on TLS with it.
struct Pki {
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new();
        let (cert, key) = common::self_signed_pair(&dir, "server");
        Pki {
            _dir: dir,
            cert,
            key,
        }
    }

    fn config(&self, extra: &str) -> String {
        format!(
            "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n{extra}",
            self.cert.display(),
            self.key.display()
        )
    }
}

fn descendants(pid: u32, out: &mut Vec<u32>) {
    for child in common::children_of(pid) {
        out.push(child);
        descendants(child, out);
    }
}

/// Every process of the server's sessions: all descendants of the master except its
/// spawners and their template processes (monitors, workers, pre-login processes, whatever
/// they run).
fn session_processes(server: &Server) -> Vec<u32> {
    let mut out = Vec::new();
    for monitor in server.monitors() {
        out.push(monitor);
        descendants(monitor, &mut out);
    }
    out
}

fn describe_processes(pids: &[u32]) -> String {
    pids.iter()
        .map(|p| format!("{p} ({})", common::comm(*p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Wait until the server has no session process; the ones left otherwise.
fn wait_no_sessions(server: &Server, timeout: Duration) -> Result<(), Vec<u32>> {
    let mut left = Vec::new();
    if common::wait_until(timeout, || {
        left = session_processes(server);
        left.is_empty()
    }) {
        Ok(())
    } else {
        Err(left)
    }
}

/// The first bytes of a TLS 1.x ClientHello record: a handshake that never completes.
const PARTIAL_CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x00\xa0\x01";

/// Connect, read the greeting, send `AUTH\rTLS\r\n` and a partial ClientHello, close.
fn abandoned_split_auth(addr: SocketAddr) {
    let mut ftp = Raw::connect(addr);
    let _ = ftp.send(b"AUTH\rTLS\r\n");
    // Whatever the reply, the attacker goes on as if TLS had started.
    std::thread::sleep(Duration::from_millis(100));
    let _ = ftp.send(PARTIAL_CLIENT_HELLO);
    std::thread::sleep(Duration::from_millis(50));
    drop(ftp);
}

// ---------------------------------------------------------------------------------------------
// 1. Control characters inside a command line
// ---------------------------------------------------------------------------------------------

const CONTROL_CHAR_LINES: &[&[u8]] = &[
    b"AUTH\rTLS\r\n",
    b"USER\rname\r\n",
    b"NOOP\x07\r\n",
    b"NOOP\r\0\r\n",
    b"NOOP\0\r\n",
    b"NOOP \x1b[1A\r\n",
    b"NOOP\x7f\r\n",
    b"NOOP\rNOOP\r\n",
];

#[test]
fn a_command_line_with_a_control_character_inside_is_refused_with_500_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let pki = Pki::new();
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let tls_server = Server::start(
        &pki.config("login_timeout = 10\ndelay_failed_login = 0"),
        &pam,
    );

    // Before login: in particular `AUTH\rTLS` must not start TLS (no 234).
    let mut ftp = Raw::connect(tls_server.addr());
    for line in CONTROL_CHAR_LINES {
        assert_refused_and_session_goes_on(&mut ftp, line);
    }

    // After login, on a server without TLS.
    drop(ftp);
    let server = Server::start(
        "login_timeout = 10\ndelay_failed_login = 0\nwrite_enable = true",
        &pam,
    );
    let mut ftp = Raw::connect(server.addr());
    ftp.login_ok(&user);
    for line in CONTROL_CHAR_LINES {
        assert_refused_and_session_goes_on(&mut ftp, line);
    }
    assert_refused_and_session_goes_on(&mut ftp, b"MKD a\x07b\r\n");
    assert_refused_and_session_goes_on(&mut ftp, b"MKD c\rMKD d\r\n");
    for name in ["a\x07b", "a", "c", "d", "MKD d"] {
        assert!(
            !user.home.join(name).exists(),
            "a refused line created {name:?}"
        );
    }
    assert_eq!(ftp.cmd("PWD").code, 257);
}

// ---------------------------------------------------------------------------------------------
// 2. Sessions that never end
// ---------------------------------------------------------------------------------------------

#[test]
fn an_abandoned_tls_handshake_after_a_split_auth_leaves_no_session_process_behind() {
    if !common::require_root() {
        return;
    }
    let pki = Pki::new();
    let pam = PamService::create(&[]);
    let server = Server::start(
        &pki.config("login_timeout = 3\ndelay_failed_login = 0"),
        &pam,
    );

    let started = Instant::now();
    abandoned_split_auth(server.addr());
    // The same, but the client keeps its socket open: login_timeout must end it too.
    let mut stalled = Raw::connect(server.addr());
    let _ = stalled.send(b"AUTH\rTLS\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let _ = stalled.send(PARTIAL_CLIENT_HELLO);

    let limit = Duration::from_secs(8);
    if let Err(left) = wait_no_sessions(&server, limit) {
        panic!(
            "8 s after the handshakes were abandoned, session processes remain: {}",
            describe_processes(&left)
        );
    }
    let left = limit.saturating_sub(started.elapsed()) + Duration::from_millis(500);
    assert!(
        stalled.closed_within(left),
        "a stalled TLS handshake was not closed within login_timeout + 5 s"
    );
}

#[test]
fn a_silent_client_and_a_partial_line_are_dropped_within_the_login_timeout() {
    if !common::require_root() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 3\ndelay_failed_login = 0", &pam);
    let started = Instant::now();

    // Never reads the greeting, never sends.
    let mut silent = Raw::connect_silent(server.addr());
    // Sends half a command and stops.
    let mut partial = Raw::connect(server.addr());
    partial.send(b"USER someb").unwrap();
    // Sends half a command, one byte every 400 ms (never a whole line).
    let mut drip = Raw::connect(server.addr());

    let limit = Duration::from_secs(3 + 5);
    let mut drip_closed = false;
    while started.elapsed() < limit {
        if drip.send(b"x").is_err() {
            drip_closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let left = limit.saturating_sub(started.elapsed()) + Duration::from_millis(100);
    assert!(
        silent.closed_within(left),
        "a silent client was not dropped within login_timeout + 5 s"
    );
    assert!(
        partial.closed_within(Duration::from_millis(100)),
        "a client that sent a partial line was not dropped within login_timeout + 5 s"
    );
    assert!(
        drip_closed || drip.closed_within(Duration::from_millis(100)),
        "a client dripping a line byte by byte was not dropped within login_timeout + 5 s"
    );
    if let Err(left) = wait_no_sessions(&server, Duration::from_secs(1)) {
        panic!(
            "session processes remain after login_timeout + 5 s: {}",
            describe_processes(&left)
        );
    }
}

#[test]
fn twenty_abandoned_tls_handshakes_from_one_address_do_not_use_up_its_connection_slots() {
    if !common::require_root() {
        return;
    }
    let pki = Pki::new();
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        &pki.config("login_timeout = 3\ndelay_failed_login = 0\nmax_per_ip = 20"),
        &pam,
    );

    for _ in 0..20 {
        abandoned_split_auth(server.addr());
    }
    // Give the sessions the time they are allowed (not asserted here: the login below is).
    let _ = wait_no_sessions(&server, Duration::from_secs(8));
    let out = curl(&["--ssl-reqd", "-k", &server.ftp_url(&user, "/")]);
    assert_eq!(
        code(&out),
        0,
        "a normal login after 20 abandoned handshakes failed: {}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The bare-CR split
// ---------------------------------------------------------------------------------------------

/// Whether `listener` (non-blocking) gets a connection within `within`.
fn got_connection(listener: &TcpListener, within: Duration) -> bool {
    listener.set_nonblocking(true).unwrap();
    common::wait_until(within, || listener.accept().is_ok())
}

#[test]
fn a_bare_cr_smuggles_no_port_eprt_or_rnfr_after_login() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    user.put_file("x", b"stay\n");
    let pam = PamService::create(&[]);
    let server = Server::start(
        "login_timeout = 10\ndelay_failed_login = 0\nwrite_enable = true",
        &pam,
    );
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind a listener on 127.0.0.2");
    let port = listener.local_addr().unwrap().port();

    let mut ftp = Raw::connect(server.addr());
    ftp.login_ok(&user);

    let port_line = format!("PORT\r127,0,0,2,{},{}\r\n", port >> 8, port & 0xff);
    let eprt_line = format!("EPRT\r|1|127.0.0.2|{port}|\r\n");
    for line in [port_line.as_bytes(), eprt_line.as_bytes()] {
        let reply = ftp
            .raw(line)
            .unwrap_or_else(|e| panic!("{:?}: {e}", lossy(line)));
        assert_eq!(reply.code, 500, "{:?}: {reply:?}", lossy(line));
        // Whatever LIST answers, it must not connect to the smuggled address.
        ftp.send(b"LIST\r\n").unwrap();
        let _ = ftp.final_reply(3);
        assert!(
            !got_connection(&listener, Duration::from_secs(2)),
            "after {:?} and LIST the server connected to 127.0.0.2:{port}",
            lossy(line)
        );
        assert_eq!(ftp.cmd("NOOP").code, 200, "the session goes on");
    }

    let reply = ftp.raw(b"RNFR\rx\r\n").expect("reply to RNFR\\rx");
    assert_eq!(reply.code, 500, "RNFR\\rx: {reply:?}");
    let _ = ftp.raw(b"RNTO y\r\n");
    assert!(
        user.home.join("x").exists() && !user.home.join("y").exists(),
        "RNFR\\rx + RNTO y renamed the file"
    );
    assert_eq!(ftp.cmd("NOOP").code, 200, "the session goes on");
}

#[test]
fn a_bare_cr_inside_user_and_pass_never_logs_in() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 10\ndelay_failed_login = 0", &pam);

    let mut ftp = Raw::connect(server.addr());
    let user_line = format!("USER\r{}\r\n", user.name);
    let pass_line = format!("PASS\r{}\r\n", user.password);
    let mut replies = Vec::new();
    for line in [user_line, pass_line] {
        ftp.send(line.as_bytes()).unwrap();
        // A split line might be answered twice: collect what comes within a moment.
        ftp.set_read_timeout(Duration::from_secs(3));
        let first = ftp.reply().expect("a reply to the split line");
        ftp.set_read_timeout(Duration::from_millis(500));
        let mut these = vec![first];
        while let Ok(r) = ftp.reply() {
            these.push(r);
        }
        replies.push(these);
    }
    ftp.set_read_timeout(Duration::from_secs(5));
    for r in replies.iter().flatten() {
        assert_ne!(r.code, 230, "a split USER/PASS logged in: {replies:?}");
    }
    assert_eq!(
        replies[0][0].code, 500,
        "USER\\r<name> should be refused: {replies:?}"
    );
    assert_eq!(
        replies[1][0].code, 500,
        "PASS\\r<password> should be refused: {replies:?}"
    );
    let pwd = ftp.cmd("PWD");
    assert_eq!(pwd.code, 530, "PWD after the split login: {pwd:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. The passive port range
// ---------------------------------------------------------------------------------------------

/// A base port with `n` free ports from it, picked at random in 40000–60000.
fn free_port_range(n: u16) -> u16 {
    for _ in 0..50 {
        let r = rand_bytes(2);
        let base = 40000 + (u16::from(r[0]) << 8 | u16::from(r[1])) % (20000 - n);
        let listening = listening_ports();
        let free = (base..base + n).all(|p| {
            !listening.contains(&p)
                && TcpListener::bind(("0.0.0.0", p)).is_ok()
                && TcpListener::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no {n} free ports in a row found in 40000-60000");
}

/// Local ports of all listening TCP sockets (`ss -Hltn`).
fn listening_ports() -> Vec<u16> {
    let out = common::run("ss", ["-Hltn"]);
    assert!(out.status.success(), "ss -Hltn: {}", describe(&out));
    lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let local = l.split_whitespace().nth(3)?;
            local.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

#[test]
fn one_session_cannot_hold_more_than_two_ports_of_the_passive_range() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let base = free_port_range(10);
    let (min, max) = (base, base + 9);
    let server = Server::start(
        &format!(
            "login_timeout = 10\ndelay_failed_login = 0\naccept_timeout = 30\n\
             pasv_min_port = {min}\npasv_max_port = {max}"
        ),
        &pam,
    );

    let mut greedy = Raw::connect(server.addr());
    greedy.login_ok(&user);
    let mut most = 0;
    for i in 0..40 {
        let command = if i % 2 == 0 { "PASV" } else { "EPSV" };
        let reply = greedy.cmd(command);
        // Ports, not sockets: each port has its listener and its trap (SO_REUSEPORT).
        let mut ports: Vec<u16> = listening_ports()
            .into_iter()
            .filter(|p| (min..=max).contains(p))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let held = ports.len();
        most = most.max(held);
        assert!(
            held <= 2,
            "after {} PASV/EPSV without connecting, {held} ports listen in {min}-{max} \
             (last reply {reply:?})",
            i + 1
        );
        if i == 20 {
            let out = curl(&[&server.ftp_url(&user, "/")]);
            assert_eq!(
                code(&out),
                0,
                "a second session's listing failed meanwhile: {}",
                describe(&out)
            );
        }
    }
    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(
        code(&out),
        0,
        "a second session's listing failed while the first holds its passive ports: {}",
        describe(&out)
    );
    assert_eq!(greedy.cmd("NOOP").code, 200);
    eprintln!("at most {most} listening ports in the range");
}

// ---------------------------------------------------------------------------------------------
// 5. A data connection from the wrong address
// ---------------------------------------------------------------------------------------------

/// `PORT`: connect from 127.0.0.2 to 127.0.0.1:PORT, print `CONNECTED` (or `ERROR`), then read
/// for up to 8 s and print `LEN n` and `HEAD hex` (first 64 bytes).
const INTRUDER: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.socket()
s.bind(('127.0.0.2', 0))
s.settimeout(5)
try:
    s.connect(('127.0.0.1', port))
except Exception as e:
    print('ERROR ' + repr(e), flush=True)
    sys.exit(0)
print('CONNECTED', flush=True)
data = b''
s.settimeout(8)
try:
    while len(data) < 1 << 24:
        b = s.recv(65536)
        if not b:
            break
        data += b
except Exception as e:
    pass
print('LEN %d' % len(data), flush=True)
print('HEAD ' + data[:64].hex(), flush=True)
"#;

#[test]
fn a_data_connection_from_another_address_does_not_break_the_passive_transfer() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let contents = rand_bytes(256 * 1024);
    user.put_file("file", &contents);
    let pam = PamService::create(&[]);
    let server = Server::start(
        "login_timeout = 10\ndelay_failed_login = 0\naccept_timeout = 10",
        &pam,
    );

    let mut ftp = Raw::connect(server.addr());
    ftp.login_ok(&user);
    // The first passive socket is asked of the monitor; the second is the spare the worker
    // holds ahead (`worker::binder`): each has its trap.
    for round in ["the first", "the spare"] {
        eprintln!("{round} passive socket");
        let reply = ftp.cmd("PASV");
        assert_eq!(reply.code, 227, "PASV: {reply:?}");
        let addr = pasv_addr(&reply.text()).unwrap_or_else(|| panic!("cannot parse {reply:?}"));

        let mut intruder = Command::new("timeout")
            .args(["30", "python3", "-c", INTRUDER, &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut intruder_out = BufReader::new(intruder.stdout.take().unwrap());
        let mut first = String::new();
        intruder_out.read_line(&mut first).unwrap();
        assert!(
            first.starts_with("CONNECTED") || first.starts_with("ERROR"),
            "the intruder script said {first:?}"
        );

        let started = Instant::now();
        let mut data = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("the client's own data connection to {addr}: {e}"));
        data.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let reply = ftp.cmd("RETR file");
        assert!(
            reply.code == 150 || reply.code == 125,
            "RETR with the client's data connection: {reply:?}"
        );
        let mut got = Vec::new();
        let read = data.read_to_end(&mut got);
        drop(data);
        let last = ftp.reply().expect("the final reply to RETR");
        let took = started.elapsed();
        assert!(
            read.is_ok(),
            "reading the data: {read:?} after {} bytes",
            got.len()
        );
        assert_eq!(last.code, 226, "final reply to RETR: {last:?}");
        assert!(
            got == contents,
            "the client got {} bytes, not the file's {}",
            got.len(),
            contents.len()
        );
        assert!(took <= Duration::from_secs(5), "the transfer took {took:?}");

        let mut rest = String::new();
        let _ = intruder_out.read_to_string(&mut rest);
        let _ = intruder.wait();
        let len: usize = rest
            .lines()
            .find_map(|l| l.strip_prefix("LEN "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let head = rest
            .lines()
            .find_map(|l| l.strip_prefix("HEAD "))
            .unwrap_or("")
            .to_string();
        let file_head: String = contents[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !head.contains(&file_head) && len < contents.len(),
            "the connection from 127.0.0.2 received file data ({len} bytes, head {head})"
        );
        assert!(
            server.wait_log("127.0.0.2", Duration::from_secs(5)),
            "no log line mentions the refused data connection from 127.0.0.2"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Log forging
// ---------------------------------------------------------------------------------------------

/// A forged line as it would look in the log, hidden after control characters.
const FORGED: &str = "2026-01-01T00:00:00.000000Z  INFO login ok user=root client=127.0.0.1 \
                      jailed=true anonymous=false start=/root";

/// Whether `line` reports a successful login of root as the server's own message (not as the
/// text of a field): `login ok` with only the time and level before it, `user=root` after.
fn reports_root_login(fragment: &str) -> bool {
    let mut from = 0;
    while let Some(i) = fragment[from..].find("login ok") {
        let at = from + i;
        let before = &fragment[..at];
        let after = &fragment[at..];
        let plain_prefix = !before.contains("user")
            && !before.contains("login")
            && !before.contains('"')
            && !before.contains('\\');
        let root = after
            .split_whitespace()
            .any(|w| w == "user=root" || w == "user=\"root\"");
        if plain_prefix && root {
            return true;
        }
        from = at + "login ok".len();
    }
    false
}

/// Send each line, read (at most) one reply to each; reconnect if the server hangs up.
fn send_lines(addr: SocketAddr, lines: &[Vec<u8>]) {
    let mut ftp = Raw::connect(addr);
    ftp.set_read_timeout(Duration::from_secs(3));
    for line in lines {
        if ftp.send(line).is_err() || ftp.reply().is_err() {
            ftp = Raw::connect(addr);
            ftp.set_read_timeout(Duration::from_secs(3));
        }
    }
}

#[test]
fn the_log_holds_no_raw_control_bytes_and_no_forged_lines() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    user.put_file("ab", b"x\n");
    let pam = PamService::create(&[]);
    let server = Server::start(
        "login_timeout = 10\ndelay_failed_login = 0\nmax_login_fails = 0\n\
         ban_failed_logins = 0\nwrite_enable = true",
        &pam,
    );

    let pass = b"PASS Wrong-password-1\r\n".to_vec();
    let forged_user = format!("USER x\r\x1b[1A\x1b[2K{FORGED}\r\n").into_bytes();
    send_lines(
        server.addr(),
        &[
            b"USER x\x1b[1Ay\x07\r\n".to_vec(),
            pass.clone(),
            b"USER ab\xffcd\r\n".to_vec(),
            pass.clone(),
            forged_user,
            pass.clone(),
            format!("USER x\x1b[1A\x1b[2K{FORGED}\r\n").into_bytes(),
            pass.clone(),
            b"USER \x7f\x08\x08root\r\n".to_vec(),
            pass,
        ],
    );

    // File commands with such bytes, after login.
    let mut ftp = Raw::connect(server.addr());
    ftp.login_ok(&user);
    ftp.set_read_timeout(Duration::from_secs(3));
    for line in [
        b"MKD d\x1b[1A\x07\r\n".to_vec(),
        b"CWD ab\xffcd\r\n".to_vec(),
        b"RETR ab\xff\x1b]0;title\x07\r\n".to_vec(),
        b"DELE \x7fz\r\n".to_vec(),
        format!("RNFR ab\r\x1b[1A{FORGED}\r\n").into_bytes(),
        format!("MKD \x1b[1A{FORGED}\r\n").into_bytes(),
        format!("SIZE ab\x1b[1A{FORGED}\r\n").into_bytes(),
    ] {
        if ftp.send(&line).is_err() || ftp.reply().is_err() {
            ftp = Raw::connect(server.addr());
            ftp.login_ok(&user);
            ftp.set_read_timeout(Duration::from_secs(3));
        }
    }
    let _ = ftp.raw(b"QUIT\r\n");
    drop(ftp);

    // A last, normal login must still reach the log: the log stays readable (valid UTF-8
    // lines) after all of the above.
    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "a normal login: {}", describe(&out));
    let logged = common::wait_until(Duration::from_secs(5), || {
        server
            .log()
            .iter()
            .filter(|l| l.contains("login ok") && l.contains(&user.name))
            .count()
            >= 2
    });
    assert!(
        logged,
        "the last login never reached the log (the log stopped being valid UTF-8 lines?)"
    );

    for line in server.log() {
        let bad: Vec<char> = line
            .chars()
            .filter(|c| (*c as u32) < 0x20 || *c as u32 == 0x7f)
            .collect();
        assert!(
            bad.is_empty(),
            "a log line holds raw control characters {bad:?}: {line:?}"
        );
        for fragment in line.split(|c: char| c.is_control()) {
            assert!(
                !reports_root_login(fragment),
                "the log reports a login of root: {line:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Timing of refused logins
// ---------------------------------------------------------------------------------------------

/// Time from sending PASS to its `530`, reconnecting when the server hangs up.
fn time_refusal(conn: &mut Option<Raw>, addr: SocketAddr, name: &str, password: &str) -> Duration {
    for _ in 0..3 {
        let ftp = conn.get_or_insert_with(|| Raw::connect(addr));
        ftp.set_read_timeout(Duration::from_secs(10));
        let user = ftp.raw(format!("USER {name}\r\n").as_bytes());
        match user {
            Ok(r) if r.code == 331 => {}
            Ok(r) => panic!("USER {name}: {r:?} (a refusal at USER tells the reason apart)"),
            Err(_) => {
                *conn = None;
                continue;
            }
        }
        let started = Instant::now();
        match ftp.raw(format!("PASS {password}\r\n").as_bytes()) {
            Ok(r) => {
                let took = started.elapsed();
                assert_eq!(r.code, 530, "PASS for {name}: {r:?}");
                return took;
            }
            Err(_) => *conn = None,
        }
    }
    panic!("three connections in a row broke while timing a login of {name}");
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

#[test]
fn refused_logins_take_the_same_time_whatever_the_reason() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        "login_timeout = 600\ndelay_failed_login = 1\nmax_login_fails = 0\n\
         ban_failed_logins = 0",
        &pam,
    );
    let nobody = common::unique_name("rftnouser");
    let kinds = [
        ("an existing user with a wrong password", user.name.clone()),
        ("a name with no account", nobody),
        ("root", "root".to_string()),
    ];
    let mut conns: Vec<Option<Raw>> = vec![None, None, None];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..20 {
        for (k, (_, name)) in kinds.iter().enumerate() {
            assert!(
                Instant::now() < deadline,
                "timing took too long (try {i}): {times:?}"
            );
            let password = format!("Wrong-{}", common::rand_alnum(10));
            times[k].push(time_refusal(&mut conns[k], server.addr(), name, &password));
        }
    }
    let summary: Vec<String> = kinds
        .iter()
        .zip(&times)
        .map(|((what, _), t)| {
            format!(
                "{what}: min {:?} median {:?} max {:?}",
                t.iter().min().unwrap(),
                median(t),
                t.iter().max().unwrap()
            )
        })
        .collect();
    let summary = summary.join("; ");
    for a in 0..3 {
        for b in a + 1..3 {
            let (ta, tb) = (&times[a], &times[b]);
            let overlap = ta.iter().min() <= tb.iter().max() && tb.iter().min() <= ta.iter().max();
            assert!(
                overlap,
                "the times for {} and {} do not overlap: {summary}",
                kinds[a].0, kinds[b].0
            );
            let (ma, mb) = (median(ta), median(tb));
            let diff = ma.abs_diff(mb);
            assert!(
                diff < Duration::from_millis(100),
                "the medians for {} and {} differ by {diff:?}: {summary}",
                kinds[a].0,
                kinds[b].0
            );
        }
    }
    eprintln!("{summary}");
}

// ---------------------------------------------------------------------------------------------
// 8. SITE CHMOD
// ---------------------------------------------------------------------------------------------

#[test]
fn site_chmod_never_sets_setuid_setgid_or_sticky_bits() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        "login_timeout = 10\ndelay_failed_login = 0\nwrite_enable = true\nchmod_enable = true",
        &pam,
    );
    let local = TempDir::new();
    let up = local.join("f");
    fs::write(&up, b"#!/bin/sh\necho hi\n").unwrap();
    let out = curl(&["-T", up.to_str().unwrap(), &server.ftp_url(&user, "f")]);
    assert_eq!(code(&out), 0, "upload: {}", describe(&out));
    let on_disk = user.home.join("f");
    assert!(on_disk.exists(), "the upload is not in the home");

    let mut ftp = Raw::connect(server.addr());
    ftp.login_ok(&user);
    for mode in ["4755", "2755", "1777", "7777", "6777"] {
        let reply = ftp.cmd(&format!("SITE CHMOD {mode} f"));
        assert_eq!(reply.code, 200, "SITE CHMOD {mode} f: {reply:?}");
        let bits = fs::symlink_metadata(&on_disk).unwrap().mode() & 0o7777;
        assert!(
            bits <= 0o777,
            "after SITE CHMOD {mode} the file has mode {bits:04o}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. The line cap
// ---------------------------------------------------------------------------------------------

/// `head` padded with `x` to exactly `len` bytes including the final CRLF.
fn line_of(head: &[u8], len: usize) -> Vec<u8> {
    let mut line = head.to_vec();
    line.extend(std::iter::repeat_n(b'x', len - head.len() - 2));
    line.extend_from_slice(b"\r\n");
    assert_eq!(line.len(), len);
    line
}

/// The cap, probed with `CWD /xxx…` (its reply does not depend on the argument's length: 530
/// before login, 550 after), then `NOOP` to show the session goes on.
fn check_line_cap(ftp: &mut Raw, phase: &str) {
    let normal = ftp.cmd("CWD /no-such-directory").code;
    assert_ne!(normal, 500, "{phase}: a short CWD");

    // Exactly 4096 bytes with CRLF: accepted, answered as the short one.
    let reply = ftp
        .raw(&line_of(b"CWD /", 4096))
        .unwrap_or_else(|e| panic!("{phase}: a 4096-byte CWD line: {e}"));
    assert_eq!(
        reply.code, normal,
        "{phase}: a 4096-byte CWD line should be answered like a short one: {reply:?}"
    );
    let noop = ftp
        .raw(b"NOOP\r\n")
        .unwrap_or_else(|e| panic!("{phase}: NOOP after a 4096-byte line: {e}"));
    assert_eq!(
        noop.code, 200,
        "{phase}: NOOP after a 4096-byte line: {noop:?}"
    );

    // One byte more, 8000 bytes, and 100 000 bytes without any newline: refused, and then
    // the session goes on.
    for len in [4097, 8000, 100_000] {
        let reply = ftp
            .raw(&line_of(b"CWD /", len))
            .unwrap_or_else(|e| panic!("{phase}: reply to a {len}-byte line: {e}"));
        assert_eq!(reply.code, 500, "{phase}: a {len}-byte line: {reply:?}");
        let noop = ftp
            .raw(b"NOOP\r\n")
            .unwrap_or_else(|e| panic!("{phase}: NOOP after a {len}-byte line: {e}"));
        assert_eq!(
            noop.code, 200,
            "{phase}: NOOP after a {len}-byte line: {noop:?}"
        );
    }
}

#[test]
fn a_command_line_of_exactly_4096_bytes_is_accepted_and_longer_ones_get_500_without_ending_the_session()
 {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 20\ndelay_failed_login = 0", &pam);

    let mut ftp = Raw::connect(server.addr());
    check_line_cap(&mut ftp, "before login");
    ftp.login_ok(&user);
    check_line_cap(&mut ftp, "after login");
    assert_eq!(ftp.cmd("PWD").code, 257);
}

/// The brief's form of the 4096-byte line (`NOOP ` + 4089 `x`), kept apart from the cap test:
/// today any argument to NOOP gets `501` from libunftp and ends the session.
#[test]
fn noop_with_an_argument_up_to_the_line_cap_gets_200_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 20\ndelay_failed_login = 0", &pam);

    let mut ftp = Raw::connect(server.addr());
    for phase in ["before login", "after login"] {
        if phase == "after login" {
            ftp.login_ok(&user);
        }
        for line in [b"NOOP x\r\n".to_vec(), line_of(b"NOOP ", 4096)] {
            let reply = ftp
                .raw(&line)
                .unwrap_or_else(|e| panic!("{phase}: a {}-byte NOOP line: {e}", line.len()));
            assert_eq!(
                reply.code,
                200,
                "{phase}: a {}-byte NOOP line: {reply:?}",
                line.len()
            );
            let noop = ftp
                .raw(b"NOOP\r\n")
                .unwrap_or_else(|e| panic!("{phase}: NOOP after NOOP with an argument: {e}"));
            assert_eq!(noop.code, 200, "{phase}: NOOP after NOOP with an argument");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 10. The login token
// ---------------------------------------------------------------------------------------------

/// The first run of 48 or more `[0-9a-f]` in `line`, with some context around it.
fn hex_run_48(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() || (b'a'..=b'f').contains(b) {
            if i + 1 - start >= 48 {
                let from = start.saturating_sub(80);
                let to = (i + 1 + 40).min(bytes.len());
                return Some(lossy(&bytes[from..to]));
            }
        } else {
            start = i + 1;
        }
    }
    None
}

#[test]
fn the_one_time_login_token_and_the_password_never_reach_the_log_even_at_trace_level() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    user.put_file("seen.txt", b"x\n");
    let pam = PamService::create(&[]);
    for filter in ["trace", "info,libunftp=trace"] {
        let server =
            Server::start_with_log("login_timeout = 10\ndelay_failed_login = 0", &pam, filter);
        let out = curl(&[&server.ftp_url(&user, "/")]);
        assert_eq!(code(&out), 0, "{filter}: listing: {}", describe(&out));
        assert!(
            lossy(&out.stdout).contains("seen.txt"),
            "{filter}: the listing misses the file"
        );
        assert!(
            server.wait_log("session ended", Duration::from_secs(5)),
            "{filter}: the session's end was not logged"
        );
        let log = server.log();
        if filter == "trace" {
            assert!(
                log.iter()
                    .any(|l| l.contains(" DEBUG ") || l.contains(" TRACE ")),
                "{filter}: the filter did not take effect (no debug or trace line)"
            );
        }
        for l in &log {
            if let Some(run) = hex_run_48(l) {
                panic!(
                    "{filter}: a log line holds a run of 48 or more hex digits (the login \
                     token?): …{run}…"
                );
            }
            assert!(
                !l.contains(&user.password),
                "{filter}: a log line holds the password: {}",
                l.chars().take(600).collect::<String>()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 11. File names in replies
// ---------------------------------------------------------------------------------------------

#[test]
fn a_file_name_cannot_forge_a_control_reply() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    user.put_file("plain.txt", b"x\n");
    user.put_file("a\r\n200 forged", b"x\n");
    user.put_file("b\n200 forged too", b"x\n");
    let pam = PamService::create(&[]);
    let server = Server::start("login_timeout = 10\ndelay_failed_login = 0", &pam);

    let mut ftp = Raw::connect(server.addr());
    ftp.login_ok(&user);
    let stat = ftp
        .raw(b"STAT .\r\n")
        .expect("a well-formed reply to STAT .");
    for line in &stat.lines {
        assert!(
            !line.starts_with("200 forged"),
            "a file name forged a reply line: {line:?} in {stat:?}"
        );
    }
    assert!(
        (200..300).contains(&stat.code),
        "STAT . should list the directory: {stat:?}"
    );
    if stat.lines.len() > 1 {
        let last = stat.lines.last().unwrap();
        assert!(
            last.starts_with(&format!("{} ", stat.code)),
            "the STAT reply does not end with its own code: {stat:?}"
        );
    }
    assert!(
        stat.text().contains("plain.txt"),
        "STAT . did not list the whole directory in one reply: {stat:?}"
    );
    ftp.send(b"NOOP\r\n").unwrap();
    let noop = ftp.reply().expect("the reply to NOOP");
    assert_eq!(
        noop.code, 200,
        "the reply after STAT should be NOOP's 200: {noop:?}"
    );
    assert!(
        !noop.text().contains("forged") && !noop.text().contains("plain.txt"),
        "the reply taken for NOOP's is a piece of the listing: {noop:?}"
    );
}
