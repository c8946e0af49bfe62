"""Command round trips on one logged-in session: NOOP, PWD, CWD (into a directory and back),
TYPE I, SIZE and MDTM of a small file; `count` of each, timed one by one with
perf_counter_ns around the send and the read of its one reply, Nagle off.

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
        return f"SIZE {CMD_FILE}", 213
    return f"MDTM {CMD_FILE}", 213


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def round_trips(srv, count):
    """{verb: (p50 µs, p90 µs)} for `count` round trips of each verb on one session."""
    session = Session(srv)
    out = {}
    try:
        send, f = session.sock.sendall, session.f
        for verb in VERBS:
            for i in range(20):  # warm-up, untimed
                line, want = _lines(verb, i)
                session.command(line, want)
            times = []
            for i in range(count):
                line, want = _lines(verb, i)
                raw = line.encode() + b"\r\n"
                t0 = time.perf_counter_ns()
                send(raw)
                code, text = read_reply(f)
                t1 = time.perf_counter_ns()
                if code != want:
                    raise RuntimeError(f"{line}: expected {want}, got {text!r}")
                times.append((t1 - t0) / 1000)
            if verb == "cwd" and count % 2:
                session.command("CWD ..", 250)
            out[verb] = (statistics.median(times), percentile(times, 0.9))
        session.quit()
    finally:
        session.close()
    return out
