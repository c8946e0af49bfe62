//! Memory an idle session gives back: the allocator's free pages, one malloc arena, and the
//! dead part of the main thread's stack.
//!
//! Runs in the monitor (root, before forking the worker) and the worker (the user, jailed). It
//! must never touch memory in use: only the allocator's own free pages and stack below the
//! caller's frame.

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

/// A zero-filled byte buffer in a private anonymous mapping of its own: a page is only backed
/// by memory once something is written to it. For the message buffers sized for the largest
/// message (16 KiB) that mostly carry a few dozen bytes: `vec![0; n]` would write every page
/// of it (calloc clears a reused heap block) and keep them resident in every session.
pub struct ZeroedBuffer {
    start: std::ptr::NonNull<u8>,
    len: usize,
}

impl ZeroedBuffer {
    /// A buffer of `len` bytes (more than zero), all zero.
    pub fn new(len: usize) -> std::io::Result<ZeroedBuffer> {
        let size = std::num::NonZeroUsize::new(len)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty buffer"))?;
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        // SAFETY: a new private anonymous mapping at an address the kernel chooses: it aliases
        // nothing, and this value owns it until `drop` unmaps it.
        let start = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }?;
        Ok(ZeroedBuffer {
            start: start.cast(),
            len,
        })
    }
}

impl std::ops::Deref for ZeroedBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `start` is a live read-write mapping of `len` bytes owned by `self` (anonymous
        // memory reads as zero until written), borrowed no longer than `self`.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for ZeroedBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for ZeroedBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, unmapped once; no borrow of it outlives `self`.
        let _ = unsafe { nix::sys::mman::munmap(self.start.cast(), self.len) };
    }
}

// SAFETY: the buffer is plain memory owned by this value alone (like a Box<[u8]>).
unsafe impl Send for ZeroedBuffer {}

#[cfg(test)]
mod zeroed_buffer_tests {
    use super::ZeroedBuffer;

    #[test]
    fn a_new_buffer_is_zero_writable_and_only_touched_pages_are_resident() {
        let mut buf = ZeroedBuffer::new(16 * 1024).unwrap();
        assert_eq!(buf.len(), 16 * 1024);
        assert!(buf.iter().all(|b| *b == 0));
        buf[0] = 7;
        buf[16 * 1024 - 1] = 9;
        assert_eq!((buf[0], buf[16 * 1024 - 1]), (7, 9));
        // A buffer nothing was written to holds no memory (reading maps the zero page).
        let fresh = ZeroedBuffer::new(16 * 1024).unwrap();
        let present = |b: &ZeroedBuffer| -> Vec<bool> {
            use std::io::{Read, Seek, SeekFrom};
            let mut pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
            (0..b.len() / 4096)
                .map(|page| {
                    let address = b.as_ptr() as u64 + page as u64 * 4096;
                    pagemap.seek(SeekFrom::Start(address / 4096 * 8)).unwrap();
                    let mut entry = [0u8; 8];
                    pagemap.read_exact(&mut entry).unwrap();
                    u64::from_le_bytes(entry) >> 63 == 1
                })
                .collect()
        };
        assert_eq!(
            present(&fresh),
            [false; 4],
            "an untouched buffer holds no memory"
        );
        let written = present(&buf);
        assert!(written[0] && written[3], "{written:?}");
        assert!(ZeroedBuffer::new(0).is_err());
    }
}
