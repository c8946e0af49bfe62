//! Replies to malformed and unusual commands (issue 12): no argument ends a session, and the
//! replies are vsftpd's, without library internals.

mod common;

use std::time::{Duration, Instant};

use common::{FtpClient, PamService, Server, TestUser, rand_bytes};

const SETTINGS: &str =
    "write_enable = true\nchroot_local_user = true\nallow_writeable_chroot = true";

/// A server with one user, and a client logged in as that user.
struct Session {
    _server: Server,
    _pam: PamService,
    user: TestUser,
    ftp: FtpClient,
    server_addr: std::net::SocketAddr,
}

impl Session {
    fn new() -> Session {
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let server = Server::start(SETTINGS, &pam);
        let server_addr = server.addr();
        let mut ftp = FtpClient::connect(server_addr);
        ftp.login_ok(&user);
        Session {
            _server: server,
            _pam: pam,
            user,
            ftp,
            server_addr,
        }
    }

    fn relogin(&mut self) {
        self.ftp = FtpClient::connect(self.server_addr);
        self.ftp.login_ok(&self.user);
    }
}

/// The session still answers: NOOP gets its 200.
fn assert_alive(ftp: &mut FtpClient, after: &str) {
    let reply = ftp
        .try_cmd("NOOP")
        .unwrap_or_else(|e| panic!("the session ended after {after:?}: {e}"));
    assert_eq!(reply.0, 200, "NOOP after {after:?}: {reply:?}");
}

#[test]
fn bad_arguments_get_vsftpds_replies_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    let cases: &[(&str, &str)] = &[
        ("TYPE X", "500 Unrecognised TYPE command."),
        ("TYPE A", "200 Switching to ASCII mode."),
        ("TYPE I", "200 Switching to Binary mode."),
        ("type l 8", "200 Switching to Binary mode."),
        ("MODE Z", "504 Bad MODE command."),
        ("MODE S", "200 Mode set to S."),
        ("STRU X", "504 Bad STRU command."),
        ("STRU F", "200 Structure set to F."),
        (
            "OPTS MLST type;size;modify;",
            "200 MLST OPTS type;size;modify;",
        ),
        ("OPTS", "501 Option not understood."),
        ("OPTS utf8 on", "200 Always in UTF8 mode."),
        ("SIZE", "550 Could not get file size."),
        ("MDTM", "550 Could not get file modification time."),
        ("CWD", "550 Failed to change directory."),
        ("XCWD", "550 Failed to change directory."),
        ("DELE", "550 Delete operation failed."),
        ("MKD", "550 Create directory operation failed."),
        ("RMD", "550 Remove directory operation failed."),
        ("RNFR", "550 RNFR command failed."),
        ("RNTO", "503 RNFR required first."),
        ("RETR", "550 Failed to open file."),
        ("STOR", "553 Could not create file."),
        ("APPE", "553 Could not create file."),
        ("PROT X", "504 PROT not recognised."),
        ("PORT", "500 Illegal PORT command."),
    ];
    for (line, reply) in cases {
        let got = s.ftp.cmd(line);
        assert_eq!(got.1, *reply, "{line}");
        assert_alive(&mut s.ftp, line);
    }
    for line in ["SITE MD5", "PBSZ 1", "PBSZ"] {
        let got = s.ftp.cmd(line);
        assert!(got.0 >= 200, "{line}: {got:?}");
        assert_alive(&mut s.ftp, line);
    }
}

#[test]
fn rest_with_a_bad_offset_is_taken_as_its_leading_digits_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    for line in [
        "REST abc",
        "REST",
        "REST -1",
        "REST 12abc",
        "REST 99999999999999999999",
    ] {
        let (code, text) = s.ftp.cmd(line);
        assert_eq!(code, 350, "{line}: {text}");
        assert_alive(&mut s.ftp, line);
    }
}

#[test]
fn verbs_that_take_no_argument_ignore_one() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    assert_eq!(s.ftp.cmd("NOOP x").0, 200);
    assert_eq!(s.ftp.cmd("PWD x").0, 257);
    assert_eq!(s.ftp.cmd("FEAT x").0, 211);
    assert_eq!(s.ftp.cmd("CDUP x").0, 250);
    assert_eq!(s.ftp.cmd("PASV x").0, 227);
    assert_alive(&mut s.ftp, "PASV x");
    assert_eq!(s.ftp.cmd("QUIT now").0, 221);
}

