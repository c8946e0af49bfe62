//! Logs an operator reads: the journal lines (the server's stderr here), vsftpd's
//! `vsftpd_log_file` and wu-ftpd xferlog written as vsftpd writes them, fail2ban's tools
//! (`fail2ban-regex` with rftpd's shipped filter and with fail2ban's stock `vsftpd` filter)
//! against the lines of real sessions, and logrotate with the shipped configuration.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{FtpClient, PamService, Server, TempDir, TestUser, lossy, run};

const WAIT: Duration = Duration::from_secs(10);

/// A user, a PAM service, a directory for the log files, and a server writing them.
struct Setup {
    logs: TempDir,
    server: Server,
    _pam: PamService,
    user: TestUser,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let logs = TempDir::new();
        let keys = format!(
            "xferlog_file = \"{}\"\nvsftpd_log_file = \"{}\"\n{extra}",
            logs.join("xferlog").display(),
            logs.join("vsftpd.log").display()
        );
        let server = Server::start(&keys, &pam);
        Setup {
            logs,
            server,
            _pam: pam,
            user,
        }
    }

    fn xferlog(&self) -> PathBuf {
        self.logs.join("xferlog")
    }

    fn vsftpd_log(&self) -> PathBuf {
        self.logs.join("vsftpd.log")
    }

    fn logged_in(&self) -> FtpClient {
        let mut ftp = FtpClient::connect(self.server.addr());
        ftp.login_ok(&self.user);
        ftp
    }

    /// The session-end journal line of this user's session from `port`.
    fn wait_session_end(&self, port: u16) -> String {
        let port = format!("port={port} ");
        self.server
            .wait_log_line(&["session ended", &port], WAIT)
            .unwrap_or_else(|| panic!("no session-end line:\n{}", self.server.log().join("\n")))
    }
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `key=value` of a journal line (values without spaces).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..].split(' ').next()
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// vsftpd's date (`%a %b %e %H:%M:%S %Y`, 24 characters) at the start of `line`; the rest.
fn split_date(line: &str) -> (&str, &str) {
    assert!(line.len() > 25, "short line {line:?}");
    let (date, rest) = line.split_at(24);
    let b = date.as_bytes();
    assert!(DAYS.contains(&&date[0..3]), "weekday of {line:?}");
    assert_eq!(b[3], b' ', "{line:?}");
    assert!(MONTHS.contains(&&date[4..7]), "month of {line:?}");
    assert_eq!(b[7], b' ', "{line:?}");
    let day = date[8..10].trim_start().parse::<u32>().expect("day");
    assert!(
        (1..=31).contains(&day) && (day >= 10 || b[8] == b' '),
        "day of {line:?}"
    );
    for (i, c) in date[11..19].bytes().enumerate() {
        assert!(
            if i == 2 || i == 5 {
                c == b':'
            } else {
                c.is_ascii_digit()
            },
            "time of {line:?}"
        );
    }
    assert_eq!(b[19], b' ', "{line:?}");
    assert!(
        date[20..24].bytes().all(|c| c.is_ascii_digit()),
        "year of {line:?}"
    );
    assert!(rest.starts_with(' '), "{line:?}");
    (date, &rest[1..])
}

/// The fourteen fields of an xferlog line after its date, checked one by one.
fn check_xferlog(line: &str, bytes: u64, path: &str, direction: &str, user: &str, status: &str) {
    let (_, rest) = split_date(line);
    let f: Vec<&str> = rest.split(' ').collect();
    assert_eq!(f.len(), 13, "fields of {line:?}");
    let secs: u64 = f[0].parse().expect("transfer time");
    assert!((1..60).contains(&secs), "transfer time of {line:?}");
    assert_eq!(f[1], "127.0.0.1", "remote host of {line:?}");
    assert_eq!(f[2], bytes.to_string(), "byte count of {line:?}");
    assert_eq!(f[3], path, "file name of {line:?}");
    assert_eq!(f[4], "b", "transfer type of {line:?}");
    assert_eq!(f[5], "_", "special action of {line:?}");
    assert_eq!(f[6], direction, "direction of {line:?}");
    assert_eq!(f[7], "r", "access mode of {line:?}");
    assert_eq!(f[8], user, "user name of {line:?}");
    assert_eq!(f[9], "ftp", "service name of {line:?}");
    assert_eq!(f[10], "0", "authentication method of {line:?}");
    assert_eq!(f[11], "*", "authenticated user id of {line:?}");
    assert_eq!(f[12], status, "completion status of {line:?}");
}

