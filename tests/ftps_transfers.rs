//! Protected (`PROT P`) transfers at an offset and in `ASCII` mode, with Python's
//! `ftplib.FTP_TLS` (resuming the control session, as `require_ssl_reuse` wants): `REST` +
//! `RETR`, `REST` + `STOR` and `APPE` are carried straight between the file and the client's
//! TLS (`worker::tls_transfer`), `TYPE A` transfers with the conversions on go through
//! libunftp's stand-in — both must be byte-exact, end with `close_notify` (ftplib's `unwrap`)
//! and a `226`, and be logged with the bytes moved. An `ABOR` stops a direct download.

mod common;

use std::fs;
use std::time::Duration;

use common::{PamService, Server, TempDir, TestUser, lossy, rand_bytes};

/// Both scripts' start (`HOST PORT USER PASSWORD`): log in with `FTP_TLS`, `PROT P`, and
/// every data connection resuming the control connection's TLS session.
const PRELUDE: &str = r#"
import ftplib, ssl, sys, time
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Reuse(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ftp = Reuse(context=ctx, timeout=20)
ftp.connect(host, port)
ftp.login(user, password)
ftp.prot_p()

"#;

/// After [`PRELUDE`]: the transfers below, in one session; every reply printed as
/// `TAG: reply`, every download's bytes as `TAG-DATA: hex`. Raises (and so fails) on anything
/// unexpected.
const SCRIPT: &str = r#"
def download(tag, cmd, rest=None):
    conn = ftp.transfercmd(cmd, rest)
    got = bytearray()
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    conn.unwrap()  # the server's close_notify
    conn.close()
    print(tag + ': ' + ftp.voidresp().replace('\r', ''), flush=True)
    print(tag + '-DATA: ' + got.hex(), flush=True)

def upload(tag, cmd, data, rest=None):
    conn = ftp.transfercmd(cmd, rest)
    conn.sendall(data)
    conn.unwrap()  # sends ours, waits for the server's close_notify
    conn.close()
    print(tag + ': ' + ftp.voidresp().replace('\r', ''), flush=True)

ftp.voidcmd('TYPE I')
download('REST-RETR', 'RETR big.bin', rest=1000)
upload('REST-STOR', 'STOR part.bin', bytes(range(256)) * 10, rest=100)
upload('APPE', 'APPE grow.bin', b'appended')
print('TYPE-A: ' + ftp.sendcmd('TYPE A'), flush=True)
download('ASCII-RETR', 'RETR unix.txt')
upload('ASCII-STOR', 'STOR dos.txt', b'a\r\nb\r\nc\r')
ftp.voidcmd('TYPE I')
download('BINARY-RETR', 'RETR unix.txt')
print('NOOP: ' + ftp.sendcmd('NOOP'), flush=True)
ftp.quit()
"#;

/// An FTPS server (a fresh certificate; `extra` config lines) and its user.
struct Site {
    _pki: TempDir,
    _pam: PamService,
    user: TestUser,
    server: Server,
}

impl Site {
    fn start(extra: &str) -> Site {
        let pki = TempDir::new();
        let (cert, key) = common::self_signed_pair(&pki, "server");
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let server = Server::start(
            &format!(
                "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n{extra}\n",
                cert.display(),
                key.display()
            ),
            &pam,
        );
        Site {
            _pki: pki,
            _pam: pam,
            user,
            server,
        }
    }
}

fn field<'a>(stdout: &'a str, tag: &str) -> &'a str {
    let prefix = format!("{tag}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn protected_transfers_at_an_offset_and_in_ascii_mode_are_byte_exact_and_logged() {
    if !common::require_root() {
        return;
    }
    let s = Site::start(
        "write_enable = true\nallow_writeable_chroot = true\n\
         ascii_upload_enable = true\nascii_download_enable = true",
    );
    let (user, server) = (&s.user, &s.server);
    // Larger than one chunk of the direct path, and not a multiple of a TLS record.
    let big = rand_bytes(3 * 1024 * 1024 + 4321);
    user.put_file("big.bin", &big);
    let old = rand_bytes(300);
    user.put_file("part.bin", &old);
    user.put_file("grow.bin", b"start-");
    user.put_file("unix.txt", b"a\nb\r\nc");

    let out = common::python(
        &format!("{PRELUDE}{SCRIPT}"),
        &[
            "127.0.0.1",
            &server.port().to_string(),
            &user.name,
            &user.password,
        ],
    );
    let stdout = lossy(&out.stdout);
    let shown = format!("stdout:\n{stdout}\nstderr:\n{}", lossy(&out.stderr));
    assert!(out.status.success(), "the ftplib session failed:\n{shown}");
    for tag in [
        "REST-RETR",
        "REST-STOR",
        "APPE",
        "ASCII-RETR",
        "ASCII-STOR",
        "BINARY-RETR",
    ] {
        assert!(
            field(&stdout, tag).starts_with("226"),
            "{tag}: no 226:\n{shown}"
        );
    }
    assert!(field(&stdout, "NOOP").starts_with("200"), "{shown}");

    assert!(
        field(&stdout, "REST-RETR-DATA") == hex(&big[1000..]),
        "REST 1000 + RETR did not send the file from byte 1000"
    );
    let mut part = old[..100].to_vec();
    part.extend(std::iter::repeat_n((0..=255u8).collect::<Vec<_>>(), 10).flatten());
    assert_eq!(fs::read(user.home.join("part.bin")).unwrap(), part);
    assert_eq!(
        fs::read(user.home.join("grow.bin")).unwrap(),
        b"start-appended"
    );
    assert_eq!(field(&stdout, "ASCII-RETR-DATA"), hex(b"a\r\nb\r\nc"));
    assert_eq!(fs::read(user.home.join("dos.txt")).unwrap(), b"a\nb\nc\r");
    assert_eq!(field(&stdout, "BINARY-RETR-DATA"), hex(b"a\nb\r\nc"));

    // The transfer records count the bytes that went the direct way too.
    let wait = Duration::from_secs(10);
    for (what, needles) in [
        (
            "REST + RETR",
            vec![
                "download".to_string(),
                "path=/big.bin".into(),
                format!("bytes={}", big.len() - 1000),
                "result=ok".into(),
            ],
        ),
        (
            "REST + STOR",
            vec![
                "upload".to_string(),
                "path=/part.bin".into(),
                "bytes=2560".into(),
                "result=ok".into(),
            ],
        ),
        (
            "APPE",
            vec![
                "upload".to_string(),
                "path=/grow.bin".into(),
                "bytes=8".into(),
                "result=ok".into(),
            ],
        ),
    ] {
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert!(
            server.wait_log_line(&needles, wait).is_some(),
            "{what}: no transfer record with {needles:?}; log:\n{}",
            server.log().join("\n")
        );
    }
}

