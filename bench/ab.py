#!/usr/bin/env python3
"""A/B timing of two bv builds on the same command, for changes on a hot path.

    bench/ab.py BEFORE_BV BEFORE_PROJECT AFTER_BV AFTER_PROJECT RUNS ARGS...
    e.g. bench/ab.py /tmp/bv-old /tmp/p-old build/bv /tmp/p-new 200 run samtools --version

Each build runs in its own project directory (shims link to the bv that wrote them, so a
warm `bv sync` of one build would rewrite the other's).  The two alternate, in alternating
order, so load from other processes falls on both alike; the first 5 rounds are warm-up.
Reports wall time (min, p10, median) and CPU time (user + sys of the child, from wait4(2)),
which waiting for a busy CPU does not inflate: on a shared machine compare CPU time and the
low wall percentiles, not means.
"""
import os
import statistics
import subprocess
import sys
import time


def quantile(values, f):
    values = sorted(values)
    return values[int(f * (len(values) - 1))]


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    runs = int(sys.argv[5])
    sides = {"before": (sys.argv[1], sys.argv[2]), "after": (sys.argv[3], sys.argv[4])}
    args = sys.argv[6:]
    wall = {k: [] for k in sides}
    cpu = {k: [] for k in sides}
    with open(os.devnull, "w") as devnull:
        for i in range(runs + 5):
            for k in ("before", "after") if i % 2 else ("after", "before"):
                bv, project = sides[k]
                start = time.perf_counter()
                p = subprocess.Popen([bv] + args, cwd=project, stdout=devnull, stderr=devnull)
                _, status, ru = os.wait4(p.pid, 0)
                elapsed = (time.perf_counter() - start) * 1000
                if status != 0:
                    sys.exit(f"{k}: {bv} {' '.join(args)} failed ({status})")
                if i >= 5:
                    wall[k].append(elapsed)
                    cpu[k].append((ru.ru_utime + ru.ru_stime) * 1000)
    for k in sides:
        print(f"{k:6} n={len(wall[k])} wall min={min(wall[k]):.2f} p10={quantile(wall[k], .1):.2f} "
              f"median={statistics.median(wall[k]):.2f} ms; cpu median={statistics.median(cpu[k]):.2f} "
              f"mean={statistics.mean(cpu[k]):.2f} ms")
    for name, f in (("wall p10", lambda k: quantile(wall[k], .1)),
                    ("wall median", lambda k: statistics.median(wall[k])),
                    ("cpu median", lambda k: statistics.median(cpu[k]))):
        print(f"  {name}: after/before = {f('after') / f('before'):.3f}")


if __name__ == "__main__":
    main()
