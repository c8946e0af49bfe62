//! FileZilla itself (Debian 12's 3.63) under Xvfb, unattended (issue 12), doing the seed
//! exercise over plain FTP, explicit FTPS and implicit FTPS: it logs in, lists `/` holding the
//! user's file, uploads one file (the bytes land in the home, the mtime kept by its `MFMT`) and
//! downloads one (the local copy has the same bytes and the server's mtime). How it is driven:
//! `../shared/reference/clients.md`.
//!
//! The two dialogs an unattended run would block on are answered beforehand in
//! `trustedcerts.xml`: plain FTP's "insecure server" by an `<InsecureHosts>` entry, the
//! self-signed certificate by a `<TrustedCerts>` entry. FileZilla drops an insecure-host entry
//! for a host and port that also has a trusted certificate ("a host can't be both"), so each run
//! writes only the one its protocol needs. FileZilla starts transfers only from its GUI: the test
//! double-clicks the file's row in the local list (upload) and in the remote list (download)
//! with `xdotool`, FileZilla's default double-click action being "transfer".
//!
//! Must never: wait without a bound, or leave Xvfb or FileZilla running.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{PamService, Server, TempDir, TestUser};

/// A child process killed (SIGTERM, then reaped) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        common::signal(self.0.id(), "TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn available() -> bool {
    ["filezilla", "Xvfb", "xdotool"].iter().all(|p| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Unix time of a certificate's `-startdate`/`-enddate`.
fn cert_time(cert: &Path, which: &str) -> u64 {
    let out = Command::new("openssl")
        .args(["x509", "-noout", which, "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    let text = common::lossy(&out.stdout);
    let date = text.trim().split_once('=').expect("a date").1.to_string();
    let out = Command::new("date")
        .args(["-d", &date, "+%s"])
        .output()
        .expect("date");
    common::lossy(&out.stdout).trim().parse().expect("seconds")
}

fn der_hex(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    out.stdout.iter().map(|b| format!("{b:02X}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    common::lossy(&child.wait_with_output().unwrap().stdout)
}

const HEADER: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FileZilla3 version=\"3.63.0\" platform=\"*nix\">";

/// What `trustedcerts.xml` answers in advance: the certificate (FTPS) or "insecure" (plain).
enum Trust<'a> {
    Certificate(&'a Path),
    Insecure,
}

/// The `trustedcerts.xml` for a server on 127.0.0.1:`port`.
fn trusted_certs(port: u16, trust: &Trust) -> String {
    match trust {
        Trust::Certificate(cert) => format!(
            "{HEADER}<TrustedCerts><Certificate><Data>{}</Data>\
             <ActivationTime>{}</ActivationTime><ExpirationTime>{}</ExpirationTime>\
             <Host>127.0.0.1</Host><Port>{port}</Port><TrustSANs>0</TrustSANs></Certificate>\
             </TrustedCerts></FileZilla3>\n",
            der_hex(cert),
            cert_time(cert, "-startdate"),
            cert_time(cert, "-enddate")
        ),
        Trust::Insecure => format!(
            "{HEADER}<InsecureHosts><Host Port=\"{port}\">127.0.0.1</Host></InsecureHosts>\
             </FileZilla3>\n"
        ),
    }
}

/// One FileZilla under its own Xvfb, with a fresh home, connected to the site "rftpd" and its
/// local pane showing `local`.
struct FileZilla {
    _dir: TempDir,
    log: PathBuf,
    local: PathBuf,
    display: String,
    // Dropped in this order: FileZilla first, then its X server.
    _filezilla: Reaped,
    _xvfb: Reaped,
}

impl FileZilla {
    /// Start FileZilla against 127.0.0.1:`port` with site protocol `protocol` (6 plain only,
    /// 4 explicit FTPS, 3 implicit FTPS); `upload` (name, bytes, mtime) waits in the local pane.
    fn start(
        port: u16,
        protocol: u8,
        user: &TestUser,
        trust: Trust,
        upload: (&str, &[u8], &str),
    ) -> FileZilla {
        let dir = TempDir::new();
        let config = dir.join("home/.config/filezilla");
        fs::create_dir_all(&config).unwrap();
        let local = dir.join("local");
        fs::create_dir_all(&local).unwrap();
        let (name, bytes, mtime) = upload;
        fs::write(local.join(name), bytes).unwrap();
        let touched = Command::new("touch")
            .args(["-d", mtime])
            .arg(local.join(name))
            .status()
            .unwrap();
        assert!(touched.success());
        let log = dir.join("filezilla.log");
        // "Preserve timestamps": MFMT after an upload, the listing's time on a download.
        fs::write(
            config.join("filezilla.xml"),
            format!(
                "{HEADER}<Settings><Setting name=\"Greeting version\">3.63.0</Setting>\
                 <Setting name=\"Logging file\">{}</Setting>\
                 <Setting name=\"Logging Raw Listing\">1</Setting>\
                 <Setting name=\"Reconnect count\">0</Setting>\
                 <Setting name=\"Preserve timestamps\">1</Setting></Settings></FileZilla3>\n",
                log.display()
            ),
        )
        .unwrap();
        fs::write(
            config.join("sitemanager.xml"),
            format!(
                "{HEADER}<Servers><Server><Host>127.0.0.1</Host><Port>{port}</Port>\
                 <Protocol>{protocol}</Protocol><Type>0</Type><User>{}</User>\
                 <Pass encoding=\"base64\">{}</Pass><Logontype>1</Logontype>\
                 <PasvMode>MODE_DEFAULT</PasvMode><EncodingType>Auto</EncodingType>\
                 <BypassProxy>0</BypassProxy><Name>rftpd</Name></Server></Servers>\
                 </FileZilla3>\n",
                user.name,
                base64(user.password.as_bytes())
            ),
        )
        .unwrap();
        fs::write(config.join("trustedcerts.xml"), trusted_certs(port, &trust)).unwrap();

        // Xvfb picks a free display and writes its number to fd 3 (here: a file).
        let display_file = dir.join("display");
        let xvfb = Command::new("sh")
            .args([
                "-c",
                "exec Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>\"$1\"",
                "sh",
            ])
            .arg(&display_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let xvfb = Reaped(xvfb);
        assert!(
            common::wait_until(Duration::from_secs(10), || fs::read_to_string(
                &display_file
            )
            .is_ok_and(|d| d.ends_with('\n'))),
            "Xvfb did not start"
        );
        let display = format!(":{}", fs::read_to_string(&display_file).unwrap().trim());
        let home = dir.join("home");
        let filezilla = Command::new("filezilla")
            .args(["-c", "0/rftpd", "--local"])
            .arg(&local)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("FZDEBUG", "1")
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start filezilla");
        FileZilla {
            _dir: dir,
            log,
            local,
            display,
            _filezilla: Reaped(filezilla),
            _xvfb: xvfb,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (bounded) until the log holds `needle` at least `count` times or an `Error:` line.
    fn wait_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        common::wait_until(timeout, || {
            let log = self.log();
            log.matches(needle).count() >= count || log.contains("Error:")
        }) && self.log().matches(needle).count() >= count
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("run xdotool");
        common::lossy(&out.stdout)
    }

    /// Double-click at (`x`, `y`) relative to FileZilla's main window.
    ///
    /// Coordinates: on a fresh 1280x800 screen FileZilla's default layout puts the local file
    /// list left and the remote one right, each with a header row, the ".." row, then the
    /// entries sorted by name (first entry at y = 429). Clicks at xdotool's x landed where a
    /// screenshot shows x × 0.75 (seen on Debian 12's Xvfb, not understood), so each x is
    /// picked to land in the same pane either way.
    fn double_click(&self, x: u32, y: u32) {
        let window = self
            .xdotool(&["search", "--name", " - FileZilla$"])
            .lines()
            .next()
            .map(str::to_string)
            .expect("FileZilla's main window");
        let (x, y) = (x.to_string(), y.to_string());
        self.xdotool(&[
            "mousemove",
            "--window",
            &window,
            &x,
            &y,
            "click",
            "--repeat",
            "2",
            "--delay",
            "100",
            "1",
        ]);
    }

    /// Double-click a file's row until FileZilla logs `started` (at most 3 tries, 5 s each):
    /// a click that lands while a list is being redrawn can be lost. Not again once started,
    /// since a second transfer of the same file would ask whether to overwrite.
    fn start_transfer(&self, x: u32, y: u32, started: &str) -> bool {
        let before = self.log().matches(started).count();
        (0..3).any(|_| {
            self.double_click(x, y);
            common::wait_until(Duration::from_secs(5), || {
                self.log().matches(started).count() > before
            })
        })
    }
}

/// Row of the first entry of a file list, relative to the main window.
const FIRST_ENTRY_Y: u32 = 429;
/// Inside the local file list's rows.
const LOCAL_LIST_X: u32 = 160;
/// Inside the remote file list's rows.
const REMOTE_LIST_X: u32 = 660;

fn mtime(path: &Path) -> i64 {
    fs::metadata(path).unwrap().mtime()
}

/// The exercise over one protocol; returns FileZilla's log for the caller's own checks.
fn seed_exercise(
    what: &str,
    server: &Server,
    protocol: u8,
    user: &TestUser,
    trust: Trust,
) -> String {
    let tag = common::rand_hex(6);
    // The home holds only the seed: its row is the remote list's first entry, and stays first
    // once the upload ("up-…") is listed after it.
    for entry in fs::read_dir(&user.home).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
    let seed_name = format!("a-seed-{tag}.bin");
    let seed_bytes = common::rand_bytes(200 * 1024);
    let seed_path = user.put_file(&seed_name, &seed_bytes);
    let up_name = format!("up-{tag}.bin");
    // Line ends and every byte value: a text-mode transfer would change them.
    let mut up_bytes = b"line\r\nline\n\r\0".to_vec();
    up_bytes.extend(common::rand_bytes(300 * 1024));
    let fz = FileZilla::start(
        server.port(),
        protocol,
        user,
        trust,
        (&up_name, &up_bytes, "2020-01-02 03:04:05 UTC"),
    );
    let failed = |why: &str| -> String { format!("{what}: {why}; FileZilla's log:\n{}", fz.log()) };

    assert!(
        fz.wait_log(
            "Status: Directory listing of \"/\" successful",
            1,
            Duration::from_secs(30)
        ),
        "{}",
        failed("no listing of /")
    );
    let log = fz.log();
    for needle in ["Status: Logged in", "Response: 257 \"/\""] {
        assert!(
            log.contains(needle),
            "{}",
            failed(&format!("no {needle:?}"))
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("Listing:") && l.ends_with(&format!(" {seed_name}"))),
        "{}",
        failed("the user's file is not in the listing of /")
    );

    // Upload: the local list's only entry.
    assert!(
        fz.start_transfer(LOCAL_LIST_X, FIRST_ENTRY_Y, "Status: Starting upload of"),
        "{}",
        failed("double-clicking the local file started no upload")
    );
    assert!(
        fz.wait_log(
            "Status: File transfer successful",
            1,
            Duration::from_secs(30)
        ),
        "{}",
        failed("the upload did not succeed")
    );
    let landed = user.home.join(&up_name);
    // Not assert_eq!: 300 KiB of bytes would bury FileZilla's log.
    assert!(
        fs::read(&landed).ok().as_deref() == Some(&up_bytes[..]),
        "{}",
        failed("the uploaded bytes differ")
    );
    assert!(
        fz.log()
            .contains(&format!("Command: MFMT 20200102030405 {up_name}")),
        "{}",
        failed("no MFMT after the upload")
    );
    assert_eq!(
        mtime(&landed),
        1_577_934_245,
        "{}",
        failed("mtime not kept")
    );
    // The upload's own listing refresh ends before the next click lands on the new rows.
    assert!(
        fz.wait_log(
            "Status: Directory listing of \"/\" successful",
            2,
            Duration::from_secs(30)
        ),
        "{}",
        failed("no listing after the upload")
    );

    // Download: the remote list's first entry, the seed.
    assert!(
        fz.start_transfer(REMOTE_LIST_X, FIRST_ENTRY_Y, "Status: Starting download of"),
        "{}",
        failed("double-clicking the remote file started no download")
    );
    assert!(
        fz.wait_log(
            "Status: File transfer successful",
            2,
            Duration::from_secs(30)
        ),
        "{}",
        failed("the download did not succeed")
    );
    let fetched = fz.local.join(&seed_name);
    assert!(
        common::wait_until(Duration::from_secs(5), || fs::read(&fetched)
            .is_ok_and(|b| b == seed_bytes)),
        "{}",
        failed("the downloaded bytes differ")
    );
    assert_eq!(
        mtime(&fetched),
        mtime(&seed_path),
        "{}",
        failed("the download did not get the server's mtime")
    );
    let log = fz.log();
    assert!(!log.contains("Error:"), "{}", failed("an error"));
    log
}

#[test]
fn filezilla_lists_uploads_and_downloads_over_plain_explicit_and_implicit_ftps() {
    if !common::require_root() {
        return;
    }
    assert!(
        available(),
        "filezilla, Xvfb and xdotool are needed (tests/run.sh installs them)"
    );
    let pki = TempDir::new();
    let (cert, key) = common::self_signed_pair(&pki, "server");
    let tls = format!(
        "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let user = TestUser::create();
    let pam = PamService::create(&[]);

    let server = Server::start("", &pam);
    let log = seed_exercise("plain FTP", &server, 6, &user, Trust::Insecure);
    assert!(!log.contains("Command: AUTH"), "plain FTP:\n{log}");
    drop(server);

    for (what, config, protocol) in [
        ("explicit FTPS", tls.clone(), 4u8),
        ("implicit FTPS", format!("{tls}implicit_ssl = true\n"), 3),
    ] {
        let server = Server::start(&config, &pam);
        let log = seed_exercise(what, &server, protocol, &user, Trust::Certificate(&cert));
        assert!(
            log.contains("Response: 200 PROT now Private."),
            "{what}:\n{log}"
        );
        assert_eq!(
            log.contains("Command: AUTH TLS"),
            protocol == 4,
            "{what}:\n{log}"
        );
    }
}
