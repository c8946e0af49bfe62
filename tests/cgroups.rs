//! Session cgroups on a hybrid host (memory and pids mounted as cgroup v1, as on this
//! project's CI machines), outside systemd: a delegated service cgroup at the same path in the
//! cgroup v2 hierarchy and in the v1 memory and pids ones (as systemd makes for a
//! `Delegate=yes` unit), the server started inside it; a session's processes are in
//! `session-N` of each, with the configured limits, and every one is gone at its end.
//! (`tests/systemd.rs` checks the same under a booted systemd.)

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{FtpClient, PamService, Server, TestUser};

fn one(list: Vec<u32>, what: &str) -> u32 {
    assert_eq!(list.len(), 1, "expected one {what}, found {list:?}");
    list[0]
}

/// Where the hierarchy holding `controller` is mounted (`cgroup2` for the v2 one).
fn cgroup_mount(fs_type: &str, controller: Option<&str>) -> Option<std::path::PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let mut fs = fs.split_whitespace();
        if fs.next()? != fs_type {
            return None;
        }
        let options = fs.nth(1).unwrap_or("");
        if let Some(c) = controller
            && !options.split(',').any(|o| o == c)
        {
            return None;
        }
        mount
            .split_whitespace()
            .nth(4)
            .map(std::path::PathBuf::from)
    })
}

/// This test process's cgroup path in the v1 hierarchy of `controller`.
fn own_cgroup1(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        parts.next()?;
        let list = parts.next()?;
        let path = parts.next()?;
        list.split(',')
            .any(|c| c == controller)
            .then(|| path.trim_matches('/').to_owned())
    })
}

/// Cgroup directories this test made, removed (deepest first) once its server is gone.
struct MadeCgroups(Vec<std::path::PathBuf>);

impl MadeCgroups {
    /// `mount/relative`, making each missing directory on the way (and remembering it).
    fn make(&mut self, mount: &std::path::Path, relative: &str) -> std::path::PathBuf {
        let mut dir = mount.to_path_buf();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
                self.0.push(dir.clone());
            }
        }
        dir
    }
}

impl Drop for MadeCgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            // Its processes have just ended: the kernel may take a moment.
            common::wait_until(Duration::from_secs(3), || {
                let _ = fs::remove_dir(dir.join("main"));
                fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
    }
}

fn session_dir(parent: &std::path::Path) -> Option<std::path::PathBuf> {
    fs::read_dir(parent)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("session-"))
        })
}

fn procs(dir: &std::path::Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn on_a_hybrid_host_a_session_gets_cgroup_v1_memory_and_pids_limits_removed_at_its_end() {
    if !common::require_root() {
        return;
    }
    common::ensure_service_account();
    let (Some(v2), Some(memory), Some(pids)) = (
        cgroup_mount("cgroup2", None),
        cgroup_mount("cgroup", Some("memory")),
        cgroup_mount("cgroup", Some("pids")),
    ) else {
        eprintln!(
            "    NOT run: this host has no hybrid cgroup layout (v2 plus v1 memory and pids)"
        );
        return;
    };
    let v2_controllers = fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    if v2_controllers
        .split_whitespace()
        .any(|c| c == "memory" || c == "pids")
    {
        eprintln!("    NOT run: memory or pids is in cgroup v2 here (tests/systemd.rs checks v2)");
        return;
    }
    // A delegated service cgroup at the same path in all three hierarchies, as systemd makes
    // for a `Delegate=yes` unit; under this test's own memory cgroup, so nothing leaves it.
    let relative = format!(
        "{}/{}",
        own_cgroup1("memory").unwrap_or_default(),
        common::unique_name("rftpd-test-")
    );
    let relative = relative.trim_start_matches('/').to_owned();
    let mut made = MadeCgroups(Vec::new());
    let service_v2 = made.make(&v2, &relative);
    let service_memory = made.make(&memory, &relative);
    let service_pids = made.make(&pids, &relative);
    let delegated = Command::new("python3")
        .args([
            "-c",
            "import os, sys; os.setxattr(sys.argv[1], 'trusted.delegate', b'1')",
        ])
        .arg(&service_v2)
        .status()
        .expect("python3");
    assert!(
        delegated.success(),
        "cannot mark {} delegated",
        service_v2.display()
    );

    let user = TestUser::create();
    let pam = PamService::create(&[]);
    let server = Server::start_in_cgroups(
        "session_memory_max_mb = 64\nsession_pids_max = 24",
        &pam,
        &[
            service_v2.join("cgroup.procs"),
            service_memory.join("cgroup.procs"),
            service_pids.join("cgroup.procs"),
        ],
    );
    assert!(
        server.wait_log("memory(v1) pids(v1)", Duration::from_secs(5)),
        "the master does not use the v1 controllers; log:\n{}",
        server.log().join("\n")
    );
    let master = server.pid();
    let mut client = FtpClient::connect(server.addr());
    client.login_ok(&user);
    let mut workers = Vec::new();
    common::wait_until(Duration::from_secs(10), || {
        workers = common::session_workers(master);
        !workers.is_empty()
    });
    let worker = one(workers, "worker");
    let monitor = one(common::session_monitors(master), "monitor");
    for (parent, file, value) in [
        (&service_memory, "memory.limit_in_bytes", "67108864"),
        (&service_pids, "pids.max", "24"),
    ] {
        let dir = session_dir(parent)
            .unwrap_or_else(|| panic!("no session cgroup under {}", parent.display()));
        let limit = fs::read_to_string(dir.join(file)).expect("limit file");
        assert_eq!(limit.trim(), value, "{}/{file}", dir.display());
        let inside = procs(&dir);
        assert!(
            inside.contains(&worker) && inside.contains(&monitor),
            "{}: {inside:?} (monitor {monitor}, worker {worker})",
            dir.display()
        );
    }
    let v2_session = session_dir(&service_v2).expect("the session's cgroup v2 directory");
    assert!(procs(&v2_session).contains(&worker));
    let (code, _, _) = client.transfer_in("LIST");
    assert_eq!(code, 226);
    let dirs = [
        v2_session,
        session_dir(&service_memory).unwrap(),
        session_dir(&service_pids).unwrap(),
    ];
    client.cmd("QUIT");
    for dir in &dirs {
        assert!(
            common::wait_until(Duration::from_secs(10), || !dir.exists()),
            "{} outlived its session",
            dir.display()
        );
    }
    drop(server);
}
