//! Issue 12, parts 1, 4, 6 and 8 with a raw FTP client: refusals before `150` (the reply
//! table in `tests/replies.md`), EPSV ALL, SIZE of a directory, MFMT / MDTM with a time /
//! SITE UTIME behind `mdtm_write`, FEAT and OPTS MLST, the MLSD/MLST facts (UNIX.mode,
//! UNIX.owner/group with hide_ids, perm), names with CR/LF in MLSD, ASCII mode conversion,
//! and active mode over IPv6 with the bounce protection.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::{FtpClient, PamService, Server, TestUser};

const WRITABLE: &str =
    "write_enable = true\nchroot_local_user = true\nallow_writeable_chroot = true";

struct Session {
    server: Server,
    _pam: PamService,
    user: TestUser,
    ftp: FtpClient,
}

impl Session {
    fn new(settings: &str) -> Session {
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let server = Server::start(settings, &pam);
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        Session {
            server,
            _pam: pam,
            user,
            ftp,
        }
    }
}

/// Send `line` with a passive data connection open; the first reply (a refusal must come
/// instead of any 150).
fn first_reply_with_data(ftp: &mut FtpClient, line: &str) -> (u16, String) {
    let _data = ftp.epsv_data().expect("data connection");
    let reply = ftp.cmd(line);
    assert_ne!(reply.0, 150, "{line}: a 150 came before the refusal");
    // The session goes on.
    assert_eq!(ftp.cmd("NOOP").0, 200, "NOOP after {line}");
    reply
}

#[test]
fn refusals_known_before_the_transfer_come_instead_of_150() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    s.user.put_dir("adir");
    let secret = s.user.put_file("secret.txt", b"x");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let ftp = &mut s.ftp;
    for (line, want) in [
        ("RETR nosuch.txt", "550 Failed to open file."),
        ("RETR adir", "550 Failed to open file."),
        ("RETR secret.txt", "550 Failed to open file."),
        ("STOR nodir/sub/x.txt", "553 Could not create file."),
        ("MLSD nosuch", "550 Failed to open directory."),
    ] {
        let (_, text) = first_reply_with_data(ftp, line);
        assert_eq!(text, want, "{line}");
    }
    // LIST and NLST of a missing path: an empty 150/226, as vsftpd.
    for line in ["LIST nosuch", "NLST nosuch"] {
        let (code, text, data) = ftp.transfer_in(line);
        assert_eq!(code, 226, "{line}: {text}");
        assert!(data.is_empty(), "{line}: {data:?}");
    }
    // A RETR that works says vsftpd's 150.
    s.user.put_file("ok.txt", b"hello\n");
    let _data = ftp.epsv_data().unwrap();
    let (code, text) = ftp.cmd("RETR ok.txt");
    assert_eq!(code, 150, "{text}");
    assert!(
        text.starts_with("150 Opening ASCII mode data connection for /ok.txt (6 bytes)."),
        "{text}"
    );
    drop(_data);
    assert_eq!(ftp.read_reply().unwrap().0, 226);
    // SIZE of a directory.
    assert_eq!(ftp.cmd("SIZE adir").1, "550 Could not get file size.");
    assert_eq!(ftp.cmd("SIZE ok.txt").1, "213 6");
    // ASCII mode: SIZE is still the binary size (vsftpd).
    assert_eq!(ftp.cmd("TYPE A").0, 200);
    assert_eq!(ftp.cmd("SIZE ok.txt").1, "213 6");
}

#[test]
fn stor_without_write_enable_is_refused_before_150() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new("write_enable = false\nchroot_local_user = true");
    let (_, text) = first_reply_with_data(&mut s.ftp, "STOR new.txt");
    assert_eq!(text, "550 Permission denied.");
    assert!(!s.user.home.join("new.txt").exists());
    let (_, text) = s.ftp.cmd("MFMT 20200102030405 x");
    assert!(text.starts_with("550 "), "{text}");
}

