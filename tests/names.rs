//! Byte-exact file names (issue 12, part 5): a name is a byte string from the wire to the
//! filesystem and back, as with vsftpd. Names that are not UTF-8 (a Latin-1 `café`, bytes such as
//! `\xff\xfe`) and a name holding a real code point of the range rftpd uses internally
//! (U+F780–U+F7FF, `src/names.rs`) are listed (LIST, NLST, MLSD, STAT, MLST), downloaded,
//! uploaded, appended, renamed, deleted, made and removed as directories, entered and printed
//! (PWD), with their exact bytes — by Python's ftplib in Latin-1 (so every byte passes raw) and
//! by curl (percent-encoded bytes in the URL), in clear and under TLS. UTF-8 names work as
//! before. `utf8_filesystem` decides whether FEAT lists UTF8, before and after login.

mod common;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{PamService, Server, TempDir, TestUser, code, curl, describe, lossy};

/// Latin-1 `café.txt`.
const LATIN1: &[u8] = b"caf\xe9.txt";
/// Bytes that are not UTF-8 in any reading.
const INVALID: &[u8] = b"\xff\xfe";
/// UTF-8 of `x\u{F7E9}y.txt`: a real code point of the stand-in range.
const STAND_IN: &[u8] = "x\u{F7E9}y.txt".as_bytes();
/// A UTF-8 name.
const UTF8: &[u8] = "résumé.txt".as_bytes();

/// Runs steps with `ftplib.FTP` (or `FTP_TLS` + `PROT P`) in Latin-1, so each byte of a name is
/// one character and goes out unchanged. Each argument is one step, hex-encoded; each output line
/// is the step's result, hex-encoded: the text of a listing, the bytes of a download, a reply,
/// or `ERROR <reply>`.
const FTPLIB: &str = r#"
import ftplib, io, sys
host, port, user, password, tls = sys.argv[1:6]
steps = [bytes.fromhex(a).decode('latin-1') for a in sys.argv[6:]]
if tls == '1':
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(encoding='latin-1', timeout=20, context=ctx)
else:
    ftp = ftplib.FTP(encoding='latin-1', timeout=20)
ftp.connect(host, int(port))
ftp.login(user, password)
if tls == '1':
    ftp.prot_p()
for step in steps:
    verb, _, arg = step.partition(' ')
    try:
        if verb == 'lines':
            out = []
            ftp.retrlines(arg, out.append)
            res = '\n'.join(out)
        elif verb == 'retr':
            buf = bytearray()
            ftp.retrbinary('RETR ' + arg, buf.extend)
            res = buf.decode('latin-1')
        elif verb in ('stor', 'appe'):
            name, _, data = arg.partition('\n')
            res = ftp.storbinary(verb.upper() + ' ' + name, io.BytesIO(data.encode('latin-1')))
        else:
            res = ftp.sendcmd(arg)
    except ftplib.all_errors as e:
        res = 'ERROR ' + str(e)
    print(res.encode('latin-1').hex(), flush=True)
ftp.quit()
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex from the script"))
        .collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Shown in messages: bytes with the non-ASCII ones as `\xNN`.
fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// One ftplib session running `steps`; one result per step.
fn ftplib(server: &Server, user: &TestUser, tls: bool, steps: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut args = vec![
        "60".to_string(),
        "python3".to_string(),
        "-c".to_string(),
        FTPLIB.to_string(),
        "127.0.0.1".to_string(),
        server.port().to_string(),
        user.name.clone(),
        user.password.clone(),
        if tls { "1" } else { "0" }.to_string(),
    ];
    args.extend(steps.iter().map(|s| hex(s)));
    let out = Command::new("timeout")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let results: Vec<Vec<u8>> = lossy(&out.stdout).lines().map(unhex).collect();
    assert_eq!(
        results.len(),
        steps.len(),
        "ftplib ended early: {}\nresults so far: {:?}",
        describe(&out),
        results.iter().map(|r| show(r)).collect::<Vec<_>>()
    );
    results
}

