//! Capabilities: the bounding set dropped, every capability set cleared, and the check that
//! none is left — the last steps before a role runs unprivileged.
//!
//! Runs in the root roles that make unprivileged processes (monitor, spawner) in the child
//! just before it drops. It must never add a capability.

use std::io;

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