#[test]
fn epsv_all_refuses_every_other_data_command() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    let ftp = &mut s.ftp;
    assert_eq!(ftp.cmd("EPSV ALL").1, "200 EPSV ALL ok.");
    assert!(s.server.log().len() < 100_000);
    for line in ["PASV", "PORT 127,0,0,1,4,1", "EPRT |1|127.0.0.1|1025|"] {
        let (code, text) = ftp.cmd(line);
        assert_eq!(code, 550, "{line}: {text}");
    }
    assert_eq!(ftp.cmd("EPSV 3").1, "522 Bad network protocol.");
    assert_eq!(ftp.cmd("EPSV 1").0, 229);
}

/// Seconds since the epoch of `YYYYMMDDHHMMSS`.
const T2020: u64 = 1_577_934_245; // 2020-01-02 03:04:05 UTC

fn mtime(path: &std::path::Path) -> u64 {
    fs::metadata(path).unwrap().mtime() as u64
}

#[test]
fn mfmt_mdtm_and_site_utime_set_modification_times() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    let f = s.user.put_file("t.txt", b"1");
    s.user.put_file("with space.txt", b"1");
    let ftp = &mut s.ftp;
    let (code, text) = ftp.cmd("FEAT");
    assert_eq!(code, 211, "{text}");
    assert!(text.contains("\n MFMT\n"), "{text}");
    assert!(
        text.contains(" MLST type*;size*;modify*;perm*;UNIX.mode*;UNIX.owner*;UNIX.group*;"),
        "{text}"
    );
    assert_eq!(
        ftp.cmd("MFMT 20200102030405 t.txt").1,
        "213 Modify=20200102030405; t.txt"
    );
    assert_eq!(mtime(&f), T2020);
    assert_eq!(ftp.cmd("MDTM t.txt").1, "213 20200102030405");
    assert_eq!(
        ftp.cmd("MDTM 20210102030405 t.txt").1,
        "213 File modification time set."
    );
    assert_eq!(mtime(&f), T2020 + 366 * 86_400);
    assert_eq!(
        ftp.cmd("SITE UTIME 20200102030405 t.txt").0,
        200,
        "two-argument SITE UTIME"
    );
    assert_eq!(mtime(&f), T2020);
    let (code, text) =
        ftp.cmd("SITE UTIME with space.txt 20200102030405 20200102030405 20200102030405 UTC");
    assert_eq!(code, 200, "{text}");
    assert_eq!(mtime(&s.user.home.join("with space.txt")), T2020);
    assert!(ftp.cmd("MFMT 2020 t.txt").1.starts_with("501 "));
    assert_eq!(
        ftp.cmd("MFMT 20200102030405 nosuch").1,
        "550 Could not set file modification time."
    );
    assert_eq!(
        ftp.cmd("MDTM adir").1,
        "550 Could not get file modification time."
    );
}

#[test]
fn mdtm_write_off_refuses_to_set_times() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(&format!("{WRITABLE}\nmdtm_write = false"));
    let f = s.user.put_file("t.txt", b"1");
    let before = mtime(&f);
    let ftp = &mut s.ftp;
    assert!(ftp.cmd("MFMT 20200102030405 t.txt").1.starts_with("550 "));
    assert!(ftp.cmd("MDTM 20200102030405 t.txt").1.starts_with("550 "));
    assert!(
        ftp.cmd("SITE UTIME 20200102030405 t.txt")
            .1
            .starts_with("550 ")
    );
    assert_eq!(mtime(&f), before);
}

/// The facts of the MLSD/MLST line naming `name`.
fn facts_of<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing
        .split("\r\n")
        .find(|l| l.split_once("; ").is_some_and(|(_, n)| n == name))
        .map(|l| l.split_once("; ").unwrap().0)
}

