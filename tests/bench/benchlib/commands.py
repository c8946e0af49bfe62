"""Command round trips: NOOP, PWD, CWD (into a directory and back), TYPE I, SIZE and MDTM of
a small file (by its absolute path: the verbs take turns with the CWDs); `count` of each on
one logged-in session per server, timed one by one with perf_counter_ns around the send and
the read of its one reply, Nagle off.

The servers take turns command by command (the first of each round rotating), and so do the
verbs (NOOP, PWD, CWD, TYPE, SIZE, MDTM, NOOP, ...): every server and every verb is timed over
the same stretch of time. This machine's wake-up latency changes in steps over seconds (round
trips of ~22, ~80 or ~320 µs for the same command): timed one after the other, each server and
verb would see a different step, and the ratios would measure the steps.

It sends only these verbs and never writes to the server's files.
"""

import os
import statistics
import time

from benchlib.ftp import Session, read_reply

VERBS = ("noop", "pwd", "cwd", "type", "size", "mdtm")
CMD_DIR = "cmd_dir"
CMD_FILE = "cmd_file.txt"


def _lines(verb, i):
    if verb == "noop":
        return "NOOP", 200
    if verb == "pwd":
        return "PWD", 257
    if verb == "cwd":
        return (f"CWD {CMD_DIR}" if i % 2 == 0 else "CWD ..", 250)
    if verb == "type":
        return "TYPE I", 200
    if verb == "size":
        return f"SIZE /{CMD_FILE}", 213
    return f"MDTM /{CMD_FILE}", 213


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def round_trips(servers, count):
    """{server name: {verb: (p50 µs, p90 µs)}} for `count` round trips of each verb on one
    session per server, the servers and the verbs taking turns."""
    sessions = []
    try:
        for srv in servers:
            sessions.append((srv["name"], Session(srv)))
        for i in range(20):  # warm-up, untimed
            for verb in VERBS:
                line, want = _lines(verb, i)
                for _, session in sessions:
                    session.command(line, want)
        times = {name: {verb: [] for verb in VERBS} for name, _ in sessions}
        n = len(sessions)
        for i in range(count):
            turn = sessions[i % n:] + sessions[:i % n]
            for verb in VERBS:
                line, want = _lines(verb, i)
                raw = line.encode() + b"\r\n"
                for name, session in turn:
                    t0 = time.perf_counter_ns()
                    session.sock.sendall(raw)
                    code, text = read_reply(session.f)
                    t1 = time.perf_counter_ns()
                    if code != want:
                        raise RuntimeError(f"{name}: {line}: expected {want}, got {text!r}")
                    times[name][verb].append((t1 - t0) / 1000)
        out = {}
        for name, session in sessions:
            if count % 2:
                session.command("CWD ..", 250)
            session.quit()
            out[name] = {verb: (statistics.median(t), percentile(t, 0.9))
                         for verb, t in times[name].items()}
        return out
    finally:
        for _, session in sessions:
            session.close()


def _pin_tree(root_pid, cpus):
    """Set the CPU affinity of every thread of root_pid and its descendants (new children
    inherit it); threads that are gone are skipped."""
    from benchlib.sessions import descendants
    for pid in descendants(root_pid):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass


def pinned_noops(servers, count, same_cpu):
    """{server name: p50 µs} of `count` NOOP round trips per server, servers taking turns, with
    the client on CPU 0 and every process of each server on CPU 0 too (`same_cpu`) or on
    CPU 1. Unpinned, where the scheduler puts a session decides its round trip more than the
    server's own work does: on this 2-CPU machine ~30-50 µs when the session shares the
    client's CPU, ~120-170 µs when it wakes on the other one, for every server. Pinned, both
    placements are measured for each server; affinities are restored afterwards."""
    everywhere = set(range(os.cpu_count() or 1))
    if len(everywhere) < 2:
        raise RuntimeError("needs at least 2 CPUs")
    server_cpus = {0} if same_cpu else {1}
    sessions = []
    try:
        os.sched_setaffinity(0, {0})
        for srv in servers:
            _pin_tree(srv["pid"], server_cpus)
        for srv in servers:
            sessions.append((srv["name"], Session(srv)))
        for srv in servers:  # the new sessions' processes, made after a fork or two
            _pin_tree(srv["pid"], server_cpus)
        for i in range(20):  # warm-up, untimed
            for _, session in sessions:
                session.command("NOOP", 200)
        times = {name: [] for name, _ in sessions}
        n = len(sessions)
        for i in range(count):
            for name, session in sessions[i % n:] + sessions[:i % n]:
                t0 = time.perf_counter_ns()
                session.sock.sendall(b"NOOP\r\n")
                code, text = read_reply(session.f)
                t1 = time.perf_counter_ns()
                if code != 200:
                    raise RuntimeError(f"{name}: NOOP: expected 200, got {text!r}")
                times[name].append((t1 - t0) / 1000)
        for _, session in sessions:
            session.quit()
        return {name: statistics.median(t) for name, t in times.items()}
    finally:
        for _, session in sessions:
            session.close()
        os.sched_setaffinity(0, everywhere)
        for srv in servers:
            _pin_tree(srv["pid"], everywhere)