#[test]
fn stat_without_argument_describes_the_session_without_library_internals() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    s.ftp.cmd("TYPE I");
    let (code, text) = s.ftp.cmd("STAT");
    assert_eq!(code, 211, "{text}");
    assert!(text.starts_with("211-FTP server status:"), "{text}");
    assert!(text.ends_with("211 End of status"), "{text}");
    assert!(text.contains("Connected to 127.0.0.1"), "{text}");
    assert!(
        text.contains(&format!("Logged in as {}", s.user.name)),
        "{text}"
    );
    assert!(text.contains("TYPE: BINARY"), "{text}");
    assert!(text.contains("Control connection is plain text"), "{text}");
    let lower = text.to_ascii_lowercase();
    for internal in ["unftp", "sbe:", "::", "powered by"] {
        assert!(!lower.contains(internal), "{internal:?} in {text}");
    }
    assert_alive(&mut s.ftp, "STAT");
}

#[test]
fn help_lists_the_commands_in_vsftpds_words() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    let (code, text) = s.ftp.cmd("HELP");
    assert_eq!(code, 214, "{text}");
    assert!(
        text.starts_with("214-The following commands are recognized."),
        "{text}"
    );
    assert!(text.ends_with("214 Help OK."), "{text}");
    assert!(text.contains("RETR") && text.contains("SIZE"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("http"), "{text}");
    assert_eq!(s.ftp.cmd("HELP SITE").0, 214);
}

/// A small xorshift generator seeded from /dev/urandom (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Verbs the fuzzer sends: every verb rftpd knows except QUIT and the ones that open a data
/// connection (STOR/RETR/LIST family), plus some it does not.
const VERBS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT", "HELP",
    "MDTM", "MKD", "MLST", "MODE", "NOOP", "OPTS", "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD",
    "REST", "RMD", "RNFR", "RNTO", "SITE", "SIZE", "STAT", "STRU", "SYST", "TYPE", "USER", "XCUP",
    "XCWD", "XMKD", "XPWD", "XRMD", "REIN", "SMNT", "MFMT", "CLNT", "HOST", "LANG", "XYZZY", "mkd",
    "Size", "rest",
];

const ARGS: &[&str] = &[
    "",
    " ",
    "  ",
    "..",
    "../..",
    "/",
    "/..",
    "a",
    "A",
    "I",
    "S",
    "F",
    "Z",
    "P",
    "C",
    "E",
    "0",
    "1",
    "-1",
    "abc",
    "12abc",
    "18446744073709551616",
    "TLS",
    "UTF8 ON",
    "UTF8 OFF",
    "MLST type;size;",
    "MD5",
    "MD5 x",
    "CHMOD",
    "CHMOD 755",
    "CHMOD 999 x",
    "UMASK",
    "HELP",
    "127,0,0,1,4,1",
    "|1|127.0.0.1|1025|",
    "|2|::1|1|",
    "x y",
    "\"q\"",
    "%s%n",
    "*",
    "~",
    "a/../../b",
];

fn random_arg(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => rand_bytes(rng.below(40))
            .into_iter()
            .map(|b| if b < 0x20 || b == 0x7f { b'x' } else { b })
            .collect(),
        1 => "n".repeat(rng.below(3000)).into_bytes(),
        2 => rng.next().to_string().into_bytes(),
        // a control character: the relay refuses the line with a 500
        3 => vec![b'a', [0u8, 7, 9, 13, 27, 127][rng.below(6)], b'b'],
        _ => rng.pick(ARGS).as_bytes().to_vec(),
    }
}

#[test]
fn random_malformed_commands_never_end_a_session() {
    if !common::require_root() {
        return;
    }
    let seed = u64::from_le_bytes(rand_bytes(8).try_into().unwrap()) | 1;
    let mut rng = Rng(seed);
    let mut s = Session::new();
    s.user.put_file("file.txt", b"hello\n");
    s.user.put_dir("dir");
    let deadline = Instant::now() + Duration::from_secs(120);
    for session in 0..20 {
        if session > 0 {
            s.relogin();
        }
        for _ in 0..200 {
            assert!(
                Instant::now() < deadline,
                "seed {seed}: the fuzz run took too long"
            );
            let mut line = rng.pick(VERBS).as_bytes().to_vec();
            if rng.below(8) > 0 {
                line.push(b' ');
                line.extend(random_arg(&mut rng));
            }
            let shown = String::from_utf8_lossy(&line).into_owned();
            line.extend_from_slice(b"\r\n");
            s.ftp
                .send_raw(&line)
                .unwrap_or_else(|e| panic!("seed {seed}: send {shown:?}: {e}"));
            let first = s
                .ftp
                .read_reply()
                .unwrap_or_else(|e| panic!("seed {seed}: no reply to {shown:?}: {e}"));
            assert!(
                (200..600).contains(&first.0) || first.0 == 150,
                "seed {seed}: {shown:?} → {first:?}"
            );
            let reply = s
                .ftp
                .try_cmd("NOOP")
                .unwrap_or_else(|e| panic!("seed {seed}: session ended after {shown:?}: {e}"));
            assert_eq!(reply.0, 200, "seed {seed}: NOOP after {shown:?}: {reply:?}");
        }
    }
}

