#!/usr/bin/env python3
"""CPU time an FTP server's process tree spends per login (profiling aid, not run by run.sh):
N sequential logins (USER, PASS, QUIT), then the change of utime+stime+cutime+cstime of the
given pids — sessions, once reaped, count in their parent's c-fields: give rftpd's master and
spawner pids, vsftpd's or pure-ftpd's listener pid. Also prints the whole machine's busy CPU
per login (includes other load). Loopback only; run against a `BENCH_KEEP=1` run of run.sh:

    python3 tests/bench/login_cpu.py PORT USER PASSWORD N PID[,PID...]
"""
import os, socket, sys, time
port, user, pw, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
pids = [int(p) for p in sys.argv[5].split(",")]
tck = os.sysconf("SC_CLK_TCK")
def tree_cpu():
    tot = 0
    for p in pids:
        f = open(f"/proc/{p}/stat").read()
        v = f[f.rfind(")") + 2:].split()
        tot += sum(int(x) for x in v[11:15])
    return tot / tck
def stat_total():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / tck
def login():
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    def rd():
        l = f.readline()
        while l[3:4] == b"-": l = f.readline()
        return l
    rd(); s.sendall(f"USER {user}\r\n".encode()); assert rd()[:3] == b"331"
    s.sendall(f"PASS {pw}\r\n".encode()); r = rd(); assert r[:3] == b"230", r
    s.sendall(b"QUIT\r\n"); rd(); f.read(); s.close()
for _ in range(5): login()
time.sleep(1.0)
c0, s0, t0 = tree_cpu(), stat_total(), time.time()
for _ in range(n): login()
time.sleep(1.5)
c1, s1, t1 = tree_cpu(), stat_total(), time.time()
print(f"port {port}: {1000*(c1-c0)/n:.1f} ms tree CPU per login; {1000*(s1-s0)/n:.1f} ms machine CPU per login; {n/(t1-t0-1.5):.1f} logins/s sequential")
