//! Issue 15, part 3: `CWD`, `CDUP`, `SIZE` and `MDTM` are answered by the worker's relay from
//! one look at the file system when libunftp owes nothing, and libunftp catches up on the
//! working directory before its next command. These check the behaviour that must not change:
//! every relative path after a `CWD` (transfers, listings, deletes, renames, `SITE` commands)
//! lands in the client's directory, pipelined commands are answered in order, a directory
//! removed after the `CWD` fails the next command that uses it without ending the session,
//! and `deny_file`, unsearchable directories and files are refused as before.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{FtpClient, PamService, Server, TestUser};

const WRITABLE: &str =
    "write_enable = true\nchroot_local_user = true\nallow_writeable_chroot = true";

fn session(settings: &str) -> (Server, PamService, TestUser, FtpClient) {
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(settings, &pam);
    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    (server, pam, user, ftp)
}

/// `RETR name` over EPSV: the file's bytes.
fn retr(ftp: &mut FtpClient, name: &str) -> Vec<u8> {
    let mut data = ftp.epsv_data().expect("data connection");
    let (code, text) = ftp.cmd(&format!("RETR {name}"));
    assert_eq!(code, 150, "RETR {name}: {text}");
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).expect("read the file");
    assert_eq!(ftp.read_reply().expect("end of RETR").0, 226);
    bytes
}

/// `STOR name` over EPSV.
fn stor(ftp: &mut FtpClient, name: &str, contents: &[u8]) {
    let mut data = ftp.epsv_data().expect("data connection");
    let (code, text) = ftp.cmd(&format!("STOR {name}"));
    assert_eq!(code, 150, "STOR {name}: {text}");
    data.write_all(contents).expect("write the upload");
    drop(data);
    assert_eq!(ftp.read_reply().expect("end of STOR").0, 226);
}

/// `NLST` over EPSV: the reply after the listing (or the refusal) and the names listed.
fn nlst(ftp: &mut FtpClient) -> (u16, Vec<String>) {
    let mut data = ftp.epsv_data().expect("data connection");
    let (code, _) = ftp.cmd("NLST");
    if code != 150 {
        return (code, Vec::new());
    }
    let mut text = String::new();
    data.read_to_string(&mut text).expect("read the listing");
    let end = ftp.read_reply().expect("end of NLST").0;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    names.sort();
    (end, names)
}

