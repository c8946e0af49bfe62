"""Rate and listing rows: logins per second, 4 KiB STOR+RETR pairs per second, LIST / NLST /
MLSD of the 10,000-entry directory.

Client processes are forked with multiprocessing and joined before a function returns; each
works for a fixed duration. Only directories this module created are deleted.
"""

import io
import multiprocessing
import os
import pwd
import shutil
import statistics
import time

from benchlib.ftp import expect, ftp_login, raw_login

SMALL = 4096
BIG_DIR_ENTRIES = 10_000


def _login_worker(srv, start_at, stop_at, q):
    ok = errors = 0
    first_error = None
    last_end = start_at
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        try:
            s, f = raw_login(srv, timeout=30)
            s.sendall(b"QUIT\r\n")
            expect(f, 221, "QUIT")
            s.close()
            ok += 1
            last_end = time.time()
        except Exception as e:  # noqa: BLE001
            errors += 1
            first_error = first_error or repr(e)
            time.sleep(0.05)
    q.put((ok, errors, first_error, last_end))


def logins_per_second(srv, clients, duration):
    """Full logins (connect, 220, USER, PASS, QUIT) by `clients` processes for `duration` s."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 0.3
    stop_at = start_at + duration
    procs = [ctx.Process(target=_login_worker, args=(srv, start_at, stop_at, q))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=duration + 120) for _ in procs]
    for p in procs:
        p.join()
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    end = max(r[3] for r in results)
    if errors:
        first = next(r[2] for r in results if r[2])
        raise RuntimeError(f"{errors} failed logins ({ok} ok); first: {first}")
    return ok / max(end - start_at, 1e-9)


def chown_to(path, srv):
    pw = pwd.getpwnam(srv["user"])
    os.chown(path, pw.pw_uid, pw.pw_gid)


def reset_dir(path, srv):
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, 0o755)
    chown_to(path, srv)


def _small_worker(srv, subdir, wid, start_at, stop_at, q):
    data = bytes((i * 7 + wid) & 0xFF for i in range(SMALL))
    done = 0
    error = None
    try:
        ftp = ftp_login(srv)
        ftp.cwd(subdir)
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            name = f"w{wid}_{done}"
            ftp.storbinary(f"STOR {name}", io.BytesIO(data))
            got = bytearray()
            ftp.retrbinary(f"RETR {name}", got.extend)
            if bytes(got) != data:
                raise RuntimeError(f"RETR {name}: {len(got)} bytes back, content differs")
            done += 1
        ftp.quit()
    except Exception as e:  # noqa: BLE001
        error = repr(e)
    q.put((done, error, time.time()))


SCRATCH_DIRS = []


def remove_scratch_dirs():
    """Delete the directories of the small-file and upload rows, once a row is over.

    ext4's inode allocator skips inodes deleted in the last seconds, and a create right after
    deleting thousands of files spends its time in that scan (recently_deleted), which would
    make the server that runs after a deletion look slow."""
    while SCRATCH_DIRS:
        shutil.rmtree(SCRATCH_DIRS.pop(), ignore_errors=True)
    os.sync()


def small_files_per_second(srv, sessions, duration):
    """4 KiB STOR + RETR pairs per second over `sessions` logged-in ftplib sessions, each
    repetition in a new directory (deleted after the row: remove_scratch_dirs)."""
    subdir = f"small_{len(SCRATCH_DIRS)}"
    path = os.path.join(srv["home"], subdir)
    reset_dir(path, srv)
    SCRATCH_DIRS.append(path)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 1.0 + 0.1 * sessions  # logins happen before the clock starts
    stop_at = start_at + duration
    procs = [ctx.Process(target=_small_worker, args=(srv, subdir, w, start_at, stop_at, q))
             for w in range(sessions)]
    for p in procs:
        p.start()
    results = [q.get(timeout=duration + 120) for _ in procs]
    for p in procs:
        p.join()
    errs = [r[1] for r in results if r[1]]
    if errs:
        raise RuntimeError(f"{len(errs)} sessions failed; first: {errs[0]}")
    done = sum(r[0] for r in results)
    end = max(r[2] for r in results)
    return done / max(end - start_at, 1e-9)


def listing_ms(srv, verb, runs=3):
    """Milliseconds for one full `verb` (LIST/NLST/MLSD) of the 10k directory, mean of `runs`,
    from sending the command (after PASV) to the final reply."""
    ftp = ftp_login(srv)
    try:
        ftp.cwd("big")
        ftp.voidcmd("TYPE A")
        times = []
        for _ in range(runs):
            t0 = time.monotonic()
            conn = ftp.transfercmd(verb)
            chunks = []
            while True:
                b = conn.recv(1 << 20)
                if not b:
                    break
                chunks.append(b)
            conn.close()
            ftp.voidresp()
            times.append(time.monotonic() - t0)
            lines = b"".join(chunks).count(b"\n")
            if lines < BIG_DIR_ENTRIES:
                raise RuntimeError(f"{verb}: only {lines} lines, expected {BIG_DIR_ENTRIES}+")
        return statistics.mean(times) * 1000
    finally:
        try:
            ftp.quit()
        except Exception:  # noqa: BLE001
            ftp.close()
