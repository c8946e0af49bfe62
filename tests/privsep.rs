//! Privilege separation: per connection the spawner forks a root **monitor**, which forks an
//! unprivileged, jailed **pre-login process** (`rftpd-prelogin`) that owns the control
//! connection (and its TLS) for the whole session, and — only after a login the monitor
//! accepted — a **worker** (`rftpd-worker`) running as the user.
//!
//! These tests check, from /proc, what each process may do (ids, groups, capabilities,
//! `no_new_privs`, root directory, descriptors, network namespace, process limit); that killing
//! any process of a session ends that session only and the connection limits recover; and,
//! with a test double in place of the pre-login process (`rftpd monitor-probe`, driven by an
//! embedded Python script over the monitor's `SOCK_SEQPACKET` protocol), that the monitor
//! trusts nothing the pre-login side sends: out-of-state and malformed requests end the
//! session, and failed logins are delayed and counted by the monitor itself.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{
    FtpClient, PamService, RFTPD, Server, TempDir, TestUser, code, curl, describe, lossy,
};

/// The `nopriv_user` default: the account the pre-login process runs as.
const NOPRIV_USER: &str = "rftpd";
/// The `secure_chroot_dir` default: the pre-login process's (empty, root-owned) root.
const SECURE_CHROOT_DIR: &str = "/run/rftpd/empty";
const PRELOGIN: &str = "rftpd-prelogin";
const WORKER: &str = "rftpd-worker";

// ---------------------------------------------------------------------------------------------
// The service account
// ---------------------------------------------------------------------------------------------

/// The `rftpd` system account and `/run/rftpd/empty`, made by the harness if missing.
fn ensure_service_account() {
    common::ensure_service_account();
}

/// `(uid, gid)` of the `rftpd` account.
fn nopriv_ids() -> (u32, u32) {
    let out = common::run("getent", ["passwd", NOPRIV_USER]);
    let line = lossy(&out.stdout);
    let f: Vec<&str> = line.trim().split(':').collect();
    assert!(f.len() >= 4, "getent passwd {NOPRIV_USER}: {line:?}");
    (
        f[2].parse().expect("uid of rftpd"),
        f[3].parse().expect("gid of rftpd"),
    )
}

/// Root check plus the service account: the common preamble of every test.
fn prepare() -> bool {
    if !common::require_root() {
        return false;
    }
    ensure_service_account();
    true
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

fn status_of(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The value of `key` (e.g. `CapEff:`) in a status text, trimmed.
fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

fn ids(status: &str, key: &str) -> Vec<u32> {
    field(status, key)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn net_ns(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

fn root_of(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/root")).ok()
}

/// `(soft, hard)` of `Max processes` in /proc/PID/limits.
fn max_processes(pid: u32) -> Option<(String, String)> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max processes"))?;
    let mut v = line["Max processes".len()..].split_whitespace();
    Some((v.next()?.to_string(), v.next()?.to_string()))
}

/// Descriptors that are neither a socket, a pipe, an anon inode nor /dev/null.
fn forbidden_fds(pid: u32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return vec!["cannot read /proc/PID/fd".to_string()];
    };
    let mut bad = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(target) = fs::read_link(&path) else {
            continue; // closed meanwhile
        };
        let shown = target.display().to_string();
        let allowed_name = shown.starts_with("socket:[")
            || shown.starts_with("pipe:[")
            || shown.starts_with("anon_inode:")
            || target == Path::new("/dev/null");
        let file_or_dir = fs::metadata(&path).is_ok_and(|m| m.is_file() || m.is_dir());
        if !allowed_name || file_or_dir {
            bad.push(format!("fd {:?} -> {shown}", entry.file_name()));
        }
    }
    bad
}

/// Everything about `pid` that the specification of the pre-login process forbids.
fn prelogin_violations(pid: u32, master: u32) -> Vec<String> {
    let Some(status) = status_of(pid) else {
        return vec![format!("process {pid} is gone")];
    };
    let (uid, gid) = nopriv_ids();
    let mut v = Vec::new();
    if ids(&status, "Uid:") != [uid; 4] {
        v.push(format!("Uid: {:?}, want {uid} x4", field(&status, "Uid:")));
    }
    if ids(&status, "Gid:") != [gid; 4] {
        v.push(format!("Gid: {:?}, want {gid} x4", field(&status, "Gid:")));
    }
    if field(&status, "Groups:") != Some("") {
        v.push(format!(
            "Groups: {:?}, want none",
            field(&status, "Groups:")
        ));
    }
    for cap in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        if field(&status, cap) != Some("0000000000000000") {
            v.push(format!("{cap} {:?}, want 0", field(&status, cap)));
        }
    }
    if field(&status, "NoNewPrivs:") != Some("1") {
        v.push(format!("NoNewPrivs: {:?}", field(&status, "NoNewPrivs:")));
    }
    let root = root_of(pid);
    if root.as_deref() != Some(Path::new(SECURE_CHROOT_DIR)) {
        v.push(format!("root {root:?}, want {SECURE_CHROOT_DIR}"));
    }
    v.extend(forbidden_fds(pid));
    let (ns, master_ns) = (net_ns(pid), net_ns(master));
    if ns.is_none() || ns == master_ns {
        v.push(format!(
            "network namespace {ns:?}, the master's is {master_ns:?}"
        ));
    }
    let nproc = max_processes(pid);
    if nproc != Some(("0".to_string(), "0".to_string())) {
        v.push(format!("Max processes {nproc:?}, want 0 0"));
    }
    v
}

