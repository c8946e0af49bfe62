//! The only module with `unsafe` code: thin, documented wrappers around the few system and FFI
//! calls that have no safe binding in `nix` or `pam-client2`.
//!
//! Every wrapper here is a safe function whose preconditions are either checked at run time or
//! hold by construction; each `unsafe` block says why in its `// SAFETY:` line. Nothing in this
//! module makes policy decisions — callers decide *whether* to fork or jail, this module only
//! makes the call correctly.

use std::io;

use pam_client2::{Context, ConversationHandler};

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

/// Send one message on a `SOCK_SEQPACKET` socket, with an optional file descriptor attached
/// (`SCM_RIGHTS`).
pub fn send_message(
    socket: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    use std::os::fd::AsRawFd;
    let raw = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = raw
        .as_ref()
        .map(|r| ControlMessage::ScmRights(r))
        .into_iter()
        .collect();
    let iov = [std::io::IoSlice::new(bytes)];
    let sent = sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != bytes.len() {
        return Err(io::Error::other("short send on a message socket"));
    }
    Ok(())
}

/// Receive one message from a `SOCK_SEQPACKET` socket into `buf`, taking ownership of at most
/// one passed file descriptor. Returns the message length (0 = the peer closed) and the fd.
/// A message longer than `buf`, or one carrying more than one descriptor, is an error (and
/// every descriptor that did arrive is closed).
pub fn recv_message(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw_fds) = cmsg {
            for raw in raw_fds {
                // SAFETY: the kernel just installed this descriptor in our table for us
                // (SCM_RIGHTS); nothing else in the process knows its number, so we are its
                // single owner.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    let truncated = msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    let len = msg.bytes;
    if truncated || fds.len() > 1 {
        return Err(io::Error::other(
            "oversized message or too many descriptors",
        ));
    }
    Ok((len, fds.pop()))
}

/// Take ownership of file descriptor 0, where the master put this process's channel (the
/// spawner's `SOCK_SEQPACKET` socket), checking it is a socket of the `expected` type.
pub fn take_stdin_socket(expected: nix::sys::socket::SockType) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let stdin = std::io::stdin();
    let raw = stdin.as_raw_fd();
    // Prove fd 0 is open and is a socket of the right kind before claiming it.
    let kind: nix::sys::socket::SockType =
        nix::sys::socket::getsockopt(&stdin, nix::sys::socket::sockopt::SockType)?;
    if kind != expected {
        return Err(io::Error::other(format!(
            "fd 0 is a {kind:?} socket, not {expected:?}"
        )));
    }
    // SAFETY: fd 0 is open (getsockopt just succeeded on it) and this process never uses stdin
    // for anything else, so the OwnedFd becomes its single owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Take ownership of a descriptor this process inherited at exec (systemd socket activation),
/// marking it close-on-exec so no session process inherits it.
///
/// Only for descriptors the caller has proved are meant for this process (systemd's
/// `LISTEN_PID` equals our pid), and each number at most once.
pub fn take_inherited_fd(raw: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
    if raw < 3 {
        return Err(io::Error::other(format!("fd {raw} is not a passed socket")));
    }
    // SAFETY: borrowed only for the two fcntl calls below; if `raw` is not open, F_GETFD fails
    // with EBADF and we return before claiming it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    fcntl(borrowed, F_GETFD)?;
    fcntl(borrowed, F_SETFD(FdFlag::FD_CLOEXEC))?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process by its
    // parent for exactly this use; the caller claims each number once, so this is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A new descriptor for the one connected TCP socket among this process's descriptors
/// `0..limit` whose local address is `local` and whose peer's address is `peer_ip`; `None` if
/// none or more than one match. (libunftp hands the storage backend a download's data
/// connection only as an `AsyncWrite`; this is how it finds the socket to `sendfile` into.)
pub fn find_connected_socket(
    local: std::net::SocketAddr,
    peer_ip: std::net::IpAddr,
    limit: std::os::fd::RawFd,
) -> Option<std::os::fd::OwnedFd> {
    use nix::sys::socket::{SockaddrStorage, getpeername, getsockname};
    use std::os::fd::{BorrowedFd, RawFd};
    fn address(a: &SockaddrStorage) -> Option<std::net::SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(std::net::SocketAddr::from((v4.ip(), v4.port())));
        }
        let v6 = a.as_sockaddr_in6()?;
        Some(std::net::SocketAddr::from((v6.ip(), v6.port())))
    }
    let matches = |raw: RawFd| {
        let here = getsockname::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| address(&a));
        let there = getpeername::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| address(&a));
        here == Some(local)
            && there.is_some_and(|p| p.ip().to_canonical() == peer_ip.to_canonical())
    };
    let mut found = None;
    for raw in 0..limit {
        if matches(raw) {
            if found.is_some() {
                return None;
            }
            found = Some(raw);
        }
    }
    let raw = found?;
    // SAFETY: borrowed only for the one fcntl below; if another thread closed `raw` since the
    // check, fcntl fails with EBADF (or duplicates whatever took the number, which the check on
    // the duplicate below rejects).
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let duplicate = nix::fcntl::fcntl(borrowed, nix::fcntl::F_DUPFD_CLOEXEC(0)).ok()?;
    // SAFETY: F_DUPFD_CLOEXEC just made this descriptor for us; nothing else owns it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(duplicate) };
    // The duplicate refers to one open socket for as long as it lives: check that one.
    matches(std::os::fd::AsRawFd::as_raw_fd(&owned)).then_some(owned)
}

