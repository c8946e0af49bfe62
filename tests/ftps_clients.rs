//! FTPS data connections with real clients (issue 12, part 7): Python's `ftplib.FTP_TLS`
//! uploads and downloads complete (rftpd sends `close_notify`), with and without
//! `require_ssl_reuse`; a failed data handshake (garbage, a closed connection, plain text
//! after `PROT P`) fails only that transfer with `522` and the session goes on; implicit FTPS
//! (`implicit_ssl`) with curl (`ftps://`) and ftplib.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::Output;

use common::{PamService, Server, TempDir, TestUser, code, curl, describe, lossy, rand_bytes};

/// `HOST PORT USER PASSWORD CLIENT SCENARIO`. CLIENT: `stock` (`FTP_TLS` as it is: data TLS
/// does not resume the control session), `resume` (a subclass that resumes it, as curl and
/// FileZilla do), `implicit` (TLS from the first byte, resuming). SCENARIO: `transfers`
/// (STOR then RETR of 3 MiB, compared), or `garbage`/`close`/`plain` (a data connection whose
/// TLS handshake fails that way, for a STOR, then NOOP and a good RETR on the same session).
/// Prints `TAG: value` lines; never raises.
const SCRIPT: &str = r#"
import ftplib, io, socket, ssl, sys
host, port, user, password, client, scenario = sys.argv[1:7]
port = int(port)

def out(tag, value):
    print(tag + ': ' + str(value).replace('\r', '').replace('\n', ' | '), flush=True)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

