#!/usr/bin/env python3
"""Every segment of every example script (examples/*.seg), timed on one data
directory against DuckDB running the SQL Seg emits for it (`seg compile
--emit sql --dialect duckdb`), in the same run.

bench/run.py times a fixed suite against hand-written SQL; this times the
constructs the suite does not hold (distinct counts beside other
conditions, absent links, scopes without a window, weeks and months …) so
that a slow plan for one of them shows. Seg is the whole `seg run` process;
DuckDB an in-process query with 2 threads (`--threads`). The counts must
agree.

    python3 bench/examples.py --data bench/out/data-10000000-duckdb [--runs 3]
"""

import argparse
import glob
import math
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import duckdb_over  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AS_OF = "2026-11-01"


def median_time(run, runs):
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a data directory (SPEC §5 layout)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seg", default=os.path.join(ROOT, "target", "release", "seg"))
    ap.add_argument("--hive", action="store_true", help="the events are in Hive folders (channel=…/event=…)")
    args = ap.parse_args()
    con = duckdb_over(args.data, args.threads, args.hive)

    rows, bad = [], 0
    print("| script | segment | Seg (s) | DuckDB, Seg's SQL (s) | Seg/DuckDB | ids |")
    print("|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.seg"))):
        names = re.findall(r"^segment\s+(\w+)", open(path).read(), re.M) or [None]
        for name in names:
            chosen = ["--segment", name] if name else []
            run = [args.seg, "run", path, "--data", args.data, "--as-of", AS_OF, *chosen, "--format", "count"]
            first = subprocess.run(run, capture_output=True, text=True)
            if first.returncode != 0:
                print(f"error: {os.path.basename(path)} {name}: {first.stderr.strip()}", file=sys.stderr)
                bad += 1
                continue
            seg_t, out = median_time(lambda: subprocess.run(run, capture_output=True, text=True, check=True).stdout, args.runs)
            sql = subprocess.run([args.seg, "compile", path, *chosen, "--emit", "sql", "--dialect", "duckdb",
                                  "--data", args.data, "--as-of", AS_OF], capture_output=True, text=True, check=True).stdout
            duck_t, duck_rows = median_time(lambda: con.execute(sql).fetchall(), args.runs)
            count = int(out.strip())
            if count != len(duck_rows):
                print(f"error: {os.path.basename(path)} {name}: Seg counts {count}, DuckDB {len(duck_rows)}", file=sys.stderr)
                bad += 1
            rows.append((seg_t / duck_t, os.path.basename(path), name or "—"))
            print(f"| {os.path.basename(path)} | {name or '—'} | {seg_t:.3f} | {duck_t:.3f} | {seg_t / duck_t:.2f} | {count} |", flush=True)
    if rows:
        mean = math.exp(sum(math.log(r[0]) for r in rows) / len(rows))
        worst = max(rows)
        print(f"\nGeometric mean Seg/DuckDB: {mean:.2f} over {len(rows)} segments; "
              f"worst {worst[0]:.2f} ({worst[1]} {worst[2]}); "
              f"{sum(r[0] > 1 for r in rows)} above 1.0.")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