fn step(verb: &str, arg: &[u8]) -> Vec<u8> {
    cat(&[verb.as_bytes(), b" ", arg])
}

/// A file in the user's home with a name of raw bytes, owned by the user.
fn put_raw(user: &TestUser, name: &[u8], contents: &[u8]) -> PathBuf {
    let path = user.home.join(OsStr::from_bytes(name));
    fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", show(name)));
    user.chown(&path);
    path
}

/// The names in a directory, as bytes.
fn names_in(dir: &std::path::Path) -> HashSet<Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().into_vec())
        .collect()
}

fn start(extra: &str) -> Option<(PamService, Server, TestUser)> {
    if !common::require_root() {
        return None;
    }
    let pam = PamService::create(&[]);
    let server = Server::start(extra, &pam);
    let user = TestUser::create();
    Some((pam, server, user))
}

/// The files of the listing tests: (name, contents).
fn seed(user: &TestUser) -> Vec<(&'static [u8], Vec<u8>)> {
    let files: Vec<(&[u8], Vec<u8>)> = vec![
        (LATIN1, b"latin-1 contents\n".to_vec()),
        (INVALID, b"invalid-utf8 contents\n".to_vec()),
        (STAND_IN, b"private-use contents\n".to_vec()),
        (UTF8, b"utf-8 contents\n".to_vec()),
    ];
    for (name, contents) in &files {
        put_raw(user, name, contents);
    }
    files
}

fn listings_show_every_name_byte_for_byte(tls: bool, server: &Server, user: &TestUser) {
    let files = seed(user);
    let mut steps = vec![
        b"lines LIST".to_vec(),
        b"lines NLST".to_vec(),
        b"lines MLSD".to_vec(),
        b"cmd STAT .".to_vec(),
    ];
    for (name, _) in &files {
        steps.push(step("retr", name));
        steps.push(step("cmd", &cat(&[b"SIZE ", name])));
        steps.push(step("cmd", &cat(&[b"MDTM ", name])));
        steps.push(step("cmd", &cat(&[b"MLST ", name])));
        steps.push(step("lines", &cat(&[b"LIST ", name])));
    }
    let results = ftplib(server, user, tls, &steps);
    let (list, nlst, mlsd, stat) = (&results[0], &results[1], &results[2], &results[3]);
    let nlst_names: HashSet<&[u8]> = nlst.split(|b| *b == b'\n').collect();
    for (i, (name, contents)) in files.iter().enumerate() {
        let n = show(name);
        // A LIST line ends in " NAME"; an MLSD line is "facts NAME".
        let line_end = cat(&[b" ", name]);
        let ends = |listing: &[u8]| {
            listing
                .split(|b| *b == b'\n')
                .any(|l| l.strip_suffix(b"\r").unwrap_or(l).ends_with(&line_end))
        };
        assert!(ends(list), "LIST lacks {n}:\n{}", show(list));
        assert!(nlst_names.contains(name), "NLST lacks {n}:\n{}", show(nlst));
        assert!(ends(mlsd), "MLSD lacks {n}:\n{}", show(mlsd));
        assert!(
            mlsd.split(|b| *b == b'\n')
                .any(|l| l.starts_with(b"type=file;size=") && l.ends_with(&line_end)),
            "MLSD line of {n}:\n{}",
            show(mlsd)
        );
        assert!(
            contains(stat, &line_end),
            "STAT . lacks {n}:\n{}",
            show(stat)
        );
        let at = 4 + i * 5;
        assert_eq!(&results[at], contents, "RETR {n}");
        assert_eq!(
            results[at + 1],
            format!("213 {}", contents.len()).into_bytes(),
            "SIZE {n}"
        );
        assert!(
            results[at + 2].starts_with(b"213 "),
            "MDTM {n}: {}",
            show(&results[at + 2])
        );
        let mlst = &results[at + 3];
        assert!(
            mlst.starts_with(b"250-")
                && (contains(mlst, &cat(&[b"; ", name, b"\n"]))
                    || contains(mlst, &cat(&[b"; /", name, b"\n"]))),
            "MLST {n}: {}",
            show(mlst)
        );
        assert!(
            ends(&results[at + 4]),
            "LIST {n}: {}",
            show(&results[at + 4])
        );
    }
    // Nothing in any listing was replaced or shown in the internal mapping.
    for listing in [list, nlst, mlsd, stat] {
        assert!(
            !contains(listing, "\u{FFFD}".as_bytes()),
            "{}",
            show(listing)
        );
        assert!(
            !contains(listing, "\u{F7E9}".as_bytes()) || contains(listing, STAND_IN),
            "{}",
            show(listing)
        );
    }
}

