//! The per-session sandbox, layer by layer, read from /proc of a running server: each role's
//! seccomp filter (`Seccomp: 2`) and `no_new_privs`, the session's PID, IPC, UTS and mount
//! namespaces (and the network ones), the resource limits of each role, after connect and
//! after login (plain, and under TLS, where the pre-login process stays); the monitor's report
//! of a process killed by SIGSYS; and the same sessions with every layer turned off. (Each
//! role's allow-list on its own: `tests/seccomp_probe.rs`; cgroups: `tests/cgroups.rs`.)

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{FtpClient, PamService, Server, TempDir, TestUser, lossy};

const NAMESPACES: [&str; 5] = ["pid", "ipc", "uts", "mnt", "net"];

fn prepare() -> bool {
    if !common::require_root() {
        return false;
    }
    common::ensure_service_account();
    true
}

fn status_field(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

fn namespace(pid: u32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .display()
        .to_string()
}

/// The soft and hard value of one line of /proc/PID/limits ("Max open files", ...).
fn limit(pid: u32, name: &str) -> (String, String) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/limits: {e}"));
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/limits"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_string(), fields[1].to_string())
}

fn assert_limit(pid: u32, role: &str, name: &str, value: &str) {
    assert_eq!(
        limit(pid, name),
        (value.to_string(), value.to_string()),
        "{role} {pid}: {name}"
    );
}

fn one(list: Vec<u32>, what: &str) -> u32 {
    assert_eq!(list.len(), 1, "expected one {what}, found {list:?}");
    list[0]
}

fn wait_for(what: &str, mut f: impl FnMut() -> Vec<u32>) -> Vec<u32> {
    let mut found = Vec::new();
    common::wait_until(Duration::from_secs(10), || {
        found = f();
        !found.is_empty()
    });
    assert!(!found.is_empty(), "no {what} appeared");
    found
}

fn assert_sandboxed(pid: u32, role: &str, master: u32) {
    assert_eq!(status_field(pid, "Seccomp"), "2", "{role} {pid}: Seccomp");
    assert_eq!(
        status_field(pid, "NoNewPrivs"),
        "1",
        "{role} {pid}: NoNewPrivs"
    );
    for kind in NAMESPACES {
        assert_ne!(
            namespace(pid, kind),
            namespace(master, kind),
            "{role} {pid} shares the master's {kind} namespace"
        );
    }
}

#[test]
fn every_role_is_filtered_isolated_and_limited_after_connect_and_after_login() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        "worker_max_open_files = 200\nworker_max_processes = 3000\nworker_max_memory_mb = 900",
        &pam,
    );
    let master = server.pid();

    let mut client = FtpClient::connect(server.addr());
    let monitor = one(
        wait_for("monitor", || common::session_monitors(master)),
        "monitor",
    );
    let prelogin = one(
        wait_for("pre-login process", || common::session_prelogins(master)),
        "pre-login process",
    );
    assert_sandboxed(prelogin, "pre-login process", master);
    // The monitor (not filtered: it runs PAM) is in the session's namespaces but the network's.
    for kind in ["pid", "ipc", "uts", "mnt"] {
        assert_ne!(
            namespace(monitor, kind),
            namespace(master, kind),
            "monitor {kind}"
        );
        assert_eq!(
            namespace(monitor, kind),
            namespace(prelogin, kind),
            "session {kind}"
        );
    }
    assert_eq!(namespace(monitor, "net"), namespace(master, "net"));
    // The monitor is process 1 of the session's PID namespace, the pre-login process 2.
    assert!(
        status_field(monitor, "NSpid").ends_with("\t1"),
        "monitor NSpid"
    );
    assert!(
        status_field(prelogin, "NSpid").ends_with("\t2"),
        "pre-login NSpid"
    );
    assert_limit(prelogin, "pre-login process", "Max processes", "0");
    assert_limit(prelogin, "pre-login process", "Max open files", "32");
    assert_limit(prelogin, "pre-login process", "Max core file size", "0");
    assert_limit(prelogin, "pre-login process", "Max file size", "0");
    assert_limit(
        prelogin,
        "pre-login process",
        "Max address space",
        "268435456",
    );
    assert_limit(monitor, "monitor", "Max core file size", "0");
    assert_limit(monitor, "monitor", "Max open files", "256");
    assert_limit(monitor, "monitor", "Max address space", "1073741824");

    let prelogin_net = namespace(prelogin, "net");
    client.login_ok(&user);
    let worker = one(
        wait_for("worker", || common::session_workers(master)),
        "worker",
    );
    assert_sandboxed(worker, "worker", master);
    assert_eq!(namespace(worker, "pid"), namespace(monitor, "pid"));
    assert_ne!(namespace(worker, "net"), prelogin_net);
    assert_limit(worker, "worker", "Max open files", "200");
    assert_limit(worker, "worker", "Max processes", "3000");
    assert_limit(
        worker,
        "worker",
        "Max address space",
        &(900u64 << 20).to_string(),
    );
    assert_limit(worker, "worker", "Max core file size", "0");
    // The sandbox lets the session do its work: a listing, an upload, a download.
    assert_eq!(client.cmd("TYPE I").0, 200);
    let (code, _) = client.transfer_out("STOR sandboxed.txt", b"inside the sandbox\n");
    assert_eq!(code, 226);
    let (code, _, bytes) = client.transfer_in("RETR sandboxed.txt");
    assert_eq!(
        (code, bytes.as_slice()),
        (226, &b"inside the sandbox\n"[..])
    );
    let (code, _, listing) = client.transfer_in("LIST");
    assert_eq!(code, 226);
    assert!(lossy(&listing).contains("sandboxed.txt"));
    // After a plain login the pre-login process has handed the connection over and gone;
    // the worker is still filtered after its transfers.
    assert_eq!(status_field(worker, "Seccomp"), "2");
    client.cmd("QUIT");
    // No cgroup delegation on a test host outside systemd: said once, at start.
    let said = server
        .log()
        .iter()
        .filter(|l| l.contains("sessions run without a cgroup of their own"))
        .count();
    assert_eq!(said, 1, "log:\n{}", server.log().join("\n"));
}