#[test]
fn relative_paths_after_cwd_and_cdup_land_in_the_clients_directory() {
    if !common::require_root() {
        return;
    }
    let (_server, _pam, user, mut ftp) = session(WRITABLE);
    user.put_file("top.txt", b"top level");
    user.put_dir("sub");
    user.put_dir("sub/deeper");
    user.put_file("sub/inner.txt", b"inner file!");
    user.put_file("sub/deeper/x.txt", b"x");

    assert_eq!(ftp.cmd("CWD sub").0, 250);
    assert_eq!(ftp.cmd("SIZE inner.txt"), (213, "213 11".to_string()));
    let (code, mdtm) = ftp.cmd("MDTM inner.txt");
    assert_eq!(code, 213, "{mdtm}");
    assert_eq!(mdtm.len(), "213 YYYYMMDDHHMMSS".len(), "{mdtm}");
    assert_eq!(retr(&mut ftp, "inner.txt"), b"inner file!");
    // Several directory changes in a row, then one command libunftp serves.
    assert_eq!(ftp.cmd("CWD deeper").0, 250);
    assert_eq!(ftp.cmd("CDUP").0, 250);
    assert_eq!(ftp.cmd("CWD ./deeper/..").0, 250);
    assert_eq!(ftp.pwd(), "/sub");
    stor(&mut ftp, "new.txt", b"uploaded");
    assert_eq!(
        std::fs::read(user.home.join("sub/new.txt")).expect("the upload is in sub"),
        b"uploaded"
    );
    assert_eq!(
        nlst(&mut ftp),
        (
            226,
            vec![
                "deeper".to_string(),
                "inner.txt".to_string(),
                "new.txt".to_string()
            ]
        )
    );
    assert_eq!(ftp.cmd("RNFR new.txt").0, 350);
    assert_eq!(ftp.cmd("RNTO renamed.txt").0, 250);
    assert!(user.home.join("sub/renamed.txt").exists());
    assert_eq!(ftp.cmd("CWD /sub/deeper").0, 250);
    assert_eq!(ftp.cmd("DELE x.txt").0, 250);
    assert!(!user.home.join("sub/deeper/x.txt").exists());
    assert_eq!(ftp.cmd("CWD ../..").0, 250);
    assert_eq!(ftp.cmd("MKD made").0, 257);
    assert!(
        user.home.join("made").is_dir(),
        "MKD after CWD ../.. is at the top"
    );
    assert_eq!(ftp.cmd("CWD made").0, 250);
    assert_eq!(ftp.cmd("SITE CHMOD 700 ../top.txt").0, 200);
    let mode = std::fs::metadata(user.home.join("top.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // Above the root stays at the root; a CDUP there too.
    assert_eq!(ftp.cmd("CWD ../../../..").0, 250);
    assert_eq!(ftp.cmd("CDUP").0, 250);
    assert_eq!(ftp.pwd(), "/");
    assert_eq!(retr(&mut ftp, "top.txt"), b"top level");
}

#[test]
fn pipelined_directory_changes_and_queries_are_answered_in_order() {
    if !common::require_root() {
        return;
    }
    let (_server, _pam, user, mut ftp) = session(WRITABLE);
    user.put_file("a.txt", b"1");
    user.put_dir("d");
    user.put_file("d/b.txt", b"22");
    ftp.send_raw(
        b"CWD d\r\nSIZE b.txt\r\nPWD\r\nCWD ..\r\nSIZE a.txt\r\nCWD missing\r\nSIZE b.txt\r\nCDUP\r\nMDTM d\r\nNOOP\r\n",
    )
    .unwrap();
    let expected: [(u16, &str); 10] = [
        (250, "250 Directory successfully changed."),
        (213, "213 2"),
        (257, "257 \"/d\" is the current directory"),
        (250, "250 Directory successfully changed."),
        (213, "213 1"),
        (550, "550 Failed to change directory."),
        (550, "550 Could not get file size."),
        (250, "250 Directory successfully changed."),
        (550, "550 Could not get file modification time."),
        (200, "200 NOOP ok."),
    ];
    for (code, text) in expected {
        let reply = ftp.read_reply().expect("a reply to each pipelined command");
        assert_eq!(reply.0, code, "expected {text:?}, got {reply:?}");
        if code != 257 {
            assert_eq!(reply.1, text);
        }
    }
}

#[test]
fn a_directory_removed_after_cwd_fails_the_next_command_and_the_session_goes_on() {
    if !common::require_root() {
        return;
    }
    let (_server, _pam, user, mut ftp) = session(WRITABLE);
    user.put_dir("gone");
    user.put_file("gone/f.txt", b"f");
    user.put_file("stays.txt", b"s");
    assert_eq!(ftp.cmd("CWD gone").0, 250);
    std::fs::remove_dir_all(user.home.join("gone")).unwrap();
    // libunftp catches up on the removed directory: a listing of it is empty (as vsftpd's of a
    // removed working directory) or refused, and a file in it is gone.
    let (code, names) = nlst(&mut ftp);
    assert!(
        code == 226 || (400..600).contains(&code),
        "NLST in a removed directory: {code}"
    );
    assert!(names.is_empty(), "{names:?}");
    let _data = ftp.epsv_data().expect("data connection");
    assert_eq!(ftp.cmd("RETR f.txt").0, 550);
    assert_eq!(ftp.cmd("SIZE f.txt").1, "550 Could not get file size.");
    assert_eq!(ftp.pwd(), "/gone");
    assert_eq!(ftp.cmd("CWD /").0, 250);
    assert_eq!(nlst(&mut ftp), (226, vec!["stays.txt".to_string()]));
    assert_eq!(retr(&mut ftp, "stays.txt"), b"s");
}

#[test]
fn cwd_size_and_mdtm_refuse_what_the_storage_backend_refuses() {
    if !common::require_root() {
        return;
    }
    let settings = format!("{WRITABLE}\ndeny_file = \"{{*.key,private}}\"");
    let (_server, _pam, user, mut ftp) = session(&settings);
    user.put_file("secret.key", b"k");
    user.put_file("plain.txt", b"p");
    user.put_dir("private");
    let locked = user.put_dir("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o600)).unwrap();
    ftp.set_read_timeout(Some(Duration::from_secs(10)));
    assert_eq!(ftp.cmd("SIZE secret.key").1, "550 Could not get file size.");
    assert_eq!(
        ftp.cmd("MDTM secret.key").1,
        "550 Could not get file modification time."
    );
    assert_eq!(ftp.cmd("SIZE plain.txt").1, "213 1");
    for dir in ["private", "private/", "locked", "plain.txt", "missing"] {
        assert_eq!(
            ftp.cmd(&format!("CWD {dir}")).1,
            "550 Failed to change directory.",
            "CWD {dir}"
        );
        assert_eq!(ftp.pwd(), "/", "a refused CWD {dir} leaves the directory");
    }
    // The session still serves relative paths from where it is.
    assert_eq!(retr(&mut ftp, "plain.txt"), b"p");
}
