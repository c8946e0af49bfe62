"""Idle-session rows: PSS per idle logged-in session, and the most sessions held at once.

One asyncio client holds every session (10,000 sockets in one process), logging in at most
`concurrency` at a time. Connections come from several source addresses in 127.0.0.0/8
(127.0.1.1, 127.0.1.2, …; IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port at connect
time per 4-tuple) so that one port range is never the limit. Reads /proc; kills nothing.
"""

import asyncio
import os
import socket
import sys
import time

from benchlib.ftp import HOST

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
SESSIONS_PER_ADDRESS = int(os.environ.get("SESSIONS_PER_ADDRESS", 2000))
STEP_TIMEOUT = 60


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
        children.setdefault(int(rest[1]), []).append(int(d))
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
    return False


def source_addresses(n):
    count = max(1, -(-n // SESSIONS_PER_ADDRESS))
    return [f"127.0.1.{i + 1}" for i in range(count)]


async def _reply(reader):
    line = await reader.readline()
    if not line:
        raise EOFError("connection closed by server")
    code = line[:3]
    if line[3:4] == b"-":
        for _ in range(1000):
            more = await reader.readline()
            if not more:
                raise EOFError("connection closed inside a multi-line reply")
            if more[:3] == code and more[3:4] == b" ":
                break
    return int(code), line.decode("latin-1").rstrip()


async def _expect(reader, want, what):
    code, line = await asyncio.wait_for(_reply(reader), STEP_TIMEOUT)
    if code != want:
        raise RuntimeError(f"{what}: expected {want}, got {line!r}")


async def _login(srv, source):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (HOST, srv["port"])), STEP_TIMEOUT)
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
    except BaseException:
        sock.close()
        raise
    try:
        await _expect(reader, 220, "greeting")
        writer.write(f"USER {srv['user']}\r\n".encode())
        await _expect(reader, 331, "USER")
        writer.write(f"PASS {srv['password']}\r\n".encode())
        await _expect(reader, 230, "PASS")
    except BaseException:
        writer.close()
        raise
    return reader, writer


async def open_sessions(srv, n, concurrency, budget):
    """Open up to n logged-in sessions, at most `concurrency` logging in at once, stopping at
    the first error or after `budget` s. Returns (held, errors, first_error, seconds)."""
    held, state = [], {"errors": 0, "first": None}
    addrs = source_addresses(n)
    t0 = time.monotonic()
    next_index = iter(range(n))

    async def opener():
        for i in next_index:
            if state["first"] or time.monotonic() - t0 > budget:
                return
            try:
                held.append(await _login(srv, addrs[i % len(addrs)]))
                if len(held) % 1000 == 0:
                    print(f"[bench {time.strftime('%H:%M:%S')}]   {srv['name']}: {len(held)} "
                          f"sessions open after {time.monotonic() - t0:.0f} s",
                          file=sys.stderr, flush=True)
            except Exception as e:  # noqa: BLE001
                state["errors"] += 1
                if state["first"] is None:
                    state["first"] = f"after {len(held)} sessions: {e!r}"
                return

    await asyncio.gather(*(opener() for _ in range(concurrency)))
    if time.monotonic() - t0 > budget and len(held) < n and state["first"] is None:
        state["first"] = f"time budget of {budget} s spent after {len(held)} sessions"
    return held, state["errors"], state["first"], time.monotonic() - t0


async def noop_all(held, concurrency=64):
    """NOOP on every session; the number that answered 200."""
    sem = asyncio.Semaphore(concurrency)

    async def one(rw):
        reader, writer = rw
        async with sem:
            try:
                writer.write(b"NOOP\r\n")
                code, _ = await asyncio.wait_for(_reply(reader), STEP_TIMEOUT)
                return code == 200
            except Exception:  # noqa: BLE001
                return False

    return sum(await asyncio.gather(*(one(rw) for rw in held)))


def close_all(held):
    for _, writer in held:
        try:
            writer.close()
        except OSError:
            pass


# How long the sessions stay quiet after the liveness NOOP before the idle sample. A server
# may give memory back once a session goes quiet (rftpd does after 1 s); vsftpd's sessions
# hold the same either way. The sample taken right after the NOOP is reported too.
QUIET = 3


def idle_session_pss(srv, n):
    """MiB of PSS (all server processes together) per idle logged-in session, n sessions:
    sampled after the sessions have been quiet for QUIET seconds (the sample right after a
    command to every session goes into the details)."""
    idle_pss, idle_procs = tree_pss(srv["pid"])

    async def run():
        held, errors, first, _ = await open_sessions(srv, n, concurrency=8, budget=300)
        try:
            if errors or len(held) != n:
                raise RuntimeError(f"opened {len(held)}/{n} sessions; {first}")
            await asyncio.sleep(2)
            alive = await noop_all(held)
            if alive != n:
                raise RuntimeError(f"only {alive}/{n} sessions answered NOOP")
            after_command, _ = tree_pss(srv["pid"])
            await asyncio.sleep(QUIET)
            total, procs = tree_pss(srv["pid"])
            return total, procs, after_command
        finally:
            close_all(held)
            await asyncio.sleep(0.1)

    try:
        total, procs, after_command = asyncio.run(run())
    finally:
        wait_tree_settles(srv, idle_procs)
    srv.setdefault("pss_detail", []).append(
        {"sessions": n, "total_kib": total, "processes": procs,
         "after_command_kib": after_command, "quiet_s": QUIET,
         "idle_total_kib": idle_pss, "idle_processes": idle_procs})
    return total / 1024 / n


def max_sessions(srv, cap, budget, concurrency=16):
    """Sessions opened up to `cap` (first error stops), then NOOP on each: how many answered."""
    _, idle_procs = tree_pss(srv["pid"])

    async def run():
        held, errors, first, secs = await open_sessions(srv, cap, concurrency, budget)
        try:
            await asyncio.sleep(1)
            alive = await noop_all(held)
            _, procs = tree_pss(srv["pid"])
            return len(held), alive, errors, first, secs, procs
        finally:
            close_all(held)
            await asyncio.sleep(0.1)

    try:
        opened, alive, errors, first, secs, procs = asyncio.run(run())
    finally:
        settled = wait_tree_settles(srv, idle_procs, limit=300)
    srv.setdefault("max_detail", []).append(
        {"cap": cap, "opened": opened, "alive": alive, "errors": errors, "first_error": first,
         "seconds": round(secs, 1), "processes": procs, "settled": settled})
    return alive
