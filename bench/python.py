#!/usr/bin/env python3
"""Benchmarks of the Python package `seglang` (issue 17).

    python3 bench/python.py [--data DIR ...] [--seg target/release/seg] [--runs 5]

Needs the package built in release mode where this Python imports it
(`pip install ./python`, or `maturin develop --release --manifest-path
python/Cargo.toml` in a virtual environment), and the release `seg`.

Prints:
- `seglang.compile` and `seglang.check` of a one-line segment, per call
  (best and median of 7 repeats of a timed loop);
- for each segment of bench/run.py's suite, over each `--data` directory
  (default: the 10 M-event `seg gen` data set of bench/run.py, and its Spark
  layout when present), the median query time of `seg run` (its
  `SEG_TIMINGS` phases from "compiled" to "planned and run": no process
  start, no data opening) against the median of `Engine.run` on an engine
  opened once (the first call, which reads nothing more, is shown apart).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: the suite)

import seglang  # noqa: E402

ROOT = bench.ROOT
ONE_LINE = "click.email at_least 3 last 30d"


def per_call(fn, number):
    """Best and median seconds per call of `fn`, over 7 repeats of `number` calls."""
    times = [t / number for t in timeit.repeat(fn, number=number, repeat=7)]
    return min(times), statistics.median(times)


def seg_query_seconds(seg, data, script, extra):
    """The query phase of one `seg run`: from "compiled" to "planned and run"."""
    env = dict(os.environ, SEG_TIMINGS="1")
    out = subprocess.run(
        [seg, "run", script, "--data", data, "--as-of", bench.AS_OF, "--format", "count", *extra],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        sys.exit(f"seg run failed: {out.stderr}")
    marks = {}
    for line in out.stderr.splitlines():
        if line.startswith("[") and "ms]" in line:
            ms, name = line[1:].split("ms]", 1)
            marks[name.strip().split(";")[0]] = float(ms) / 1e3
    return marks["planned and run"] - marks["compiled"], out.stdout


def compare(args, data, script_dir):
    print(f"\n## {data}\n")
    print(f"{'segment':<34} {'seg run query':>14} {'Engine.run':>11} {'ratio':>6} {'first call':>11}")
    start = time.perf_counter()
    engine = seglang.Engine(data)
    print(f"{'(Engine(data) opens in)':<34} {'':>14} {time.perf_counter() - start:>10.3f}s")
    ratios = []
    for name, path, extra in bench.comparison_cases(script_dir):
        text = open(path).read()
        everything = "--all" in extra
        call = (lambda: engine.run_all(text, as_of=bench.AS_OF)) if everything else (lambda: engine.run(text, as_of=bench.AS_OF))
        t0 = time.perf_counter()
        table = call()
        first = time.perf_counter() - t0
        ours, theirs = [], []
        for _ in range(args.runs):
            secs, out = seg_query_seconds(args.seg, data, path, extra)
            theirs.append(secs)
            t0 = time.perf_counter()
            table = call()
            ours.append(time.perf_counter() - t0)
        if not everything and table.num_rows != int(out.strip()):
            sys.exit(f"{name}: Engine.run gave {table.num_rows} ids, seg run {out.strip()}")
        a, b = statistics.median(theirs), statistics.median(ours)
        ratios.append(b / a)
        print(f"{name:<34} {a:>13.3f}s {b:>10.3f}s {b / a:>6.2f} {first:>10.3f}s")
    print(f"{'geometric mean of the ratios':<34} {'':>14} {'':>11} {statistics.geometric_mean(ratios):>6.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = [
        d
        for d in (os.path.join(ROOT, "bench/out/data-10000000"), os.path.join(ROOT, "bench/out/data-10000000-spark"))
        if os.path.isdir(d)
    ]
    parser.add_argument("--data", nargs="*", default=default_data)
    parser.add_argument("--seg", default=os.path.join(ROOT, "target/release/seg"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    print(f"seglang {seglang.__version__} from {os.path.dirname(seglang.__file__)}")
    best, median = per_call(lambda: seglang.compile(ONE_LINE, as_of="2026-11-01"), 2000)
    print(f"seglang.compile (one line, DuckDB): best {best * 1e6:.1f} µs, median {median * 1e6:.1f} µs per call")
    best, median = per_call(lambda: seglang.check(ONE_LINE), 2000)
    print(f"seglang.check (one line):           best {best * 1e6:.1f} µs, median {median * 1e6:.1f} µs per call")
    if not args.data:
        sys.exit("no data: run bench/run.py first (it generates bench/out/data-10000000), or give --data")
    import tempfile

    with tempfile.TemporaryDirectory() as script_dir:
        for data in args.data:
            compare(args, data, script_dir)


if __name__ == "__main__":
    main()
