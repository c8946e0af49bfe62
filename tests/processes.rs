//! The process model: the master, its session spawner, and one monitor (root) and one worker
//! (the user, jailed) per session; sessions are independent of each other, of the master and
//! of the spawner.

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
        "the worker's parent is the session's monitor, a child of the spawner"
    );
    let spawner = common::ppid_of(monitor).expect("the monitor's parent");
    assert_eq!(
        server.spawners(),
        vec![spawner],
        "one spawner, the master's child"
    );
    // Forked, not exec'd: the sessions run the spawner's program image (that is what lets
    // them share its relocated pages), and each process says what it is.
    assert_eq!(
        fs::read(format!("/proc/{monitor}/cmdline")).unwrap(),
        fs::read(format!("/proc/{spawner}/cmdline")).unwrap(),
        "the monitor was forked from the spawner"
    );
    for (pid, name) in [
        (server.pid(), "rftpd"),
        (spawner, "rftpd-spawner"),
        (monitor, "rftpd-monitor"),
        (worker, "rftpd-worker"),
    ] {
        assert_eq!(common::comm(pid), name, "process name of {pid}");
    }
    let (uids, _) = proc_ids(spawner);
    assert_eq!(uids, [0; 4], "the spawner runs as root");
    // Standard input is /dev/null, not the spawner's channel to the master: programs a session
    // runs (pam_exec) inherit it.
    for pid in [spawner, monitor] {
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(),
            std::path::PathBuf::from("/dev/null"),
            "fd 0 of {}",
            common::comm(pid)
        );
    }
    let (uids, gids) = proc_ids(monitor);
    assert_eq!(uids, [0; 4], "the monitor runs as root");
    assert_eq!(gids, [0; 4], "the monitor keeps root's group");
    assert_eq!(
        proc_root(monitor),
        std::path::PathBuf::from("/"),
        "the monitor is not jailed"
    );
}

/// Field `n` (1-based, as in proc(5)) of `/proc/PID/stat`, after the command name.
fn stat_field(pid: u32, n: usize) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    after_name
        .split_whitespace()
        .nth(n - 3)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn every_ftp_session_is_a_process_session_of_its_own_led_by_its_monitor() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let mut first = FtpClient::connect(server.addr());
    first.login_ok(&user);
    let mut second = FtpClient::connect(server.addr());
    second.login_ok(&user);
    assert_eq!(first.pwd(), "/");
    assert_eq!(second.pwd(), "/");

    let workers = wait_for_workers(&server, 2);
    let spawner = server.spawners()[0];
    let spawner_session = stat_field(spawner, 6);
    let mut sessions = Vec::new();
    for worker in workers {
        let monitor = common::ppid_of(worker).expect("the worker's parent");
        let session = stat_field(monitor, 6);
        assert_eq!(
            session, monitor,
            "the monitor {monitor} leads its own session (setsid)"
        );
        assert_eq!(
            stat_field(worker, 6),
            session,
            "the worker stays in its monitor's session"
        );
        assert_ne!(session, spawner_session, "not the spawner's session");
        sessions.push(session);
    }
    assert_ne!(
        sessions[0], sessions[1],
        "two FTP sessions, two process sessions"
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

/// The one spawner of `server`, once there is exactly one.
fn single_spawner(server: &Server) -> u32 {
    let mut spawners = Vec::new();
    let found = common::wait_until(Duration::from_secs(5), || {
        spawners = server.spawners();
        spawners.len() == 1
    });
    assert!(found, "expected one spawner, found {spawners:?}");
    spawners[0]
}

#[test]
fn a_reload_hands_new_sessions_to_a_new_spawner_and_the_old_one_leaves_after_its_last() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let mut server = Server::start("", &pam);
    let first = single_spawner(&server);

    let mut old = FtpClient::connect(server.addr());
    old.login_ok(&user);
    assert_eq!(old.pwd(), "/");
    common::signal(server.pid(), "HUP");
    assert!(
        server.wait_log("configuration reloaded", Duration::from_secs(5)),
        "no `configuration reloaded` line"
    );
    // The old spawner stays for the session it started; a new one takes new sessions.
    let spawners = server.spawners();
    assert_eq!(spawners.len(), 2, "spawners after the reload: {spawners:?}");
    assert!(spawners.contains(&first));
    let mut fresh = FtpClient::connect(server.addr());
    fresh.login_ok(&user);
    assert_eq!(fresh.pwd(), "/");
    let second = *spawners.iter().find(|p| **p != first).unwrap();
    assert_eq!(
        common::spawner_sessions(second).len(),
        1,
        "the new session belongs to the new spawner"
    );
    assert_eq!(old.cmd("NOOP").0, 200, "the old session goes on");

    assert_eq!(old.cmd("QUIT").0, 221);
    assert!(
        common::wait_until(Duration::from_secs(5), || !common::process_alive(first)),
        "the retired spawner did not exit after its last session"
    );
    // It may still be a zombie for a moment, until the master reaps it.
    assert!(
        common::wait_until(Duration::from_secs(5), || server.spawners() == vec![second]),
        "the master did not reap the retired spawner: {:?}",
        server.spawners()
    );
    // Its session's end was still reported and counted.
    assert!(
        server.wait_log("session ended", Duration::from_secs(5)),
        "no `session ended` line for the old session"
    );
    assert!(!server.log_contains("ended unexpectedly"));
    assert_eq!(fresh.cmd("NOOP").0, 200);
    assert!(server.is_running(), "the master died");
}