/// Whether a data connection from `peer_ip` has reached the passive listener bound at `local`
/// among this process's descriptors `0..limit`: one accepted (a connected socket with that
/// local address and peer), or one waiting in that listener's queue (readable). A `false`
/// means the client has not connected yet (or its handshake is still under way).
pub fn data_connection_came(
    local: std::net::SocketAddr,
    peer_ip: std::net::IpAddr,
    limit: std::os::fd::RawFd,
) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{SockaddrStorage, getpeername, getsockname, getsockopt, sockopt};
    use std::os::fd::BorrowedFd;
    fn address(a: &SockaddrStorage) -> Option<std::net::SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(std::net::SocketAddr::from((v4.ip(), v4.port())));
        }
        let v6 = a.as_sockaddr_in6()?;
        Some(std::net::SocketAddr::from((v6.ip(), v6.port())))
    }
    (0..limit).any(|raw| {
        let here = getsockname::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| address(&a));
        if here != Some(local) {
            return false;
        }
        if let Some(peer) = getpeername::<SockaddrStorage>(raw)
            .ok()
            .and_then(|a| address(&a))
        {
            return peer.ip().to_canonical() == peer_ip.to_canonical();
        }
        // SAFETY: borrowed only for the getsockopt and the zero-timeout poll below; if another
        // thread closed `raw` since getsockname, both fail with EBADF (or ask about whatever
        // took the number: a wrong answer here only lengthens or shortens a hold).
        let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
        if !getsockopt(&borrowed, sockopt::AcceptConn).unwrap_or(false) {
            return false;
        }
        let mut fds = [PollFd::new(borrowed, PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    })
}

/// Register an owned descriptor with the current tokio runtime's reactor.
pub fn async_fd(
    fd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an `OwnedFd` is open for as long as it lives and `as_raw_fd` always returns the same
    // number; the `AsyncFd` takes ownership, so nothing else can close or replace it meanwhile.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))
}

/// Return the allocator's free pages to the kernel (glibc `malloc_trim(0)`): the memory a login
/// used and freed (PAM, the handshake) stops counting against every idle session.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it has no
    // preconditions and frees nothing that is in use.
    unsafe { nix::libc::malloc_trim(0) };
}

/// Make every thread of this process allocate from the main malloc arena (glibc
/// `mallopt(M_ARENA_MAX, 1)`). A session has one busy thread; a per-thread arena for its
/// short-lived blocking-pool threads costs tens of KiB that outlive them. Inherited by fork.
pub fn use_one_malloc_arena() {
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; any value is valid.
    unsafe { nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1) };
}

/// How far below the caller's frame [`discard_stack_below_caller`] leaves the stack alone.
const STACK_KEEP_BELOW: usize = 4096;
/// How far down it looks: the main thread's stack limit (RLIMIT_STACK default 8 MiB).
const STACK_SPAN: usize = 8 * 1024 * 1024;

/// Give back the pages of the calling thread's stack that lie more than a page below the
/// caller's frame. A login runs deep (PAM and the password hash in the monitor, the handshake
/// and libunftp's login path in the worker) and leaves tens of KiB of touched stack — and
/// stale secrets in it — that an idle session never uses again; after this, the next use of
/// those addresses gets fresh zero pages.
///
/// Only the main thread's stack is touched (the kernel keeps at least 128 MiB free below it
/// for its growth, so the 8 MiB looked at hold nothing else); on any other thread this does
/// nothing. Call it from a shallow frame.
#[inline(never)]
pub fn discard_stack_below_caller() {
    if nix::unistd::gettid() != nix::unistd::getpid() {
        return;
    }
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let page = 4096usize;
    let end = (here.saturating_sub(STACK_KEEP_BELOW)) & !(page - 1);
    let start = end.saturating_sub(STACK_SPAN);
    if start == 0 || end <= start {
        return;
    }
    // SAFETY: [start, end) lies entirely below this function's own frame by at least a page (madvise's own frame
    // needs a few bytes), in
    // the main thread's stack or the gap the kernel keeps free below it (unmapped parts are
    // skipped by madvise with ENOMEM). Memory below
    // the stack pointer holds no live object: it belongs to frames that have returned, and no
    // signal handler can be running on it during the system call. MADV_DONTNEED on private
    // anonymous memory only replaces those pages with zero pages on their next use.
    let _ = unsafe {
        nix::libc::madvise(
            start as *mut nix::libc::c_void,
            end - start,
            nix::libc::MADV_DONTNEED,
        )
    };
}

