//! The process model: one monitor (root) and one worker (the user, jailed) per session;
//! sessions are independent of each other and of the master.

mod common;

use std::fs;
use std::time::Duration;

use common::{
    FtpClient, PamService, Server, TempDir, TestUser, code, curl, describe, lossy, proc_ids,
    proc_root,
};

/// The worker processes of `server` once exactly `n` of them exist.
fn wait_for_workers(server: &Server, n: usize) -> Vec<u32> {
    let mut workers = Vec::new();
    let found = common::wait_until(Duration::from_secs(5), || {
        workers = server.workers();
        workers.len() == n
    });
    assert!(found, "expected {n} worker processes, found {workers:?}");
    workers
}

#[test]
fn logged_in_worker_runs_as_the_user_inside_the_home_and_its_monitor_as_root() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    // The worker jails and drops in libunftp's `enter`, right after the login reply; a command
    // round trip makes sure that has happened.
    assert_eq!(ftp.pwd(), "/");

    let workers = wait_for_workers(&server, 1);
    let worker = workers[0];
    let (uids, gids) = proc_ids(worker);
    assert_eq!(
        uids, [user.uid; 4],
        "worker uids (real, effective, saved, fs)"
    );
    assert_eq!(
        gids, [user.gid; 4],
        "worker gids (real, effective, saved, fs)"
    );
    assert_eq!(proc_root(worker), user.home, "the worker's root directory");

    let status = fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
    let groups = status
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .unwrap_or("Groups:");
    assert!(
        !groups.split_whitespace().skip(1).any(|g| g == "0"),
        "the worker kept root's group: {groups}"
    );
    let no_new_privs = status
        .lines()
        .find(|l| l.starts_with("NoNewPrivs:"))
        .unwrap_or("");
    assert!(
        no_new_privs.ends_with('1'),
        "no_new_privs should be set on the worker: {no_new_privs:?}"
    );

    let monitor = common::ppid_of(worker).expect("the worker's parent");
    assert_eq!(
        server.monitors(),
        vec![monitor],
        "the worker's parent is the session's monitor, a child of the master"
    );
    let (uids, gids) = proc_ids(monitor);
    assert_eq!(uids, [0; 4], "the monitor runs as root");
    assert_eq!(gids, [0; 4], "the monitor keeps root's group");
    assert_eq!(
        proc_root(monitor),
        std::path::PathBuf::from("/"),
        "the monitor is not jailed"
    );
}

#[test]
fn fifty_sessions_at_once_all_succeed() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let data = common::rand_bytes(64 * 1024);
    user.put_file("shared.bin", &data);
    let local = TempDir::new();

    let children: Vec<_> = (0..50)
        .map(|i| {
            let out = local.join(&format!("got-{i}"));
            std::process::Command::new("curl")
                .args(["-sS", "--max-time", "60", "-o"])
                .arg(&out)
                .arg(server.ftp_url(&user, "shared.bin"))
                .arg(server.ftp_url(&user, "/"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start curl")
        })
        .collect();
    let mut failures = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait for curl");
        let got = fs::read(local.join(&format!("got-{i}"))).unwrap_or_default();
        if code(&out) != 0 || got != data || !lossy(&out.stdout).contains("shared.bin") {
            failures.push(format!(
                "session {i}: {} bytes; {}",
                got.len(),
                describe(&out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 50 sessions failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn killing_one_worker_leaves_the_other_sessions_and_the_master_alone() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let mut server = Server::start("", &pam);

    let mut victim = FtpClient::connect(server.addr());
    victim.login_ok(&user);
    assert_eq!(victim.pwd(), "/");
    let victim_worker = wait_for_workers(&server, 1)[0];

    let mut others: Vec<FtpClient> = (0..2)
        .map(|_| {
            let mut ftp = FtpClient::connect(server.addr());
            ftp.login_ok(&user);
            ftp
        })
        .collect();
    wait_for_workers(&server, 3);

    common::signal(victim_worker, "KILL");
    assert!(
        common::wait_until(Duration::from_secs(5), || !common::process_alive(
            victim_worker
        )),
        "the worker survived SIGKILL"
    );
    assert!(
        victim.try_cmd("NOOP").is_err(),
        "the killed session still answers"
    );
    assert!(
        server.wait_log("worker killed by a signal", Duration::from_secs(5)),
        "the monitor should log that its worker was killed"
    );

    for (i, ftp) in others.iter_mut().enumerate() {
        let (reply, text) = ftp.cmd("NOOP");
        assert_eq!(reply, 200, "NOOP on surviving session {i}: {text}");
        assert_eq!(ftp.pwd(), "/", "PWD on surviving session {i}");
    }
    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(
        code(&out),
        0,
        "a new session after the kill: {}",
        describe(&out)
    );
    assert!(server.is_running(), "the master died");
}