#[test]
fn mlsd_and_mlst_give_unix_facts_and_perm_for_the_user() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    let f = s.user.put_file("file.txt", b"12345");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    s.user.put_dir("sub");
    let ro = s.user.put_file("ro.txt", b"1");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o444)).unwrap();
    let (uid, gid) = (s.user.uid, s.user.gid);
    let ftp = &mut s.ftp;
    let (code, text, data) = ftp.transfer_in("MLSD");
    assert_eq!(code, 226, "{text}");
    let listing = String::from_utf8(data).unwrap();
    let file = facts_of(&listing, "file.txt").unwrap_or_else(|| panic!("{listing}"));
    assert!(file.starts_with("type=file;size=5;modify="), "{file}");
    assert!(file.contains(";perm=adfrw;"), "{file}");
    assert!(
        file.ends_with(&format!("UNIX.mode=0640;UNIX.owner={uid};UNIX.group={gid}")),
        "{file}"
    );
    let sub = facts_of(&listing, "sub").unwrap();
    assert!(sub.starts_with("type=dir;"), "{sub}");
    assert!(sub.contains(";perm=cdfelmp;"), "{sub}");
    let ro = facts_of(&listing, "ro.txt").unwrap();
    assert!(ro.contains(";perm=dfr;"), "{ro}");
    // OPTS MLST selects facts.
    assert_eq!(
        ftp.cmd("OPTS MLST size;UNIX.mode;").1,
        "200 MLST OPTS size;UNIX.mode;"
    );
    let (code, text) = ftp.cmd("MLST file.txt");
    assert_eq!(code, 250, "{text}");
    assert!(
        text.contains("\n size=5;UNIX.mode=0640; /file.txt\n250 End"),
        "{text}"
    );
    let (_, _, data) = ftp.transfer_in("MLSD");
    let listing = String::from_utf8(data).unwrap();
    assert_eq!(
        facts_of(&listing, "file.txt"),
        Some("size=5;UNIX.mode=0640")
    );
    assert!(
        ftp.cmd("FEAT")
            .1
            .contains(" MLST type;size*;modify;perm;UNIX.mode*;")
    );
}

#[test]
fn hide_ids_shows_ftp_in_facts_and_write_enable_off_shows_read_only_perm() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new("write_enable = false\nhide_ids = true\nchroot_local_user = true");
    s.user.put_file("file.txt", b"1");
    let (_, _, data) = s.ftp.transfer_in("MLSD");
    let listing = String::from_utf8(data).unwrap();
    let facts = facts_of(&listing, "file.txt").unwrap_or_else(|| panic!("{listing}"));
    assert!(facts.contains(";perm=r;"), "{facts}");
    assert!(facts.ends_with(";UNIX.owner=ftp;UNIX.group=ftp"), "{facts}");
}

#[test]
fn mlsd_names_with_line_breaks_cannot_break_the_listing() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    s.user.put_file("evil\r\ntype=file;size=1; forged", b"1");
    s.user.put_file("plain.txt", b"1");
    let (code, text, data) = s.ftp.transfer_in("MLSD");
    assert_eq!(code, 226, "{text}");
    let listing = String::from_utf8_lossy(&data).into_owned();
    let lines: Vec<&str> = listing.split("\r\n").filter(|l| !l.is_empty()).collect();
    // Every line is one entry with its own facts: the name's CR LF went out as CR NUL NUL.
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("type=") && l.contains(";perm=")),
        "{listing:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("type=file;size=1; ")),
        "{listing:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("; evil\r\0\0type=file;size=1; forged")),
        "{listing:?}"
    );
}

