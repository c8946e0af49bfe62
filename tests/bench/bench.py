#!/usr/bin/env python3
"""rftpd vs vsftpd vs pure-ftpd benchmark driver (standard library only).

Started by tests/bench/run.sh, which installs the servers, creates the users, builds rftpd,
writes the configurations and starts the servers. This script only talks to the running
servers (127.0.0.1 only), rotates the order of the servers in every repetition (A B C,
B C A, C A B, …) and prints a table of medians (min–max) with the ratio of rftpd to each other
server per row. The workloads are in benchlib/ (one module per kind of row).

Input: a JSON file (--setup) written by run.sh:
  {"servers": [{"name": "rftpd", "port": .., "pid": .., "user": .., "password": ..,
                "home": .., "tls": true/false, "max_cap": N or null}, ...],
   "big_file": PATH, "zero_file": PATH, "big_size": BYTES, "work": DIR,
   "machine": {...}, "notes": [...]}

Every workload is bounded in time (a duration per repetition) or count.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import commands, mirror, rates, sessions, transfer  # noqa: E402
from benchlib.report import HIGHER, LOWER, Row, build_table, fmt  # noqa: E402

MIB = 1 << 20
CLIENTS = 8


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def knob(name, default):
    return int(os.environ.get(name, default))


class Context:
    """What the rows share: setup, knobs, the ceilings measured alongside the RETR rows."""

    def __init__(self, setup):
        self.setup = setup
        self.servers = setup["servers"]
        self.names = [s["name"] for s in self.servers]
        self.files = {"random": setup["big_file"], "zero": setup["zero_file"]}
        self.size = setup["big_size"]
        self.work = setup["work"]
        self.reps, self.reps_big = knob("REPS", 5), knob("REPS_BIG", 5)
        self.reps_curl, self.reps_mem = knob("REPS_CURL", 2), knob("REPS_MEM", 3)
        self.reps_mirror = knob("REPS_MIRROR", 3)
        self.duration = knob("DURATION", 6)
        # The command round trips of each repetition, measured for all servers at once.
        self.round_trips = {}
        self.pinned = {}
        self.mem_sessions = knob("MEM_SESSIONS", 500)
        self.max_cap = knob("MAX_SESSIONS", 10000)
        self.max_budget = knob("MAX_SESSIONS_BUDGET", 420)
        self.cmd_count = knob("CMD_COUNT", 2000)
        self.ceiling = {"random": [], "zero": []}
        self.tls_ok = all(s["tls"] for s in self.servers)
        self.prepared = set()


def fast_row(ctx, direction, tls, kind):
    key = f"{direction.lower()}{'_tls' if tls else ''}{'_zero' if kind == 'zero' else ''}"
    size = "1 GiB" if ctx.size == 1 << 30 else f"{ctx.size / MIB:.0f} MiB"
    title = f"{direction} {size}, {'TLS' if tls else 'plain'}, {kind} file, fast client"
    if tls:
        targets = [("vsftpd", ">=", 2.0), ("pure-ftpd", ">=", 1.2)]
    else:
        targets = [("vsftpd", ">=", 1.0 if direction == "RETR" else 1.2)]
    local = ctx.files[kind]

    def run(srv, rep, first):
        if direction == "RETR" and not tls and first:
            # The loopback ceiling, in the same repetition as the servers' RETRs.
            ctx.ceiling[kind].append(transfer.loopback_ceiling(local, ctx.size)[0])
        return transfer.fast_transfer(srv, direction, tls, local, ctx.size, rep)

    return Row(key, title, "MB/s", HIGHER, targets, ctx.reps_big, run, tls=tls)


def curl_row(ctx, direction, tls):
    key = f"curl_{direction.lower()}{'_tls' if tls else ''}"
    title = f"(info) curl {direction}, {'TLS' if tls else 'plain'}, random file"
    return Row(key, title, "MB/s", HIGHER, None, ctx.reps_curl,
               lambda srv, rep, first: transfer.curl_transfer(
                   srv, direction, tls, ctx.files["random"], ctx.size, rep),
               tls=tls, info=True)


def prepare_homes(ctx, what):
    """Files some rows need in every home, made once: the mirror tree, the command files."""
    if what in ctx.prepared:
        return
    ctx.prepared.add(what)
    for srv in ctx.servers:
        if what == "mirror":
            mirror.make_tree(os.path.join(srv["home"], mirror.TREE), srv)
        else:
            d = os.path.join(srv["home"], commands.CMD_DIR)
            os.makedirs(d, exist_ok=True)
            rates.chown_to(d, srv)
            path = os.path.join(srv["home"], commands.CMD_FILE)
            with open(path, "wb") as fh:
                fh.write(b"x" * 1234)
            rates.chown_to(path, srv)
    if what == "mirror":
        mirror.make_tree(os.path.join(ctx.work, "data", "mirror_source"))


def round_trips_together(ctx, rep):
    """The command round trips of repetition `rep`, measured once for every running server
    together (their sessions take turns, `benchlib.commands`); a failure fails each server."""
    cache = ctx.round_trips
    if rep not in cache:
        prepare_homes(ctx, "cmd")
        running = [s for s in ctx.servers if os.path.exists(f"/proc/{s['pid']}")]
        try:
            cache[rep] = commands.round_trips(running, ctx.cmd_count)
        except Exception as e:  # noqa: BLE001
            cache[rep] = e
    if isinstance(cache[rep], Exception):
        raise cache[rep]
    return cache[rep]


def pinned_together(ctx, rep, same_cpu):
    """NOOP round trips of repetition `rep` with client and servers pinned
    (`benchlib.commands.pinned_noops`), once for every running server together."""
    cache = ctx.pinned
    key = (rep, same_cpu)
    if key not in cache:
        running = [s for s in ctx.servers if os.path.exists(f"/proc/{s['pid']}")]
        try:
            cache[key] = commands.pinned_noops(running, ctx.cmd_count, same_cpu)
        except Exception as e:  # noqa: BLE001
            cache[key] = e
    if isinstance(cache[key], Exception):
        raise cache[key]
    return cache[key]


def make_rows(ctx):
    c = ctx
    rows = [fast_row(c, d, t, k) for t in (False, True) for d in ("RETR", "STOR")
            for k in ("random", "zero")]
    rows += [curl_row(c, d, t) for t in (False, True) for d in ("RETR", "STOR")]
    vs = lambda op, b: [("vsftpd", op, b)]  # noqa: E731
    rows += [
        Row("logins", f"logins/s, {CLIENTS} clients", "logins/s", HIGHER, vs(">=", 1.0), c.reps,
            lambda srv, rep, first: rates.logins_per_second(srv, CLIENTS, c.duration)),
        Row("small1", "4 KiB STOR+RETR, 1 session", "files/s", HIGHER, vs(">=", 1.2), c.reps,
            lambda srv, rep, first: rates.small_files_per_second(srv, 1, c.duration)),
        Row("small8", f"4 KiB STOR+RETR, {CLIENTS} sessions", "files/s", HIGHER, vs(">=", 1.2),
            c.reps, lambda srv, rep, first: rates.small_files_per_second(srv, CLIENTS, c.duration)),
        Row("list", "LIST 10k entries", "ms", LOWER, vs("<=", 0.8), c.reps,
            lambda srv, rep, first: rates.listing_ms(srv, "LIST")),
        Row("nlst", "NLST 10k entries", "ms", LOWER, vs("<=", 0.8), c.reps,
            lambda srv, rep, first: rates.listing_ms(srv, "NLST")),
        Row("mlsd", "MLSD 10k entries", "ms", LOWER, vs("<=", 0.8), c.reps,
            lambda srv, rep, first: rates.listing_ms(srv, "MLSD"), ratio_base={"vsftpd": "list"}),
    ]
    driver = Row("cmd", "command round trips", "µs", LOWER, None, c.reps,
                 lambda srv, rep, first: round_trips_together(c, rep)[srv["name"]])
    driver.fanout = {}
    for verb in commands.VERBS:
        label = {"cwd": "CWD dir / CWD ..", "type": "TYPE I", "size": "SIZE file",
                 "mdtm": "MDTM file"}.get(verb, verb.upper())
        sub = Row(f"cmd_{verb}", f"round trip {label}, p50 of {c.cmd_count}", "µs", LOWER,
                  vs("<=", 1.0), c.reps, None)
        sub.p90 = {}
        driver.fanout[verb] = sub
    rows.append(driver)
    rows += list(driver.fanout.values())
    for same_cpu, where in ((True, "on the client's CPU"), (False, "on the other CPU")):
        rows.append(Row(f"cmd_pin_{'same' if same_cpu else 'other'}",
                        f"(info) round trip NOOP, p50 of {c.cmd_count}, server pinned {where}",
                        "µs", LOWER, None, c.reps,
                        lambda srv, rep, first, s=same_cpu: pinned_together(c, rep, s)[srv["name"]],
                        info=True))

    def mirror_fn(up, parallel):
        def run(srv, rep, first):
            prepare_homes(c, "mirror")
            if up:
                return mirror.mirror_upload(srv, os.path.join(c.work, "data", "mirror_source"),
                                            parallel, rep)
            return mirror.mirror_download(srv, c.work, parallel, rep)
        return run

    n = mirror.DIRS * mirror.FILES_PER_DIR
    rows += [
        Row("mirror", f"lftp mirror, {n} files / {mirror.DIRS} dirs, parallel 1", "s", LOWER,
            None, c.reps_mirror, mirror_fn(False, 1)),
        Row("mirror4", f"lftp mirror, {n} files / {mirror.DIRS} dirs, parallel 4", "s", LOWER,
            None, c.reps_mirror, mirror_fn(False, 4)),
        Row("mirror_r", f"lftp mirror -R, {n} files / {mirror.DIRS} dirs, parallel 1", "s",
            LOWER, None, c.reps_mirror, mirror_fn(True, 1)),
        Row("mem", f"PSS per idle session, {c.mem_sessions} sessions", "MiB", LOWER,
            vs("<=", 0.8), c.reps_mem,
            lambda srv, rep, first: sessions.idle_session_pss(srv, c.mem_sessions)),
        Row("max", f"sessions held at once (cap {c.max_cap}; vsftpd 2000)", "sessions", HIGHER,
            None, 1, lambda srv, rep, first: sessions.max_sessions(
                srv, min(c.max_cap, srv.get("max_cap") or c.max_cap), c.max_budget),
            absolute=10_000),
    ]
    return rows


def run_row(ctx, row):
    log(f"row {row.title}: {row.reps} reps each, order rotated")
    n = len(ctx.servers)
    for rep in range(row.reps):
        order = ctx.servers[rep % n:] + ctx.servers[:rep % n]
        for i, srv in enumerate(order):
            name = srv["name"]
            if name in row.na:
                continue
            if not os.path.exists(f"/proc/{srv['pid']}"):
                row.errors.setdefault(name, []).append("server not running")
                continue
            try:
                result = row.fn(srv, rep, i == 0)
                if isinstance(result, dict):  # the command round trips: one value per verb
                    for verb, (p50, p90) in result.items():
                        row.fanout[verb].add(name, p50)
                        row.fanout[verb].p90.setdefault(name, []).append(p90)
                    shown = ", ".join(f"{v} {p50:.0f}/{p90:.0f}" for v, (p50, p90) in result.items())
                    log(f"  {row.key} rep {rep + 1} {name}: p50/p90 µs {shown}")
                else:
                    v = row.add(name, result)
                    log(f"  {row.key} rep {rep + 1} {name}: {fmt(v)} {row.unit}")
            except Exception as e:  # noqa: BLE001
                for r in getattr(row, "fanout", {}).values() or [row]:
                    r.errors.setdefault(name, []).append(str(e))
                log(f"  {row.key} rep {rep + 1} {name}: FAILED: {e}")
    rates.remove_scratch_dirs()


def ceiling_lines(ctx, by_key):
    """The loopback ceilings and each server's RETR as a share of them, padded to the table."""
    width = 2 + len(ctx.names) + (len(ctx.names) - 1) + 3
    out = []
    for kind, values in ctx.ceiling.items():
        if not values:
            continue
        med = statistics.median(values)
        cells = [f"loopback ceiling, {kind} file (sendfile() sender to the fast client, no FTP)",
                 "MB/s", f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"]
        out.append(cells)
        row = by_key[f"retr{'_zero' if kind == 'zero' else ''}"]
        cells = [f"RETR plain, {kind} file / loopback ceiling", "× ceiling"]
        for name in ctx.names:
            vals = row.values.get(name)
            cells.append(f"{statistics.median(vals) / med:.2f}" if vals else "n/a")
        cells += [""] * (len(ctx.names) - 1)
        r = row.values.get("rftpd")
        cells += ["rftpd >= 0.95 × ceiling",
                  ("met" if statistics.median(r) / med >= 0.95 else "MISSED") if r else ""]
        out.append(cells)
    return ["| " + " | ".join(c + [""] * (width - len(c))) + " |" for c in out]


def details(ctx, rows):
    out = []
    for s in ctx.servers:
        for d in s.get("pss_detail", []):
            out.append(f"{s['name']} memory: {d['total_kib'] / 1024:.0f} MiB PSS in "
                       f"{d['processes']} processes with {d['sessions']} sessions quiet for "
                       f"{d['quiet_s']} s ({d['after_command_kib'] / 1024:.0f} MiB right after "
                       f"a NOOP to each; idle server: "
                       f"{d['idle_total_kib'] / 1024:.1f} MiB in {d['idle_processes']} processes)")
        for d in s.get("max_detail", []):
            out.append(f"{s['name']} sessions held: opened {d['opened']} of {d['cap']} in "
                       f"{d['seconds']} s, {d['alive']} answered NOOP, {d['processes']} server "
                       f"processes while held, errors {d['errors']}"
                       + (f", first: {d['first_error']}" if d["first_error"] else "")
                       + ("" if d["settled"] else "; the process tree had not shrunk back 300 s later"))
    for row in rows:
        if hasattr(row, "p90") and row.p90:
            out.append(f"{row.title.replace('p50', 'p90')}: " + ", ".join(
                f"{n} {statistics.median(v):.0f} µs" for n, v in row.p90.items()))
        for name, errs in row.errors.items():
            out.append(f"{row.title} / {name}: {len(errs)} failed repetitions; first: {errs[0]}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--setup", required=True)
    ap.add_argument("--out", default=None, help="write the markdown report here too")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--only", default="", help="comma-separated row keys")
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with open(args.setup) as fh:
        ctx = Context(json.load(fh))
    notes = list(ctx.setup.get("notes", []))
    if not ctx.tls_ok:
        notes.append("TLS rows: n/a (" + "; ".join(
            f"{s['name']}: {s.get('tls_reason', '')}" for s in ctx.servers if not s["tls"]) + ")")
    rows = make_rows(ctx)
    by_key = {r.key: r for r in rows}
    if "vsftpd" in ctx.names:
        by_key["mlsd"].na["vsftpd"] = "vsftpd has no MLSD"
    only = {k for k in args.only.split(",") if k}
    if any(k.startswith("cmd_") for k in only):
        only.add("cmd")

    def wanted(r):
        return not only or r.key in only or (r.key.startswith("cmd_") and "cmd" in only)


    t_start = time.monotonic()
    for row in rows:
        if not wanted(row) or row.fn is None:
            continue
        if row.tls and not ctx.tls_ok:
            for name in ctx.names:
                row.na[name] = "no TLS"
            continue
        run_row(ctx, row)
    elapsed = time.monotonic() - t_start

    shown = [r for r in rows if wanted(r) and r.key != "cmd"]
    table = build_table(shown, by_key, ctx.names) + "\n" + "\n".join(ceiling_lines(ctx, by_key))
    m = ctx.setup.get("machine", {})
    header = [
        f"Machine: {m.get('nproc')} CPUs, {m.get('cpu')}, kernel {m.get('kernel')}, "
        f"{m.get('mem')}; date {m.get('date')}; load average at start {m.get('load')}.",
        "Versions: " + "; ".join(m.get("versions", [])) + ".",
        f"Repetitions: {ctx.reps_big} per 1 GiB row, {ctx.reps_curl} per curl row, {ctx.reps} "
        f"per rate/listing/command row ({ctx.duration} s per rate rep, {ctx.cmd_count} per verb), "
        f"{ctx.reps_mirror} per mirror row, {ctx.reps_mem} for memory, 1 for sessions held "
        f"(cap {ctx.max_cap}, {ctx.max_budget} s budget); server order rotated per repetition; "
        f"run time of the measurements {elapsed / 60:.1f} min.",
        "Client CPU: the fast client's user+system CPU time over its transfer time "
        "(100 % = one core busy: the client, not the server, may be the limit).",
    ]
    report = "\n".join(header) + "\n\n" + table.rstrip() + "\n"
    if notes:
        report += "\nNotes:\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    more = details(ctx, shown)
    if more:
        report += "\nDetails:\n" + "\n".join(f"- {d}" for d in more) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"rows": {r.key: {"title": r.title, "values": r.values, "cpu": r.cpu,
                                        "errors": r.errors} for r in shown},
                       "ceiling": ctx.ceiling,
                       "servers": [{k: v for k, v in s.items() if k != "password"}
                                   for s in ctx.servers]}, fh, indent=1)


if __name__ == "__main__":
    main()
