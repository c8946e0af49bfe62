//! Transfers and file commands: upload, download, append, resume, rename, delete, directories,
//! ownership and modes of what a user creates, and the options that restrict a session.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{
    FtpClient, PamService, Server, TempDir, TestUser, code, curl, describe, list_line, lossy,
    owner_and_mode, rand_bytes,
};

/// A user, a PAM service, a server with `extra` config, and a local scratch directory.
struct Setup {
    local: TempDir,
    server: Server,
    _pam: PamService,
    user: TestUser,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let server = Server::start(extra, &pam);
        Setup {
            local: TempDir::new(),
            server,
            _pam: pam,
            user,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.ftp_url(&self.user, path)
    }

    fn local_file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.local.join(name);
        fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn logged_in(&self) -> FtpClient {
        let mut ftp = FtpClient::connect(self.server.addr());
        ftp.login_ok(&self.user);
        ftp
    }
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert_eq!(code(out), 0, "{what}: {}", describe(out));
}

#[test]
fn upload_then_download_of_3_mib_is_byte_identical() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let data = rand_bytes(3 * 1024 * 1024);
    let up = s.local_file("up.bin", &data);

    assert_ok(&curl(&["-T", &up, &s.url("big.bin")]), "upload");
    let on_server = fs::read(s.user.home.join("big.bin")).expect("the upload is in the home");
    assert!(
        on_server == data,
        "uploaded file differs ({} bytes on the server)",
        on_server.len()
    );

    let down = s.local.join("down.bin");
    assert_ok(
        &curl(&["-o", down.to_str().unwrap(), &s.url("big.bin")]),
        "download",
    );
    let got = fs::read(&down).unwrap();
    assert!(got == data, "downloaded file differs ({} bytes)", got.len());
}

#[test]
fn append_adds_to_the_end_of_the_file() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let first = s.local_file("first", b"first line\n");
    let second = s.local_file("second", b"second line\n");
    assert_ok(&curl(&["-T", &first, &s.url("log.txt")]), "upload");
    assert_ok(
        &curl(&["--append", "-T", &second, &s.url("log.txt")]),
        "append",
    );
    assert_eq!(
        lossy(&fs::read(s.user.home.join("log.txt")).unwrap()),
        "first line\nsecond line\n"
    );
}

#[test]
fn interrupted_download_resumes_where_it_stopped() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let data = rand_bytes(1024 * 1024 + 17);
    s.user.put_file("resume-down.bin", &data);
    let partial = s.local.join("partial.bin");
    fs::write(&partial, &data[..300_000]).unwrap();

    let out = curl(&[
        "-C",
        "-",
        "-o",
        partial.to_str().unwrap(),
        &s.url("resume-down.bin"),
    ]);
    assert_ok(&out, "resumed download");
    let got = fs::read(&partial).unwrap();
    assert!(
        got == data,
        "resumed download differs ({} bytes, want {})",
        got.len(),
        data.len()
    );
}

#[test]
fn interrupted_upload_resumes_where_it_stopped() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let data = rand_bytes(1024 * 1024 + 17);
    s.user.put_file("resume-up.bin", &data[..300_000]);
    let full = s.local_file("full.bin", &data);

    let out = curl(&["-C", "-", "-T", &full, &s.url("resume-up.bin")]);
    assert_ok(&out, "resumed upload");
    let on_server = fs::read(s.user.home.join("resume-up.bin")).unwrap();
    assert!(
        on_server == data,
        "resumed upload differs ({} bytes, want {})",
        on_server.len(),
        data.len()
    );
}

#[test]
fn rename_with_rnfr_and_rnto() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    s.user.put_file("old-name.txt", b"content\n");
    let out = curl(&[
        "-Q",
        "RNFR old-name.txt",
        "-Q",
        "RNTO new-name.txt",
        &s.url("/"),
    ]);
    assert_ok(&out, "rename");
    assert!(
        !s.user.home.join("old-name.txt").exists(),
        "the old name still exists"
    );
    assert_eq!(
        fs::read(s.user.home.join("new-name.txt")).unwrap(),
        b"content\n"
    );
}

#[test]
fn delete_with_dele() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    s.user.put_file("doomed.txt", b"bye\n");
    assert_ok(&curl(&["-Q", "DELE doomed.txt", &s.url("/")]), "DELE");
    assert!(
        !s.user.home.join("doomed.txt").exists(),
        "DELE left the file"
    );
}

