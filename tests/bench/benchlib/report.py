"""Rows and the markdown table: medians (min–max) per server, the ratio of rftpd to each
other server, the targets (issue 15) and the fast client's CPU share.

Pure formatting: it reads values the workloads collected and never talks to a server.
"""

import statistics

HIGHER, LOWER = "higher", "lower"


class Row:
    """One table row. `targets`: [(other server, ">=" or "<=", bound)] on rftpd / other.
    `ratio_base`: {server: row key} whose value that server's ratio is taken against (MLSD
    against vsftpd's LIST, vsftpd having no MLSD). `info`: shown, judged against nothing.
    `absolute`: a bound on rftpd's own median (the sessions row: 10,000)."""

    def __init__(self, key, title, unit, better, targets, reps, fn, ratio_base=None,
                 tls=False, info=False, absolute=None):
        self.key, self.title, self.unit, self.better = key, title, unit, better
        self.targets, self.reps, self.fn = targets or [], reps, fn
        self.ratio_base = ratio_base or {}
        self.tls, self.info, self.absolute = tls, info, absolute
        self.values = {}  # server name -> list of values
        self.cpu = {}  # server name -> list of client CPU shares (0..1 of the transfer time)
        self.errors = {}  # server name -> list of messages
        self.na = {}  # server name -> reason

    def add(self, name, result):
        value, cpu = result if isinstance(result, tuple) else (result, None)
        self.values.setdefault(name, []).append(value)
        if cpu is not None:
            self.cpu.setdefault(name, []).append(cpu)
        return value


def fmt(v):
    if v is None:
        return "n/a"
    if float(v).is_integer() or v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r):
    if r is None:
        return "n/a"
    return f"{r:.3f}" if 0.95 <= r <= 1.05 else f"{r:.2f}"


def summary(values):
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def cell(row, name):
    if name in row.na:
        return "n/a"
    s = summary(row.values.get(name, []))
    if s is None:
        return "failed" if row.errors.get(name) else "—"
    med, lo, hi = s
    out = f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"
    if row.errors.get(name):
        out += f" [{len(row.errors[name])} failed]"
    return out


def median_of(row, name):
    s = summary(row.values.get(name, []))
    return s[0] if s else None


def ratio(row, by_key, other):
    r = median_of(row, "rftpd")
    base = by_key[row.ratio_base[other]] if other in row.ratio_base else row
    v = median_of(base, other)
    return r / v if (r is not None and v) else None


def judge(row, by_key):
    """met / MISSED per target; a miss by < 3 % of a 1.0 target is called a tie."""
    if row.info:
        return ""
    out = []
    if row.absolute:
        r = median_of(row, "rftpd")
        out.append("n/a" if r is None else "met" if r >= row.absolute else "MISSED")
    for other, kind, bound in row.targets:
        q = ratio(row, by_key, other)
        if q is None:
            out.append(f"{other}: n/a")
            continue
        ok = q >= bound if kind == ">=" else q <= bound
        if ok:
            out.append(f"{other}: met")
        elif bound == 1.0 and abs(q - 1.0) < 0.03:
            out.append(f"{other}: tie (MISSED by < 3 %)")
        else:
            out.append(f"{other}: MISSED")
    return "; ".join(out)


def cpu_cell(row, names):
    if not row.cpu:
        return ""
    parts = []
    for n in names:
        vals = row.cpu.get(n)
        parts.append(f"{statistics.median(vals) * 100:.0f}" if vals else "–")
    return " / ".join(parts) + " %"


def build_table(rows, by_key, names):
    others = [n for n in names if n != "rftpd"]
    head = (["row", "unit"] + [f"{n} median (min–max)" for n in names]
            + [f"rftpd/{o}" for o in others] + ["target", "status",
                                                 "client CPU " + " / ".join(names)])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        target = "; ".join(f"{k} {b} × {o}" for o, k, b in row.targets) if not row.info else "(info)"
        if row.absolute:
            target = f"rftpd >= {row.absolute}"
        if row.ratio_base:
            target += " (" + ", ".join(f"{o}: its {by_key[k].title.split(' ')[0]}"
                                       for o, k in row.ratio_base.items()) + ")"
        cells = ([row.title, row.unit] + [cell(row, n) for n in names]
                 + [fmt_ratio(ratio(row, by_key, o)) if "rftpd" in names else "n/a" for o in others]
                 + [target, judge(row, by_key), cpu_cell(row, names)])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