#[test]
fn a_killed_spawner_is_replaced_and_its_sessions_go_on() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let mut server = Server::start("", &pam);
    let first = single_spawner(&server);

    let mut running = FtpClient::connect(server.addr());
    running.login_ok(&user);
    assert_eq!(running.pwd(), "/");
    common::signal(first, "KILL");
    assert!(
        server.wait_log(
            "the session spawner ended unexpectedly",
            Duration::from_secs(5)
        ),
        "the master did not notice its spawner died"
    );
    let second = single_spawner(&server);
    assert_ne!(second, first, "no new spawner");
    assert_eq!(running.cmd("NOOP").0, 200, "the orphaned session goes on");
    let out = curl(&[&server.ftp_url(&user, "/")]);
    assert_eq!(code(&out), 0, "a new session: {}", describe(&out));
    assert_eq!(running.cmd("QUIT").0, 221);
    assert!(server.is_running(), "the master died");
}

#[test]
fn stopping_the_master_lets_running_sessions_finish() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let mut server = Server::start("", &pam);
    let spawner = single_spawner(&server);

    let mut running = FtpClient::connect(server.addr());
    running.login_ok(&user);
    assert_eq!(running.pwd(), "/");
    common::signal(server.pid(), "TERM");
    assert!(
        common::wait_until(Duration::from_secs(5), || !server.is_running()),
        "the master did not stop on SIGTERM"
    );
    assert!(
        std::net::TcpStream::connect(server.addr()).is_err(),
        "the master still accepts connections"
    );
    assert_eq!(running.cmd("NOOP").0, 200, "the session was cut");
    assert_eq!(running.pwd(), "/");
    assert!(
        common::process_alive(spawner),
        "the spawner left before its session"
    );
    assert_eq!(running.cmd("QUIT").0, 221);
    assert!(
        common::wait_until(Duration::from_secs(5), || !common::process_alive(spawner)),
        "the spawner outlived its last session"
    );
}

#[test]
fn descriptors_the_master_inherited_never_reach_a_session() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    // A directory outside the user's home: an open handle to it inside the jail would be a way out.
    let outside = TempDir::new();
    let server = Server::start_inheriting_dir("", &pam, &outside.path);
    assert!(
        fs::read_link(format!("/proc/{}/fd/7", server.pid())).is_ok_and(|t| t == outside.path),
        "the test did not give the master the descriptor"
    );

    let mut ftp = FtpClient::connect(server.addr());
    ftp.login_ok(&user);
    assert_eq!(ftp.pwd(), "/");
    let worker = wait_for_workers(&server, 1)[0];
    let monitor = common::ppid_of(worker).unwrap();
    let spawner = common::ppid_of(monitor).unwrap();
    for pid in [spawner, monitor, worker] {
        let leaked: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.starts_with(&outside.path))
            .map(|t| t.display().to_string())
            .collect();
        assert!(
            leaked.is_empty(),
            "process {pid} ({}) holds {leaked:?}",
            common::comm(pid)
        );
    }
}

/// The spawner's template process (the one that forks every monitor), once there is one.
fn template_of(spawner: u32) -> u32 {
    let mut found = Vec::new();
    common::wait_until(Duration::from_secs(5), || {
        found = common::children_of(spawner)
            .into_iter()
            .filter(|p| common::comm(*p) == common::TEMPLATE_COMM)
            .collect();
        found.len() == 1
    });
    assert_eq!(
        found.len(),
        1,
        "one template process under the spawner: {found:?}"
    );
    found[0]
}