class Resume(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
        return conn, size

class Implicit(Resume):
    def connect(self, host='', port=0, timeout=-999, source_address=None):
        self.host, self.port = host, port
        sock = socket.create_connection((host, port), self.timeout)
        self.af = sock.family
        self.sock = self.context.wrap_socket(sock, server_hostname=host)
        self.file = self.sock.makefile('r', encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

kind = {'stock': ftplib.FTP_TLS, 'resume': Resume, 'implicit': Implicit}[client]
ftp = kind(context=ctx, timeout=15)
payload = bytes(range(256)) * 4096 * 3

def attempt(tag, f):
    try:
        out(tag, f())
    except Exception as e:
        out(tag, 'ERROR ' + repr(e))

try:
    out('GREETING', ftp.connect(host, port))
    out('TLS', ftp.sock.version() if isinstance(ftp.sock, ssl.SSLSocket) else 'none')
    if client == 'implicit':
        attempt('AUTH', lambda: ftp.sendcmd('AUTH TLS'))
    out('LOGIN', ftp.login(user, password))
    out('PBSZ', ftp.sendcmd('PBSZ 0'))
    out('PROT', ftp.prot_p())
except Exception as e:
    out('SETUP', 'ERROR ' + repr(e))
    sys.exit(0)

def download(name):
    got = io.BytesIO()
    reply = ftp.retrbinary('RETR ' + name, got.write)
    return reply + (' SAME' if got.getvalue() == payload else ' DIFFERENT %d' % len(got.getvalue()))

if scenario == 'transfers':
    attempt('STOR', lambda: ftp.storbinary('STOR up.bin', io.BytesIO(payload)))
    attempt('RETR', lambda: download('up.bin'))
    attempt('LIST', lambda: ' '.join(ftp.nlst()))
else:
    passive = ftp.sendcmd('EPSV')
    dport = int(passive.split('|||')[1].split('|')[0])
    data = socket.create_connection((host, dport), timeout=15)
    if scenario == 'garbage':
        data.sendall(b'this is not a TLS ClientHello\r\n' * 8)
    elif scenario == 'close':
        data.close()
    ftp.putcmd('STOR refused.bin')
    try:
        first = ftp.getresp()
    except (ftplib.error_perm, ftplib.error_temp) as e:
        first = str(e)
    except Exception as e:
        first = 'ERROR ' + repr(e)
    out('FIRST', first)
    if scenario == 'plain':
        try:
            data.sendall(b'plain text where TLS was due\r\n' * 100)
        except Exception as e:
            out('PLAIN', 'ERROR ' + repr(e))
    try:
        out('FINAL', ftp.getresp())
    except (ftplib.error_perm, ftplib.error_temp) as e:
        out('FINAL', str(e))
    except Exception as e:
        out('FINAL', 'ERROR ' + repr(e))
    data.close()
    attempt('NOOP', lambda: ftp.voidcmd('NOOP'))
    attempt('RETR', lambda: download('seed.bin'))
attempt('QUIT', lambda: ftp.quit())
"#;

/// What one run printed, by tag.
struct Run {
    fields: HashMap<String, String>,
    raw: String,
}

impl Run {
    fn get(&self, tag: &str) -> &str {
        self.fields.get(tag).map(String::as_str).unwrap_or("")
    }
}

fn parse(out: &Output) -> Run {
    let raw = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
    let fields = lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    Run { fields, raw }
}

/// 3 MiB of the pattern the script uploads and compares.
fn payload() -> Vec<u8> {
    (0..256u32 * 4096 * 3).map(|i| (i % 256) as u8).collect()
}

struct Site {
    _pki: TempDir,
    server: Server,
    _pam: PamService,
    user: TestUser,
}

impl Site {
    fn new(extra: &str) -> Site {
        let pki = TempDir::new();
        let (cert, key) = common::self_signed_pair(&pki, "server");
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let config = format!(
            "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n\
             write_enable = true\n{extra}",
            cert.display(),
            key.display()
        );
        let server = Server::start(&config, &pam);
        Site {
            _pki: pki,
            server,
            _pam: pam,
            user,
        }
    }

    fn python(&self, client: &str, scenario: &str) -> Run {
        let port = self.server.port().to_string();
        let args = [
            "127.0.0.1",
            &port,
            &self.user.name,
            &self.user.password,
            client,
            scenario,
        ];
        parse(&common::python(SCRIPT, &args))
    }

    fn uploaded(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.user.home.join(name)).ok()
    }
}

fn assert_transfers_complete(site: &Site, client: &str, what: &str) {
    let _ = fs::remove_file(site.user.home.join("up.bin"));
    let run = site.python(client, "transfers");
    assert!(
        run.get("STOR").starts_with("226 "),
        "{what}: the upload did not complete cleanly:\n{}",
        run.raw
    );
    assert_eq!(
        run.get("RETR").split(' ').next_back(),
        Some("SAME"),
        "{what}: the download:\n{}",
        run.raw
    );
    assert!(run.get("RETR").starts_with("226 "), "{what}:\n{}", run.raw);
    assert!(run.get("LIST").contains("up.bin"), "{what}:\n{}", run.raw);
    assert!(run.get("QUIT").starts_with("221"), "{what}:\n{}", run.raw);
    assert!(
        site.uploaded("up.bin").as_deref() == Some(&payload()[..]),
        "{what}: the uploaded file differs"
    );
}

#[test]
fn ftplib_tls_uploads_and_downloads_complete_with_and_without_require_ssl_reuse() {
    if !common::require_root() {
        return;
    }
    // Without require_ssl_reuse, ftplib as it is (a new TLS session per data connection).
    let site = Site::new("require_ssl_reuse = false");
    assert_transfers_complete(&site, "stock", "FTP_TLS, require_ssl_reuse = false");
    assert_transfers_complete(&site, "resume", "resuming, require_ssl_reuse = false");
    drop(site);

    // With it (the default), a resuming client is served; ftplib as it is gets vsftpd's 522
    // for each transfer, and the session goes on.
    let site = Site::new("");
    assert_transfers_complete(&site, "resume", "resuming, require_ssl_reuse = true");
    let _ = fs::remove_file(site.user.home.join("up.bin"));
    let run = site.python("stock", "transfers");
    for tag in ["STOR", "RETR", "LIST"] {
        assert!(
            run.get(tag)
                .contains("522 SSL connection failed; session reuse required"),
            "{tag} by FTP_TLS under require_ssl_reuse:\n{}",
            run.raw
        );
    }
    assert!(run.get("QUIT").starts_with("221"), "{}", run.raw);
    assert_eq!(
        site.uploaded("up.bin"),
        None,
        "a refused upload left a file"
    );
}

#[test]
fn a_failed_data_handshake_fails_only_that_transfer_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let site = Site::new("");
    site.user.put_file("seed.bin", &payload());
    for scenario in ["garbage", "close", "plain"] {
        let run = site.python("resume", scenario);
        assert!(
            run.get("FIRST").starts_with("150"),
            "{scenario}: the STOR was not started:\n{}",
            run.raw
        );
        assert_eq!(
            run.get("FINAL"),
            "522 SSL connection failed",
            "{scenario}: the failed handshake's reply:\n{}",
            run.raw
        );
        assert!(
            run.get("NOOP").starts_with("200"),
            "{scenario}: the session did not go on:\n{}",
            run.raw
        );
        assert!(
            run.get("RETR").starts_with("226 ") && run.get("RETR").ends_with(" SAME"),
            "{scenario}: the next transfer on the same session:\n{}",
            run.raw
        );
        assert!(run.get("QUIT").starts_with("221"), "{}", run.raw);
        assert_eq!(
            site.uploaded("refused.bin"),
            None,
            "{scenario}: the refused upload created a file"
        );
    }
    assert!(
        site.server
            .log_contains("data connection TLS handshake failed"),
        "the failures are not logged"
    );
    assert!(
        !site.server.log_contains("panicked"),
        "{}",
        site.server.log().join("\n")
    );
}