#[test]
fn existing_names_that_are_not_utf8_are_listed_downloaded_and_stated_with_their_bytes() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    listings_show_every_name_byte_for_byte(false, &server, &user);
}

#[test]
fn names_keep_their_bytes_under_tls_too() {
    if !common::require_root() {
        return;
    }
    let pki = TempDir::new();
    let (cert, key) = common::self_signed_pair(&pki, "server");
    let Some((_pam, server, user)) = start(&format!(
        // ftplib does not resume the control connection's TLS session on data connections.
        "ssl_enable = true\nrequire_ssl_reuse = false\n\
         rsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"",
        cert.display(),
        key.display()
    )) else {
        return;
    };
    listings_show_every_name_byte_for_byte(true, &server, &user);
}

#[test]
fn uploads_appends_renames_and_deletes_keep_the_bytes_on_disk() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    put_raw(&user, LATIN1, b"old\n");
    let upload: &[u8] = b"new\xe9\xff name.bin";
    let renamed: &[u8] = b"ren\xe8\xfe.txt";
    let stand_in_upload = "up\u{F780}\u{F7FF}.bin".as_bytes();
    let results = ftplib(
        &server,
        &user,
        false,
        &[
            cat(&[b"stor ", upload, b"\nfirst\n"]),
            cat(&[b"appe ", upload, b"\nsecond\n"]),
            cat(&[b"stor ", stand_in_upload, b"\nprivate\n"]),
            cat(&[b"cmd RNFR ", LATIN1]),
            cat(&[b"cmd RNTO ", renamed]),
            cat(&[b"cmd DELE ", INVALID]),
        ],
    );
    assert!(
        results[0].starts_with(b"226"),
        "STOR: {}",
        show(&results[0])
    );
    assert!(
        results[1].starts_with(b"226"),
        "APPE: {}",
        show(&results[1])
    );
    assert!(
        results[2].starts_with(b"226"),
        "STOR: {}",
        show(&results[2])
    );
    assert!(
        results[3].starts_with(b"350"),
        "RNFR: {}",
        show(&results[3])
    );
    assert!(
        results[4].starts_with(b"250"),
        "RNTO: {}",
        show(&results[4])
    );
    // DELE of a name that is not there: refused, not mapped to something else.
    assert!(
        results[5].starts_with(b"ERROR 550"),
        "DELE: {}",
        show(&results[5])
    );

    let names = names_in(&user.home);
    assert!(
        names.contains(upload),
        "{:?}",
        names.iter().map(|n| show(n)).collect::<Vec<_>>()
    );
    assert_eq!(
        fs::read(user.home.join(OsStr::from_bytes(upload))).unwrap(),
        b"first\nsecond\n"
    );
    assert!(
        names.contains(stand_in_upload),
        "a real U+F780/U+F7FF name is stored as its UTF-8"
    );
    assert!(names.contains(renamed) && !names.contains(LATIN1));
    assert_eq!(
        fs::read(user.home.join(OsStr::from_bytes(renamed))).unwrap(),
        b"old\n"
    );

    put_raw(&user, INVALID, b"x");
    let results = ftplib(&server, &user, false, &[cat(&[b"cmd DELE ", INVALID])]);
    assert!(
        results[0].starts_with(b"250"),
        "DELE: {}",
        show(&results[0])
    );
    assert!(!names_in(&user.home).contains(INVALID));
}

