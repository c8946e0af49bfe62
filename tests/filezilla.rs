//! FileZilla itself (Debian 12's 3.63) under Xvfb, unattended (issue 12): it logs in and lists
//! `/` holding the user's files over explicit and implicit FTPS (its MLSD goes over a `PROT P`
//! data connection). How it is driven: `../shared/reference/clients.md`.
//!
//! NOT covered yet: plain FTP (the "insecure server" dialog still blocks with the
//! `InsecureHosts` entry written here), uploads and downloads (FileZilla starts transfers only
//! from its GUI).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    ["filezilla", "Xvfb"].iter().all(|p| {
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

/// Run FileZilla once against `port` with protocol `protocol` (6 plain, 4 explicit, 3
/// implicit) and return its log once the listing of `/` is done (or the time is up).
fn filezilla_session(port: u16, protocol: u8, user: &TestUser, cert: &Path) -> String {
    let dir = TempDir::new();
    let config = dir.join("home/.config/filezilla");
    fs::create_dir_all(&config).unwrap();
    let log = dir.join("filezilla.log");
    let header = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FileZilla3 version=\"3.63.0\" platform=\"*nix\">";
    fs::write(
        config.join("filezilla.xml"),
        format!(
            "{header}<Settings><Setting name=\"Greeting version\">3.63.0</Setting>\
             <Setting name=\"Logging file\">{}</Setting>\
             <Setting name=\"Logging Raw Listing\">1</Setting>\
             <Setting name=\"Reconnect count\">0</Setting></Settings></FileZilla3>\n",
            log.display()
        ),
    )
    .unwrap();
    let pass = {
        use std::io::Write;
        let mut child = Command::new("base64")
            .arg("-w0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(user.password.as_bytes())
            .unwrap();
        common::lossy(&child.wait_with_output().unwrap().stdout)
    };
    fs::write(
        config.join("sitemanager.xml"),
        format!(
            "{header}<Servers><Server><Host>127.0.0.1</Host><Port>{port}</Port>\
             <Protocol>{protocol}</Protocol><Type>0</Type><User>{}</User>\
             <Pass encoding=\"base64\">{pass}</Pass><Logontype>1</Logontype>\
             <PasvMode>MODE_DEFAULT</PasvMode><EncodingType>Auto</EncodingType>\
             <BypassProxy>0</BypassProxy><Name>rftpd</Name></Server></Servers></FileZilla3>\n",
            user.name
        ),
    )
    .unwrap();
    fs::write(
        config.join("trustedcerts.xml"),
        format!(
            "{header}<TrustedCerts><Certificate><Data>{}</Data>\
             <ActivationTime>{}</ActivationTime><ExpirationTime>{}</ExpirationTime>\
             <Host>127.0.0.1</Host><Port>{port}</Port><TrustSANs>0</TrustSANs></Certificate>\
             </TrustedCerts><InsecureHosts><Host Port=\"{port}\">127.0.0.1</Host></InsecureHosts>\
             </FileZilla3>\n",
            der_hex(cert),
            cert_time(cert, "-startdate"),
            cert_time(cert, "-enddate")
        ),
    )
    .unwrap();

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
    let _xvfb = Reaped(xvfb);
    assert!(
        common::wait_until(Duration::from_secs(10), || fs::read_to_string(
            &display_file
        )
        .is_ok_and(|d| d.ends_with('\n'))),
        "Xvfb did not start"
    );
    let display = fs::read_to_string(&display_file).unwrap();
    let home = dir.join("home");
    let fz = Command::new("filezilla")
        .args(["-c", "0/rftpd"])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("FZDEBUG", "1")
        .env("DISPLAY", format!(":{}", display.trim()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start filezilla");
    let _fz = Reaped(fz);
    let read = || fs::read_to_string(&log).unwrap_or_default();
    common::wait_until(Duration::from_secs(30), || {
        let text = read();
        text.contains("Directory listing of \"/\" successful") || text.contains("Error:")
    });
    read()
}

#[test]
fn filezilla_logs_in_and_lists_the_users_files_over_explicit_and_implicit_ftps() {
    if !common::require_root() {
        return;
    }
    assert!(
        available(),
        "filezilla and Xvfb are needed (tests/run.sh installs them)"
    );
    let pki = TempDir::new();
    let (cert, key) = common::self_signed_pair(&pki, "server");
    let tls = format!(
        "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let user = TestUser::create();
    let seed = format!(
        "seed-{}.txt",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000
    );
    user.put_file(&seed, b"seed\n");
    let pam = PamService::create(&[]);
    for (what, config, protocol) in [
        ("explicit FTPS", tls.clone(), 4u8),
        ("implicit FTPS", format!("{tls}implicit_ssl = true\n"), 3),
    ] {
        let server = Server::start(&config, &pam);
        let log = filezilla_session(server.port(), protocol, &user, &cert);
        for needle in [
            "Status: Logged in",
            "Response: 257 \"/\"",
            "Status: Directory listing of \"/\" successful",
        ] {
            assert!(
                log.contains(needle),
                "{what}: FileZilla's log lacks {needle:?}:\n{log}"
            );
        }
        assert!(
            log.lines()
                .any(|l| l.contains("Listing:") && l.ends_with(&format!(" {seed}"))),
            "{what}: the user's file is not in FileZilla's listing of /:\n{log}"
        );
        if protocol != 6 {
            assert!(
                log.contains("Response: 200 PROT now Private."),
                "{what}:\n{log}"
            );
        }
        if protocol == 3 {
            assert!(!log.contains("Command: AUTH TLS"), "{what}:\n{log}");
        }
    }
}