#[test]
fn ascii_mode_converts_only_when_enabled() {
    if !common::require_root() {
        return;
    }
    // Off (the default): bytes unchanged in both directions, whatever TYPE says.
    let mut s = Session::new(WRITABLE);
    s.user.put_file("unix.txt", b"a\nb\n");
    assert_eq!(s.ftp.cmd("TYPE A").1, "200 Switching to ASCII mode.");
    let (_, _, data) = s.ftp.transfer_in("RETR unix.txt");
    assert_eq!(data, b"a\nb\n");
    assert_eq!(s.ftp.transfer_out("STOR dos.txt", b"a\r\nb\r\n").0, 226);
    assert_eq!(
        fs::read(s.user.home.join("dos.txt")).unwrap(),
        b"a\r\nb\r\n"
    );
    drop(s);

    let mut s = Session::new(&format!(
        "{WRITABLE}\nascii_upload_enable = true\nascii_download_enable = true"
    ));
    s.user.put_file("unix.txt", b"a\nb\r\nc");
    assert_eq!(s.ftp.cmd("TYPE A").0, 200);
    let (_, _, data) = s.ftp.transfer_in("RETR unix.txt");
    assert_eq!(data, b"a\r\nb\r\nc");
    assert_eq!(s.ftp.transfer_out("STOR dos.txt", b"a\r\nb\r\nc\r").0, 226);
    assert_eq!(fs::read(s.user.home.join("dos.txt")).unwrap(), b"a\nb\nc\r");
    // TYPE I: unchanged again.
    assert_eq!(s.ftp.cmd("TYPE I").1, "200 Switching to Binary mode.");
    let (_, _, data) = s.ftp.transfer_in("RETR unix.txt");
    assert_eq!(data, b"a\nb\r\nc");
}

/// A listener on `[::1]`, and the EPRT argument for it.
fn v6_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("[::1]:0").expect("bind [::1]");
    let port = l.local_addr().unwrap().port();
    (l, format!("|2|::1|{port}|"))
}

#[test]
fn eprt_over_ipv6_works_and_keeps_the_bounce_protection() {
    if !common::require_root() {
        return;
    }
    if !common::ipv6_loopback_configured() {
        println!("SKIP: no IPv6 loopback on this host");
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        &format!("{WRITABLE}\nlisten = true\nlisten_ipv6 = true\nlisten_address6 = \"::1\""),
        &pam,
    );
    let addr: SocketAddr = *server
        .addrs()
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener");
    let mut ftp = FtpClient::connect(addr);
    ftp.login_ok(&user);
    user.put_file("six.txt", b"over six\n");
    for _round in 0..2 {
        let (listener, arg) = v6_listener();
        let (code, text) = ftp.cmd(&format!("EPRT {arg}"));
        assert_eq!(code, 200, "{text}");
        let (code, text) = ftp.cmd("RETR six.txt");
        assert_eq!(code, 150, "{text}");
        listener.set_nonblocking(false).unwrap();
        let (mut data, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), addr.ip());
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"over six\n");
        assert_eq!(ftp.read_reply().unwrap().0, 226);
    }
    // Upload over EPRT too.
    let (listener, arg) = v6_listener();
    assert_eq!(ftp.cmd(&format!("EPRT {arg}")).0, 200);
    assert_eq!(ftp.cmd("STOR up6.txt").0, 150);
    let (mut data, _) = listener.accept().unwrap();
    data.write_all(b"uploaded").unwrap();
    drop(data);
    assert_eq!(ftp.read_reply().unwrap().0, 226);
    assert_eq!(fs::read(user.home.join("up6.txt")).unwrap(), b"uploaded");
    // Bounce protection: another address or a privileged port.
    let (code, text) = ftp.cmd("EPRT |2|::2|2121|");
    assert_eq!((code, text.as_str()), (500, "500 Illegal EPRT command."));
    let (code, _) = ftp.cmd("EPRT |2|::1|21|");
    assert_eq!(code, 500);
    let (code, _) = ftp.cmd("EPRT |1|127.0.0.1|2121|");
    assert_eq!(code, 500);
}

#[test]
fn verbs_without_a_handler_get_their_table_replies_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    for (line, want) in [
        ("ALLO 100", "202 ALLO command ignored."),
        ("HOST example.org", "503 HOST not allowed after login."),
        ("SMNT /", "502 Command not implemented."),
        ("REIN", "502 Command not implemented."),
        ("CLNT tester", "502 Command not implemented."),
        ("LANG en", "502 Command not implemented."),
        ("AVBL", "502 Command not implemented."),
        ("ADAT x", "502 Command not implemented."),
        ("MIC x", "502 Command not implemented."),
        ("CONF x", "502 Command not implemented."),
        ("ENC x", "502 Command not implemented."),
        ("SYST", "215 UNIX Type: L8"),
        ("PASS again", "230 Already logged in."),
        ("USER again", "530 Can't change to another user."),
        ("AUTH TLS", "503 Already logged in."),
        ("SITE HELP", "214 CHMOD UMASK UTIME HELP"),
    ] {
        let (_, text) = s.ftp.cmd(line);
        assert_eq!(text, want, "{line}");
        assert_eq!(s.ftp.cmd("NOOP").0, 200, "NOOP after {line}");
    }
    for line in ["ACCT x", "ABOR", "CCC", "SITE NOSUCH", "STOU"] {
        let (code, text) = s.ftp.cmd(line);
        assert!((200..600).contains(&code), "{line}: {text}");
        assert_eq!(s.ftp.cmd("NOOP").0, 200, "NOOP after {line}");
    }
}