/// Mark every descriptor above 2 that this process inherited close-on-exec, so none reaches
/// the spawner and, through it, a session (a directory handle from outside a jail would be a
/// way out of it). Call first thing in the master, before any thread or descriptor of its own
/// exists; descriptors systemd passes are claimed afterwards ([`take_inherited_fd`]).
pub fn close_inherited_fds_on_exec() -> io::Result<()> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    use std::os::fd::{BorrowedFd, RawFd};
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for raw in listed {
        // SAFETY: borrowed only for the two fcntl calls; the process is still single-threaded,
        // so nothing closes or reuses the number meanwhile. A number that was not open (the
        // directory handle read_dir used, already closed) fails F_GETFD with EBADF and is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        if let Ok(flags) = fcntl(fd, F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            fcntl(fd, F_SETFD(flags))?;
        }
    }
    Ok(())
}

/// [`send_message`] on a non-blocking socket registered with tokio: waits until it is writable.
pub async fn send_message_async(
    socket: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    bytes: &[u8],
    fd: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<()> {
    use std::os::fd::AsFd;
    loop {
        let mut ready = socket.writable().await?;
        if let Ok(result) = ready.try_io(|s| send_message(s.get_ref().as_fd(), bytes, fd)) {
            return result;
        }
    }
}

/// [`recv_message`] on a non-blocking socket registered with tokio: waits until it is readable.
pub async fn recv_message_async(
    socket: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::AsFd;
    loop {
        let mut ready = socket.readable().await?;
        if let Ok(result) = ready.try_io(|s| recv_message(s.get_ref().as_fd(), buf)) {
            return result;
        }
    }
}

/// Highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

/// Remove every capability from this process's bounding set, so nothing it ever executes or
/// becomes can gain one back. Needs CAP_SETPCAP; call before dropping ids (reads `/proc`, so
/// also before any chroot).
pub fn drop_capability_bounding_set() -> io::Result<()> {
    for cap in 0..=last_capability() {
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes plain integers and touches no memory of ours.
        let r = unsafe {
            nix::libc::prctl(
                nix::libc::PR_CAPBSET_DROP,
                nix::libc::c_ulong::from(cap),
                0 as nix::libc::c_ulong,
                0 as nix::libc::c_ulong,
                0 as nix::libc::c_ulong,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `struct __user_cap_header_struct` of `<linux/capability.h>`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Empty this process's effective, permitted and inheritable capability sets (capset(2) with
/// all-zero data); the ambient set empties with them. Lowering capabilities always succeeds.
pub fn clear_capabilities() -> io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads one header and two data structs of exactly these C layouts
    // (version 3 uses two); both live on our stack for the whole call and are not written.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_capset,
            &header as *const CapHeader,
            data.as_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process holds any capability in its effective, permitted or inheritable set.
pub fn has_capabilities() -> io::Result<bool> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes at most two data structs of this layout into `data` (and may write
    // the header's version); both are ours, live and correctly sized for the whole call.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data
        .iter()
        .any(|d| d.effective != 0 || d.permitted != 0 || d.inheritable != 0))
}

/// Close every descriptor of this process except `keep` and 0–2. Call while single-threaded
/// and before any chroot (it lists `/proc/self/fd`).
pub fn close_all_fds_except(keep: &[std::os::fd::RawFd]) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2 && !keep.contains(fd))
        .collect();
    for raw in listed {
        use nix::fcntl::{F_GETFD, fcntl};
        // SAFETY: borrowed only to test that the number is open (the directory handle used for
        // the listing is closed by now and fails with EBADF).
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
        if fcntl(borrowed, F_GETFD).is_err() {
            continue;
        }
        // SAFETY: the process is single-threaded and `raw` is open and not one the caller
        // keeps: whoever held it is abandoned on purpose (the sandbox must hold nothing else),
        // and nothing uses the number again after this close.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
    }
    Ok(())
}

/// `struct sock_filter` of `<linux/filter.h>`: one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct BpfProgram {
    len: u16,
    filter: *const BpfInstruction,
}

const SO_ATTACH_REUSEPORT_CBPF: nix::libc::c_int = 51;

/// Attach a classic BPF program that picks, for each new connection, which socket of the
/// `SO_REUSEPORT` group `socket` belongs to gets it (its return value is the index).
pub fn attach_reuseport_program(
    socket: std::os::fd::BorrowedFd<'_>,
    program: &[BpfInstruction],
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fprog = BpfProgram {
        len: u16::try_from(program.len()).map_err(|_| io::Error::other("BPF program too long"))?,
        filter: program.as_ptr(),
    };
    // SAFETY: the kernel copies `fprog.len` instructions from `fprog.filter`, which points into
    // `program`, alive and unmodified for the whole call; the option length is the struct's size.
    let r = unsafe {
        nix::libc::setsockopt(
            socket.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            &fprog as *const BpfProgram as *const nix::libc::c_void,
            std::mem::size_of::<BpfProgram>() as nix::libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