#[test]
fn directories_are_created_and_removed() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let file = s.local_file("deep.txt", b"deep\n");
    assert_ok(
        &curl(&["--ftp-create-dirs", "-T", &file, &s.url("one/two/deep.txt")]),
        "--ftp-create-dirs upload",
    );
    assert_eq!(
        fs::read(s.user.home.join("one/two/deep.txt")).unwrap(),
        b"deep\n"
    );

    assert_ok(&curl(&["-Q", "MKD made-by-mkd", &s.url("/")]), "MKD");
    assert!(
        s.user.home.join("made-by-mkd").is_dir(),
        "MKD made no directory"
    );
    assert_ok(&curl(&["-Q", "RMD made-by-mkd", &s.url("/")]), "RMD");
    assert!(
        !s.user.home.join("made-by-mkd").exists(),
        "RMD left the directory"
    );
}

#[test]
fn uploads_and_directories_belong_to_the_user_with_the_default_modes() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let file = s.local_file("f", b"x\n");
    assert_ok(&curl(&["-T", &file, &s.url("owned.txt")]), "upload");
    assert_ok(&curl(&["-Q", "MKD owned-dir", &s.url("/")]), "MKD");

    let (uid, gid, mode) = owner_and_mode(&s.user.home.join("owned.txt"));
    assert_eq!(
        (uid, gid),
        (s.user.uid, s.user.gid),
        "owner of the uploaded file"
    );
    assert_eq!(
        mode, 0o644,
        "mode of the uploaded file is {mode:o}, want 644 (0666 & ~022)"
    );
    let (uid, gid, mode) = owner_and_mode(&s.user.home.join("owned-dir"));
    assert_eq!(
        (uid, gid),
        (s.user.uid, s.user.gid),
        "owner of the new directory"
    );
    assert_eq!(
        mode, 0o755,
        "mode of the new directory is {mode:o}, want 755 (0777 & ~022)"
    );
}

#[test]
fn local_umask_077_makes_private_files_and_directories() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("local_umask = \"077\"");
    let file = s.local_file("f", b"x\n");
    assert_ok(&curl(&["-T", &file, &s.url("private.txt")]), "upload");
    assert_ok(&curl(&["-Q", "MKD private-dir", &s.url("/")]), "MKD");

    let (uid, gid, mode) = owner_and_mode(&s.user.home.join("private.txt"));
    assert_eq!((uid, gid), (s.user.uid, s.user.gid));
    assert_eq!(
        mode, 0o600,
        "mode of the uploaded file is {mode:o}, want 600"
    );
    let (_, _, mode) = owner_and_mode(&s.user.home.join("private-dir"));
    assert_eq!(
        mode, 0o700,
        "mode of the new directory is {mode:o}, want 700"
    );
}

#[test]
fn write_enable_false_refuses_every_change_but_allows_downloads() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("write_enable = false");
    s.user.put_file("keep.txt", b"keep me\n");
    s.user.put_dir("keep-dir");
    let file = s.local_file("f", b"x\n");

    let out = curl(&["-T", &file, &s.url("new.txt")]);
    assert_ne!(
        code(&out),
        0,
        "upload succeeded with write_enable = false: {}",
        describe(&out)
    );
    assert!(
        !s.user.home.join("new.txt").exists(),
        "the upload created the file"
    );

    let mut ftp = s.logged_in();
    for command in ["MKD x", "DELE keep.txt", "RMD keep-dir"] {
        let (reply, text) = ftp.cmd(command);
        assert_eq!(reply, 550, "{command} with write_enable = false: {text}");
    }
    // Whatever RNFR answers (see the next test), the rename itself must be refused.
    ftp.cmd("RNFR keep.txt");
    let (reply, text) = ftp.cmd("RNTO renamed.txt");
    assert_eq!(reply, 550, "RNTO with write_enable = false: {text}");
    assert!(
        !s.user.home.join("renamed.txt").exists(),
        "RNTO renamed the file"
    );
    let (reply, text) = ftp.transfer_out("APPE keep.txt", b"more\n");
    assert!(
        reply >= 400,
        "APPE with write_enable = false: {reply} {text}"
    );
    assert!(!s.user.home.join("x").exists(), "MKD created the directory");
    assert!(
        s.user.home.join("keep-dir").is_dir(),
        "RMD removed the directory"
    );
    assert_eq!(
        fs::read(s.user.home.join("keep.txt")).unwrap(),
        b"keep me\n",
        "the file changed"
    );

    let out = curl(&[&s.url("keep.txt")]);
    assert_ok(&out, "download with write_enable = false");
    assert_eq!(out.stdout, b"keep me\n");
}

