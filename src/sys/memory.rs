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