#[test]
fn every_event_is_one_journal_line_one_vsftpd_log_line_and_transfers_an_xferlog_line() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("dual_log_enable = true\n");
    let name = s.user.name.clone();
    let body = common::rand_bytes(4096);
    let mut ftp = s.logged_in();
    let port = ftp.local_addr().port();
    assert_eq!(ftp.cmd("TYPE I").0, 200);
    assert_eq!(ftp.transfer_out("STOR f", &body).0, 226);
    let (code, _, got) = ftp.transfer_in("RETR f");
    assert_eq!((code, got.len()), (226, body.len()));
    assert_eq!(ftp.cmd("MKD d").0, 257);
    assert_eq!(ftp.cmd("RNFR f").0, 350);
    assert_eq!(ftp.cmd("RNTO d/g").0, 250);
    assert_eq!(ftp.cmd("DELE d/g").0, 250);
    assert_eq!(ftp.cmd("RMD d").0, 250);
    let (code, _, _) = ftp.transfer_in("RETR missing");
    assert_eq!(code, 550);
    assert_eq!(ftp.cmd("QUIT").0, 221);
    let end = s.wait_session_end(port);
    let pid = field(&end, "pid").expect("pid").to_string();
    assert_eq!(field(&end, "user"), Some(name.as_str()), "{end}");
    assert_eq!(field(&end, "client"), Some("127.0.0.1"), "{end}");

    // The journal: each event with client, port, pid and user; the values of each.
    let journal = |message: &str, extra: &[&str]| -> String {
        let mut needles = vec![
            format!(" {message} "),
            "client=127.0.0.1".to_string(),
            format!("port={port} "),
            format!("pid={pid} "),
            format!("user={name}"),
        ];
        needles.extend(extra.iter().map(|e| e.to_string()));
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        s.server
            .wait_log_line(&needles, WAIT)
            .unwrap_or_else(|| panic!("no {needles:?} line:\n{}", s.server.log().join("\n")))
    };
    journal("login ok", &[]);
    let up = journal("upload", &["path=/f ", "bytes=4096 ", "result=ok"]);
    assert!(field(&up, "duration_ms").is_some(), "{up}");
    journal("download", &["path=/f ", "bytes=4096 ", "result=ok"]);
    journal("mkdir", &["path=/d ", "result=ok"]);
    journal("rename", &["path=/f ", "to=/d/g ", "result=ok"]);
    journal("delete", &["path=/d/g ", "result=ok"]);
    journal("rmdir", &["path=/d ", "result=ok"]);
    journal("download", &["path=/missing ", "bytes=0 ", "result=failed"]);
    journal("session ended", &["uploaded=4096 ", "downloaded=4096 "]);

    // vsftpd_log_file: one line per event, in order, as vsftpd words them.
    let log = lines(&s.vsftpd_log());
    let ours: Vec<&str> = log
        .iter()
        .map(|l| split_date(l).1)
        .filter(|l| l.starts_with(&format!("[pid {pid}] ")))
        .collect();
    let p = format!("[pid {pid}]");
    let c = "Client \"127.0.0.1\"";
    let expected = [
        format!("{p} CONNECT: {c}"),
        format!("{p} [{name}] OK LOGIN: {c}"),
        format!("{p} [{name}] OK UPLOAD: {c}, \"/f\", 4096 bytes, "),
        format!("{p} [{name}] OK DOWNLOAD: {c}, \"/f\", 4096 bytes, "),
        format!("{p} [{name}] OK MKDIR: {c}, \"/d\""),
        format!("{p} [{name}] OK RENAME: {c}, \"/f /d/g\""),
        format!("{p} [{name}] OK DELETE: {c}, \"/d/g\""),
        format!("{p} [{name}] OK RMDIR: {c}, \"/d\""),
        format!("{p} [{name}] FAIL DOWNLOAD: {c}, \"/missing\", 0.00Kbyte/sec"),
    ];
    assert_eq!(ours.len(), expected.len(), "{log:#?}");
    for (line, want) in ours.iter().zip(&expected) {
        if want.ends_with("bytes, ") {
            let rate = line
                .strip_prefix(want.as_str())
                .and_then(|r| r.strip_suffix("Kbyte/sec"))
                .unwrap_or_else(|| panic!("{line:?} is not {want:?}…Kbyte/sec"));
            let (whole, cents) = rate.split_once('.').expect("a rate with two decimals");
            assert!(whole.parse::<u64>().is_ok() && cents.len() == 2, "{line:?}");
        } else {
            assert_eq!(line, want);
        }
    }

    // xferlog: the two transfers and the failed one, field by field.
    let x = lines(&s.xferlog());
    assert_eq!(x.len(), 3, "{x:#?}");
    check_xferlog(&x[0], 4096, "/f", "i", &name, "c");
    check_xferlog(&x[1], 4096, "/f", "o", &name, "c");
    check_xferlog(&x[2], 0, "/missing", "o", &name, "i");
    // Written by root, private, as vsftpd makes them.
    for path in [s.xferlog(), s.vsftpd_log()] {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(&path).unwrap();
        assert_eq!(
            (m.uid(), m.mode() & 0o777),
            (0, 0o600),
            "{}",
            path.display()
        );
    }
}

