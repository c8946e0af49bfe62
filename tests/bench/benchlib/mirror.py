"""The many-small-operations rows: `lftp mirror` (download) and `mirror -R` (upload) of a tree
of 2,000 small files in 200 directories, wall time of the lftp process.

The tree is made once per home (make_tree); downloads land in a scratch directory under the
benchmark's work directory and uploads in a new directory of the user's home; both are removed
after the row (benchlib.rates.remove_scratch_dirs). lftp is told not to use TLS.
"""

import os
import subprocess
import time

from benchlib.ftp import HOST
from benchlib.rates import SCRATCH_DIRS, chown_to

TREE = "tree"
DIRS = 200
FILES_PER_DIR = 10


def make_tree(root, srv=None):
    """DIRS directories of FILES_PER_DIR files of 1–4 KiB each (owned by srv's user if given)."""
    os.mkdir(root, 0o755)
    if srv:
        chown_to(root, srv)
    for d in range(DIRS):
        sub = os.path.join(root, f"d{d:03d}")
        os.mkdir(sub, 0o755)
        if srv:
            chown_to(sub, srv)
        for i in range(FILES_PER_DIR):
            path = os.path.join(sub, f"f{i}.dat")
            with open(path, "wb") as fh:
                fh.write(bytes([i + d & 0xFF]) * (1024 + (d * 37 + i * 301) % 3072))
            if srv:
                chown_to(path, srv)


def count_files(root):
    n = 0
    for _, _, files in os.walk(root):
        n += len(files)
    return n


def lftp(srv, script, timeout=600):
    setup = ("set ftp:ssl-allow no; set cache:enable no; set net:max-retries 1; "
             "set net:timeout 60; set ftp:passive-mode yes; set cmd:fail-exit yes; "
             f"open -u {srv['user']},{srv['password']} ftp://{HOST}:{srv['port']}; ")
    t0 = time.monotonic()
    r = subprocess.run(["lftp", "-c", setup + script], capture_output=True, text=True,
                       timeout=timeout)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"lftp exit {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
    return wall


def mirror_download(srv, work, parallel, rep):
    dest = os.path.join(work, f"mirror_{srv['name']}_{parallel}_{rep}")
    SCRATCH_DIRS.append(dest)
    wall = lftp(srv, f"mirror --parallel={parallel} {TREE} {dest}")
    got = count_files(dest)
    if got != DIRS * FILES_PER_DIR:
        raise RuntimeError(f"mirror: {got} files arrived, expected {DIRS * FILES_PER_DIR}")
    return wall


def mirror_upload(srv, source, parallel, rep):
    name = f"up_{parallel}_{rep}"
    dest = os.path.join(srv["home"], name)
    SCRATCH_DIRS.append(dest)
    wall = lftp(srv, f"mirror -R --parallel={parallel} {source} {name}")
    got = count_files(dest)
    if got != DIRS * FILES_PER_DIR:
        raise RuntimeError(f"mirror -R: {got} files arrived, expected {DIRS * FILES_PER_DIR}")
    return wall
