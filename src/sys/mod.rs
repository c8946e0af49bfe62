//! The only module with `unsafe` code: thin, documented wrappers around the few system and FFI
//! calls that have no safe binding in `nix` or `pam-client2`.
//!
//! Every wrapper here is a safe function whose preconditions are either checked at run time or
//! hold by construction; each `unsafe` block says why in its `// SAFETY:` line. Nothing in this
//! module makes policy decisions — callers decide *whether* to fork or jail, this module only
//! makes the call correctly.

use std::io;

use pam_client2::{Context, ConversationHandler};

mod capabilities;
mod fds;
mod huge_scratch;
mod memory;
mod reuseport;
pub mod runtime_signals;

pub use capabilities::*;
pub use fds::*;
pub use huge_scratch::HugeScratch;
pub use memory::*;
pub use reuseport::*;

/// The result of [`fork_single_threaded`], seen from each side.
pub enum Forked {
    /// We are the new child process.
    Child,
    /// We are the parent; the child has this pid.
    Parent(nix::unistd::Pid),
}

/// Number of threads in this process, from `/proc/self/task`.
fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// `fork()`, refused unless this process has exactly one thread.
///
/// Forking a multi-threaded process leaves the child with locks held by threads that no longer
/// exist; with one thread there is nothing to leave behind, so the child may run any code.
pub fn fork_single_threaded() -> io::Result<Forked> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork a process with {threads} threads"
        )));
    }
    // SAFETY: the check above proves this process has a single thread, so the child inherits no
    // lock held by another thread and may safely run arbitrary (allocating) code.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}

/// Proof, taken once, that this process has a single thread — for a process that forks on
/// every request and must not touch memory to do so (the spawner's template process: reading
/// `/proc/self/task` each time would write heap pages its children then hold as private
/// copies). Its holder must never start a thread; it cannot be sent to another thread.
pub struct SingleThreaded {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SingleThreaded {
    /// Checked now: exactly one thread.
    pub fn check() -> io::Result<SingleThreaded> {
        let threads = thread_count()?;
        if threads != 1 {
            return Err(io::Error::other(format!(
                "refusing to fork a process with {threads} threads"
            )));
        }
        Ok(SingleThreaded {
            _not_send: std::marker::PhantomData,
        })
    }

    /// `fork()`, without reading anything first.
    pub fn fork(&self) -> io::Result<Forked> {
        // SAFETY: `check` proved this process had one thread, and the holder of this proof
        // starts none (it is not `Send`, and the template process that holds it runs no
        // runtime); so the child inherits no lock held by another thread.
        match unsafe { nix::unistd::fork() }? {
            nix::unistd::ForkResult::Child => Ok(Forked::Child),
            nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        }
    }
}

/// PAM's `PAM_FAIL_DELAY` item: a callback that replaces the built-in sleep after a failed
/// authentication. Ours does nothing, so the server — not a PAM module — decides how long a
/// client waits for its `530`, and does so without blocking anything else.
const PAM_FAIL_DELAY: std::os::raw::c_int = 10;

extern "C" fn no_fail_delay(
    _retval: std::os::raw::c_int,
    _usec_delay: std::os::raw::c_uint,
    _appdata: *mut std::ffi::c_void,
) {
}

/// Install [`no_fail_delay`] as the PAM context's fail-delay callback.
pub fn disable_pam_fail_delay<C: ConversationHandler>(ctx: &mut Context<C>) -> io::Result<()> {
    let callback: extern "C" fn(std::os::raw::c_int, std::os::raw::c_uint, *mut std::ffi::c_void) =
        no_fail_delay;
    // SAFETY: for PAM_FAIL_DELAY, Linux-PAM stores the value as a function pointer of exactly this
    // signature (`void (*)(int, unsigned, void *)`); the function is a plain `extern "C"` fn with a
    // 'static lifetime that never unwinds and ignores its arguments.
    unsafe { ctx.set_item(PAM_FAIL_DELAY, callback as *const std::ffi::c_void) }
        .map_err(|e| io::Error::other(format!("PAM_FAIL_DELAY: {e}")))
}

/// Whether `path` carries the extended attribute `name` with a value starting with `1`
/// (systemd marks the cgroups it delegates with `trusted.delegate=1`).
pub fn xattr_is_one(path: &std::path::Path, name: &std::ffi::CStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 8];
    // SAFETY: both strings are NUL-terminated and live for the call; the kernel writes at most
    // `value.len()` bytes into `value`, which is ours and that long.
    let n = unsafe {
        nix::libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr() as *mut nix::libc::c_void,
            value.len(),
        )
    };
    n > 0 && value[0] == b'1'
}

