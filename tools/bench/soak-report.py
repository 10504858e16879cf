"""The report of tools/bench/soak: memory over the steady phase, the
deliveries, the latency by 5-minute windows, and a verdict.

    python3 tools/bench/soak-report.py OUT_DIR [--results RESULTS.md]
    python3 tools/bench/soak-report.py --keep FROM.md INTO.md

OUT_DIR holds what the soak wrote: samples.txt ("sample <unix time>
<workers' pids> <each worker's RSS> <Redis RSS> <FerretDB RSS> <Redis
used_memory> [<each worker's RssShmem>]", KB), loadgen.txt (its "tick" lines, then its totals),
meta.txt, alerts.txt.  Prints the section as Markdown; with --results,
puts it in place of the "## Soak" section of that file (or at its end).
With --keep (tools/bench/run, which writes RESULTS.md anew): the Soak
section of FROM.md, if any, into INTO.md.

The verdict: memory flat when no worker's RSS at the end of the steady
phase exceeds its RSS at the phase's start by 2 MB or more (see
WORKER_LIMIT_KB), and nothing is missing (every delivery expected
arrived, no gap, no repeat).
"""

import argparse
import os
import re
import sys

WARMUP_S = 120          # the steady phase starts at the 2nd minute
WINDOW_S = 300          # latency windows
# A worker's RSS may grow by less than this over the steady phase.  An
# absolute figure, not a share: a worker's RSS here is mostly code,
# libraries and the sockets' buffers, and what a leak would add grows
# with the messages, not with that base.  At the default load (100
# messages a second for 28 minutes: about 168,000 messages, half each
# worker's) 2 MB is about 25 bytes a message per worker: any allocation
# of a message's path left behind (an NGINX pool is 1 KB at least, a
# JSON object of the message a few hundred bytes) would pass it many
# times over, while malloc's arenas settling stay well below it.
WORKER_LIMIT_KB = 2048


def kv(path):
    d = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition(" ")
                d[k] = v
    return d


def load(out):
    samples, ticks = [], []
    with open(os.path.join(out, "samples.txt")) as f:
        for line in f:
            a = line.split()
            if len(a) < 4 or a[0] != "sample":
                continue
            pids = a[2].split(",")
            vals = [int(x) for x in a[3:]]
            n = len(pids)
            if len(vals) < n + 3:
                continue
            samples.append({"t": int(a[1]), "pids": pids,
                            "workers": vals[:n], "redis": vals[n],
                            "ferretdb": vals[n + 1],
                            "redis_used": vals[n + 2],
                            "shmem": vals[n + 3:2 * n + 3] or None})
    totals = {}
    with open(os.path.join(out, "loadgen.txt")) as f:
        for line in f:
            a = line.split()
            if not a:
                continue
            if a[0] == "tick":
                ticks.append({"t": int(a[1]), "el": float(a[2]),
                              "sent": int(a[3]), "expected": int(a[4]),
                              "received": int(a[5]), "gaps": int(a[6]),
                              "dups": int(a[7]), "closed": int(a[8]),
                              "p50": int(a[9]), "p99": int(a[10]),
                              "max": int(a[11])})
            elif len(a) == 2:
                totals[a[0]] = a[1]
    return samples, ticks, totals


def slope(pts):
    """least squares, y per x"""
    n = len(pts)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def mb(kb):
    return f"{kb / 1024:.1f}"


