//! Transparent huge pages for the password hash's scratch memory, while PAM authenticates.
//!
//! Debian's default password hash, yescrypt (`$y$j9T$…`), maps a fresh 16 MiB scratch area
//! for every hash (libxcrypt's `alloc_region`, with `mmap`), writes all of it and unmaps it:
//! 4,096 page faults and as many pages to free per login — on this machine kind a third of a
//! login's CPU, as much as the hash's own arithmetic costs in some runs. Backed by 2 MiB pages it
//! is eight faults.
//!
//! So the rftpd executable defines `mmap` itself (build.rs exports the symbol, so the shared
//! libraries it loads — libcrypt under pam_unix — bind to it, as they would to an LD_PRELOAD
//! library's). It is the plain system call; only while a [`HugeScratch`] guard is held (the
//! monitor, around `pam_authenticate`) it also advises the kernel to back a new private
//! anonymous mapping of 4 MiB or more with huge pages (`MADV_HUGEPAGE`). That is a hint: with
//! transparent huge pages set to `never` the kernel ignores it, and the same memory is mapped,
//! zeroed and freed either way — yescrypt touches every byte of it, so no page is added.
//!
//! It must never allocate, take a lock, or leave `errno` changed on success: any library
//! calls it, in any thread, signal handlers included. glibc's own allocator and loader map
//! memory through glibc-internal calls that never reach it.

use std::ffi::{c_int, c_long, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::libc;

/// How many [`HugeScratch`] guards are alive (the monitor is single-threaded: 0 or 1).
static ADVISING: AtomicUsize = AtomicUsize::new(0);

/// The smallest mapping advised: a hash's scratch area is 16 MiB; thread stacks and the
/// allocator's arenas stay out of it.
const MIN_ADVISED: usize = 4 << 20;

/// While alive, large new anonymous mappings are advised to use huge pages.
pub struct HugeScratch(());

impl HugeScratch {
    pub fn new() -> HugeScratch {
        ADVISING.fetch_add(1, Ordering::SeqCst);
        HugeScratch(())
    }
}

impl Drop for HugeScratch {
    fn drop(&mut self) {
        ADVISING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether a mapping made with these arguments is advised.
fn advised(len: usize, flags: c_int) -> bool {
    let private_anonymous = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    ADVISING.load(Ordering::Relaxed) > 0
        && len >= MIN_ADVISED
        && flags & private_anonymous == private_anonymous
        && flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE | libc::MAP_HUGETLB) == 0
}

/// `mmap(2)`, as glibc's: the system call, `MAP_FAILED` and `errno` on failure. (64-bit
/// targets only, where `SYS_mmap` takes the offset in bytes; elsewhere glibc's stays.)
///
/// # Safety
/// The caller's, as for any `mmap`: `addr`, `fd` and `offset` as mmap(2) requires.
#[cfg(target_pointer_width = "64")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: libc::size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: libc::off_t,
) -> *mut c_void {
    // SAFETY: the raw mmap system call with the caller's own arguments (the caller's contract
    // is mmap's); syscall() returns -1 and sets errno on failure, which is MAP_FAILED.
    let mapped = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            addr as c_long,
            len as c_long,
            c_long::from(prot),
            c_long::from(flags),
            c_long::from(fd),
            offset as c_long,
        )
    };
    if mapped != -1 && advised(len, flags) {
        // SAFETY: errno is this thread's; madvise only sets a flag on the mapping just made
        // (which no one else knows of yet), and its failure changes nothing but errno, which is
        // put back.
        unsafe {
            let errno = *libc::__errno_location();
            libc::madvise(mapped as *mut c_void, len, libc::MADV_HUGEPAGE);
            *libc::__errno_location() = errno;
        }
    }
    mapped as *mut c_void
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The `VmFlags` of the mapping that starts at `start`, from /proc/self/smaps.
    fn vm_flags(start: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        while let Some(line) = lines.next() {
            let range = line.split_whitespace().next().unwrap_or("");
            let from = range.split('-').next().unwrap_or("");
            if usize::from_str_radix(from, 16).ok() == Some(start) {
                for more in lines.by_ref() {
                    if let Some(flags) = more.strip_prefix("VmFlags:") {
                        return flags.to_string();
                    }
                }
            }
        }
        panic!("no mapping at {start:#x}");
    }

    fn map(len: usize) -> *mut c_void {
        // SAFETY: a fresh private anonymous mapping; unmapped by the caller.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p
    }

    fn unmap(p: *mut c_void, len: usize) {
        // SAFETY: `p` was mapped by `map` with this length.
        assert_eq!(unsafe { libc::munmap(p, len) }, 0);
    }

    #[test]
    fn only_large_anonymous_mappings_made_under_the_guard_are_advised() {
        let len = 16 << 20;
        let before = map(len);
        let small;
        let during;
        {
            let _guard = HugeScratch::new();
            during = map(len);
            small = map(64 << 10);
        }
        let after = map(len);
        let has_hg = |p: *mut c_void| vm_flags(p as usize).split_whitespace().any(|f| f == "hg");
        let flags = (has_hg(before), has_hg(during), has_hg(small), has_hg(after));
        for (p, l) in [
            (before, len),
            (during, len),
            (small, 64 << 10),
            (after, len),
        ] {
            unmap(p, l);
        }
        assert_eq!(flags, (false, true, false, false));
    }

    #[test]
    fn shared_libraries_bind_to_this_mmap() {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the global scope in
        // the order a shared library's own unresolved `mmap` is bound.
        let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mmap".as_ptr()) };
        assert_eq!(
            found as usize, mmap as *const () as usize,
            "the executable's mmap is not exported (build.rs)"
        );
    }

    #[test]
    fn failures_are_reported_as_mmap_reports_them() {
        // SAFETY: an invalid request (zero length): mmap fails with EINVAL and maps nothing.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                0,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_eq!(p, libc::MAP_FAILED);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINVAL)
        );
    }
}