/// The relay answers PWD itself when libunftp owes no reply, and forwards it when it does: a
/// pipelined `CWD` + `PWD` (+ `CDUP`, `XPWD`) gets its replies in the commands' order, each
/// naming the directory as of its own command.
#[test]
fn pipelined_pwd_names_the_directory_of_its_turn() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    let sub = s.user.home.join("sub dir");
    fs::create_dir(&sub).unwrap();
    std::os::unix::fs::chown(&sub, Some(s.user.uid), Some(s.user.gid)).unwrap();
    let ftp = &mut s.ftp;
    assert_eq!(ftp.cmd("PWD").1, "257 \"/\"");
    ftp.send_raw(
        b"CWD sub dir\r\nPWD\r\nCDUP\r\nPWD\r\nCWD /sub dir\r\nXPWD\r\nCWD nowhere\r\nPWD\r\n",
    )
    .unwrap();
    let mut replies = Vec::new();
    for _ in 0..8 {
        match ftp.read_reply() {
            Ok(r) => replies.push(r),
            Err(e) => panic!("after {replies:?}: {e}"),
        }
    }
    let codes: Vec<u16> = replies.iter().map(|r| r.0).collect();
    assert_eq!(
        codes,
        [250, 257, 250, 257, 250, 257, 550, 257],
        "{replies:?}"
    );
    assert_eq!(replies[1].1, "257 \"/sub dir\"");
    assert_eq!(replies[3].1, "257 \"/\"");
    assert_eq!(replies[5].1, "257 \"/sub dir\"");
    assert_eq!(
        replies[7].1, "257 \"/sub dir\"",
        "a failed CWD changes nothing"
    );
    // And one at a time (the relay's own answer).
    assert_eq!(ftp.cmd("PWD").1, "257 \"/sub dir\"");
    assert_eq!(ftp.cmd("CDUP").0, 250);
    assert_eq!(ftp.cmd("PWD").1, "257 \"/\"");
}

/// A client that sends each command as soon as the previous reply came (no pipelining):
/// `CWD dir` / `CWD ..` many times in a row, with `NOOP`/`PWD` runs before, always lands
/// where it asked (the benchmark's command row does exactly this).
#[test]
fn cwd_into_a_directory_and_back_many_times_in_a_row() {
    if !common::require_root() {
        return;
    }
    let mut s = Session::new(WRITABLE);
    let sub = s.user.home.join("cmd_dir");
    fs::create_dir(&sub).unwrap();
    std::os::unix::fs::chown(&sub, Some(s.user.uid), Some(s.user.gid)).unwrap();
    let ftp = &mut s.ftp;
    for _ in 0..300 {
        assert_eq!(ftp.cmd("NOOP").0, 200);
    }
    for _ in 0..300 {
        assert_eq!(ftp.cmd("PWD").1, "257 \"/\"");
    }
    for i in 0..600 {
        let (line, want) = if i % 2 == 0 {
            ("CWD cmd_dir", "/cmd_dir")
        } else {
            ("CWD ..", "/")
        };
        let reply = ftp.cmd(line);
        assert_eq!(reply.0, 250, "{line} (#{i}): {reply:?}");
        if i % 50 < 2 {
            assert_eq!(ftp.cmd("PWD").1, format!("257 \"{want}\""), "after #{i}");
        }
    }
}