#[test]
fn rnfr_is_refused_with_550_when_write_enable_is_false() {
    if !common::require_root() {
        return;
    }
    // vsftpd answers RNFR itself with `550 Permission denied.` when write_enable is off.
    let s = Setup::new("write_enable = false");
    s.user.put_file("keep.txt", b"keep me\n");
    let mut ftp = s.logged_in();
    let (reply, text) = ftp.cmd("RNFR keep.txt");
    assert_eq!(reply, 550, "RNFR with write_enable = false: {text}");
}

#[test]
fn download_enable_false_refuses_retr() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("download_enable = false");
    s.user.put_file("secret.txt", b"not for download\n");
    let out = curl(&[&s.url("secret.txt")]);
    assert_ne!(
        code(&out),
        0,
        "download succeeded with download_enable = false: {}",
        describe(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "content delivered: {}",
        describe(&out)
    );

    let mut ftp = s.logged_in();
    ftp.cmd("TYPE I");
    let (reply, text, data) = ftp.transfer_in("RETR secret.txt");
    assert_eq!(reply, 550, "RETR with download_enable = false: {text}");
    assert!(data.is_empty());
    // Listing still works.
    let out = curl(&[&s.url("/")]);
    assert_ok(&out, "LIST with download_enable = false");
}

#[test]
fn dirlist_enable_false_refuses_list() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("dirlist_enable = false");
    s.user.put_file("unlisted.txt", b"x\n");
    let out = curl(&[&s.url("/")]);
    assert_ne!(
        code(&out),
        0,
        "LIST succeeded with dirlist_enable = false: {}",
        describe(&out)
    );
    assert!(
        !lossy(&out.stdout).contains("unlisted.txt"),
        "listing delivered: {}",
        describe(&out)
    );

    let mut ftp = s.logged_in();
    for command in ["LIST", "NLST", "MLSD"] {
        let (reply, text, data) = ftp.transfer_in(command);
        assert!(
            reply >= 400,
            "{command} with dirlist_enable = false: {reply} {text}"
        );
        assert!(
            !lossy(&data).contains("unlisted.txt"),
            "{command} delivered a listing"
        );
    }
    // Downloads still work.
    let out = curl(&[&s.url("unlisted.txt")]);
    assert_ok(&out, "download with dirlist_enable = false");
}

#[test]
fn listing_shows_the_users_name_as_owner_by_default() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    s.user.put_file("mine.txt", b"x\n");
    let out = curl(&[&s.url("/")]);
    assert_ok(&out, "LIST");
    let listing = lossy(&out.stdout);
    let line = list_line(&listing, "mine.txt").unwrap_or_else(|| panic!("not listed: {listing}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields.get(2),
        Some(&s.user.name.as_str()),
        "owner field in {line:?}"
    );
}

#[test]
fn hide_ids_shows_ftp_as_owner_and_group() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("hide_ids = true");
    s.user.put_file("hidden-owner.txt", b"x\n");
    let out = curl(&[&s.url("/")]);
    assert_ok(&out, "LIST");
    let listing = lossy(&out.stdout);
    let line =
        list_line(&listing, "hidden-owner.txt").unwrap_or_else(|| panic!("not listed: {listing}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields.get(2..4),
        Some(&["ftp", "ftp"][..]),
        "owner and group in {line:?}"
    );
    assert!(
        !listing.contains(&s.user.name),
        "the user's name still shows: {listing}"
    );
}