/// `ptrace(PTRACE_TRACEME)`: only for `rftpd seccomp-probe`, which proves that the filters
/// kill any ptrace.
pub fn ptrace_traceme() -> io::Result<()> {
    // SAFETY: PTRACE_TRACEME takes no pointer (the other arguments are ignored and null).
    let r = unsafe {
        nix::libc::ptrace(
            nix::libc::PTRACE_TRACEME,
            0,
            std::ptr::null_mut::<nix::libc::c_void>(),
            std::ptr::null_mut::<nix::libc::c_void>(),
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The local time zone's offset from UTC in seconds at `secs` since the epoch, from
/// `localtime_r` (glibc reads `TZ`, or `/etc/localtime`, once, at its first call: call it
/// before any jail). `None` if the C library cannot say.
pub fn utc_offset(secs: i64) -> Option<i64> {
    let time: nix::libc::time_t = secs;
    let mut tm = std::mem::MaybeUninit::<nix::libc::tm>::zeroed();
    // SAFETY: localtime_r is the reentrant form: it reads `time` and writes only the `tm` it is
    // given; both pointers are valid and exclusive for the call.
    let filled = unsafe { nix::libc::localtime_r(&time, tm.as_mut_ptr()) };
    if filled.is_null() {
        return None;
    }
    // SAFETY: localtime_r returned non-null, so it filled every field of `tm` (and it was
    // zeroed before, so no field is uninitialised either way).
    Some(unsafe { tm.assume_init() }.tm_gmtoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn the_one_connected_socket_on_an_address_is_found_and_two_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = TcpStream::connect(local).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let limit = 1 + accepted.as_raw_fd().max(client.as_raw_fd()) + 8;
        let found = find_connected_socket(local, local.ip(), limit).expect("found");
        let found = TcpStream::from(found);
        assert_eq!(found.peer_addr().unwrap(), client.local_addr().unwrap());
        // Another peer address: nothing.
        assert!(find_connected_socket(local, "127.0.0.2".parse().unwrap(), limit).is_none());
        // Two candidates (the duplicate counts too): refused.
        drop(found);
        let _second = TcpStream::connect(local).unwrap();
        let (also, _) = listener.accept().unwrap();
        let limit = 1 + also.as_raw_fd() + 8;
        assert!(find_connected_socket(local, local.ip(), limit).is_none());
    }

    #[test]
    fn a_data_connection_counts_as_come_when_queued_or_accepted_from_the_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let limit = 1024;
        let peer = local.ip();
        assert!(
            !data_connection_came(local, peer, limit),
            "nobody connected"
        );
        let client = TcpStream::connect(local).unwrap();
        assert!(data_connection_came(local, peer, limit), "queued");
        let (accepted, _) = listener.accept().unwrap();
        assert!(data_connection_came(local, peer, limit), "accepted");
        // From another address: neither the accepted socket nor the (empty) queue counts.
        assert!(!data_connection_came(
            local,
            "127.0.0.2".parse().unwrap(),
            limit
        ));
        drop((accepted, client));
        assert!(!data_connection_came(local, peer, limit), "gone");
    }
}