#[test]
fn sessions_cannot_see_each_others_processes() {
    if !prepare() {
        return;
    }
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let master = server.pid();
    let _a = FtpClient::connect(server.addr());
    let _b = FtpClient::connect(server.addr());
    let mut prelogins = Vec::new();
    common::wait_until(Duration::from_secs(10), || {
        prelogins = common::session_prelogins(master);
        prelogins.len() == 2
    });
    assert_eq!(prelogins.len(), 2, "two pre-login processes: {prelogins:?}");
    for kind in ["pid", "ipc", "uts", "mnt"] {
        assert_ne!(
            namespace(prelogins[0], kind),
            namespace(prelogins[1], kind),
            "two sessions share a {kind} namespace"
        );
    }
    // The two run as the same account: only their PID namespaces keep them apart (a signal
    // from one to the other cannot even name its target).
    assert_eq!(
        status_field(prelogins[0], "Uid"),
        status_field(prelogins[1], "Uid")
    );
}

/// Every monitor is pid 1 of its own PID namespace; what tells sessions apart (the pid in the
/// log lines, the owner uid of the passive sockets, which keeps one session out of another's
/// `SO_REUSEPORT` group) must be its host pid. Concurrent sessions moving data over passive
/// connections on a small range must all succeed.
/// The first of `n` ports in a row that are free and above the kernel's ephemeral range
/// (`ip_local_port_range`), so no client connection of another test can hold one of them while
/// a session binds it (a range with no slack, as the test below needs, must not share ports
/// with the ephemeral range).
fn ports_above_the_ephemeral_range(n: u16) -> u16 {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let top: u16 = range
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(60999);
    assert!(
        top < 65535 - 4 * n,
        "no room above the ephemeral range (ends at {top}) for {n} passive ports"
    );
    let span = (65535 - top - 1) / n;
    let offset = (std::process::id() as u16 % span) * n;
    for step in 0..span {
        let base = top + 1 + (offset + step * n) % (span * n);
        if (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free ports in a row above {top}");
}

#[test]
fn concurrent_sessions_are_told_apart_by_their_host_pids_and_keep_their_passive_ports() {
    if !prepare() {
        return;
    }
    let pam = PamService::create(&[]);
    let passive_base = ports_above_the_ephemeral_range(8);
    let server = Server::start(
        &format!(
            "write_enable = true\npasv_min_port = {}\npasv_max_port = {}",
            passive_base,
            passive_base + 7
        ),
        &pam,
    );
    let users: Vec<TestUser> = (0..4).map(|_| TestUser::create()).collect();
    let mut clients: Vec<FtpClient> = users
        .iter()
        .map(|u| {
            let mut c = FtpClient::connect(server.addr());
            c.login_ok(u);
            c
        })
        .collect();
    let monitors = server.monitors();
    common::wait_until(Duration::from_secs(5), || {
        server
            .log()
            .iter()
            .filter(|l| l.contains("login ok"))
            .count()
            == users.len()
    });
    let log = server.log();
    let mut pids: Vec<String> = log
        .iter()
        .filter(|l| l.contains("login ok"))
        .filter_map(|l| {
            l.split(" pid=")
                .nth(1)?
                .split(' ')
                .next()
                .map(str::to_string)
        })
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(
        pids.len(),
        users.len(),
        "one pid per session: {pids:?}\n{}",
        log.join("\n")
    );
    for pid in &pids {
        let pid: u32 = pid.parse().expect("a number");
        assert!(
            monitors.contains(&pid),
            "pid={pid} is not a monitor's host pid: {monitors:?}"
        );
    }
    // Passive listings on all sessions at once, over a range of eight ports: with a shared
    // socket owner, one session's listener set would join another's and trap its client.
    for round in 0..5 {
        let mut data: Vec<std::net::TcpStream> = clients
            .iter_mut()
            .map(|c| {
                c.pasv_data()
                    .unwrap_or_else(|e| panic!("round {round}: PASV: {e}"))
            })
            .collect();
        for (c, d) in clients.iter_mut().zip(data.iter_mut()) {
            let (code, text) = c.cmd("LIST");
            assert_eq!(
                code,
                150,
                "round {round}: {text}\n{}",
                server.log().join("\n")
            );
            let mut listing = Vec::new();
            std::io::Read::read_to_end(d, &mut listing).expect("listing");
            let (code, text) = c.read_reply().expect("the LIST's final reply");
            assert_eq!(
                code,
                226,
                "round {round}: {text}\n{}",
                server.log().join("\n")
            );
        }
    }
    assert!(
        !server.log_contains("another address than the client's"),
        "a client's own data connection was trapped:\n{}",
        server.log().join("\n")
    );
}

#[test]
fn a_sessions_processes_end_with_its_monitor() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let master = server.pid();
    let mut client = FtpClient::connect(server.addr());
    client.login_ok(&user);
    let worker = one(
        wait_for("worker", || common::session_workers(master)),
        "worker",
    );
    let monitor = one(common::session_monitors(master), "monitor");
    common::signal(monitor, "KILL");
    // Process 1 of the PID namespace has gone: the kernel ends the rest of the session.
    assert!(
        common::wait_until(Duration::from_secs(5), || !common::process_alive(worker)),
        "the worker outlived its monitor"
    );
    assert!(client.wait_closed(Duration::from_secs(5)).is_some());
}

#[test]
fn a_process_killed_by_sigsys_is_reported_by_the_monitor() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let master = server.pid();
    let mut client = FtpClient::connect(server.addr());
    client.login_ok(&user);
    let worker = one(
        wait_for("worker", || common::session_workers(master)),
        "worker",
    );
    // What the kernel does to a process on a system call outside its list (SIGSYS, as
    // SECCOMP_RET_KILL_PROCESS): the monitor sees the same status and reports it.
    common::signal(worker, "SYS");
    let line = server.wait_log_line(
        &["killed by its seccomp filter (SIGSYS)", "worker"],
        Duration::from_secs(10),
    );
    let line = line.unwrap_or_else(|| panic!("no report; log:\n{}", server.log().join("\n")));
    assert!(line.contains("syscall="), "{line}");
    client.wait_closed(Duration::from_secs(5));
}

