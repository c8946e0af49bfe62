"""Command round trips on one logged-in session: NOOP, PWD, CWD (into a directory and back),
TYPE I, SIZE and MDTM of a small file (by its absolute path: the verbs take turns with the CWDs); `count` of each, timed one by one with
perf_counter_ns around the send and the read of its one reply, Nagle off.

The verbs take turns (NOOP, PWD, CWD, TYPE, SIZE, MDTM, NOOP, ...), so every verb is timed
over the same stretch of the session: this machine's wake-up latency changes in steps over
seconds (round trips of ~22, ~80 or ~320 µs for the same command), and verbs timed one after
the other would each see a different step.

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


def round_trips(srv, count):
    """{verb: (p50 µs, p90 µs)} for `count` round trips of each verb on one session."""
    session = Session(srv)
    out = {}
    try:
        send, f = session.sock.sendall, session.f
        for i in range(20):  # warm-up, untimed
            for verb in VERBS:
                line, want = _lines(verb, i)
                session.command(line, want)
        times = {verb: [] for verb in VERBS}
        for i in range(count):
            for verb in VERBS:
                line, want = _lines(verb, i)
                raw = line.encode() + b"\r\n"
                t0 = time.perf_counter_ns()
                send(raw)
                code, text = read_reply(f)
                t1 = time.perf_counter_ns()
                if code != want:
                    raise RuntimeError(f"{line}: expected {want}, got {text!r}")
                times[verb].append((t1 - t0) / 1000)
        if count % 2:
            session.command("CWD ..", 250)
        for verb in VERBS:
            out[verb] = (statistics.median(times[verb]), percentile(times[verb], 0.9))
        session.quit()
    finally:
        session.close()
    return out