#[test]
fn directories_with_raw_names_are_made_entered_printed_and_removed() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    let dir: &[u8] = b"d\xe9 \xff";
    let results = ftplib(
        &server,
        &user,
        false,
        &[
            cat(&[b"cmd MKD ", dir]),
            cat(&[b"cmd CWD ", dir]),
            b"cmd PWD".to_vec(),
            cat(&[b"stor ", LATIN1, b"\ninside\n"]),
            b"lines NLST".to_vec(),
            b"cmd CDUP".to_vec(),
            cat(&[b"cmd DELE ", dir, b"/", LATIN1]),
            cat(&[b"cmd RMD ", dir]),
        ],
    );
    let quoted = cat(&[b"\"/", dir, b"\""]);
    assert!(
        results[0].starts_with(b"257 ") && contains(&results[0], &quoted),
        "MKD: {}",
        show(&results[0])
    );
    assert!(results[1].starts_with(b"250"), "CWD: {}", show(&results[1]));
    assert!(
        results[2].starts_with(b"257 ") && contains(&results[2], &quoted),
        "PWD: {}",
        show(&results[2])
    );
    assert!(
        results[3].starts_with(b"226"),
        "STOR: {}",
        show(&results[3])
    );
    assert_eq!(results[4], LATIN1, "NLST inside: {}", show(&results[4]));
    assert!(results[5].starts_with(b"250") || results[5].starts_with(b"200"));
    assert!(
        results[6].starts_with(b"250"),
        "DELE: {}",
        show(&results[6])
    );
    assert!(results[7].starts_with(b"250"), "RMD: {}", show(&results[7]));
    assert!(!names_in(&user.home).contains(dir));

    // Made by the server, the directory has exactly those bytes on disk.
    let results = ftplib(&server, &user, false, &[cat(&[b"cmd MKD ", dir])]);
    assert!(results[0].starts_with(b"257 "), "{}", show(&results[0]));
    let made = user.home.join(OsString::from_vec(dir.to_vec()));
    assert!(made.is_dir(), "MKD did not make {}", show(dir));
}