#[test]
fn with_every_layer_off_sessions_still_work_unfiltered_in_the_hosts_namespaces() {
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start(
        "seccomp_sandbox = false\nisolate = false\nisolate_network = false\nsession_cgroup = false",
        &pam,
    );
    let master = server.pid();
    let mut client = FtpClient::connect(server.addr());
    let prelogin = one(
        wait_for("pre-login process", || common::session_prelogins(master)),
        "pre-login process",
    );
    assert_eq!(status_field(prelogin, "Seccomp"), "0");
    for kind in NAMESPACES {
        assert_eq!(namespace(prelogin, kind), namespace(master, kind), "{kind}");
    }
    client.login_ok(&user);
    let worker = one(
        wait_for("worker", || common::session_workers(master)),
        "worker",
    );
    assert_eq!(status_field(worker, "Seccomp"), "0");
    assert_eq!(namespace(worker, "pid"), namespace(master, "pid"));
    // The worker's own network namespace is not optional (its relay needs one).
    assert_ne!(namespace(worker, "net"), namespace(master, "net"));
    let (code, _, _) = client.transfer_in("LIST");
    assert_eq!(code, 226);
    assert!(!server.log_contains("sessions run without a cgroup of their own"));
}

#[test]
fn with_active_mode_and_tls_off_the_filtered_worker_still_serves_passive_transfers() {
    if !prepare() {
        return;
    }
    // libunftp listens on every passive socket it is given: the worker's filter allows
    // `listen` whatever the configuration (it once did only with active mode or TLS on).
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("port_enable = false\nssl_enable = false", &pam);
    let master = server.pid();
    let mut client = FtpClient::connect(server.addr());
    client.login_ok(&user);
    let worker = one(
        wait_for("worker", || common::session_workers(master)),
        "worker",
    );
    assert_eq!(status_field(worker, "Seccomp"), "2");
    for round in 0..3 {
        let (code, _, _) = client.transfer_in("LIST");
        assert_eq!(
            code,
            226,
            "round {round}; log:\n{}",
            server.log().join("\n")
        );
    }
    assert!(!server.log_contains("killed by its seccomp filter"));
}

