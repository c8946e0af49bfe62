#!/usr/bin/env python3
"""Where an FTP server's memory per idle session goes: opens N logged-in sessions, then sums
the PSS of every mapping of every process under the server's main pid, by process name and
mapping, divided by N. Run as root (it reads /proc/PID/smaps of the server's processes).

    python3 tests/bench/pss_breakdown.py --pid MASTER_PID --port 21 \
        --user NAME --password SECRET [--sessions 100] [--top 30]

Works for rftpd (names rftpd, rftpd-spawner, rftpd-monitor, rftpd-worker) and vsftpd alike.
The sessions stay open until the report is printed, then close. Loopback only (127.0.0.1).
"""

import argparse
import collections
import re
import socket
import time

from benchlib.sessions import descendants  # the same process-tree walk as the memory row


def read_reply(f):
    line = f.readline()
    code = line[:3]
    if line[3:4] == "-":
        while not (line.startswith(code) and line[3:4] == " "):
            line = f.readline()
            if not line:
                break
    return line


def login(port, user, password):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("r", encoding="latin-1", newline="\r\n")
    read_reply(f)
    s.sendall(f"USER {user}\r\n".encode())
    read_reply(f)
    s.sendall(f"PASS {password}\r\n".encode())
    reply = read_reply(f)
    if not reply.startswith("230"):
        raise SystemExit(f"login failed: {reply.strip()}")
    s.sendall(b"PWD\r\n")
    read_reply(f)
    return s, f


def breakdown(pids):
    by_mapping = collections.Counter()
    by_process = collections.Counter()
    count = collections.Counter()
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as fh:
                comm = fh.read().strip()
            with open(f"/proc/{pid}/smaps") as fh:
                lines = fh.readlines()
        except OSError:
            continue
        count[comm] += 1
        name = None
        for line in lines:
            if header.match(line):
                parts = line.split()
                name = (parts[5] if len(parts) > 5 else "[anonymous]") + " " + parts[1]
            elif line.startswith("Pss:"):
                kib = int(line.split()[1])
                by_mapping[(comm, name)] += kib
                by_process[comm] += kib
    return count, by_process, by_mapping


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pid", type=int, required=True, help="the server's main pid")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds to wait after the last login (idle helper threads exit)")
    a = ap.parse_args()

    held = [login(a.port, a.user, a.password) for _ in range(a.sessions)]
    time.sleep(a.settle)
    count, by_process, by_mapping = breakdown(descendants(a.pid))
    n = a.sessions
    print(f"processes: {dict(count)}")
    print(f"total: {sum(by_process.values()) / n:.1f} KiB PSS per session ({n} sessions)")
    for comm, kib in by_process.most_common():
        print(f"  {comm:16s} {kib / n:8.1f} KiB per session")
    print(f"largest mappings (KiB per session):")
    for (comm, name), kib in by_mapping.most_common(a.top):
        print(f"  {kib / n:8.1f}  {comm:16s} {name}")
    for s, _ in held:
        try:
            s.sendall(b"QUIT\r\n")
            s.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