#[test]
fn implicit_ftps_serves_curl_and_ftplib() {
    if !common::require_root() {
        return;
    }
    let site = Site::new("implicit_ssl = true");
    site.user.put_file("seed.bin", &payload());
    let port = site.server.port();
    let url = |path: &str| {
        format!(
            "ftps://{}:{}@127.0.0.1:{port}/{path}",
            site.user.name, site.user.password
        )
    };
    // curl: ftps:// is implicit FTPS; data is protected (force_local_data_ssl is on by default,
    // so a plain transfer would be refused).
    let out = curl(&["-k", &url("")]);
    assert_eq!(code(&out), 0, "curl list: {}", describe(&out));
    assert!(
        lossy(&out.stdout).contains("seed.bin"),
        "{}",
        describe(&out)
    );
    let local = TempDir::new();
    let up: PathBuf = local.join("up.bin");
    let bytes = rand_bytes(2 << 20);
    fs::write(&up, &bytes).unwrap();
    let out = curl(&["-k", "-T", up.to_str().unwrap(), &url("curl-up.bin")]);
    assert_eq!(code(&out), 0, "curl upload: {}", describe(&out));
    assert_eq!(site.uploaded("curl-up.bin").as_deref(), Some(&bytes[..]));
    let out = curl(&["-k", "-s", &url("seed.bin")]);
    assert_eq!(code(&out), 0, "curl download: {}", describe(&out));
    assert!(out.stdout == payload(), "curl's download differs");

    // ftplib, TLS from the first byte; AUTH TLS is refused on the encrypted connection.
    let run = site.python("implicit", "transfers");
    assert!(run.get("GREETING").starts_with("220"), "{}", run.raw);
    assert!(run.get("TLS").starts_with("TLSv1"), "{}", run.raw);
    assert_eq!(
        run.get("AUTH"),
        "ERROR error_perm('503 Already using TLS.')"
    );
    assert!(run.get("STOR").starts_with("226 "), "{}", run.raw);
    assert!(run.get("RETR").ends_with(" SAME"), "{}", run.raw);
    assert!(run.get("QUIT").starts_with("221"), "{}", run.raw);

    // A plain-text client gets no greeting in clear.
    let mut plain = std::net::TcpStream::connect(site.server.addr()).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut first = [0u8; 3];
    let got = std::io::Read::read(&mut plain, &mut first).unwrap_or(0);
    assert!(
        got == 0 || &first[..got] != b"220",
        "implicit_ssl sent a plain greeting"
    );
}