/// `fail2ban-regex -o ip LOG FILTER`: the address of every failure the filter found.
fn fail2ban_regex(log: &Path, filter: &str) -> Vec<String> {
    fail2ban_regex_with(&[], log, filter)
}

/// [`fail2ban_regex`] with more options first.
fn fail2ban_regex_with(options: &[&str], log: &Path, filter: &str) -> Vec<String> {
    let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    args.extend([
        "-o".into(),
        "ip".into(),
        log.to_string_lossy().into_owned(),
        filter.into(),
    ]);
    let out = run("fail2ban-regex", &args);
    assert!(
        out.status.success(),
        "fail2ban-regex {} {filter}: {}{}",
        log.display(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
    lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn refused_logins_are_logged_as_refused_and_fail2ban_finds_their_address() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("xferlog_enable = true\nmax_login_fails = 0\ndelay_failed_login = 0\n");
    let name = s.user.name.clone();
    // Two wrong passwords and a name that tries to forge another address.
    let mut bad = FtpClient::connect(s.server.addr());
    let bad_port = bad.local_addr().port();
    assert_eq!(bad.login(&name, "wrong-password").0, 530);
    assert_eq!(bad.login(&name, "wrong-again").0, 530);
    let forged = "x] FAIL LOGIN: Client \"10.9.8.7\",";
    let _ = bad.login(forged, "pw");
    let _ = bad.try_cmd("QUIT");
    let mut good = s.logged_in();
    let good_port = good.local_addr().port();
    let _ = good.try_cmd("QUIT");
    s.wait_session_end(bad_port);
    s.wait_session_end(good_port);

    let refused = s
        .server
        .wait_log_line(&["WARN login refused", &format!("port={bad_port} ")], WAIT)
        .expect("a `login refused` line");
    assert!(refused.contains(" client=127.0.0.1 "), "{refused}");
    assert!(
        field(&refused, "pid").is_some() && refused.contains(&name),
        "{refused}"
    );
    assert!(
        !s.server
            .log()
            .iter()
            .any(|l| l.contains("login ok") && l.contains(&format!("port={bad_port} "))),
        "a refused login logged as ok"
    );
    let log = lines(&s.vsftpd_log());
    let fails: Vec<&String> = log.iter().filter(|l| l.contains("FAIL LOGIN")).collect();
    assert_eq!(fails.len(), 3, "{log:#?}");
    assert!(
        fails[0].ends_with(&format!("] [{name}] FAIL LOGIN: Client \"127.0.0.1\"")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("\"10.9.8.7\"")),
        "forged: {log:#?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.contains(&format!("[{name}] OK LOGIN: Client \"127.0.0.1\"")))
            .count(),
        1,
        "{log:#?}"
    );

    // fail2ban: the shipped filter on the journal lines and on the log file, and fail2ban's
    // own vsftpd filter on the log file: the three failures, with the client's address,
    // and not the successful login.
    let filter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fail2ban/filter.d/rftpd.conf");
    let journal = s.logs.join("journal.txt");
    fs::write(&journal, s.server.log().join("\n") + "\n").unwrap();
    for (log, filter) in [
        (journal.as_path(), filter.to_string_lossy().into_owned()),
        (
            s.vsftpd_log().as_path(),
            filter.to_string_lossy().into_owned(),
        ),
        (
            s.vsftpd_log().as_path(),
            "/etc/fail2ban/filter.d/vsftpd.conf".to_string(),
        ),
    ] {
        let found = fail2ban_regex(log, &filter);
        assert_eq!(
            found,
            ["127.0.0.1"; 3],
            "{} with {filter}: the three failures, from the client's address only",
            log.display()
        );
    }

    // The journal jail (backend = systemd): fail2ban's systemd backend gives the filter each
    // entry as "HOSTNAME IDENTIFIER[PID]: MESSAGE" with the journal's time taken off
    // (filtersystemd.py, formatJournalEntry); under rftpd.service the MESSAGE is the stderr
    // line. There is no journald here, so the entries are written in `journalctl -o short`
    // form from this run's stderr lines, and fail2ban-regex is told where the journal's date
    // is: what the filter then sees is exactly what the systemd backend hands it.
    let master = s.server.pid();
    let entries: String = s
        .server
        .log()
        .iter()
        .map(|l| format!("Dec 02 05:55:01 rftpd-test-host rftpd[{master}]: {l}\n"))
        .collect();
    let short = s.logs.join("journal-short.txt");
    fs::write(&short, entries).unwrap();
    let found = fail2ban_regex_with(
        &["--datepattern", "^%b %d %H:%M:%S"],
        &short,
        &filter.to_string_lossy(),
    );
    assert_eq!(
        found, ["127.0.0.1"; 3],
        "journal entries with the shipped filter: the three failures"
    );
}