/// After [`PRELUDE`]: a protected download of `big.bin` aborted with `ABOR` after its
/// first bytes, then the replies, a `NOOP` and a download of the file's last 10 bytes.
const ABORT_SCRIPT: &str = r#"
ftp.voidcmd('TYPE I')
size = int(ftp.sendcmd('SIZE big.bin').split()[1])
conn = ftp.transfercmd('RETR big.bin')
print('FIRST-BYTES: %d' % len(conn.recv(65536)), flush=True)
ftp.sock.sendall(b'ABOR\r\n')
time.sleep(0.5)
conn.close()
print('REPLY: ' + ftp.getline(), flush=True)
print('REPLY: ' + ftp.getline(), flush=True)
print('NOOP: ' + ftp.sendcmd('NOOP'), flush=True)
conn = ftp.transfercmd('RETR big.bin', rest=size - 10)
got = b''
while True:
    chunk = conn.recv(100)
    if not chunk:
        break
    got += chunk
conn.unwrap()
print('TAIL: ' + ftp.voidresp() + ' ' + got.hex(), flush=True)
ftp.quit()
"#;

#[test]
fn an_aborted_protected_download_stops_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let s = Site::start("");
    let (user, server) = (&s.user, &s.server);
    // Far more than the sockets between the two ends can hold.
    let big = rand_bytes(48 * 1024 * 1024);
    user.put_file("big.bin", &big);
    let out = common::python(
        &format!("{PRELUDE}{ABORT_SCRIPT}"),
        &[
            "127.0.0.1",
            &server.port().to_string(),
            &user.name,
            &user.password,
        ],
    );
    let stdout = lossy(&out.stdout);
    let shown = format!("stdout:\n{stdout}\nstderr:\n{}", lossy(&out.stderr));
    assert!(out.status.success(), "the ftplib session failed:\n{shown}");
    let replies: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("REPLY: "))
        .collect();
    assert!(
        replies.iter().any(|r| r.starts_with("426")),
        "no 426 for the aborted transfer:\n{shown}"
    );
    assert!(field(&stdout, "NOOP").starts_with("200"), "{shown}");
    let tail = field(&stdout, "TAIL");
    assert!(
        tail.starts_with("226") && tail.ends_with(&format!(" {}", hex(&big[big.len() - 10..]))),
        "the download after the abort: {shown}"
    );
    // The aborted download stopped: its record is a failure, with less than the file sent.
    let line = server
        .wait_log_line(
            &["download", "path=/big.bin", "result=failed"],
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| {
            panic!(
                "no failed download record; log:\n{}",
                server.log().join("\n")
            )
        });
    let sent: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("bytes="))
        .and_then(|n| n.parse().ok())
        .expect("bytes= in the record");
    assert!(
        sent < big.len() as u64,
        "the aborted download went on to the end: {line}"
    );
}