#[test]
fn cwd_and_list_work_while_files_in_the_directory_come_and_go() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let busy = s.user.put_dir("busy");
    for i in 0..200 {
        fs::write(busy.join(format!("stable-{i}")), b"x").unwrap();
    }
    // Another writer (as on any shared upload directory) keeps creating and deleting files.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let busy = busy.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let p = busy.join(format!("churn-{}", i % 50));
                if Path::new(&p).exists() {
                    let _ = fs::remove_file(&p);
                } else {
                    let _ = fs::write(&p, b"y");
                }
                i += 1;
            }
        })
    };
    let mut ftp = s.logged_in();
    let mut failures = Vec::new();
    for round in 0..30 {
        match ftp.try_cmd("CWD /busy") {
            Ok((250, _)) => {}
            Ok((_, text)) => failures.push(format!("round {round}: CWD /busy: {text}")),
            Err(e) => {
                failures.push(format!("round {round}: CWD /busy: {e} (the session died)"));
                break;
            }
        }
        match ftp.try_transfer_in("LIST /busy") {
            Ok((226, _, _)) => {}
            Ok((_, text, _)) => failures.push(format!("round {round}: LIST /busy: {text}")),
            Err(e) => {
                failures.push(format!("round {round}: LIST /busy: {e} (the session died)"));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        failures.is_empty(),
        "commands failed while the directory changed: {failures:#?}"
    );
}

/// `ABOR` during a large download that the client stops reading (the zero-copy `sendfile`
/// path, so the worker is blocked in the kernel) ends the transfer with vsftpd's `426` then
/// `226`, at once, and the session goes on.
#[test]
fn abor_during_a_large_download_ends_it_at_once_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    // Larger than every socket buffer on the way, so the transfer cannot finish by itself.
    user.put_file("big.bin", &vec![7u8; 64 * 1024 * 1024]);
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.cmd("TYPE I").0, 200);
    let data = ftp.epsv_data().expect("EPSV data connection");
    let (code, text) = ftp.cmd("RETR big.bin");
    assert_eq!(code, 150, "RETR: {text}");
    // Read a little, then stop reading: the server's side fills up and blocks.
    let mut first = [0u8; 4096];
    std::io::Read::read_exact(&mut &data, &mut first).expect("the first bytes of the file");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    ftp.send("ABOR").unwrap();
    let mut replies = vec![ftp.read_reply().expect("first reply to ABOR")];
    if replies[0].0 == 426 {
        replies.push(ftp.read_reply().expect("second reply to ABOR"));
    }
    assert_eq!(
        replies.iter().map(|r| r.0).collect::<Vec<_>>(),
        [426, 226],
        "replies to ABOR during a large download: {replies:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "ABOR took {:?}",
        started.elapsed()
    );
    drop(data);
    assert_eq!(ftp.cmd("NOOP").0, 200, "the session goes on after ABOR");
    assert_eq!(ftp.pwd(), "/");
}

/// A directory large enough that the worker stats its entries on two threads (2048 and up):
/// `LIST` and `MLSD` list every entry exactly once, with its own size, under the worker's
/// seccomp filter, and the session goes on.
#[test]
fn list_and_mlsd_of_a_large_directory_show_every_entry_once_with_its_size() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("");
    let big = s.user.put_dir("big");
    const ENTRIES: usize = 3001;
    for i in 0..ENTRIES {
        fs::write(big.join(format!("f{i:05}")), vec![b'x'; i % 97]).unwrap();
    }
    let mut ftp = s.logged_in();
    let (code, text, list) = ftp.transfer_in("LIST /big");
    assert_eq!(code, 226, "LIST /big: {text}");
    let (code, text, mlsd) = ftp.transfer_in("MLSD /big");
    assert_eq!(code, 226, "MLSD /big: {text}");
    let list = lossy(&list);
    let mlsd = lossy(&mlsd);
    for i in 0..ENTRIES {
        let name = format!("f{i:05}");
        let size = (i % 97).to_string();
        let lines: Vec<&str> = list
            .lines()
            .filter(|l| l.split_whitespace().last() == Some(name.as_str()))
            .collect();
        assert_eq!(lines.len(), 1, "LIST lines for {name}: {lines:?}");
        assert_eq!(
            lines[0].split_whitespace().nth(4),
            Some(size.as_str()),
            "LIST size of {name}: {}",
            lines[0]
        );
        let facts: Vec<&str> = mlsd
            .lines()
            .filter(|l| l.rsplit(' ').next() == Some(name.as_str()))
            .collect();
        assert_eq!(facts.len(), 1, "MLSD lines for {name}: {facts:?}");
        assert!(
            facts[0]
                .to_ascii_lowercase()
                .contains(&format!("size={size};")),
            "MLSD size of {name}: {}",
            facts[0]
        );
    }
    assert_eq!(list.lines().count(), ENTRIES, "LIST lines");
    assert_eq!(ftp.cmd("NOOP").0, 200, "the session goes on");
}
