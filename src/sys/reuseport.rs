//! The program attached to a `SO_REUSEPORT` group of passive sockets, so a session's spare
//! and current passive sockets on one port take only their own connections: an eBPF socket
//! filter loaded once per session and attached to each new group by its descriptor, or a
//! classic BPF program attached (and compiled by the kernel) per group where eBPF can't be
//! loaded.
//!
//! Runs in the monitor (root), which makes the data sockets. It must never attach a program
//! to a socket it did not make, and never load a program it did not build itself.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

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
const SO_ATTACH_REUSEPORT_EBPF: nix::libc::c_int = 52;
const BPF_PROG_LOAD: nix::libc::c_int = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// `struct bpf_insn` of `<linux/bpf.h>`: one eBPF instruction (`regs`: the destination
/// register in the low four bits, the source in the high four).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EbpfInstruction {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// The leading fields of `union bpf_attr` that `BPF_PROG_LOAD` reads (the kernel takes a
/// shorter attribute as if the rest were zero).
#[repr(C)]
struct ProgramLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// Load `program` as an eBPF socket filter (`BPF_PROG_LOAD`; the kernel verifies and compiles
/// it once) and return its descriptor (close-on-exec, as the kernel makes it), for
/// [`attach_reuseport_loaded`]. Needs `CAP_BPF` or `CAP_SYS_ADMIN` where unprivileged eBPF is
/// off.
pub fn load_socket_filter(program: &[EbpfInstruction], name: &str) -> io::Result<OwnedFd> {
    let license = c"Dual MIT/GPL";
    let mut prog_name = [0u8; 16];
    for (slot, b) in prog_name.iter_mut().take(15).zip(name.bytes()) {
        *slot = if b.is_ascii_alphanumeric() { b } else { b'_' };
    }
    let attr = ProgramLoad {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: u32::try_from(program.len())
            .map_err(|_| io::Error::other("eBPF program too long"))?,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
    };
    // SAFETY: `attr` is a fully initialised `bpf_attr` prefix of the size passed; the kernel
    // reads `insn_cnt` instructions from `insns`, which points into `program`, and the
    // NUL-terminated licence from `license`, both alive and unmodified for the whole call; no
    // log buffer is given, so the kernel writes nothing into this process's memory.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgramLoad,
            std::mem::size_of::<ProgramLoad>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = std::os::fd::RawFd::try_from(r).map_err(|_| io::Error::other("bad descriptor"))?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attach a program loaded by [`load_socket_filter`] to the `SO_REUSEPORT` group `socket`
/// belongs to: the kernel takes a reference to it, nothing is compiled again.
pub fn attach_reuseport_loaded(
    socket: std::os::fd::BorrowedFd<'_>,
    program: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd: nix::libc::c_int = program.as_raw_fd();
    // SAFETY: the option value is one `int` (the program's descriptor), read by the kernel
    // during the call; the length is its size.
    let r = unsafe {
        nix::libc::setsockopt(
            socket.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_EBPF,
            &fd as *const nix::libc::c_int as *const nix::libc::c_void,
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

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