/// Everything about `pid` that the specification of the worker forbids.
fn worker_violations(pid: u32, user: &TestUser, root: &Path, master: u32) -> Vec<String> {
    let Some(status) = status_of(pid) else {
        return vec![format!("process {pid} is gone")];
    };
    let mut v = Vec::new();
    if ids(&status, "Uid:") != [user.uid; 4] {
        v.push(format!(
            "Uid: {:?}, want {} x4",
            field(&status, "Uid:"),
            user.uid
        ));
    }
    if ids(&status, "Gid:") != [user.gid; 4] {
        v.push(format!(
            "Gid: {:?}, want {} x4",
            field(&status, "Gid:"),
            user.gid
        ));
    }
    if ids(&status, "Groups:").contains(&0) {
        v.push(format!(
            "Groups: {:?} has root's",
            field(&status, "Groups:")
        ));
    }
    for cap in ["CapPrm:", "CapEff:", "CapBnd:"] {
        if field(&status, cap) != Some("0000000000000000") {
            v.push(format!("{cap} {:?}, want 0", field(&status, cap)));
        }
    }
    if field(&status, "NoNewPrivs:") != Some("1") {
        v.push(format!("NoNewPrivs: {:?}", field(&status, "NoNewPrivs:")));
    }
    let actual_root = root_of(pid);
    if actual_root.as_deref() != Some(root) {
        v.push(format!("root {actual_root:?}, want {}", root.display()));
    }
    let (ns, master_ns) = (net_ns(pid), net_ns(master));
    if ns.is_none() || ns == master_ns {
        v.push(format!(
            "network namespace {ns:?}, the master's is {master_ns:?}"
        ));
    }
    v
}

/// Poll (3 s) until `check` finds nothing wrong; assert that it did.
fn assert_holds(what: &str, mut check: impl FnMut() -> Vec<String>) {
    let mut last = Vec::new();
    let ok = common::wait_until(Duration::from_secs(3), || {
        last = check();
        last.is_empty()
    });
    assert!(ok, "{what}:\n  {}", last.join("\n  "));
}

/// `(pid, comm)` of every child of every monitor of `server`.
fn session_children(server: &Server) -> Vec<(u32, String)> {
    server
        .monitors()
        .into_iter()
        .flat_map(common::children_of)
        .map(|p| (p, common::comm(p)))
        .collect()
}

fn children_named(parent: u32, name: &str) -> Vec<u32> {
    common::children_of(parent)
        .into_iter()
        .filter(|p| common::comm(*p) == name)
        .collect()
}

/// The one child named `name` of the server's only monitor, once it exists (5 s).
fn the_only(server: &Server, name: &str) -> u32 {
    let mut found = Vec::new();
    let ok = common::wait_until(Duration::from_secs(5), || {
        let monitors = server.monitors();
        found = match monitors.as_slice() {
            [m] => children_named(*m, name),
            _ => Vec::new(),
        };
        found.len() == 1
    });
    assert!(
        ok,
        "expected one {name} child of the one monitor; monitors {:?}, their children {:?}",
        server.monitors(),
        session_children(server)
    );
    let pid = found[0];
    let monitor = common::ppid_of(pid).expect("parent of the session process");
    assert_eq!(common::comm(monitor), "rftpd-monitor", "{name}'s parent");
    let spawner = common::ppid_of(monitor).expect("parent of the monitor");
    assert_eq!(
        common::comm(spawner),
        "rftpd-spawner",
        "the monitor's parent"
    );
    assert_eq!(
        common::ppid_of(spawner),
        Some(server.pid()),
        "the spawner's parent is the master"
    );
    pid
}

