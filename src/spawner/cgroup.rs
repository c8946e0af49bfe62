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
//! cgroup v1 (a "hybrid" host, whose memory and pids controllers are mounted as v1 hierarchies,
//! as Debian's and this project's CI machines are): for each of the two controllers the
//! cgroup v2 hierarchy lacks, the session also gets `session-<id>` in that controller's v1
//! hierarchy, under the service's own cgroup there (systemd realises a `Delegate=yes` unit in
//! every v1 hierarchy at the same path as in v2), with `memory.limit_in_bytes` or `pids.max`
//! ([`SessionCgroup`]). A v1 directory is used only when it is the delegated unit's: its path
//! must be the delegated v2 cgroup's, never a hierarchy's root or anyone else's.
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

/// Where the cgroup v1 hierarchy of `controller` is mounted (its super options name it).
fn cgroup1_mount(controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let mut fs = fs.split_whitespace();
        if fs.next()? != "cgroup" {
            return None;
        }
        let options = fs.nth(1)?;
        options
            .split(',')
            .any(|o| o == controller)
            .then(|| mount.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// This process's path in the v1 hierarchy of `controller` (`N:memory:/path`), relative.
fn own_cgroup1_path(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let _ = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.trim_start_matches('/').to_owned())
    })
}

/// This process's relative cgroup v2 path (`0::/path` of `/proc/self/cgroup`).
fn own_cgroup2_path() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(path.trim_start_matches('/').to_owned())
}

/// The cgroup v1 directory of `controller` for the delegated cgroup at `relative` (the v2
/// path), if this process is in it there: never a hierarchy's root.
fn delegated_cgroup1(controller: &str, relative: &str) -> Option<PathBuf> {
    if relative.is_empty() || own_cgroup1_path(controller)? != relative {
        return None;
    }
    let dir = cgroup1_mount(controller)?.join(relative);
    dir.is_dir().then_some(dir)
}

/// The v1 limit file of each controller rftpd limits.
const V1_LIMITS: [(&str, &str); 2] = [("memory", "memory.limit_in_bytes"), ("pids", "pids.max")];

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
    // Its path before it moves into `main`: the service's, as in the v1 hierarchies.
    let relative = own_cgroup2_path();
    match prepare(&own).map(|v2| with_cgroup1(v2, relative.as_deref())) {
        Ok(controllers) if controllers.is_empty() => tracing::warn!(cgroup = %own.display(),
            "a cgroup per session, but without limits: the memory and pids controllers are \
             neither in the cgroup v2 hierarchy nor delegated to the service in cgroup v1"),
        Ok(controllers) => tracing::info!(cgroup = %own.display(), controllers = %controllers,
            "a cgroup per session under the delegated subtree"),
        Err(e) => tracing::warn!(cgroup = %own.display(), error = %e,
            "cannot prepare the delegated cgroup; sessions run without a cgroup of their own"),
    }
}

/// The controllers `v2` lacks that the service has in cgroup v1 (at `relative`, its v2 path),
/// added to the list as `memory(v1)`.
fn with_cgroup1(v2: String, relative: Option<&str>) -> String {
    let mut list: Vec<String> = v2.split_whitespace().map(str::to_owned).collect();
    for (controller, _) in V1_LIMITS {
        if !list.iter().any(|c| c == controller)
            && relative.is_some_and(|r| delegated_cgroup1(controller, r).is_some())
        {
            list.push(format!("{controller}(v1)"));
        }
    }
    list.join(" ")
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
    /// The service's own v1 directories of the controllers v2 lacks: (limit file, directory).
    v1: Vec<(&'static str, PathBuf)>,
    memory_max: u32,
    pids_max: u32,
    /// Cgroups whose removal failed; tried again at every reap.
    leftover: Vec<PathBuf>,
}

/// One session's cgroups: its v2 directory and, on a hybrid host, its v1 ones.
#[derive(Debug)]
pub struct SessionCgroup {
    dirs: Vec<PathBuf>,
}

impl SessionCgroup {
    /// The monitor, first thing: move this process into each of its session's cgroups.
    pub fn join(&self) -> io::Result<()> {
        for dir in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), "0")
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        }
        Ok(())
    }
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
        // The service's v2 path (without `main`): its v1 cgroups, where systemd made them.
        let relative = own_cgroup2_path()?;
        let relative = relative.strip_suffix(&format!("/{DAEMON_LEAF}"))?;
        let controllers =
            std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
        let v1 = V1_LIMITS
            .into_iter()
            .filter(|(c, _)| !controllers.split_whitespace().any(|a| a == *c))
            .filter_map(|(c, file)| Some((file, delegated_cgroup1(c, relative)?)))
            .collect();
        Some(SessionCgroups {
            root,
            v1,
            memory_max: config.session_memory_max_mb,
            pids_max: config.session_pids_max,
            leftover: Vec::new(),
        })
    }

    /// Make the cgroups of session `id`, with their limits.
    pub fn create(&self, id: u64) -> io::Result<SessionCgroup> {
        let name = session_name(id);
        let limit = |value: u32, scale: u64| {
            if value == 0 {
                // cgroup v1's memory.limit_in_bytes takes -1 for "no limit", pids.max "max".
                None
            } else {
                Some((u64::from(value) * scale).to_string())
            }
        };
        let memory = limit(self.memory_max, 1024 * 1024);
        let pids = limit(self.pids_max, 1);
        let mut made = SessionCgroup { dirs: Vec::new() };
        let dir = self.root.join(&name);
        std::fs::create_dir(&dir)?;
        made.dirs.push(dir.clone());
        let written = write_if_present(&dir, "memory.max", memory.as_deref().unwrap_or("max"))
            .and_then(|_| write_if_present(&dir, "pids.max", pids.as_deref().unwrap_or("max")));
        if let Err(e) = written {
            self.discard(made);
            return Err(e);
        }
        for (file, parent) in &self.v1 {
            let dir = parent.join(&name);
            if let Err(e) = std::fs::create_dir(&dir) {
                self.discard(made);
                return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display())));
            }
            made.dirs.push(dir.clone());
            let value = match (*file, &memory, &pids) {
                ("memory.limit_in_bytes", Some(m), _) => Some(m.clone()),
                ("pids.max", _, Some(p)) => Some(p.clone()),
                _ => None,
            };
            if let Some(value) = value
                && let Err(e) = std::fs::write(dir.join(file), value)
            {
                self.discard(made);
                return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display())));
            }
        }
        Ok(made)
    }

    /// The cgroups [`create`](Self::create) made for session `id` (for its monitor, forked
    /// by the template process, which holds this configuration but not the spawner's table).
    pub fn of_session(&self, id: u64) -> SessionCgroup {
        let name = session_name(id);
        let mut dirs = vec![self.root.join(&name)];
        dirs.extend(self.v1.iter().map(|(_, parent)| parent.join(&name)));
        SessionCgroup { dirs }
    }

    /// Remove cgroups just made that no process has joined.
    fn discard(&self, made: SessionCgroup) {
        for dir in made.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Remove a session's cgroups (its processes have all ended), and any left over before.
    pub fn remove(&mut self, cgroup: SessionCgroup) {
        self.leftover.extend(cgroup.dirs);
        self.leftover.retain(|d| !remove_dir(d));
    }
}

/// The directory name of session `id`'s cgroups.
fn session_name(id: u64) -> String {
    format!("session-{id}")
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
