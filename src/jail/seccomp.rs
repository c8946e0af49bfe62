//! The seccomp allow-lists of the sandboxed roles (`seccomp_sandbox`): the pre-login
//! process, the worker, and the metrics endpoint (the pre-login list plus `accept4`). Built
//! in-process with the `seccompiler` crate (Firecracker's filter compiler: pure Rust, no
//! libseccomp to link), installed by the role itself after its id
//! drop and `no_new_privs`, before it reads a byte from the client.
//!
//! A system call outside the list kills the whole process (`SECCOMP_RET_KILL_PROCESS`); the
//! kernel logs it (audit type 1326, with the system call's number) and the monitor, which
//! reaps the process, says so ([`crate::monitor::seccomp_kill`]). No handler runs in the killed process: a
//! `SIGSYS` handler (`SECCOMP_RET_TRAP`) would run in a process that may be compromised.
//!
//! Each group below says why the role needs it; the lists were read off `strace -f` of full
//! sessions (plain and TLS, passive and active, uploads, listings, renames, SITE CHMOD) and are
//! proved by the integration suite, which runs with them on. The monitor is not filtered: it
//! runs PAM, whose modules (the administrator's choice) make any system call, down to
//! `pam_close_session` at the session's end.
//!
//! What it must never do: allow `execve`, `ptrace`, `mount`, `unshare`, `setns`, the id
//! changes, `kill` of another process, a `fork` (a `clone` without `CLONE_THREAD`), a new
//! socket but a Unix pair, `bind` or `connect` in any role; or file opens in the pre-login
//! process. Nothing here is unsafe.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Whether the allow-lists exist for this architecture (they name x86_64's system calls).
pub const SUPPORTED: bool = cfg!(target_arch = "x86_64");

/// The roles that run filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The pre-login process: sockets it was given, TLS in memory, no files, no new sockets.
    Prelogin,
    /// The worker: files in its jail, threads, the data sockets the monitor hands it (passive
    /// listeners, active connections, and the stand-ins libunftp is given inside the worker's
    /// namespace, all made by the monitor). It never makes, binds or connects a socket.
    Worker,
    /// The metrics endpoint (`crate::metrics`): the pre-login list plus `accept4` on the
    /// listening socket it was given (no new sockets otherwise, no files).
    Metrics,
}