#[test]
fn cwd_up_at_the_jail_root_succeeds_and_stays_at_the_root() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    let (code, text) = s.ftp.cmd("CWD ..");
    assert_eq!(code, 250, "{text}");
    assert_eq!(s.ftp.pwd(), "/");
    assert_eq!(s.ftp.cmd("CDUP").0, 250);
    assert_eq!(s.ftp.pwd(), "/");
}

#[test]
fn mkd_quotes_the_new_path_as_rfc_959_says() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    let (code, text) = s.ftp.cmd("MKD x y");
    assert_eq!(code, 257, "{text}");
    assert!(text.starts_with("257 \"/x y\" "), "{text}");
    let (code, text) = s.ftp.cmd("MKD say \"hi\"");
    assert_eq!(code, 257, "{text}");
    assert!(text.starts_with("257 \"/say \"\"hi\"\"\" "), "{text}");
    assert!(s.user.home.join("say \"hi\"").is_dir());
}

#[test]
fn mlst_of_a_missing_file_is_a_clean_550() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    let (code, text) = s.ftp.cmd("MLST nosuch");
    assert_eq!(code, 550, "{text}");
    assert!(!text.to_ascii_lowercase().contains("storage"), "{text}");
    assert_alive(&mut s.ftp, "MLST nosuch");
}

#[test]
fn transfers_listings_and_abor_end_with_vsftpds_words() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    // ABOR before any data connection (after one, libunftp still has its handle: `226 ABOR
    // successful.` where vsftpd says 225).
    assert_eq!(s.ftp.cmd("ABOR").1, "225 No transfer to ABOR.");
    s.user.put_file("f.bin", b"contents");
    for (line, want) in [
        ("RETR f.bin", "226 Transfer complete."),
        ("LIST", "226 Directory send OK."),
        ("NLST", "226 Directory send OK."),
        ("MLSD", "226 Directory send OK."),
    ] {
        let (_, text, _) = s.ftp.transfer_in(line);
        assert_eq!(text, want, "{line}");
    }
    for line in ["STOR g.bin", "APPE g.bin"] {
        let (_, text) = s.ftp.transfer_out(line, b"more");
        assert_eq!(text, "226 Transfer complete.", "{line}");
    }
    assert_eq!(
        std::fs::read(s.user.home.join("g.bin")).unwrap(),
        b"moremore"
    );
    assert_eq!(s.ftp.cmd("ABOR").1, "226 ABOR successful.");
    assert_alive(&mut s.ftp, "ABOR");
}

