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
