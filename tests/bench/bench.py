#!/usr/bin/env python3
"""rftpd vs vsftpd benchmark driver (standard library only).

Started by tests/bench/run.sh, which installs vsftpd, creates the users, builds rftpd,
writes both configurations and starts both servers. This script only talks to the two
running servers (127.0.0.1 only), interleaves the repetitions A/B, B/A, A/B, ... and prints
a table of medians (min-max) with the ratio rftpd / vsftpd per row.

Input: a JSON file (--setup) written by run.sh:
  {"servers": [{"name": "rftpd", "port": .., "pid": .., "user": .., "password": ..,
                "home": .., "tls": true/false}, {"name": "vsftpd", ...}],
   "big_file": PATH, "big_size": BYTES, "machine": {...}, "notes": [...]}

Every workload is bounded in time (a duration per repetition) or count.
"""

import argparse
import concurrent.futures
import io
import json
import multiprocessing
import os
import pwd
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import ftplib

HOST = "127.0.0.1"
MB = 1_000_000
MIB = 1024 * 1024
SMALL = 4096
BIG_DIR_ENTRIES = 10_000
SOCK_TIMEOUT = 60


# --------------------------------------------------------------------------------------------
# Small helpers


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_reply(f):
    """One FTP reply (multi-line aware) from a binary file object: (code, first line)."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed by server")
    code = line[:3]
    if line[3:4] == b"-":
        while True:
            more = f.readline()
            if not more:
                raise EOFError("connection closed inside a multi-line reply")
            if more[:3] == code and more[3:4] == b" ":
                break
    try:
        return int(code), line.decode("latin-1").rstrip()
    except ValueError:
        raise RuntimeError(f"bad reply line {line!r}")


def expect(f, want, what):
    code, line = read_reply(f)
    if code != want:
        raise RuntimeError(f"{what}: expected {want}, got {line!r}")
    return line


def raw_login(srv, timeout=SOCK_TIMEOUT):
    """Connect, greeting, USER, PASS. Returns (socket, file)."""
    s = socket.create_connection((HOST, srv["port"]), timeout=timeout)
    try:
        f = s.makefile("rb")
        expect(f, 220, "greeting")
        s.sendall(f"USER {srv['user']}\r\n".encode())
        expect(f, 331, "USER")
        s.sendall(f"PASS {srv['password']}\r\n".encode())
        expect(f, 230, "PASS")
        return s, f
    except BaseException:
        s.close()
        raise


def ftp_login(srv):
    ftp = ftplib.FTP()
    ftp.connect(HOST, srv["port"], timeout=SOCK_TIMEOUT)
    ftp.login(srv["user"], srv["password"])
    ftp.set_pasv(True)
    return ftp


def descendants(root_pid):
    """root_pid and every process below it (from /proc/*/stat)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        rest = stat[stat.rfind(b")") + 2:].split()
        ppid = int(rest[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss(root_pid):
    pids = descendants(root_pid)
    return sum(pss_kib(p) for p in pids), len(pids)


def wait_tree_settles(srv, baseline_procs, limit=90):
    """After closing many sessions: wait until the server is back to its idle process count."""
    deadline = time.monotonic() + limit
    n = None
    while time.monotonic() < deadline:
        n = len(descendants(srv["pid"]))
        if n <= baseline_procs:
            return True
        time.sleep(0.25)
    log(f"{srv['name']}: still {n} processes (idle: {baseline_procs}) after {limit}s")
    return False


def server_alive(srv):
    try:
        os.kill(srv["pid"], 0)
        return True
    except OSError:
        return False


def chown_to(path, srv):
    pw = pwd.getpwnam(srv["user"])
    os.chown(path, pw.pw_uid, pw.pw_gid)


def reset_dir(path, srv):
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, 0o755)
    chown_to(path, srv)


# --------------------------------------------------------------------------------------------
# Workloads. Each returns one number for one repetition against one server.


def curl_transfer(srv, direction, tls, big_file, big_size, rep):
    """RETR or STOR of the big file with curl. Returns (wall MB/s, transfer MB/s)."""
    url = f"ftp://{HOST}:{srv['port']}/"
    cmd = ["curl", "-sS", "--fail", "--user", f"{srv['user']}:{srv['password']}",
           "-w", "%{time_pretransfer} %{time_total} %{size_download} %{size_upload}"]
    if tls:
        cmd += ["--ssl-reqd", "-k"]
    upload = None
    if direction == "RETR":
        cmd += ["-o", "/dev/null", url + os.path.basename(srv["big_name"])]
    else:
        name = f"upload_{rep}.bin"
        upload = os.path.join(srv["home"], name)
        if os.path.exists(upload):
            os.unlink(upload)
        os.sync()  # the previous upload's dirty pages must not slow this one
        warm_page_cache(os.path.dirname(big_file), big_size)
        cmd += ["-T", big_file, url + name]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"curl exit {r.returncode}: {r.stderr.strip()[:200]}")
    pre, total, down, up = r.stdout.split()
    moved = float(down) if direction == "RETR" else float(up)
    if int(moved) != big_size:
        raise RuntimeError(f"curl moved {moved} bytes, expected {big_size}")
    if upload is not None:
        got = os.stat(upload).st_size
        os.unlink(upload)
        if got != big_size:
            raise RuntimeError(f"uploaded file has {got} bytes, expected {big_size}")
    # The transfer: from curl's time_pretransfer (connected, logged in, EPSV answered, TYPE
    # sent) to curl's exit (226 received, QUIT answered). Excluded: process start, connect,
    # TLS handshake, login and EPSV, which the logins row measures, and which curl 7.88 some-
    # times stretches by ~150 ms after a fast EPSV reply. Included: everything the server does
    # to finish the file, whether it does it before its 226 or after (vsftpd closes the file
    # after sending 226; on ext4 that close can take 0.3 s, see the README).
    transfer = wall - float(pre)
    return big_size / wall / MB, big_size / max(transfer, 1e-9) / MB


def warm_page_cache(directory, size):
    """Write and delete a scratch file a bit larger than the upload, right before it.

    On a VM with free page reporting (virtio-balloon), memory the guest freed a few seconds
    ago is handed back to the host, and the first write to it is slow (host page faults): the
    same 1 GiB upload then takes 1 s or 4 s depending on which pages the page cache gets. Writing
    (and freeing) a scratch file first makes both servers' uploads land on warm pages."""
    path = os.path.join(directory, "warm.tmp")
    buf = b"\1" * MIB
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(0, size + 256 * MIB, MIB):
            os.write(fd, buf)
    finally:
        os.close(fd)
        os.unlink(path)


CEILING_SENDER = """
import os, socket, sys
port, path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
with open(path, "rb") as f:
    if mode == "sendfile":
        s.sendfile(f)
    else:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            s.sendall(view[:n])
s.close()
"""


def loopback_ceiling(big_file, big_size):
    """Plain TCP transfer of the big file over 127.0.0.1, no FTP: a sender process (sendfile(),
    and read()+send() of 1 MiB) and a receiver that discards into a 128 KiB buffer (curl's is
    100 KiB). The better of the two senders, from connect to the last byte."""
    best = 0.0
    for mode in ("sendfile", "readsend"):
        lsock = socket.socket()
        lsock.bind((HOST, 0))
        lsock.listen(1)
        port = lsock.getsockname()[1]
        t0 = time.monotonic()
        sender = subprocess.Popen([sys.executable, "-c", CEILING_SENDER, str(port), big_file, mode])
        conn, _ = lsock.accept()
        buf = bytearray(128 * 1024)
        view = memoryview(buf)
        got = 0
        while True:
            n = conn.recv_into(view)
            if n == 0:
                break
            got += n
        elapsed = time.monotonic() - t0
        sender.wait()
        conn.close()
        lsock.close()
        if got != big_size or sender.returncode != 0:
            raise RuntimeError(f"ceiling transfer ({mode}) failed: {got} bytes, exit {sender.returncode}")
        best = max(best, big_size / elapsed / MB)
    return best


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


SMALL_DIRS = []


def remove_small_dirs():
    """Delete the directories of the small-file rows, once a row is over (see below)."""
    while SMALL_DIRS:
        shutil.rmtree(SMALL_DIRS.pop(), ignore_errors=True)
    os.sync()


def small_files_per_second(srv, sessions, duration):
    """4 KiB STOR + RETR pairs per second over `sessions` logged-in ftplib sessions.

    Every repetition writes into a new directory, and the files are deleted only after the
    whole row: ext4's inode allocator skips inodes deleted in the last seconds and a create
    right after deleting thousands of files spends its time in that scan (recently_deleted),
    which would make the server that runs after a deletion look slow."""
    subdir = f"small_{len(SMALL_DIRS)}"
    path = os.path.join(srv["home"], subdir)
    reset_dir(path, srv)
    SMALL_DIRS.append(path)
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


def open_sessions(srv, n, concurrency=8, budget=300, stop_on_error=True):
    """Open up to n logged-in sessions. Returns (sessions, errors, first_error, seconds)."""
    held, errors = [], 0
    first_error = None
    stop = threading.Event()
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(_):
        nonlocal errors, first_error
        if stop.is_set() or time.monotonic() - t0 > budget:
            return
        try:
            sf = raw_login(srv, timeout=60)
            with lock:
                held.append(sf)
        except Exception as e:  # noqa: BLE001
            with lock:
                errors += 1
                if first_error is None:
                    first_error = f"after {len(held)} sessions: {e!r}"
            if stop_on_error:
                stop.set()

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    return held, errors, first_error, time.monotonic() - t0


def close_sessions(held):
    for s, f in held:
        try:
            f.close()
            s.close()
        except OSError:
            pass


def check_alive(held):
    """NOOP on every session; the number that answered 200."""
    alive = 0
    for s, f in held:
        try:
            s.sendall(b"NOOP\r\n")
            code, _ = read_reply(f)
            alive += code == 200
        except Exception:  # noqa: BLE001
            pass
    return alive


def idle_session_pss(srv, n):
    """MiB of PSS (all server processes together) per idle logged-in session, n sessions."""
    idle_pss, idle_procs = tree_pss(srv["pid"])
    held, errors, first, _ = open_sessions(srv, n)
    try:
        if errors or len(held) != n:
            raise RuntimeError(f"opened {len(held)}/{n} sessions; {first}")
        time.sleep(2)
        alive = check_alive(held)
        if alive != n:
            raise RuntimeError(f"only {alive}/{n} sessions answered NOOP")
        total, procs = tree_pss(srv["pid"])
        srv.setdefault("pss_detail", []).append(
            {"sessions": n, "total_kib": total, "processes": procs,
             "idle_total_kib": idle_pss, "idle_processes": idle_procs})
        return total / 1024 / n
    finally:
        close_sessions(held)
        wait_tree_settles(srv, idle_procs)


def max_sessions(srv, cap, budget):
    _, idle_procs = tree_pss(srv["pid"])
    held, errors, first, secs = open_sessions(srv, cap, concurrency=16, budget=budget)
    try:
        time.sleep(1)
        alive = check_alive(held)
        srv.setdefault("max_detail", []).append(
            {"cap": cap, "opened": len(held), "alive": alive, "errors": errors,
             "first_error": first, "seconds": round(secs, 1)})
        if first:
            log(f"{srv['name']}: max sessions: {first}")
        return alive
    finally:
        close_sessions(held)
        wait_tree_settles(srv, idle_procs, limit=180)


# --------------------------------------------------------------------------------------------
# Rows, interleaving, table

HIGHER, LOWER = "higher", "lower"


class Row:
    def __init__(self, key, title, unit, better, target, reps, fn, ratio_base=None, tls=False):
        self.key, self.title, self.unit, self.better = key, title, unit, better
        self.target, self.reps, self.fn = target, reps, fn
        self.ratio_base = ratio_base  # (row key) whose vsftpd value the ratio is taken against
        self.tls = tls
        self.values = {}  # server name -> list of values
        self.errors = {}  # server name -> list of messages
        self.na = {}  # server name -> reason


def fmt(v):
    if v is None:
        return "n/a"
    if float(v).is_integer():
        return f"{v:.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r):
    if r is None:
        return "n/a"
    return f"{r:.3f}" if 0.95 <= r <= 1.05 else f"{r:.2f}"


def summary(values):
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def cell(row, name):
    if name in row.na:
        return "n/a"
    s = summary(row.values.get(name, []))
    if s is None:
        return "failed"
    med, lo, hi = s
    out = f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"
    if row.errors.get(name):
        out += f" [{len(row.errors[name])} failed]"
    return out


def median_of(row, name):
    s = summary(row.values.get(name, []))
    return s[0] if s else None


def judge(ratio, row, base_row):
    """met / MISSED; a miss by less than 3 % where the two ranges overlap is called a tie."""
    if ratio is None or row.target is None:
        return ""
    kind, bound = row.target
    ok = ratio >= bound if kind == ">=" else ratio <= bound
    if ok:
        return "met"
    r, v = row.values.get("rftpd", []), base_row.values.get("vsftpd", [])
    overlap = r and v and min(r) <= max(v) and min(v) <= max(r)
    if bound == 1.0 and overlap and abs(ratio - 1.0) < 0.03:
        return "tie (MISSED by < 3 %, ranges overlap)"
    return "MISSED"


def build_table(rows, by_key, extra):
    lines = ["| row | unit | rftpd median (min–max) | vsftpd median (min–max) | ratio rftpd/vsftpd | target | status |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        r = median_of(row, "rftpd")
        base_row = by_key[row.ratio_base] if row.ratio_base else row
        v = median_of(base_row, "vsftpd")
        ratio = r / v if (r is not None and v) else None
        target = f"{row.target[0]} {row.target[1]}" if row.target else ""
        if row.ratio_base:
            target += f" (vs vsftpd {base_row.title.split(' ')[0]})"
        lines.append(f"| {row.title} | {row.unit} | {cell(row, 'rftpd')} | {cell(row, 'vsftpd')} | "
                     f"{fmt_ratio(ratio)} | {target} | {judge(ratio, row, base_row)} |")
    for line in extra:
        lines.append(line)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--setup", required=True)
    ap.add_argument("--out", default=None, help="write the markdown report here too")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--only", default="", help="comma-separated row keys")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    setup = json.load(open(args.setup))
    servers = setup["servers"]
    by_name = {s["name"]: s for s in servers}
    big_file, big_size = setup["big_file"], setup["big_size"]
    env = lambda k, d: int(os.environ.get(k, d))  # noqa: E731
    reps = env("REPS", 5)
    reps_big = env("REPS_BIG", 5)
    reps_mem = env("REPS_MEM", 3)
    duration = env("DURATION", 8)
    mem_sessions = env("MEM_SESSIONS", 500)
    max_cap = env("MAX_SESSIONS", 3000)
    max_budget = env("MAX_SESSIONS_BUDGET", 150)
    clients = 8

    tls_ok = all(s["tls"] for s in servers)
    notes = list(setup.get("notes", []))
    if not tls_ok:
        missing = [s["name"] for s in servers if not s["tls"]]
        notes.append(f"TLS rows: n/a ({', '.join(missing)} without TLS in this run: "
                     + "; ".join(s.get("tls_reason", "") for s in servers if not s["tls"]) + ")")

    retr_plain = {}
    ceiling = []
    # Wall-clock rows (curl start to exit: connect, TLS, login, EPSV, transfer, 226), shown
    # for information under the data-phase rows that carry the targets.
    wall_rows = {}

    def transfer(direction, tls, key):
        def f(srv, rep):
            if direction == "RETR" and not tls and srv is servers[rep % 2]:
                # The loopback ceiling, measured in the same repetition as the two servers.
                ceiling.append(loopback_ceiling(big_file, big_size))
            wall, data = curl_transfer(srv, direction, tls, big_file, big_size, rep)
            if direction == "RETR" and not tls:
                retr_plain.setdefault(srv["name"], []).append(data)
            wall_rows[key].values.setdefault(srv["name"], []).append(wall)
            return data
        return f

    def big_rows(direction, tls, target):
        key = f"{direction.lower()}{'_tls' if tls else ''}"
        size = "1 GiB" if big_size == 1 << 30 else f"{big_size / MIB:.0f} MiB"
        label = f"{direction} {size}, {'TLS' if tls else 'plain'}"
        main = Row(key, f"{label} (transfer)", "MB/s", HIGHER, (">=", target), reps_big,
                   transfer(direction, tls, key), tls=tls)
        wall = Row(key + "_wall", f"{label} (wall clock, curl start to exit)", "MB/s", HIGHER,
                   None, reps_big, None, tls=tls)
        wall_rows[key] = wall
        return [main, wall]

    rows = [
        *big_rows("RETR", False, 1.0),
        *big_rows("STOR", False, 1.0),
        *big_rows("RETR", True, 1.5),
        *big_rows("STOR", True, 1.5),
        Row("logins", f"logins/s, {clients} clients", "logins/s", HIGHER, (">=", 1.0), reps,
            lambda srv, rep: logins_per_second(srv, clients, duration)),
        Row("small1", "4 KiB STOR+RETR, 1 session", "files/s", HIGHER, (">=", 1.0), reps,
            lambda srv, rep: small_files_per_second(srv, 1, duration)),
        Row("small8", f"4 KiB STOR+RETR, {clients} sessions", "files/s", HIGHER, (">=", 1.0), reps,
            lambda srv, rep: small_files_per_second(srv, clients, duration)),
        Row("list", "LIST 10k entries", "ms", LOWER, ("<=", 1.0), reps,
            lambda srv, rep: listing_ms(srv, "LIST")),
        Row("nlst", "NLST 10k entries", "ms", LOWER, ("<=", 1.0), reps,
            lambda srv, rep: listing_ms(srv, "NLST")),
        Row("mlsd", "MLSD 10k entries", "ms", LOWER, ("<=", 1.0), reps,
            lambda srv, rep: listing_ms(srv, "MLSD"), ratio_base="list"),
        Row("mem", f"PSS per idle session, {mem_sessions} sessions", "MiB", LOWER, ("<=", 1.0),
            reps_mem, lambda srv, rep: idle_session_pss(srv, mem_sessions)),
        Row("max", f"sessions held at once (cap {max_cap})", "sessions", HIGHER, (">=", 1.0), 1,
            lambda srv, rep: max_sessions(srv, max_cap, max_budget)),
    ]
    by_key = {r.key: r for r in rows}
    by_key["mlsd"].na["vsftpd"] = "vsftpd has no MLSD"
    only = [k for k in args.only.split(",") if k]

    for s in servers:
        s["big_name"] = os.path.basename(big_file)

    t_start = time.monotonic()

    for row in rows:
        if only and row.key not in only:
            continue
        if row.fn is None:
            continue
        if row.tls and not tls_ok:
            for s in servers:
                row.na[s["name"]] = "no TLS"
            continue
        log(f"row {row.title}: {row.reps} reps each, interleaved")
        for rep in range(row.reps):
            order = servers if rep % 2 == 0 else list(reversed(servers))
            for srv in order:
                if srv["name"] in row.na:
                    continue
                if not server_alive(srv):
                    row.errors.setdefault(srv["name"], []).append("server not running")
                    continue
                try:
                    v = row.fn(srv, rep)
                    row.values.setdefault(srv["name"], []).append(v)
                    log(f"  {row.key} rep {rep + 1} {srv['name']}: {fmt(v)} {row.unit}")
                except Exception as e:  # noqa: BLE001
                    row.errors.setdefault(srv["name"], []).append(str(e))
                    log(f"  {row.key} rep {rep + 1} {srv['name']}: FAILED: {e}")
        remove_small_dirs()
    elapsed = time.monotonic() - t_start
    if ceiling:
        log(f"loopback ceiling: {[round(c) for c in ceiling]} MB/s")

    shown = [r for r in rows if not only or r.key in only
             or (r.fn is None and r.key.rsplit("_", 1)[0] in only)]
    for r in shown:
        if r.fn is None and r.tls and not tls_ok:
            for srv in servers:
                r.na[srv["name"]] = "no TLS"
    extra = []
    if ceiling:
        c = summary(ceiling)
        extra.append(f"| loopback ceiling (plain TCP, same file, no FTP) | MB/s | {fmt(c[0])} ({fmt(c[1])}–{fmt(c[2])}) | (same) | | | |")
        if retr_plain:
            cells = []
            for name in ("rftpd", "vsftpd"):
                vals = retr_plain.get(name)
                cells.append(f"{fmt(statistics.median(vals) / c[0])} ({fmt(statistics.median(vals))} MB/s)"
                             if vals else "n/a")
            r_vals = retr_plain.get("rftpd")
            status = ""
            if r_vals:
                status = "met" if statistics.median(r_vals) / c[0] >= 0.9 else "MISSED"
            extra.append(f"| RETR plain transfer / loopback ceiling | × ceiling | {cells[0]} | {cells[1]} | | rftpd >= 0.9 | {status} |")
    table = build_table(shown, by_key, extra)

    m = setup.get("machine", {})
    header = [
        f"Machine: {m.get('nproc')} CPUs, {m.get('cpu')}, kernel {m.get('kernel')}, "
        f"{m.get('mem')}; date {m.get('date')}; load average at start {m.get('load')}.",
        f"Versions: {m.get('rftpd')}; {m.get('vsftpd')}; {m.get('curl')}.",
        f"Repetitions: {reps_big} per 1 GiB row, {reps} per rate/listing row ({duration} s each), "
        f"{reps_mem} for memory, 1 for max sessions (cap {max_cap}, {max_budget} s budget); "
        f"interleaved A/B, B/A, …; run time of the measurements {elapsed / 60:.1f} min.",
    ]
    detail = []
    for s in servers:
        for d in s.get("pss_detail", []):
            detail.append(f"{s['name']} memory: {d['total_kib'] / 1024:.0f} MiB PSS in {d['processes']} processes "
                          f"with {d['sessions']} sessions (idle server: {d['idle_total_kib'] / 1024:.1f} MiB in "
                          f"{d['idle_processes']} processes)")
        for d in s.get("max_detail", []):
            detail.append(f"{s['name']} max sessions: opened {d['opened']} of {d['cap']} in {d['seconds']} s, "
                          f"{d['alive']} answered NOOP, errors {d['errors']}"
                          + (f", first: {d['first_error']}" if d["first_error"] else ""))
    for row in shown:
        for name, errs in row.errors.items():
            detail.append(f"{row.title} / {name}: {len(errs)} failed repetitions; first: {errs[0]}")
    report = "\n".join(header) + "\n\n" + table + "\n"
    if notes:
        report += "\nNotes:\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    if detail:
        report += "\nDetails:\n" + "\n".join(f"- {d}" for d in detail) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"rows": {r.key: {"title": r.title, "values": r.values, "errors": r.errors}
                                for r in shown},
                       "ceiling": ceiling, "retr_plain_transfer": retr_plain,
                       "servers": [{k: v for k, v in s.items() if k != "password"} for s in servers]},
                      fh, indent=1)


if __name__ == "__main__":
    main()