#[test]
fn a_writable_jail_root_is_a_refused_session_never_a_login_ok() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("xferlog_enable = true\nallow_writeable_chroot = false\n");
    let mut ftp = FtpClient::connect(s.server.addr());
    let port = ftp.local_addr().port();
    let (code, text) = ftp.login(&s.user.name, &s.user.password);
    assert_eq!(code, 500, "{text}");
    s.wait_session_end(port);
    let p = format!("port={port} ");
    let line = s
        .server
        .wait_log_line(&["session refused", &p, "jail root is writable"], WAIT)
        .expect("a `session refused` line");
    assert!(
        line.contains(&s.user.name) && field(&line, "pid").is_some(),
        "{line}"
    );
    let log = s.server.log();
    assert!(
        !log.iter()
            .any(|l| (l.contains("login ok") || l.contains("login refused")) && l.contains(&p)),
        "{log:#?}"
    );
    let file = lines(&s.vsftpd_log());
    assert!(!file.iter().any(|l| l.contains("LOGIN")), "{file:#?}");
}

#[test]
fn log_ftp_protocol_records_commands_and_replies_but_never_a_password() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("xferlog_enable = true\nlog_ftp_protocol = true\n");
    // Before login: the pre-login process's conversation, a wrong password included.
    let mut ftp = FtpClient::connect(s.server.addr());
    let port = ftp.local_addr().port();
    assert_eq!(ftp.cmd("FEAT").0, 211);
    assert_eq!(ftp.cmd(&format!("USER {}", s.user.name)).0, 331);
    assert_eq!(ftp.cmd("pass wrong-sekrit").0, 530);
    ftp.login_ok(&s.user);
    assert_eq!(ftp.cmd("PWD").0, 257);
    assert_eq!(ftp.cmd("PASS sekrit-after-login").0, 230);
    assert_eq!(ftp.cmd("NOOP\u{1b}[2J").0, 500);
    let _ = ftp.try_cmd("QUIT");
    s.wait_session_end(port);
    let log = lines(&s.vsftpd_log());
    let name = &s.user.name;
    let has = |text: &str| log.iter().any(|l| l.contains(text));
    assert!(
        has(&format!(
            "[{name}] FTP command: Client \"127.0.0.1\", \"PWD\""
        )),
        "{log:#?}"
    );
    assert!(
        has(&format!(
            "[{name}] FTP response: Client \"127.0.0.1\", \"257 "
        )),
        "{log:#?}"
    );
    assert!(
        has("FTP command: Client \"127.0.0.1\", \"PASS <password>\""),
        "{log:#?}"
    );
    // The pre-login lines, without a user (none is logged in yet): the greeting, FEAT and its
    // reply, USER, PASS hidden, the 530.
    for text in [
        "] FTP response: Client \"127.0.0.1\", \"220 ".to_string(),
        "] FTP command: Client \"127.0.0.1\", \"FEAT\"".to_string(),
        "] FTP response: Client \"127.0.0.1\", \"211-Features:\"".to_string(),
        format!("] FTP command: Client \"127.0.0.1\", \"USER {name}\""),
        "] FTP response: Client \"127.0.0.1\", \"331 Please specify the password.\"".to_string(),
        "] FTP response: Client \"127.0.0.1\", \"530 Login incorrect.\"".to_string(),
    ] {
        assert!(
            log.iter()
                .any(|l| l.contains(&text) && !l.contains(&format!("[{name}]"))),
            "no {text:?} before login:\n{log:#?}"
        );
    }
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("FTP command: Client \"127.0.0.1\", \"PASS <password>\""))
            .count(),
        3,
        "the wrong, the right and the after-login PASS:\n{log:#?}"
    );
    assert!(!has("sekrit") && !has(&s.user.password), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains('\u{1b}')), "{log:#?}");
}