/// Assert that no worker exists now and for the next `how_long`.
fn assert_no_worker(server: &Server, how_long: Duration, when: &str) {
    let deadline = Instant::now() + how_long;
    loop {
        let workers: Vec<_> = session_children(server)
            .into_iter()
            .filter(|(_, c)| c == WORKER)
            .collect();
        assert!(workers.is_empty(), "a worker exists {when}: {workers:?}");
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PWD round trip: the worker has jailed itself and dropped when it answers.
fn settle(ftp: &mut FtpClient) {
    let pwd = ftp.pwd();
    assert!(pwd.starts_with('/'), "PWD after login: {pwd:?}");
}

/// `curl` logs in and lists the home (where `marker` is).
fn assert_curl_lists(server: &Server, user: &TestUser, marker: &str) {
    let out = curl(&[&server.ftp_url(user, "/")]);
    assert_eq!(code(&out), 0, "curl login + LIST: {}", describe(&out));
    assert!(
        lossy(&out.stdout).contains(marker),
        "the listing lacks {marker}: {}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// The pre-login process
// ---------------------------------------------------------------------------------------------

#[test]
fn the_prelogin_process_is_unprivileged_and_jailed_before_login() {
    if !prepare() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);

    let ftp = FtpClient::connect(server.addr());
    assert_eq!(ftp.greeting.0, 220, "greeting: {:?}", ftp.greeting);
    // Nothing sent yet: the process has not read a single client byte.
    let prelogin = the_only(&server, PRELOGIN);
    assert_holds("the pre-login process before any client byte", || {
        prelogin_violations(prelogin, server.pid())
    });
    assert_no_worker(&server, Duration::from_millis(500), "before login");
    drop(ftp);
}

/// `HOST PORT USER PASSWORD`: `FTP_TLS` connects and sends AUTH TLS, prints `AUTH <reply>`,
/// waits for a line on stdin, logs in and PWDs (`LOGIN <reply>`, `PWD <path>`), waits for
/// stdin to close, QUITs. Errors print `ERROR <what>`.
const TLS_CLIENT: &str = r#"
import ftplib, ssl, sys
host, port, user, password = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ftp = ftplib.FTP_TLS(context=ctx, timeout=10)
def out(tag, value):
    print(tag, str(value).replace('\r', '').replace('\n', ' | '), flush=True)
try:
    out('GREETING', ftp.connect(host, int(port)))
    out('AUTH', ftp.auth())
    sys.stdin.readline()
    out('LOGIN', ftp.login(user, password))
    out('PWD', ftp.pwd())
    sys.stdin.readline()
    ftp.quit()
except Exception as e:
    out('ERROR', repr(e))
"#;

/// The TLS client above, running, with its output lines arriving on a channel.
struct TlsClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl TlsClient {
    fn start(server: &Server, user: &TestUser) -> TlsClient {
        let mut child = Command::new("timeout")
            .args(["60", "python3", "-c", TLS_CLIENT, "127.0.0.1"])
            .arg(server.port().to_string())
            .args([&user.name, &user.password])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("python stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TlsClient {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The next line starting with `tag`; panics on an `ERROR` line or after 15 s.
    fn expect(&mut self, tag: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {tag} line from the TLS client; so far {:?}", self.seen)
            });
            self.seen.push(line.clone());
            assert!(!line.starts_with("ERROR"), "TLS client: {:?}", self.seen);
            if let Some(rest) = line.strip_prefix(tag) {
                return rest.trim().to_string();
            }
        }
    }

    fn go_on(&mut self) {
        let stdin = self.stdin.as_mut().expect("TLS client stdin");
        stdin.write_all(b"go\n").expect("write to the TLS client");
        stdin.flush().expect("flush the TLS client's stdin");
    }
}

impl Drop for TlsClient {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throw-away self-signed certificate and key; the config lines that enable TLS with them.
fn tls_config(dir: &TempDir) -> String {
    let (cert, key) = common::self_signed_pair(dir, "server");
    format!(
        "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    )
}

#[test]
fn the_prelogin_process_stays_unprivileged_and_jailed_after_auth_tls_and_after_a_tls_login() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let pki = TempDir::new();
    let server = Server::start(&tls_config(&pki), &pam);

    let mut client = TlsClient::start(&server, &user);
    let greeting = client.expect("GREETING");
    assert!(greeting.starts_with("220"), "greeting: {greeting}");
    let auth = client.expect("AUTH");
    assert!(auth.starts_with("234"), "AUTH TLS: {auth}");
    let prelogin = the_only(&server, PRELOGIN);
    assert_holds("the pre-login process after AUTH TLS", || {
        prelogin_violations(prelogin, server.pid())
    });
    assert_no_worker(&server, Duration::from_millis(300), "after AUTH TLS");

    client.go_on();
    let login = client.expect("LOGIN");
    assert!(login.starts_with("230"), "login over TLS: {login}");
    assert_eq!(client.expect("PWD"), "/", "PWD over TLS");
    assert_eq!(
        the_only(&server, PRELOGIN),
        prelogin,
        "the pre-login process lives on after the login (it owns the TLS connection)"
    );
    assert_holds("the pre-login process after a TLS login", || {
        prelogin_violations(prelogin, server.pid())
    });
    let worker = the_only(&server, WORKER);
    assert_holds("the worker after a TLS login", || {
        worker_violations(worker, &user, &user.home, server.pid())
    });
}

#[test]
fn after_a_plain_login_the_prelogin_process_hands_the_connection_to_the_worker_and_exits() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    let prelogin = the_only(&server, PRELOGIN);
    assert_holds("the pre-login process before login", || {
        prelogin_violations(prelogin, server.pid())
    });
    ftp.login_ok(&user);
    settle(&mut ftp);
    assert!(
        common::wait_until(Duration::from_secs(5), || !common::process_alive(prelogin)),
        "the pre-login process {prelogin} is still there after a plain login"
    );
    let worker = the_only(&server, WORKER);
    assert_holds("the worker", || {
        worker_violations(worker, &user, &user.home, server.pid())
    });
    // The worker holds the client's connection itself now.
    let fds = std::fs::read_dir(format!("/proc/{worker}/fd"))
        .expect("the worker's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count();
    assert!(fds >= 2, "the worker holds {fds} sockets");
    assert_eq!(ftp.cmd("NOOP").0, 200, "the session goes on");
    assert_eq!(ftp.pwd(), "/", "still jailed");
}

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------

/// Connect, and watch for a worker through USER and a failed PASS; then log in and check the
/// worker against `root`.
fn worker_appears_only_after_login(extra: &str, root_of_user: fn(&TestUser) -> PathBuf) {
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(extra, &pam);

    let mut ftp = FtpClient::connect(server.addr());
    assert!(
        common::wait_until(Duration::from_secs(5), || server.monitors().len() == 1),
        "no monitor for the connection: {:?}",
        server.monitors()
    );
    assert_no_worker(&server, Duration::from_millis(500), "after the greeting");
    let (code, text) = ftp.cmd(&format!("USER {}", user.name));
    assert_eq!(code, 331, "USER: {text}");
    assert_no_worker(&server, Duration::from_millis(300), "after USER");
    let (code, text) = ftp.cmd("PASS not-the-password");
    assert_eq!(code, 530, "a wrong PASS: {text}");
    assert_no_worker(&server, Duration::from_millis(300), "after a failed login");

    ftp.login_ok(&user);
    settle(&mut ftp);
    let worker = the_only(&server, WORKER);
    let root = root_of_user(&user);
    assert_holds("the worker after login", || {
        worker_violations(worker, &user, &root, server.pid())
    });
    assert_eq!(ftp.cmd("NOOP").0, 200);
}

#[test]
fn the_worker_exists_only_after_login_and_runs_as_the_user_in_the_jail() {
    if !prepare() {
        return;
    }
    worker_appears_only_after_login("", |u| u.home.clone());
}

#[test]
fn without_chroot_local_user_the_worker_has_root_slash_but_is_still_only_the_user() {
    if !prepare() {
        return;
    }
    worker_appears_only_after_login("chroot_local_user = false", |_| PathBuf::from("/"));
}

// ---------------------------------------------------------------------------------------------
// SIGKILL
// ---------------------------------------------------------------------------------------------

/// One session's processes: before login a pre-login process; after a plain login the
/// pre-login process has handed the connection to the worker and exited.
struct Session {
    ftp: FtpClient,
    monitor: u32,
    prelogin: Option<u32>,
    worker: Option<u32>,
}

/// A new session (the monitor that was not there before), logged in or not, once its
/// processes are as expected: before login one pre-login process and no worker; after a plain
/// login one worker and no pre-login process.
fn new_session(server: &Server, user: &TestUser, log_in: bool) -> Session {
    let before: BTreeSet<u32> = server.monitors().into_iter().collect();
    let mut ftp = FtpClient::connect(server.addr());
    if log_in {
        ftp.login_ok(user);
        settle(&mut ftp);
    }
    let mut found = None;
    let ok = common::wait_until(Duration::from_secs(5), || {
        let new: Vec<u32> = server
            .monitors()
            .into_iter()
            .filter(|m| !before.contains(m))
            .collect();
        found = match new.as_slice() {
            [m] => {
                let prelogins = children_named(*m, PRELOGIN);
                let workers = children_named(*m, WORKER);
                match (log_in, prelogins.as_slice(), workers.as_slice()) {
                    (false, [p], []) => Some((*m, Some(*p), None)),
                    (true, [], [w]) => Some((*m, None, Some(*w))),
                    _ => None,
                }
            }
            _ => None,
        };
        found.is_some()
    });
    assert!(
        ok,
        "no new session with the expected processes (logged in: {log_in}); sessions: {:?}",
        session_children(server)
    );
    let (monitor, prelogin, worker) = found.unwrap();
    Session {
        ftp,
        monitor,
        prelogin,
        worker,
    }
}

/// Connect and log in, retrying (the limits may still count ended sessions) until `deadline`.
fn login_before(server: &Server, user: &TestUser, deadline: Instant) -> FtpClient {
    loop {
        let mut ftp = FtpClient::connect(server.addr());
        if ftp.greeting.0 == 220 {
            ftp.login_ok(user);
            return ftp;
        }
        assert!(
            Instant::now() < deadline,
            "no session admitted in time; last greeting {:?}",
            ftp.greeting
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigkill_of_any_session_process_ends_that_session_only_and_the_limits_recover() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    user.put_file("marker-kill.txt", b"x");
    let pam = PamService::create(&[]);
    let mut server = Server::start("max_clients = 3", &pam);

    let mut sessions: Vec<Session> = vec![
        new_session(&server, &user, false),
        new_session(&server, &user, true),
        new_session(&server, &user, true),
    ];
    let victims = [
        (sessions[0].prelogin.unwrap(), "the pre-login process"),
        (sessions[1].worker.unwrap(), "the worker"),
        (sessions[2].monitor, "the monitor"),
    ];
    for (pid, _) in victims {
        common::signal(pid, "KILL");
    }
    for (i, (s, (_, what))) in sessions.iter_mut().zip(victims).enumerate() {
        for (pid, name) in [
            (Some(s.monitor), "monitor"),
            (s.prelogin, "pre-login process"),
            (s.worker, "worker"),
        ]
        .into_iter()
        .filter_map(|(pid, name)| Some((pid?, name)))
        {
            assert!(
                common::wait_until(Duration::from_secs(5), || !common::process_alive(pid)),
                "session {} ({what} killed): its {name} {pid} is still running",
                i + 1
            );
        }
        assert!(
            s.ftp.wait_closed(Duration::from_secs(5)).is_some(),
            "session {} ({what} killed): the client's connection is still open",
            i + 1
        );
    }
    assert!(server.is_running(), "the master died");

    // Limits recover: a new session lists, then three sessions are admitted at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = curl(&[&server.ftp_url(&user, "/")]);
        if code(&out) == 0 {
            assert!(
                lossy(&out.stdout).contains("marker-kill.txt"),
                "listing: {}",
                describe(&out)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new session could log in and list after the kills: {}",
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut fresh: Vec<FtpClient> = (0..3)
        .map(|_| login_before(&server, &user, deadline))
        .collect();
    let (code, text, listing) = fresh[0].transfer_in("LIST");
    assert_eq!(code, 226, "LIST on a new session: {text}");
    assert!(
        lossy(&listing).contains("marker-kill.txt"),
        "listing: {}",
        lossy(&listing)
    );
    let extra = FtpClient::connect(server.addr());
    assert_eq!(
        extra.greeting.0, 421,
        "max_clients = 3 still applies: {:?}",
        extra.greeting
    );
    assert!(server.is_running(), "the master died");
}

// ---------------------------------------------------------------------------------------------
// The monitor's protocol, with a test double in place of the pre-login process
// ---------------------------------------------------------------------------------------------

/// `RFTPD CONFIG LOGFILE STEP…`: runs `RFTPD monitor-probe --config CONFIG` with fd 3 = the
/// server end of a loopback TCP connection (the script keeps the client end) and fd 4 = one
/// end of a `SOCK_SEQPACKET` socketpair, output to LOGFILE; then plays the steps on the other
/// end, printing what happens (times in seconds since the start):
///
/// - `raw:HEX:LABEL` / `rawfd:HEX:LABEL`: send one datagram (with /dev/null attached) →
///   `SENT T LABEL` or `SENDERR T LABEL ERRNO`
/// - `recv:SECS`: receive one → `RECV T KIND ARG NFDS`, KIND `denied` (ARG the disconnect
///   byte), `loggedin` (ARG `socks=N`: attached fds that are sockets), `eof`, `timeout`,
///   `other` (ARG hex). Received fds are kept open.
/// - `recvall:SECS`: `recv` until `eof` or `timeout`
/// - `close`: close the channel → `CLOSED T`
/// - `children:NAME:SECS`: the probe's children named NAME (waiting up to SECS for one) →
///   `CHILDREN NAME PIDS|none`; they are remembered for `gone`
/// - `gone:SECS`: wait until every remembered child has ended → `GONE yes|no`
/// - `listen:IP:PORT`, `accepted:SECS` → `LISTENING`, `ACCEPTED yes|no`
/// - `exit:SECS`: wait for the probe → `EXIT CODE|timeout`
///
/// A step that raises prints `ERROR`. At the end a probe still running is killed.
const PROBE_SCRIPT: &str = r#"
import array, fcntl, os, select, socket, stat, subprocess, sys, time
rftpd, config, logpath = sys.argv[1:4]
steps = sys.argv[4:]
t0 = time.monotonic()
def now():
    return '%.3f' % (time.monotonic() - t0)
def out(*words):
    print(*words, flush=True)

lst = socket.create_server(('127.0.0.1', 0))
client = socket.create_connection(lst.getsockname(), timeout=10)
server_side, _ = lst.accept()
lst.close()
mon, pre = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
hi_client = fcntl.fcntl(server_side.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
hi_pre = fcntl.fcntl(pre.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
def setup():
    os.dup2(hi_client, 3)
    os.dup2(hi_pre, 4)
log = open(logpath, 'wb')
p = subprocess.Popen([rftpd, 'monitor-probe', '--config', config],
                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     env=dict(os.environ, RFTPD_LOG='info'),
                     close_fds=False, preexec_fn=setup)
log.close()
os.close(hi_client)
os.close(hi_pre)
server_side.close()
pre.close()
out('PROBE', p.pid)

kept = []
def recv(timeout):
    r, _, _ = select.select([mon], [], [], timeout)
    if not r:
        out('RECV', now(), 'timeout', '-', 0)
        return 'timeout'
    try:
        data, anc, _, _ = mon.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
    except (ConnectionResetError, BrokenPipeError):
        data, anc = b'', []
    fds = []
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            a = array.array('i')
            a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
            fds.extend(a)
    socks = sum(1 for fd in fds if stat.S_ISSOCK(os.fstat(fd).st_mode))
    kept.extend(fds)
    if not data:
        kind, arg = 'eof', '-'
    elif data[0] == 0x03 and len(data) == 2:
        kind, arg = 'denied', str(data[1])
    elif data[0] == 0x0b:
        kind, arg = 'loggedin', 'socks=%d' % socks
    else:
        kind, arg = 'other', data.hex()
    out('RECV', now(), kind, arg, len(fds))
    return kind

def alive(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            return not any(l.startswith('State:') and 'Z' in l for l in f)
    except OSError:
        return False

def children(ppid, name):
    found = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/status' % d) as f:
                st = f.read()
            with open('/proc/%s/comm' % d) as f:
                comm = f.read().strip()
        except OSError:
            continue
        ppid_line = [l for l in st.splitlines() if l.startswith('PPid:')]
        if ppid_line and ppid_line[0].split()[1] == str(ppid) and comm == name and alive(int(d)):
            found.append(int(d))
    return found

tracked = []
listener = None
for step in steps:
    cmd, *a = step.split(':')
    try:
        if cmd in ('raw', 'rawfd'):
            data, label = bytes.fromhex(a[0]), a[1]
            try:
                if cmd == 'raw':
                    mon.send(data)
                else:
                    fd = os.open('/dev/null', os.O_RDONLY)
                    mon.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [fd]))])
                    os.close(fd)
                out('SENT', now(), label)
            except OSError as e:
                out('SENDERR', now(), label, e.errno)
        elif cmd == 'recv':
            recv(float(a[0]))
        elif cmd == 'recvall':
            while recv(float(a[0])) not in ('eof', 'timeout'):
                pass
        elif cmd == 'close':
            mon.close()
            out('CLOSED', now())
        elif cmd == 'children':
            deadline = time.monotonic() + float(a[1])
            while True:
                pids = children(p.pid, a[0])
                if pids or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            tracked.extend(pids)
            out('CHILDREN', a[0], ','.join(map(str, pids)) or 'none')
        elif cmd == 'gone':
            deadline = time.monotonic() + float(a[0])
            while any(alive(pid) for pid in tracked) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = [pid for pid in tracked if alive(pid)]
            out('GONE', 'no ' + ','.join(map(str, left)) if left else 'yes')
        elif cmd == 'listen':
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((a[0], int(a[1])))
            listener.listen(8)
            out('LISTENING', a[0], a[1])
        elif cmd == 'accepted':
            r, _, _ = select.select([listener], [], [], float(a[0]))
            out('ACCEPTED', 'yes' if r else 'no')
        elif cmd == 'exit':
            try:
                out('EXIT', p.wait(timeout=float(a[0])))
            except subprocess.TimeoutExpired:
                out('EXIT', 'timeout')
        elif cmd == 'sleep':
            time.sleep(float(a[0]))
        else:
            out('ERROR', 'unknown-step', step)
    except Exception as e:
        out('ERROR', step, repr(e).replace(' ', '_'))
if p.poll() is None:
    p.kill()
    p.wait()
"#;

/// One message the double received.
#[derive(Debug, Clone, PartialEq)]
struct Recv {
    t: f64,
    kind: String,
    arg: String,
    fds: usize,
}

/// What one run of the double saw, and the probe's log.
struct ProbeRun {
    lines: Vec<Vec<String>>,
    stdout: String,
    stderr: String,
    log: String,
}

impl ProbeRun {
    fn with_tag(&self, tag: &str) -> Vec<&[String]> {
        self.lines
            .iter()
            .filter(|l| l.first().is_some_and(|t| t == tag))
            .map(|l| &l[1..])
            .collect()
    }

    fn recvs(&self) -> Vec<Recv> {
        self.with_tag("RECV")
            .into_iter()
            .filter(|l| l.len() >= 4)
            .map(|l| Recv {
                t: l[0].parse().unwrap_or(f64::NAN),
                kind: l[1].clone(),
                arg: l[2].clone(),
                fds: l[3].parse().unwrap_or(usize::MAX),
            })
            .collect()
    }

    /// When the datagram labelled `label` was sent.
    fn sent(&self, label: &str) -> f64 {
        self.with_tag("SENT")
            .into_iter()
            .find(|l| l.get(1).is_some_and(|x| x == label))
            .and_then(|l| l[0].parse().ok())
            .unwrap_or_else(|| panic!("{label} was not sent\n{}", self.show()))
    }

    /// The `n`th (from 0) value printed for `tag`, joined.
    fn nth(&self, tag: &str, n: usize) -> String {
        self.with_tag(tag)
            .get(n)
            .map(|l| l.join(" "))
            .unwrap_or_else(|| panic!("no {tag} line #{n}\n{}", self.show()))
    }

    /// The probe's exit code, if it exited by itself.
    fn exit_code(&self) -> Option<i32> {
        self.with_tag("EXIT")
            .last()
            .and_then(|l| l.first())
            .and_then(|c| c.parse().ok())
    }

    fn show(&self) -> String {
        format!(
            "double's output:\n{}\ndouble's stderr:\n{}\nprobe's log:\n{}",
            self.stdout, self.stderr, self.log
        )
    }

    /// The double itself worked (a failed send is not its error: see `SENDERR`).
    fn assert_no_errors(&self) {
        assert!(
            self.with_tag("ERROR").is_empty(),
            "the double hit an error\n{}",
            self.show()
        );
    }

    /// The `i`th message was a `kind` with `arg` and `fds` descriptors.
    fn assert_recv(&self, i: usize, kind: &str, arg: &str, fds: usize, what: &str) {
        let recvs = self.recvs();
        let got = recvs.get(i);
        assert!(
            got.is_some_and(|r| r.kind == kind && r.arg == arg && r.fds == fds),
            "{what}: expected message #{i} to be {kind} {arg} with {fds} fds, got {got:?}\n{}",
            self.show()
        );
    }

    /// The monitor ended the session for a protocol violation: every request reached it,
    /// message `i` is EOF, the probe exited non-zero by itself, and logged why.
    fn assert_broke_protocol(&self, i: usize, what: &str) {
        self.assert_recv(i, "eof", "-", 0, what);
        assert!(
            self.with_tag("SENDERR").is_empty(),
            "{what}: the monitor was gone before the request\n{}",
            self.show()
        );
        let exit = self.exit_code();
        assert!(
            exit.is_some_and(|c| c > 0),
            "{what}: the probe should exit non-zero by itself, got {:?}\n{}",
            self.with_tag("EXIT"),
            self.show()
        );
        assert!(
            self.log.contains("broke the monitor protocol"),
            "{what}: no `broke the monitor protocol` line\n{}",
            self.show()
        );
    }
}

/// Run the double with `steps` against a probe that reads `server`'s config.
fn probe(server: &Server, steps: &[String]) -> ProbeRun {
    let dir = TempDir::new();
    let log_file = dir.join("probe.log");
    let mut args: Vec<String> = vec![
        RFTPD.to_string(),
        server.config_file.display().to_string(),
        log_file.display().to_string(),
    ];
    args.extend(steps.iter().cloned());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::python(PROBE_SCRIPT, &arg_refs);
    let stdout = lossy(&out.stdout);
    ProbeRun {
        lines: stdout
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect(),
        stdout,
        stderr: lossy(&out.stderr),
        log: fs::read_to_string(&log_file).unwrap_or_default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `[0x01][u32 len][user][u32 len][password][u8 tls]`.
fn login_msg(user: &str, password: &str) -> Vec<u8> {
    let mut m = vec![0x01];
    m.extend_from_slice(&(user.len() as u32).to_le_bytes());
    m.extend_from_slice(user.as_bytes());
    m.extend_from_slice(&(password.len() as u32).to_le_bytes());
    m.extend_from_slice(password.as_bytes());
    m.push(0);
    m
}

fn send(msg: &[u8], label: &str) -> String {
    format!("raw:{}:{label}", hex(msg))
}

fn login(user: &TestUser, password: &str, label: &str) -> String {
    send(&login_msg(&user.name, password), label)
}

fn wrong_password() -> String {
    format!("wrong{}", common::rand_alnum(12))
}

/// `[0x07][4][127.0.0.2][u16 2000]`.
fn connect_active_msg() -> Vec<u8> {
    let mut m = vec![0x07, 4, 127, 0, 0, 2];
    m.extend_from_slice(&2000u16.to_le_bytes());
    m
}

fn steps(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A user with a marker file, a PAM service and a normal server beside the probe.
struct ProbeSetup {
    user: TestUser,
    _pam: PamService,
    server: Server,
}

impl ProbeSetup {
    fn new(extra: &str) -> ProbeSetup {
        let user = TestUser::create();
        user.put_file("marker-probe.txt", b"x");
        let pam = PamService::create(&[]);
        let server = Server::start(extra, &pam);
        ProbeSetup {
            user,
            _pam: pam,
            server,
        }
    }

    /// The normal server still serves a login and a listing.
    fn assert_server_unaffected(&mut self) {
        assert!(self.server.is_running(), "the master died");
        assert_curl_lists(&self.server, &self.user, "marker-probe.txt");
    }
}

#[test]
fn the_monitor_denies_a_wrong_password_and_answers_the_right_one_with_a_link_to_the_worker() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("");
    let mut list = vec![login(&s.user, &wrong_password(), "wrong")];
    list.extend(steps(&["recv:5", "children:rftpd-worker:0"]));
    list.push(login(&s.user, &s.user.password, "right"));
    list.extend(steps(&[
        "recv:10",
        "children:rftpd-worker:5",
        "close",
        "exit:5",
        "gone:5",
    ]));
    let run = probe(&s.server, &list);
    run.assert_no_errors();
    run.assert_recv(0, "denied", "0", 0, "a wrong password");
    assert_eq!(
        run.nth("CHILDREN", 0),
        "rftpd-worker none",
        "no worker before login\n{}",
        run.show()
    );
    run.assert_recv(1, "loggedin", "socks=1", 1, "the right password");
    assert_ne!(
        run.nth("CHILDREN", 1),
        "rftpd-worker none",
        "the monitor forks a worker after LoggedIn\n{}",
        run.show()
    );
    assert!(
        run.exit_code().is_some(),
        "the probe should end when the pre-login side closes its channel\n{}",
        run.show()
    );
    assert_eq!(run.nth("GONE", 0), "yes", "the worker outlived the session");
    s.assert_server_unaffected();
}

#[test]
fn a_second_login_after_logged_in_ends_the_session() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("");
    let mut list = vec![login(&s.user, &s.user.password, "first")];
    list.extend(steps(&["recv:10", "children:rftpd-worker:5"]));
    list.push(login(&s.user, &s.user.password, "second"));
    list.extend(steps(&["recv:5", "exit:5", "gone:5"]));
    let run = probe(&s.server, &list);
    run.assert_no_errors();
    run.assert_recv(0, "loggedin", "socks=1", 1, "the first login");
    assert_ne!(
        run.nth("CHILDREN", 0),
        "rftpd-worker none",
        "{}",
        run.show()
    );
    run.assert_broke_protocol(1, "a second login");
    assert_eq!(
        run.nth("GONE", 0),
        "yes",
        "the monitor kills its worker\n{}",
        run.show()
    );
    s.assert_server_unaffected();
}

#[test]
fn a_login_for_one_user_with_another_users_password_is_denied() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("");
    let other = TestUser::create();
    let list = vec![
        login(&other, &s.user.password, "b-with-a"),
        "recv:5".to_string(),
        "children:rftpd-worker:0".to_string(),
        login(&other, &other.password, "b-with-b"),
        "recv:10".to_string(),
        "close".to_string(),
        "exit:5".to_string(),
    ];
    let run = probe(&s.server, &list);
    run.assert_no_errors();
    run.assert_recv(0, "denied", "0", 0, "user B with user A's password");
    assert_eq!(
        run.nth("CHILDREN", 0),
        "rftpd-worker none",
        "{}",
        run.show()
    );
    run.assert_recv(1, "loggedin", "socks=1", 1, "user B with B's own password");
    s.assert_server_unaffected();
}

#[test]
fn bind_passive_before_login_ends_the_session() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("");
    let list = vec![
        login(&s.user, &wrong_password(), "wrong"),
        "recv:5".to_string(),
        send(&[0x04], "bind-passive"),
        "recv:5".to_string(),
        "exit:5".to_string(),
    ];
    let run = probe(&s.server, &list);
    run.assert_no_errors();
    run.assert_recv(0, "denied", "0", 0, "a wrong password first");
    run.assert_broke_protocol(1, "BindPassive before login");
    s.assert_server_unaffected();
}

#[test]
fn connect_active_from_the_prelogin_side_ends_the_session_before_and_after_login() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("");
    let before = vec![
        "listen:127.0.0.2:2000".to_string(),
        login(&s.user, &wrong_password(), "wrong"),
        "recv:5".to_string(),
        send(&connect_active_msg(), "connect-active"),
        "recv:5".to_string(),
        "accepted:1".to_string(),
        "exit:5".to_string(),
    ];
    let run = probe(&s.server, &before);
    run.assert_no_errors();
    run.assert_recv(0, "denied", "0", 0, "a wrong password first");
    run.assert_broke_protocol(1, "ConnectActive before login");
    assert_eq!(
        run.nth("ACCEPTED", 0),
        "no",
        "the monitor connected for the pre-login process\n{}",
        run.show()
    );

    let after = vec![
        "listen:127.0.0.2:2000".to_string(),
        login(&s.user, &s.user.password, "right"),
        "recv:10".to_string(),
        "children:rftpd-worker:5".to_string(),
        send(&connect_active_msg(), "connect-active"),
        "recv:5".to_string(),
        "accepted:1".to_string(),
        "exit:5".to_string(),
        "gone:5".to_string(),
    ];
    let run = probe(&s.server, &after);
    run.assert_no_errors();
    run.assert_recv(0, "loggedin", "socks=1", 1, "the login");
    run.assert_broke_protocol(1, "ConnectActive from the pre-login side after login");
    assert_eq!(
        run.nth("ACCEPTED", 0),
        "no",
        "the monitor connected for the pre-login process\n{}",
        run.show()
    );
    assert_eq!(run.nth("GONE", 0), "yes", "the worker outlived the session");
    s.assert_server_unaffected();
}

#[test]
fn garbage_truncated_or_padded_requests_and_requests_with_an_fd_end_the_session() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("");
    let good = login_msg(&s.user.name, &s.user.password);
    let truncated = &good[..good.len() - 1];
    let mut padded = good.clone();
    padded.push(0);
    // Valid credentials in the malformed ones: a lenient monitor would answer LoggedIn.
    let cases = [
        (
            "garbage",
            format!("raw:{}:bad", hex(b"\xff\x00garbage\x13\x37")),
        ),
        ("a truncated login", format!("raw:{}:bad", hex(truncated))),
        (
            "a login with trailing bytes",
            format!("raw:{}:bad", hex(&padded)),
        ),
        (
            "a login with an fd attached",
            format!("rawfd:{}:bad", hex(&good)),
        ),
        // ChownUpload (tag 16, chown_uploads) is the worker's, with its file: from the
        // pre-login side it ends the session, with or without a descriptor.
        (
            "a ChownUpload from the pre-login process",
            "rawfd:10:bad".into(),
        ),
        ("a ChownUpload without its file", "raw:10:bad".into()),
    ];
    for (what, bad) in cases {
        let list = vec![
            login(&s.user, &wrong_password(), "wrong"),
            "recv:5".to_string(),
            bad,
            "recv:5".to_string(),
            "exit:5".to_string(),
        ];
        let run = probe(&s.server, &list);
        run.assert_no_errors();
        run.assert_recv(
            0,
            "denied",
            "0",
            0,
            &format!("{what}: a wrong password first"),
        );
        run.assert_broke_protocol(1, what);
    }
    s.assert_server_unaffected();
}

#[test]
fn ten_wrong_logins_back_to_back_get_three_slow_denials_and_end_the_session() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("max_login_fails = 3\ndelay_failed_login = 1");
    let mut list: Vec<String> = (1..=10)
        .map(|i| login(&s.user, &wrong_password(), &format!("w{i}")))
        .collect();
    list.extend(steps(&["recvall:10", "exit:10"]));
    let run = probe(&s.server, &list);
    assert!(run.with_tag("ERROR").is_empty(), "{}", run.show());
    let recvs = run.recvs();
    let kinds: Vec<(&str, &str)> = recvs
        .iter()
        .map(|r| (r.kind.as_str(), r.arg.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("denied", "0"),
            ("denied", "0"),
            ("denied", "1"),
            ("eof", "-")
        ],
        "three Denied (the third with disconnect), then EOF\n{}",
        run.show()
    );
    assert!(recvs.iter().all(|r| r.fds == 0), "{}", run.show());
    assert!(
        recvs[0].t - run.sent("w1") >= 0.9,
        "the first Denied came {:.3} s after the request\n{}",
        recvs[0].t - run.sent("w1"),
        run.show()
    );
    for pair in recvs[..3].windows(2) {
        assert!(
            pair[1].t - pair[0].t >= 0.9,
            "Denied replies {:.3} s apart\n{}",
            pair[1].t - pair[0].t,
            run.show()
        );
    }
    let exit = run.exit_code();
    assert!(
        exit.is_some_and(|c| c & 0x0f == 2 && (c >> 4) & 0x0f == 3),
        "exit code {exit:?}: want low bits 2 (too many failed logins), count 3 (0x32)\n{}",
        run.show()
    );
    s.assert_server_unaffected();
}

#[test]
fn a_wrong_login_is_denied_only_after_the_failure_delay() {
    if !prepare() {
        return;
    }
    let mut s = ProbeSetup::new("delay_failed_login = 1");
    let list = vec![
        login(&s.user, &wrong_password(), "wrong"),
        "recv:5".to_string(),
        "close".to_string(),
        "exit:5".to_string(),
    ];
    let run = probe(&s.server, &list);
    run.assert_no_errors();
    run.assert_recv(0, "denied", "0", 0, "a wrong password");
    let delay = run.recvs()[0].t - run.sent("wrong");
    assert!(
        delay >= 0.9,
        "Denied after {delay:.3} s, want at least delay_failed_login (1 s)\n{}",
        run.show()
    );
    s.assert_server_unaffected();
}