/// Install `role`'s filters on the calling thread (and every thread it starts from now on).
/// The caller aborts the process on an error.
pub fn install(role: Role) -> Result<(), String> {
    for program in programs(role, nix::unistd::getpid().as_raw())? {
        seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

/// The BPF programs for `role`, in the order they are installed. `own_pid`: the process's
/// pid as it sees it (its `abort()` may signal itself, and nothing else).
pub fn programs(role: Role, own_pid: i32) -> Result<Vec<BpfProgram>, String> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e:?}"))?;
    let mut out = Vec::new();
    if role == Role::Worker {
        // clone3 takes its flags in memory, where a filter cannot look: it fails with ENOSYS,
        // and glibc's pthread_create falls back to clone, whose flags are checked below. (The
        // kill list allows clone3, so this errno, the stricter action of the two, applies.)
        let mut enosys = BTreeMap::new();
        enosys.insert(nix::libc::SYS_clone3, vec![]);
        let filter = SeccompFilter::new(
            enosys,
            SeccompAction::Allow,
            SeccompAction::Errno(nix::libc::ENOSYS as u32),
            arch,
        )
        .map_err(|e| format!("seccomp: {e}"))?;
        out.push(BpfProgram::try_from(filter).map_err(|e| format!("seccomp: {e}"))?);
    }
    let filter = SeccompFilter::new(
        allow_list(role, own_pid)?,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    out.push(BpfProgram::try_from(filter).map_err(|e| format!("seccomp: {e}"))?);
    Ok(out)
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

fn allow(rules: &mut Rules, calls: &[i64]) {
    for call in calls {
        rules.insert(*call, Vec::new());
    }
}

/// `arg == value` (32-bit compare: ints, enums, signal numbers).
fn arg_is(index: u8, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
        .map_err(|e| format!("seccomp: {e}"))
}

/// `arg & mask == value` (64-bit).
fn arg_masked(index: u8, mask: u64, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(
        index,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(mask),
        value,
    )
    .map_err(|e| format!("seccomp: {e}"))
}

/// Allow `call` when any one of `alternatives` holds (each a list of conditions that must
/// all hold).
fn allow_if(
    rules: &mut Rules,
    call: i64,
    alternatives: Vec<Vec<SeccompCondition>>,
) -> Result<(), String> {
    let mut list = Vec::new();
    for conditions in alternatives {
        list.push(SeccompRule::new(conditions).map_err(|e| format!("seccomp: {e}"))?);
    }
    rules.insert(call, list);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
fn allow_list(role: Role, own_pid: i32) -> Result<Rules, String> {
    use nix::libc::*;
    let mut rules = Rules::new();

    // --- Both roles ---
    // Memory: the allocator (glibc malloc's brk and mmap arenas, malloc_trim's madvise),
    // thread stacks. Never executable: nothing is loaded once a role runs.
    allow(&mut rules, &[SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise]);
    let no_exec = |index| arg_masked(index, PROT_EXEC as u64, 0);
    allow_if(&mut rules, SYS_mmap, vec![vec![no_exec(2)?]])?;
    allow_if(&mut rules, SYS_mprotect, vec![vec![no_exec(2)?]])?;
    // The tokio runtime: its epoll reactor and eventfd waker, futexes (its mutexes and
    // parking), timers (clock_gettime is the vDSO, the system calls are its fallback).
    allow(
        &mut rules,
        &[
            SYS_epoll_create1,
            SYS_epoll_ctl,
            SYS_epoll_wait,
            SYS_epoll_pwait,
            SYS_epoll_pwait2,
            SYS_eventfd2,
            SYS_futex,
            SYS_sched_yield,
            SYS_nanosleep,
            SYS_clock_nanosleep,
            SYS_clock_gettime,
            SYS_clock_getres,
            SYS_gettimeofday,
            SYS_restart_syscall,
        ],
    );
    // rustls (keys, nonces), std's hash seeds, tokio's scheduler.
    allow(&mut rules, &[SYS_getrandom]);
    // The blocking poll of the monitor channel (a TLS handshake signature waits on it).
    allow(&mut rules, &[SYS_poll, SYS_ppoll]);
    // Signals: the masks std and tokio set, Rust's stack-overflow guard (sigaltstack), glibc's
    // abort() (rt_sigaction, then tgkill of this process only, with SIGABRT).
    allow(
        &mut rules,
        &[
            SYS_rt_sigprocmask,
            SYS_rt_sigaction,
            SYS_rt_sigreturn,
            SYS_sigaltstack,
            SYS_getpid,
            SYS_gettid,
            SYS_getppid,
        ],
    );
    allow_if(
        &mut rules,
        SYS_tgkill,
        vec![vec![arg_is(0, own_pid as u64)?, arg_is(2, SIGABRT as u64)?]],
    )?;
    allow(&mut rules, &[SYS_exit, SYS_exit_group]);
    // The sockets it was given (client, monitor channel, link): I/O, non-blocking mode
    // (fcntl and ioctl FIONBIO), TCP_NODELAY, addresses, shutdown, SCM_RIGHTS.
    allow(
        &mut rules,
        &[
            SYS_read,
            SYS_write,
            SYS_readv,
            SYS_writev,
            SYS_close,
            SYS_fcntl,
            SYS_recvfrom,
            SYS_sendto,
            SYS_recvmsg,
            SYS_sendmsg,
            SYS_shutdown,
            SYS_getpeername,
            SYS_getsockname,
            SYS_getsockopt,
            SYS_setsockopt,
        ],
    );
    allow_if(
        &mut rules,
        SYS_ioctl,
        vec![vec![arg_is(1, FIONBIO)?], vec![arg_is(1, FIOCLEX)?]],
    )?;
    // tokio's signal driver wakes itself through a Unix socket pair.
    allow_if(
        &mut rules,
        SYS_socketpair,
        vec![vec![arg_is(0, AF_UNIX as u64)?]],
    )?;

    if role == Role::Metrics {
        // Connections to the listening socket the master handed it.
        allow(&mut rules, &[SYS_accept4]);
        return Ok(rules);
    }
    if role != Role::Worker {
        return Ok(rules);
    }

    // --- The worker only ---
    // Threads of tokio's blocking pool (file I/O): clone only with CLONE_THREAD (no fork);
    // what a new thread does first (robust futex list, rseq, its name, its CPU set).
    allow_if(
        &mut rules,
        SYS_clone,
        vec![vec![arg_masked(
            0,
            CLONE_THREAD as u64,
            CLONE_THREAD as u64,
        )?]],
    )?;
    allow(
        &mut rules,
        &[
            SYS_clone3, // answered ENOSYS by the first filter
            SYS_set_robust_list,
            SYS_rseq,
            SYS_sched_getaffinity,
        ],
    );
    allow_if(
        &mut rules,
        SYS_prctl,
        vec![vec![arg_is(0, PR_SET_NAME as u64)?]],
    )?;
    // Files in the jail (unftp-sbe-fs and the storage wrapper): open (openat2 for
    // RESOLVE_BENEATH), stat, read and write (positioned too), list, make and remove
    // directories, delete, rename, SITE CHMOD, MFMT (utimensat), REST (lseek, ftruncate),
    // access (the writable-root check), chdir (CWD's one-call check, inside the chroot: it
    // cannot leave it); sendfile/splice/copy_file_range for fast transfers.
    allow(
        &mut rules,
        &[
            SYS_openat,
            SYS_openat2,
            SYS_open,
            SYS_newfstatat,
            SYS_fstat,
            SYS_stat,
            SYS_lstat,
            SYS_statx,
            SYS_lseek,
            SYS_pread64,
            SYS_pwrite64,
            SYS_preadv,
            SYS_pwritev,
            SYS_getdents64,
            SYS_mkdir,
            SYS_mkdirat,
            SYS_rmdir,
            SYS_unlink,
            SYS_unlinkat,
            SYS_rename,
            SYS_renameat,
            SYS_renameat2,
            SYS_chmod,
            SYS_fchmod,
            SYS_fchmodat,
            SYS_utimensat,
            SYS_access,
            SYS_faccessat,
            SYS_faccessat2,
            SYS_readlink,
            SYS_readlinkat,
            SYS_ftruncate,
            SYS_fsync,
            SYS_fdatasync,
            SYS_fadvise64,
            SYS_getcwd,
            SYS_chdir,
            SYS_sendfile,
            SYS_splice,
            SYS_copy_file_range,
        ],
    );
    // Its own identity (read only): MLSD/MLST's `perm` facts say what the logged-in user may
    // do with each entry (`storage::facts`).
    allow(
        &mut rules,
        &[
            SYS_getuid,
            SYS_geteuid,
            SYS_getgid,
            SYS_getegid,
            SYS_getgroups,
        ],
    );
    // Data connections: every socket comes from the monitor, made, bound and connected (no
    // `socket`, `bind` or `connect`: a TCP socket from the host's network disconnected with
    // `connect(AF_UNSPEC)` could be connected anywhere). libunftp listens on the passive
    // listener, or on a stand-in listener inside the worker's namespace whose one connection
    // is already queued (`worker::active`, `worker::datatls`), and accepts.
    allow(&mut rules, &[SYS_accept, SYS_accept4, SYS_listen]);
    Ok(rules)
}

#[cfg(not(target_arch = "x86_64"))]
fn allow_list(_role: Role, _own_pid: i32) -> Result<Rules, String> {
    Err("seccomp: the allow-lists are written for x86_64 only".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_roles_compile_to_bpf() {
        if !SUPPORTED {
            return;
        }
        assert_eq!(programs(Role::Prelogin, 2).unwrap().len(), 1);
        assert_eq!(programs(Role::Worker, 3).unwrap().len(), 2);
    }

    #[test]
    fn dangerous_calls_are_in_no_list() {
        if !SUPPORTED {
            return;
        }
        use nix::libc::*;
        for role in [Role::Prelogin, Role::Metrics, Role::Worker] {
            let rules = allow_list(role, 2).unwrap();
            for call in [
                SYS_execve,
                SYS_execveat,
                SYS_ptrace,
                SYS_mount,
                SYS_umount2,
                SYS_unshare,
                SYS_setns,
                SYS_setuid,
                SYS_setresuid,
                SYS_setgid,
                SYS_kill,
                SYS_fork,
                SYS_vfork,
                SYS_chroot,
                SYS_seccomp,
                SYS_bpf,
                SYS_process_vm_readv,
                SYS_socket,
                SYS_bind,
                SYS_connect,
            ] {
                assert!(!rules.contains_key(&call), "{role:?} allows {call}");
            }
        }
        let prelogin = allow_list(Role::Prelogin, 2).unwrap();
        for call in [
            SYS_open,
            SYS_openat,
            SYS_openat2,
            SYS_socket,
            SYS_clone,
            SYS_connect,
        ] {
            assert!(
                !prelogin.contains_key(&call),
                "the pre-login process allows {call}"
            );
        }
        // The metrics endpoint: the pre-login list and accept4, nothing else.
        let mut metrics = allow_list(Role::Metrics, 2).unwrap();
        assert!(metrics.remove(&SYS_accept4).is_some());
        assert_eq!(
            metrics.keys().collect::<Vec<_>>(),
            prelogin.keys().collect::<Vec<_>>()
        );
    }
}