#[test]
fn curl_downloads_uploads_and_lists_percent_encoded_bytes() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    put_raw(&user, LATIN1, b"via curl\n");
    let out = curl(&[&server.ftp_url(&user, "caf%E9.txt")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(out.stdout, b"via curl\n");

    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // (curl writes the listing's lines with LF alone.)
    assert!(
        out.stdout.split(|b| *b == b'\n').any(|l| l
            .strip_suffix(b"\r")
            .unwrap_or(l)
            .ends_with(&cat(&[b" ", LATIN1]))),
        "{}",
        show(&out.stdout)
    );

    let dir = TempDir::new();
    let local = dir.join("payload");
    fs::write(&local, b"uploaded by curl\n").unwrap();
    let out = curl(&[
        "-T",
        &local.to_string_lossy(),
        &server.ftp_url(&user, "up%FF%E9.txt"),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let stored = user.home.join(OsStr::from_bytes(b"up\xff\xe9.txt"));
    assert_eq!(fs::read(&stored).unwrap(), b"uploaded by curl\n");

    // A directory made by curl, with a file in it.
    let out = curl(&[
        "--ftp-create-dirs",
        "-T",
        &local.to_string_lossy(),
        &server.ftp_url(&user, "d%E9/f%E9"),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(user.home.join(OsStr::from_bytes(b"d\xe9/f\xe9")).is_file());
}

#[test]
fn utf8_names_still_travel_as_utf8() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    put_raw(&user, UTF8, b"utf8\n");
    let out = curl(&[&server.ftp_url(&user, "r%C3%A9sum%C3%A9.txt")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(out.stdout, b"utf8\n");
    let results = ftplib(
        &server,
        &user,
        false,
        &[
            cat(&[b"stor ", "ü ñ.txt".as_bytes(), b"\nx"]),
            cat(&[b"cmd MKD ", "日本".as_bytes()]),
            b"lines NLST".to_vec(),
        ],
    );
    assert!(results[0].starts_with(b"226"), "{}", show(&results[0]));
    assert!(
        contains(&results[1], "\"/日本\"".as_bytes()),
        "{}",
        show(&results[1])
    );
    let names = names_in(&user.home);
    assert!(names.contains("ü ñ.txt".as_bytes()) && names.contains("日本".as_bytes()));
    for name in [UTF8, "ü ñ.txt".as_bytes(), "日本".as_bytes()] {
        assert!(
            results[2].split(|b| *b == b'\n').any(|l| l == name),
            "NLST lacks {}: {}",
            show(name),
            show(&results[2])
        );
    }
}

#[test]
fn control_characters_in_a_raw_name_are_still_refused() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    let results = ftplib(
        &server,
        &user,
        false,
        &[b"cmd MKD a\xe9\x07b".to_vec(), b"cmd NOOP".to_vec()],
    );
    assert!(
        results[0].starts_with(b"ERROR 500"),
        "{}",
        show(&results[0])
    );
    assert!(results[1].starts_with(b"200"), "{}", show(&results[1]));
    assert!(names_in(&user.home).iter().all(|n| !contains(n, b"\x07")));
}

fn feat_lists_utf8(server: &Server, user: &TestUser) -> (bool, bool, String) {
    let mut c = common::FtpClient::connect(server.addr());
    let (code, before) = c.cmd("FEAT");
    assert_eq!(code, 211, "{before}");
    let (code, opts) = c.cmd("OPTS UTF8 ON");
    assert_eq!(code, 200, "OPTS UTF8 ON before login: {opts}");
    c.login_ok(user);
    let (code, after) = c.cmd("FEAT");
    assert_eq!(code, 211, "{after}");
    let (code, opts) = c.cmd("OPTS UTF8 ON");
    assert_eq!(
        (code, opts.as_str()),
        (200, "200 Always in UTF8 mode."),
        "OPTS UTF8 ON after login"
    );
    let has = |t: &str| t.lines().any(|l| l == " UTF8");
    (has(&before), has(&after), format!("{before}\n{after}"))
}

#[test]
fn feat_lists_utf8_by_default_and_not_with_utf8_filesystem_false() {
    let Some((_pam, server, user)) = start("") else {
        return;
    };
    let (before, after, text) = feat_lists_utf8(&server, &user);
    assert!(before && after, "UTF8 missing from FEAT: {text}");
    drop(server);

    let pam = PamService::create(&[]);
    let server = Server::start("utf8_filesystem = false", &pam);
    let (before, after, text) = feat_lists_utf8(&server, &user);
    assert!(
        !before && !after,
        "UTF8 listed with utf8_filesystem = false: {text}"
    );
    // The other features are the same after login as before it.
    let lists: Vec<&str> = text.split("\n211 End\n").collect();
    assert_eq!(
        lists[0].lines().count() + 1,
        lists[1].lines().count(),
        "{text}"
    );
}

#[test]
fn a_user_who_is_not_jailed_starts_in_a_home_whose_path_is_not_utf8() {
    let Some((_pam, server, user)) = start("chroot_local_user = false") else {
        return;
    };
    let home = cat(&[user.home.as_os_str().as_bytes(), b"/h\xe9"]);
    let home_path = PathBuf::from(OsString::from_vec(home.clone()));
    fs::create_dir(&home_path).unwrap();
    user.chown(&home_path);
    // Other tests (and helpers) change accounts too: retry a locked /etc/passwd, bounded.
    let out = {
        let _quiet = common::accounts_quiet();
        let mut out = None;
        for _ in 0..20 {
            let o = Command::new("usermod")
                .arg("-d")
                .arg(&home_path)
                .arg(&user.name)
                .stdin(Stdio::null())
                .output()
                .expect("run usermod");
            let done = o.status.success();
            out = Some(o);
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        out.expect("at least one attempt")
    };
    assert!(out.status.success(), "usermod -d: {}", describe(&out));
    let results = ftplib(&server, &user, false, &[b"cmd PWD".to_vec()]);
    assert!(
        contains(&results[0], &cat(&[b"257 \"", &home, b"\""])),
        "PWD: {}",
        show(&results[0])
    );
}
