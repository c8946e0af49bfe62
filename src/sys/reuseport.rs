//! A classic BPF program attached to a `SO_REUSEPORT` group of passive sockets, so a
//! session's spare and current passive sockets on one port take only their own connections.
//!
//! Runs in the monitor (root), which makes the data sockets. It must never attach a program
//! to a socket it did not make.

use std::io;

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
