"""The big-file rows: the fast client's RETR/STOR (plain and TLS, random and zero-filled
file; the TLS rows with the C client `fastclient.c` unless `FAST_TLS_CLIENT=python`), curl's
(informational) and the loopback ceiling.

Runs as root in the benchmark's parent process; it deletes only the files its own uploads
created in a server user's home, and a scratch file in the data directory.
"""

import json
import os
import socket
import subprocess
import sys
import time

from benchlib.fastclient import receive_all
from benchlib.ftp import HOST

MB = 1_000_000
MIB = 1 << 20
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_through(path):
    """Read the file once (vmtouch-style) so that the transfer finds it in the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, 4 * MIB):
            pass
    finally:
        os.close(fd)


def warm_page_cache(directory, size):
    """Write and delete a scratch file a bit larger than the upload, right before it.

    On a VM with free page reporting (virtio-balloon), memory the guest freed a few seconds
    ago is handed back to the host, and the first write to it is slow (host page faults): the
    same 1 GiB upload then takes 1 s or 4 s depending on which pages the page cache gets. Writing
    (and freeing) a scratch file first makes every server's upload land on warm pages."""
    path = os.path.join(directory, "warm.tmp")
    buf = b"\1" * MIB
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(0, size + 256 * MIB, MIB):
            os.write(fd, buf)
    finally:
        os.close(fd)
        os.unlink(path)


def prepare_upload(srv, name, local):
    upload = os.path.join(srv["home"], name)
    if os.path.exists(upload):
        os.unlink(upload)
    os.sync()  # the previous upload's dirty pages must not slow this one
    warm_page_cache(os.path.dirname(local), os.stat(local).st_size)
    read_through(local)
    return upload


def check_upload(upload, size):
    got = os.stat(upload).st_size
    os.unlink(upload)
    if got != size:
        raise RuntimeError(f"uploaded file has {got} bytes, expected {size}")


def tls_client():
    """The C fast client for the TLS rows (run.sh compiles tests/bench/fastclient.c and names it
    in FAST_CLIENT_BIN), or None: `FAST_TLS_CLIENT=python` keeps benchlib.fastclient for them."""
    if os.environ.get("FAST_TLS_CLIENT", "c") == "python":
        return None
    return os.environ.get("FAST_CLIENT_BIN") or None


def fast_transfer(srv, direction, tls, local, size, rep):
    """One transfer with the fast client (TLS rows: fastclient.c unless FAST_TLS_CLIENT=python;
    plain rows: benchlib.fastclient). Returns (MB/s, client CPU / transfer time)."""
    remote = os.path.basename(local)
    upload = None
    if direction == "RETR":
        read_through(local)
    else:
        remote = f"upload_{rep}_{remote}"
        upload = prepare_upload(srv, remote, local)
    c_client = tls_client()
    if tls and c_client:
        # The C client (fastclient.c, OpenSSL): the password through the environment.
        cmd = [c_client, str(srv["port"]), srv["user"], direction, remote, local, str(size), "1"]
        env = dict(os.environ, FTP_PASSWORD=srv["password"])
    else:
        job = {"srv": {k: srv[k] for k in ("port", "user", "password")},
               "direction": direction, "tls": tls, "remote": remote, "local": local,
               "size": size}
        cmd = [sys.executable, "-m", "benchlib.fastclient", json.dumps(job)]
        env = None
    r = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True, timeout=900)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"fast client exit {r.returncode}: {r.stderr.strip()[-300:]}") from None
    if "error" in out:
        raise RuntimeError(f"fast client: {out['error']}")
    if out.get("reused") is False:
        print(f"note: {srv.get('name', srv['port'])}: the data connection's TLS did not resume "
              f"the control session ({out.get('version')} {out.get('cipher')})", file=sys.stderr)
    if out["bytes"] != size:
        raise RuntimeError(f"fast client moved {out['bytes']} bytes, expected {size}")
    if upload is not None:
        check_upload(upload, size)
    return size / out["seconds"] / MB, out["cpu"] / out["seconds"]


def curl_transfer(srv, direction, tls, local, size, rep):
    """RETR or STOR with curl (informational). Returns MB/s from curl's time_pretransfer
    (connected, logged in, EPSV answered) to curl's exit (226 and QUIT answered)."""
    url = f"ftp://{HOST}:{srv['port']}/"
    cmd = ["curl", "-sS", "--fail", "--user", f"{srv['user']}:{srv['password']}",
           "-w", "%{time_pretransfer} %{size_download} %{size_upload}"]
    if tls:
        cmd += ["--ssl-reqd", "-k"]
    upload = None
    if direction == "RETR":
        read_through(local)
        cmd += ["-o", "/dev/null", url + os.path.basename(local)]
    else:
        name = f"curl_upload_{rep}.bin"
        upload = prepare_upload(srv, name, local)
        cmd += ["-T", local, url + name]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"curl exit {r.returncode}: {r.stderr.strip()[:200]}")
    pre, down, up = r.stdout.split()
    moved = float(down) if direction == "RETR" else float(up)
    if int(moved) != size:
        raise RuntimeError(f"curl moved {moved} bytes, expected {size}")
    if upload is not None:
        check_upload(upload, size)
    return size / max(wall - float(pre), 1e-9) / MB


CEILING_SENDER = """
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
with open(path, "rb") as f:
    s.sendfile(f)
s.close()
"""


def loopback_ceiling(local, size):
    """Plain TCP on 127.0.0.1 without FTP: a sender process that sendfile()s the file (what a
    zero-copy server does) to the fast client's receive loop (1 MiB recv_into). MB/s from
    accept to EOF, and the receiver's CPU share as for the transfer rows."""
    read_through(local)
    lsock = socket.socket()
    try:
        lsock.bind((HOST, 0))
        lsock.listen(1)
        lsock.settimeout(60)
        port = lsock.getsockname()[1]
        sender = subprocess.Popen([sys.executable, "-c", CEILING_SENDER, str(port), local])
        conn, _ = lsock.accept()
        conn.settimeout(60)
        cpu0, t0 = os.times(), time.perf_counter()
        got = receive_all(conn, size)
        t1, cpu1 = time.perf_counter(), os.times()
        conn.close()
        sender.wait(timeout=60)
    finally:
        lsock.close()
    if got != size or sender.returncode != 0:
        raise RuntimeError(f"ceiling transfer failed: {got} bytes, sender exit {sender.returncode}")
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return size / (t1 - t0) / MB, cpu / (t1 - t0)
