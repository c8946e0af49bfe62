//! A cgroup v2 per session, where the host delegates a subtree to rftpd (under systemd:
//! `Delegate=yes`, which marks the service's cgroup `trusted.delegate=1`).
//!
//! At start the master moves itself into a leaf `main` of its delegated cgroup (cgroup v2
//! lets only leaves hold processes once controllers are enabled below) and enables the
//! `memory` and `pids` controllers for the subtree ([`delegate`]). The spawner, which then
//! runs in `main` too, makes `session-<id>` next to it for each session with `memory.max` and
//! `pids.max` from the configuration ([`SessionCgroups::create`]); the monitor moves itself
//! in before it forks ([`join`]), so all three processes of the session are in it; the
//! spawner removes it when it has reaped the monitor. Without delegation: one log line at
//! start, and sessions run without.
//!
//! What it must never do: touch a cgroup that was not delegated, or leave a session's cgroup
//! behind (a removal that fails is retried at the next reap).

use std::io;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The leaf the master and the spawner live in.
const DAEMON_LEAF: &str = "main";
/// How many times a removal is tried at once (the kernel may still be finishing the exit).
const REMOVE_TRIES: u32 = 20;

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on a host that still has cgroup v1 controllers ("hybrid").
fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        (fs.split_whitespace().next()? == "cgroup2")
            .then(|| mount.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// This process's cgroup v2 directory (`0::/path` of `/proc/self/cgroup`).
fn own_cgroup() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(cgroup2_mount()?.join(path.trim_start_matches('/')))
}

fn delegated(dir: &Path) -> bool {
    crate::sys::xattr_is_one(dir, c"trusted.delegate")
        || crate::sys::xattr_is_one(dir, c"user.delegate")
}

/// The master, at start: prepare the delegated subtree for session cgroups, or say (once)
/// that there is none.
pub fn delegate(config: &Config) {
    if !config.session_cgroup {
        return;
    }
    let Some(own) = own_cgroup() else {
        tracing::info!("no cgroup v2 hierarchy: sessions run without a cgroup of their own");
        return;
    };
    if !delegated(&own) {
        tracing::info!(cgroup = %own.display(),
            "no delegated cgroup v2 subtree (systemd: Delegate=yes): sessions run without a cgroup of their own");
        return;
    }
    match prepare(&own) {
        Ok(controllers) if controllers.is_empty() => tracing::warn!(cgroup = %own.display(),
            "a cgroup per session, but without limits: the memory and pids controllers are not \
             in the cgroup v2 hierarchy (the host mounts them as cgroup v1)"),
        Ok(controllers) => tracing::info!(cgroup = %own.display(), controllers = %controllers,
            "a cgroup per session under the delegated subtree"),
        Err(e) => tracing::warn!(cgroup = %own.display(), error = %e,
            "cannot prepare the delegated cgroup; sessions run without a cgroup of their own"),
    }
}

/// Move every process of `own` into `own/main`, then enable memory and pids below `own`.
fn prepare(own: &Path) -> io::Result<String> {
    let leaf = own.join(DAEMON_LEAF);
    match std::fs::create_dir(&leaf) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let procs = std::fs::read_to_string(own.join("cgroup.procs"))?;
    for pid in procs.split_whitespace() {
        // A process that ended meanwhile is no error.
        let _ = std::fs::write(leaf.join("cgroup.procs"), pid);
    }
    let available = std::fs::read_to_string(own.join("cgroup.controllers"))?;
    let wanted: Vec<&str> = ["memory", "pids"]
        .into_iter()
        .filter(|c| available.split_whitespace().any(|a| a == *c))
        .collect();
    let enable: String = wanted.iter().map(|c| format!("+{c} ")).collect();
    if !enable.is_empty() {
        std::fs::write(own.join("cgroup.subtree_control"), enable.trim_end())?;
    }
    Ok(wanted.join(" "))
}

/// Where the spawner makes session cgroups, and their limits.
pub struct SessionCgroups {
    root: PathBuf,
    memory_max: u32,
    pids_max: u32,
    /// Cgroups whose removal failed; tried again at every reap.
    leftover: Vec<PathBuf>,
}

impl SessionCgroups {
    /// The subtree the master prepared, if the spawner runs in its `main` leaf.
    pub fn find(config: &Config) -> Option<SessionCgroups> {
        if !config.session_cgroup {
            return None;
        }
        let own = own_cgroup()?;
        if own.file_name()? != DAEMON_LEAF {
            return None;
        }
        let root = own.parent()?.to_path_buf();
        if !delegated(&root) {
            return None;
        }
        Some(SessionCgroups {
            root,
            memory_max: config.session_memory_max_mb,
            pids_max: config.session_pids_max,
            leftover: Vec::new(),
        })
    }

    /// Make the cgroup of session `id`, with its limits.
    pub fn create(&self, id: u64) -> io::Result<PathBuf> {
        let dir = self.root.join(format!("session-{id}"));
        std::fs::create_dir(&dir)?;
        let limit = |value: u32, scale: u64| {
            if value == 0 {
                "max".to_owned()
            } else {
                (u64::from(value) * scale).to_string()
            }
        };
        let written = write_if_present(&dir, "memory.max", &limit(self.memory_max, 1024 * 1024))
            .and_then(|_| write_if_present(&dir, "pids.max", &limit(self.pids_max, 1)));
        if let Err(e) = written {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        Ok(dir)
    }

    /// Remove a session's cgroup (its processes have all ended), and any left over before.
    pub fn remove(&mut self, dir: PathBuf) {
        self.leftover.push(dir);
        self.leftover.retain(|d| !remove_dir(d));
    }
}

/// A limit file exists only where its controller is enabled.
fn write_if_present(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    if path.exists() {
        std::fs::write(path, value)?;
    }
    Ok(())
}

/// `rmdir` of an emptied cgroup; true when it is gone.
fn remove_dir(dir: &Path) -> bool {
    for _ in 0..REMOVE_TRIES {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    tracing::warn!(cgroup = %dir.display(), "session cgroup not removed yet; retried later");
    false
}

/// The monitor, first thing: move this process into its session's cgroup.
pub fn join(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), "0")
}