/// Wait (bounded) until `stream` is closed by the server: EOF or a reset.
fn closed_by_server(mut stream: std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
        && !matches!(stream.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn a_passive_port_refused_before_use_is_released_and_a_new_pasv_works() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new();
    s.user.put_file("ok.bin", b"after the refusal");
    for refused in ["RETR nosuch.bin", "MLSD nosuch", "STOR nodir/x.bin"] {
        // Connected, then refused: the refusal comes instead of 150 and the data connection
        // is closed.
        let data = s.ftp.pasv_data().expect("data connection");
        let (code, text) = s.ftp.cmd(refused);
        assert!((500..600).contains(&code), "{refused}: {code} {text}");
        assert!(
            closed_by_server(data),
            "{refused}: the data connection stays open"
        );
        // A new PASV gets a port and a transfer through it works.
        let (code, text, bytes) = s.ftp.transfer_in("RETR ok.bin");
        assert_eq!(code, 226, "after {refused}: {text}");
        assert_eq!(bytes, b"after the refusal", "after {refused}");
    }
    // Opened, connected only after the 150 (the refusal is known only once the data
    // connection comes): the 150 comes at once, the refusal after it, and a new PASV and a
    // transfer work.
    let (code, text) = s.ftp.cmd("PASV");
    assert_eq!(code, 227, "{text}");
    let late = common::pasv_addr(&text).unwrap();
    let asked = Instant::now();
    let (code, text) = s.ftp.cmd("RETR nosuch.bin");
    assert_eq!(code, 150, "{text}");
    // Not held for the storage backend's word (that comes only once the client connects).
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "the 150 for a client that had not connected took {:?}",
        asked.elapsed()
    );
    let data = std::net::TcpStream::connect_timeout(&late, Duration::from_secs(10)).unwrap();
    let (code, text) = s.ftp.read_reply().unwrap();
    assert_eq!(code, 550, "RETR nosuch.bin after 150: {text}");
    assert!(
        closed_by_server(data),
        "the late data connection stays open"
    );
    let (code, text, bytes) = s.ftp.transfer_in("RETR ok.bin");
    assert_eq!(code, 226, "after an unconnected refusal: {text}");
    assert_eq!(bytes, b"after the refusal");
    // Opened, never connected, then a command that is refused without a transfer: the next
    // PASV replaces the port and works; the old port takes no connection any more.
    let (code, text) = s.ftp.cmd("PASV");
    assert_eq!(code, 227, "{text}");
    let old = common::pasv_addr(&text).unwrap();
    assert_eq!(s.ftp.cmd("SIZE nosuch.bin").0, 550);
    let (code, text) = s.ftp.cmd("PASV");
    assert_eq!(code, 227, "{text}");
    let new = common::pasv_addr(&text).unwrap();
    if new != old {
        assert!(
            std::net::TcpStream::connect_timeout(&old, Duration::from_secs(2))
                .map(closed_by_server)
                .unwrap_or(true),
            "the first PASV's port {old} still takes connections"
        );
    }
    let data = std::net::TcpStream::connect_timeout(&new, Duration::from_secs(10)).unwrap();
    let (code, text) = s.ftp.cmd("RETR ok.bin");
    assert_eq!(code, 150, "{text}");
    let mut bytes = Vec::new();
    use std::io::Read;
    data.take(1 << 20).read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, b"after the refusal");
    assert_eq!(s.ftp.read_reply().unwrap().1, "226 Transfer complete.");
    assert_alive(&mut s.ftp, "the second PASV");
}

/// Set `user`'s password to `password`'s bytes (a SHA-512 crypt made by openssl, set with
/// `chpasswd -e`: chpasswd itself would take the bytes as they are too, but says nothing of it).
fn set_password_bytes(user: &TestUser, password: &[u8]) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut openssl = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl passwd");
    let mut input = password.to_vec();
    input.push(b'\n');
    openssl.stdin.take().unwrap().write_all(&input).unwrap();
    let out = openssl.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl passwd failed");
    let hash = common::lossy(&out.stdout).trim().to_string();
    let mut chpasswd = Command::new("chpasswd")
        .arg("-e")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd -e");
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}:{hash}\n", user.name).as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success(), "chpasswd -e failed");
}

/// USER, then PASS with `password`'s bytes as they are; the reply to PASS.
fn login_with_bytes(addr: std::net::SocketAddr, user: &[u8], password: &[u8]) -> (u16, String) {
    let mut ftp = FtpClient::connect(addr);
    ftp.send_raw(&[b"USER ", user, b"\r\n"].concat()).unwrap();
    let (code, text) = ftp.read_reply().unwrap();
    if code != 331 {
        return (code, text);
    }
    ftp.send_raw(&[b"PASS ", password, b"\r\n"].concat())
        .unwrap();
    let reply = ftp.read_reply().unwrap();
    assert_alive(&mut ftp, "a PASS that is not UTF-8");
    reply
}

#[test]
fn a_password_that_is_not_utf8_reaches_pam_as_its_bytes() {
    if !common::require_root() {
        return;
    }
    let s = Session::new();
    // Latin-1 "café" and two bytes that are no UTF-8 at all.
    let password = b"caf\xe9-\xff\xfe-Pw1";
    set_password_bytes(&s.user, password);
    let name = s.user.name.as_bytes();
    let (code, text) = login_with_bytes(s.server_addr, name, password);
    assert_eq!(code, 230, "the Latin-1 password: {text}");
    // What the bytes would be after a lossy decoding: not the password.
    let lossy = "caf\u{fffd}-\u{fffd}\u{fffd}-Pw1".as_bytes();
    let (code, text) = login_with_bytes(s.server_addr, name, lossy);
    assert_eq!(code, 530, "U+FFFD in place of the bytes: {text}");
    // A USER that is not UTF-8 is no account's name, whatever its U+FFFD stand-ins spell.
    let (code, text) = login_with_bytes(s.server_addr, b"\xe9\xe9", password);
    assert_eq!(code, 530, "a USER that is not UTF-8: {text}");
}