/// The page frame behind every present page of `pid`'s writable mappings (root reads frame
/// numbers from `/proc/PID/pagemap`), by address, with the mapping's name.
fn page_frames(pid: u32) -> std::collections::HashMap<u64, (u64, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut pagemap = fs::File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let mut out = std::collections::HashMap::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields[1].contains('w') {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let pages = ((end - start) / 4096) as usize;
        let mut entries = vec![0u8; pages * 8];
        pagemap.seek(SeekFrom::Start(start / 4096 * 8)).unwrap();
        pagemap.read_exact(&mut entries).unwrap();
        let name = fields.get(5).copied().unwrap_or("[anonymous]");
        for (i, entry) in entries.chunks_exact(8).enumerate() {
            let entry = u64::from_le_bytes(entry.try_into().unwrap());
            if entry >> 63 == 1 {
                let frame = entry & ((1 << 55) - 1);
                out.insert(start + i as u64 * 4096, (frame, name.to_string()));
            }
        }
    }
    out
}

/// Pages of `pid` whose frame changed (a write that broke copy-on-write sharing) or that
/// appeared since `before`.
fn pages_written(pid: u32, before: &std::collections::HashMap<u64, (u64, String)>) -> Vec<String> {
    page_frames(pid)
        .into_iter()
        .filter(|(address, (frame, _))| before.get(address).is_none_or(|(f, _)| f != frame))
        .map(|(address, (_, name))| format!("{address:x} {name}"))
        .collect()
}

#[test]
fn monitors_are_forked_by_a_template_that_keeps_its_memory_as_it_was() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let spawner = single_spawner(&server);
    let template = template_of(spawner);
    assert_eq!(proc_ids(template).0, [0; 4], "the template runs as root");
    // A first session: whatever is touched only once (a lazily bound symbol) is done.
    let mut first = FtpClient::connect(server.addr());
    first.login_ok(&user);
    assert_eq!(first.pwd(), "/");

    // Sessions alive while we look: every page the template has is shared with them, so a
    // page it writes gets a new frame.
    let mut held = vec![first];
    let template_before = page_frames(template);
    assert!(
        template_before.values().any(|(frame, _)| *frame != 0),
        "no page frame numbers readable"
    );
    const SESSIONS: usize = 20;
    for _ in 0..SESSIONS {
        let mut ftp = FtpClient::connect(server.addr());
        ftp.login_ok(&user);
        assert_eq!(ftp.pwd(), "/");
        held.push(ftp);
    }
    // Every monitor ends up the spawner's child, as without a template (the spawner reaps
    // and counts them).
    let monitors = common::spawner_sessions(spawner);
    assert_eq!(monitors.len(), SESSIONS + 1, "monitors: {monitors:?}");
    for monitor in &monitors {
        assert_eq!(common::comm(*monitor), "rftpd-monitor");
    }
    assert_eq!(
        template_of(spawner),
        template,
        "the same template forked them all"
    );
    let template_wrote = pages_written(template, &template_before);
    eprintln!(
        "over {SESSIONS} session starts the template wrote {} pages: {template_wrote:?}",
        template_wrote.len()
    );
    // Its stack and the libc data fork itself writes (3 pages here): pages each session
    // writes in its own copy anyway. A table or heap block written per session would be
    // pages each session keeps the old copy of (the spawner wrote 10-12 per session when it
    // forked the monitors itself).
    assert!(
        template_wrote.len() <= 4,
        "the template wrote {} pages over {SESSIONS} session starts: {template_wrote:?}",
        template_wrote.len()
    );
    for mut ftp in held {
        assert_eq!(ftp.cmd("QUIT").0, 221);
    }
}

#[test]
fn a_killed_template_is_replaced_and_its_sessions_go_on() {
    if !common::require_root() {
        return;
    }
    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start("", &pam);
    let spawner = single_spawner(&server);
    let template = template_of(spawner);
    let mut running = FtpClient::connect(server.addr());
    running.login_ok(&user);

    common::signal(template, "KILL");
    assert!(
        common::wait_until(Duration::from_secs(5), || !common::process_alive(template)),
        "the template did not end"
    );
    let replaced = common::wait_until(Duration::from_secs(5), || {
        common::children_of(spawner)
            .into_iter()
            .any(|p| p != template && common::comm(p) == common::TEMPLATE_COMM)
    });
    assert!(
        replaced,
        "no new template process; log:\n{}",
        server.log().join("\n")
    );
    assert!(server.log_contains("the template process ended"));

    assert_eq!(running.cmd("NOOP").0, 200, "the running session goes on");
    let mut fresh = FtpClient::connect(server.addr());
    fresh.login_ok(&user);
    assert_eq!(fresh.pwd(), "/");
    assert_eq!(common::spawner_sessions(spawner).len(), 2);
    assert_eq!(
        single_spawner(&server),
        spawner,
        "the spawner itself carried on"
    );
    assert_eq!(running.cmd("QUIT").0, 221);
    assert_eq!(fresh.cmd("QUIT").0, 221);
}