#[test]
fn libunftp_warnings_and_build_paths_stay_out_of_the_default_log() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    for filter in ["", "info"] {
        let server = Server::start_with_log("", &pam, filter);
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        let port = ftp.local_addr().port();
        assert_eq!(ftp.transfer_in("RETR no-such-file").0, 550);
        assert_eq!(ftp.cmd("CWD no-such-dir").0, 550);
        let _ = ftp.try_cmd("QUIT");
        assert!(server.wait_log(&format!("port={port} "), WAIT));
        server
            .wait_log_line(&["session ended", &format!("port={port} ")], WAIT)
            .expect("session end");
        let log = server.log();
        assert!(
            log.iter()
                .any(|l| l.contains(" download ") && l.contains("path=/no-such-file")),
            "{log:#?}"
        );
        for line in &log {
            assert!(
                !line.contains(".cargo/registry"),
                "build path with RFTPD_LOG={filter:?}: {line}"
            );
            assert!(
                !line.contains("log.target="),
                "libunftp record with RFTPD_LOG={filter:?}: {line}"
            );
        }
    }
}

#[test]
fn logrotate_with_the_shipped_configuration_rotates_and_logging_goes_on() {
    if !common::require_root() {
        return;
    }
    let s = Setup::new("xferlog_enable = true\n");
    let first = s.logged_in();
    drop(first);
    assert!(common::wait_until(WAIT, || lines(&s.vsftpd_log()).len() >= 2));
    // The shipped file, with the test's paths, forced.
    let shipped = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/logrotate.d/rftpd"),
    )
    .unwrap();
    assert!(
        shipped.contains("/var/log/rftpd.log /var/log/xferlog {"),
        "{shipped}"
    );
    let conf = s.logs.join("logrotate.conf");
    fs::write(
        &conf,
        shipped.replace(
            "/var/log/rftpd.log /var/log/xferlog",
            &format!("{} {}", s.vsftpd_log().display(), s.xferlog().display()),
        ),
    )
    .unwrap();
    let debug = run("logrotate", ["-d", &conf.to_string_lossy()]);
    assert!(debug.status.success(), "{}", lossy(&debug.stderr));
    let state = s.logs.join("logrotate.state");
    let out = run(
        "logrotate",
        [
            "-f",
            "-s",
            &state.to_string_lossy(),
            &conf.to_string_lossy(),
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
    let rotated = s.logs.join("vsftpd.log.1");
    assert!(
        lines(&rotated).iter().any(|l| l.contains("OK LOGIN")),
        "nothing rotated"
    );
    // The next session's records go to a new file; the rotated one is left alone.
    let before = lines(&rotated).len();
    let mut second = s.logged_in();
    let port = second.local_addr().port();
    let _ = second.try_cmd("QUIT");
    s.wait_session_end(port);
    assert!(
        common::wait_until(WAIT, || lines(&s.vsftpd_log())
            .iter()
            .any(|l| l.contains("OK LOGIN"))),
        "no record after the rotation"
    );
    assert_eq!(lines(&rotated).len(), before);
}

/// Seconds into the day of a vsftpd date (`... HH:MM:SS YYYY`).
fn second_of_day(date: &str) -> i64 {
    let t: Vec<i64> = date[11..19]
        .split(':')
        .map(|v| v.parse().unwrap())
        .collect();
    t[0] * 3600 + t[1] * 60 + t[2]
}

/// How far apart two seconds-of-day are, around midnight.
fn apart(a: i64, b: i64) -> i64 {
    let d = (a - b).rem_euclid(86_400);
    d.min(86_400 - d)
}

#[test]
fn use_localtime_writes_the_host_time_zone_and_gmt_without_it() {
    if !common::require_root() {
        return;
    }
    // A zone 5 h 30 min east of GMT, named by TZ (a POSIX rule: no zone file needed).
    let zone_offset = 5 * 3600 + 30 * 60;
    for local in [true, false] {
        let user = TestUser::create();
        let pam = PamService::create(&[]);
        let logs = TempDir::new();
        let keys = format!(
            "xferlog_enable = true\ndual_log_enable = true\nuse_localtime = {local}\n\
             xferlog_file = \"{}\"\nvsftpd_log_file = \"{}\"\n",
            logs.join("xferlog").display(),
            logs.join("vsftpd.log").display()
        );
        let server = Server::start_with_env(&keys, &pam, &[("TZ", "RFT-05:30")]);
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        assert_eq!(ftp.cmd("TYPE I").0, 200);
        assert_eq!(ftp.transfer_out("STOR t", b"time").0, 226);
        let utc_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            % 86_400;
        assert_eq!(ftp.cmd("QUIT").0, 221);
        let want = if local {
            (utc_now + zone_offset) % 86_400
        } else {
            utc_now
        };
        assert!(
            common::wait_until(WAIT, || lines(&logs.join("xferlog")).len() == 1),
            "no xferlog line"
        );
        let xfer = lines(&logs.join("xferlog")).remove(0);
        let login = lines(&logs.join("vsftpd.log"))
            .into_iter()
            .find(|l| l.contains("OK LOGIN"))
            .expect("an OK LOGIN line");
        for line in [&xfer, &login] {
            let (date, _) = split_date(line);
            assert!(
                apart(second_of_day(date), want) < 120,
                "use_localtime = {local}: {line:?} is not near {want} s into the day"
            );
        }
    }
}