/// An FTPS session held open by Python's ftplib: logs in over TLS with `PROT P`, makes an
/// active (PORT) and a passive protected listing, prints `ready`, waits for a line on stdin,
/// lists once more (actively) and quits. `HOST PORT USER PASSWORD`.
const TLS_SESSION: &str = r#"
import ftplib, sys
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ftp = ftplib.FTP_TLS()
ftp.connect(host, port, timeout=20)
ftp.login(user, password)
ftp.prot_p()
ftp.set_pasv(False)
active = []
ftp.retrlines('LIST', active.append)
ftp.set_pasv(True)
ftp.retrlines('LIST', lambda line: None)
print('ready', flush=True)
sys.stdin.readline()
ftp.set_pasv(False)
ftp.retrlines('LIST', active.append)
ftp.quit()
print('done', flush=True)
"#;

#[test]
fn under_tls_both_children_stay_filtered_and_isolated_after_login_and_protected_active_transfers_work()
 {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    if !prepare() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let pki = TempDir::new();
    let (cert, key) = common::self_signed_pair(&pki, "server");
    let server = Server::start(
        &format!(
            "ssl_enable = true\nrsa_cert_file = \"{}\"\nrsa_private_key_file = \"{}\"\n\
             require_ssl_reuse = false",
            cert.display(),
            key.display()
        ),
        &pam,
    );
    let master = server.pid();
    let mut python = Command::new("timeout")
        .args(["60", "python3", "-c", TLS_SESSION, "127.0.0.1"])
        .arg(server.addr().port().to_string())
        .args([&user.name, &user.password])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(python.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read python's output");
    assert_eq!(line.trim(), "ready", "log:\n{}", server.log().join("\n"));
    // After login under TLS the pre-login process is the session's TLS end: it and the worker
    // are both filtered, in the session's namespaces and limited.
    let monitor = one(common::session_monitors(master), "monitor");
    let prelogin = one(common::session_prelogins(master), "pre-login process");
    let worker = one(common::session_workers(master), "worker");
    assert_sandboxed(prelogin, "pre-login process after login", master);
    assert_sandboxed(worker, "worker", master);
    assert_limit(prelogin, "pre-login process", "Max processes", "0");
    assert_limit(prelogin, "pre-login process", "Max open files", "32");
    assert_limit(prelogin, "pre-login process", "Max file size", "0");
    assert_limit(monitor, "monitor after login", "Max core file size", "0");
    assert_limit(monitor, "monitor after login", "Max open files", "256");
    for kind in ["pid", "ipc", "uts", "mnt"] {
        assert_eq!(namespace(worker, kind), namespace(prelogin, kind), "{kind}");
    }
    assert_ne!(namespace(worker, "net"), namespace(prelogin, "net"));
    assert_ne!(namespace(worker, "net"), namespace(monitor, "net"));
    writeln!(python.stdin.take().expect("stdin")).expect("write to python");
    line.clear();
    out.read_line(&mut line).expect("read python's output");
    let status = python.wait().expect("python exit");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut python.stderr.take().unwrap(), &mut err);
    assert!(
        status.success() && line.trim() == "done",
        "{status:?} {line} {err}\nlog:\n{}",
        server.log().join("\n")
    );
    // The protected active and passive transfers ran on stand-ins the monitor made: nothing
    // was killed by a filter that forbids the worker any network socket of its own.
    assert!(!server.log_contains("killed by its seccomp filter"));
}