def report(out):
    samples, ticks, totals = load(out)
    meta = kv(os.path.join(out, "meta.txt"))
    lines = []
    p = lines.append

    if not ticks or not samples:
        return "## Soak\n\nNo samples (the soak did not run to its end).\n", \
            False

    # the window's start in wall time: a tick says how far into it it is
    w0 = ticks[0]["t"] - ticks[0]["el"]
    dur = float(meta.get("minutes", 0)) * 60 or ticks[-1]["el"]
    for s in samples:
        s["el"] = s["t"] - w0

    load_s = [s for s in samples if 0 <= s["el"] <= dur + 1]
    steady = [s for s in load_s if s["el"] >= WARMUP_S]
    if len(steady) < 2:
        steady = load_s
    first, last = steady[0], steady[-1]
    respawned = first["pids"] != last["pids"]

    rows = []
    flat = True
    names = [f"worker {i + 1}" for i in range(len(first["workers"]))]
    for i, name in enumerate(names):
        same = [s for s in steady if s["pids"] == first["pids"]]
        a = first["workers"][i]
        b = same[-1]["workers"][i]
        mx = max(s["workers"][i] for s in same)
        sl = slope([(s["el"] / 60, s["workers"][i]) for s in same])
        ok = b - a < WORKER_LIMIT_KB
        flat = flat and ok
        sh = None
        if first["shmem"] and same[-1]["shmem"]:
            sh = same[-1]["shmem"][i] - first["shmem"][i]
        rows.append((name, a, b, b - a, sl, mx, ok, sh))
    for key, name in (("redis", "Redis"), ("ferretdb", "FerretDB"),
                      ("redis_used", "Redis `used_memory`")):
        a, b = first[key], last[key]
        mx = max(s[key] for s in steady)
        sl = slope([(s["el"] / 60, s[key]) for s in steady])
        rows.append((name, a, b, b - a, sl, mx, None, None))

    sent = int(totals.get("published", ticks[-1]["sent"]))
    expected = int(totals.get("expected", ticks[-1]["expected"]))
    received = int(totals.get("received", ticks[-1]["received"]))
    missing = expected - received
    gaps = int(totals.get("gaps", 0))
    dups = int(totals.get("dups", 0))
    closed = int(totals.get("closed", 0))
    alerts = open(os.path.join(out, "alerts.txt")).read().strip() \
        if os.path.exists(os.path.join(out, "alerts.txt")) else "?"
    nothing_missing = missing == 0 and gaps == 0 and dups == 0 \
        and closed == 0
    verdict = flat and nothing_missing and not respawned

    mins = dur / 60
    p("## Soak")
    p("")
    p(f"`{meta.get('command', 'tools/bench/soak')}` at "
      f"`{meta.get('commit', '?')}`: {meta.get('conns')} authenticated "
      f"WebSockets (our protocol, {meta.get('procs')} load generator "
      f"processes) in rooms of {meta.get('room')}, each room's first "
      f"member sending (`send_message`: stored in FerretDB, then fanned "
      f"out to the room) for {mins:g} minute{'s' if mins != 1 else ''}, "
      f"{meta.get('rate')} messages a second in all "
      f"({int(float(meta.get('rate', 0)) * int(meta.get('room', 0))):,} "
      f"deliveries a second); 2 NGINX workers, Redis and FerretDB as "
      f"`tools/bench/run` starts them, everything niced.  RSS (VmRSS) "
      f"sampled every {meta.get('tick')} s; the steady phase is from the "
      f"2nd minute (the first fills the 60-second `st:*` keys of the "
      f"tempIds and the caches) to the end.")
    p("")
    p(f"Machine: {meta.get('nproc')} cores, {meta.get('memory')} of "
      f"memory, "
      f"kernel {meta.get('kernel')}, **shared** with other engineers' "
      f"builds, tests and fuzzers (load average "
      f"{meta.get('load_before')} before, {meta.get('load_after')} "
      f"after); the soak's own load is moderate on purpose: the figure is "
      f"about flatness, not throughput.")
    p("")
    p("| process | RSS at 2 min (MB) | at the end (MB) | change (KB) "
      "| of it shared memory (KB) | slope (KB/min) | max (MB) "
      "| flat (< 2 MB) |")
    p("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, a, b, d, sl, mx, ok, sh in rows:
        p(f"| {name} | {mb(a)} | {mb(b)} | {d:+,} "
          f"| {'—' if sh is None else f'{sh:+,}'} | {sl:+.1f} | {mb(mx)} "
          f"| {'yes' if ok else 'no' if ok is not None else '—'} |")
    p("")
    p("RSS is `VmRSS`; a worker's shared memory (`RssShmem`: the "
      "module's zones, one copy for every worker) counts in a worker's "
      "RSS once that worker has touched its pages (the metrics page reads "
      "every worker's slots), a step, not a growth.")
    p("")
    if respawned:
        p(f"A worker was replaced during the run: pids {first['pids']} "
          f"at the start, {last['pids']} at the end.")
        p("")
    p(f"Deliveries: {sent:,} messages sent, {expected:,} deliveries "
      f"expected, {received:,} delivered, **{missing:,} missing**, "
      f"{gaps} gaps, {dups} repeats, {closed} sockets closed; "
      f"[alert]/[crit]/[emerg] lines in the error log: {alerts}.")
    p("")
    p("| window (min) | messages | deliveries | p50 (ms) | p99 (ms) "
      "| max (ms) |")
    p("|---|---:|---:|---:|---:|---:|")
    # p50 and p99 of a window: the ticks' own, weighted by deliveries;
    # the max is exact
    prev = {"sent": 0, "received": 0}
    win = {}
    for t in ticks:
        k = min(int((t["el"] - 0.001) // WINDOW_S), int(dur // WINDOW_S) - 1)
        k = max(k, 0)
        w = win.setdefault(k, {"sent": 0, "recv": 0, "p50": [], "p99": [],
                               "max": 0})
        dr = t["received"] - prev["received"]
        w["sent"] += t["sent"] - prev["sent"]
        w["recv"] += dr
        w["p50"].append((t["p50"], dr))
        w["p99"].append((t["p99"], dr))
        w["max"] = max(w["max"], t["max"])
        prev = t

    def wq(pts):
        n = sum(c for _, c in pts)
        if not n:
            return 0
        return sum(v * c for v, c in pts) / n

    for k in sorted(win):
        w = win[k]
        p(f"| {k * 5}–{(k + 1) * 5} | {w['sent']:,} | {w['recv']:,} "
          f"| {wq(w['p50']) / 1000:.1f} | {wq(w['p99']) / 1000:.1f} "
          f"| {w['max'] / 1000:.1f} |")
    p("")
    p("A window's p50 and p99 are the means of its 10-second ticks' own, "
      "weighted by their deliveries (quantiles do not add); the whole "
      f"run's: p50 {int(totals.get('latency_p50_us', 0)) / 1000:.1f} ms, "
      f"p99 {int(totals.get('latency_p99_us', 0)) / 1000:.1f} ms, "
      f"max {int(totals.get('latency_max_us', 0)) / 1000:.1f} ms.")
    p("")
    steady_msgs = sent * (dur - WARMUP_S) / dur if dur > WARMUP_S \
        else sent
    per_msg = WORKER_LIMIT_KB * 1024 / max(steady_msgs / len(names), 1)
    p(f"**Verdict: "
      f"{'memory flat, nothing missing' if verdict else 'NOT flat, or something missing'}"
      ".**  The threshold is a worker's RSS growing by less than 2 MB "
      "over the steady phase: an absolute figure rather than 5%, since a "
      "worker's RSS is mostly code, libraries and socket buffers, and "
      "what a leak adds grows with the messages, not with that base. "
      f"Over this run's steady phase (about {steady_msgs:,.0f} messages, "
      f"half through each worker) 2 MB is {per_msg:.0f} bytes a message "
      "per worker" + (": any allocation of a message's path left behind "
                      "(an NGINX pool is 1 KB at least, the message's JSON "
                      "a few hundred bytes) would pass it many times over."
                      if per_msg < 100 else
                      ": too short a run to rule out a small leak."))
    return "\n".join(lines) + "\n", verdict


def splice(path, section):
    text = open(path).read() if os.path.exists(path) else ""
    m = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, re.S | re.M)
    if m:
        text = text[:m.start()] + section + "\n" + text[m.end():]
        text = text.rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def section_of(path):
    text = open(path).read() if os.path.exists(path) else ""
    m = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, re.S | re.M)
    return m.group(0).rstrip("\n") + "\n" if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?")
    ap.add_argument("--results")
    ap.add_argument("--keep", nargs=2, metavar=("FROM", "INTO"))
    a = ap.parse_args()
    if a.keep:
        section = section_of(a.keep[0])
        if section:
            splice(a.keep[1], section)
        return
    if not a.out:
        ap.error("OUT_DIR is needed")
    section, verdict = report(a.out)
    sys.stdout.write(section)
    if a.results:
        splice(a.results, section)
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
