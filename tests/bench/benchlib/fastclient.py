"""The fast transfer client: one RETR or STOR of a big file, in its own process, so that its
CPU time is its own and the parent's bookkeeping does not slow it.

    python3 -m benchlib.fastclient '{"srv": {...}, "direction": "RETR", "tls": false,
                                     "remote": "big.bin", "local": "/path", "size": N}'

Prints one JSON object: seconds (from sending RETR/STOR to the 221 of QUIT, so whatever a
server does to finish the file after its 226 is inside), bytes, cpu (user + system seconds of
this process over the same interval, from getrusage). RETR reads into one 1 MiB buffer with
recv_into; a plain STOR uses socket.sendfile (the kernel's sendfile), a TLS STOR sendall()s
1 MiB memoryview slices read with readinto. It never writes what it receives anywhere.
"""

import json
import os
import resource
import socket
import ssl
import sys
import time

from benchlib.ftp import Session, read_reply

CHUNK = 1 << 20


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def receive_all(data, limit):
    """recv_into a 1 MiB buffer until EOF; at most `limit` + 1 MiB bytes are accepted."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    got = 0
    while got <= limit:
        try:
            n = data.recv_into(view)
        except ssl.SSLEOFError:  # a peer that closes without close_notify
            break
        if n == 0:
            break
        got += n
    return got


def send_file(data, path, tls):
    with open(path, "rb") as fh:
        if not tls:
            return data.sendfile(fh)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        sent = 0
        while True:
            n = fh.readinto(buf)
            if not n:
                return sent
            data.sendall(view[:n])
            sent += n


def close_data(data, tls):
    if tls:
        try:
            data.unwrap()  # close_notify, as curl sends it
        except (OSError, ssl.SSLError, ValueError):
            pass
    data.close()


def transfer(job):
    srv, direction, tls = job["srv"], job["direction"], job["tls"]
    session = Session(srv, tls=tls)
    try:
        data = session.open_data()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        session.send(f"{direction} {job['remote']}")
        data = session.wrap_data(data)
        code, line = read_reply(session.f)
        if code not in (125, 150):
            raise RuntimeError(f"{direction}: expected 150, got {line!r}")
        if direction == "RETR":
            moved = receive_all(data, job["size"])
        else:
            moved = send_file(data, job["local"], tls)
            if not tls:
                data.shutdown(socket.SHUT_WR)
        close_data(data, tls)
        code, line = read_reply(session.f)
        if code != 226:
            raise RuntimeError(f"{direction}: expected 226, got {line!r}")
        session.command("QUIT", 221)
        t1, cpu1 = time.perf_counter(), cpu_seconds()
    finally:
        session.close()
    return {"seconds": t1 - t0, "bytes": moved, "cpu": cpu1 - cpu0}


def main():
    job = json.loads(sys.argv[1])
    try:
        out = transfer(job)
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"error": repr(e)[:300]}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
