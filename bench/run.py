#!/usr/bin/env python3
"""Benchmarks: Seg (release `seg run`) against hand-written SQL on DuckDB.

    python3 bench/run.py [--events 10000000] [--runs 5] [--threads 2] [--out bench/out]

Generates data with `seg gen` (kept between runs in --out), runs each suite
segment through `seg run --format count`, runs the same segment as expert SQL on
DuckDB (same thread count), and a bare filtered scan of the events on DuckDB as
the floor. It also runs Seg's own SQL for DuckDB (`seg compile --emit sql`)
there. Prints medians, the ratios Seg/DuckDB and Seg/floor, and peak RSS, and
writes docs/benchmarks.md (and a PNG chart when matplotlib is installed).
`--check` fails on any count disagreement (the CI smoke run uses it).
Needs: `pip install duckdb` (and matplotlib for the chart).
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AS_OF = "2026-11-01T00:00:00Z"
AS_OF_SQL = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"

CHANNELS = ["email", "sms", "push", "telegram_bot", "max_bot", "whatsapp", "viber", "vk_notify"]


def ago(days):
    return f"({AS_OF_SQL} - INTERVAL {days} DAY)"


def window_sql(days):
    return f"ts > {ago(days)} AND ts <= {AS_OF_SQL}"


# (name, seg script, expert DuckDB SQL returning the ids)
def suite():
    universe = "profile_id IN (SELECT profile_id FROM profiles)"
    cases = [
        (
            "single condition",
            "click.email at_least 1 last 30d",
            f"SELECT DISTINCT profile_id FROM events WHERE event = 'click' AND channel = 'email' AND {window_sql(30)} AND {universe}",
        ),
        (
            "tag + window",
            'click.email at_least 3 in campaigns tagged "Online store" last 30d',
            f"""SELECT profile_id FROM events
                WHERE event = 'click' AND channel = 'email' AND {window_sql(30)}
                  AND campaign_id IN (SELECT object_id FROM tags WHERE object = 'campaign' AND tag = 'Online store')
                  AND {universe}
                GROUP BY profile_id HAVING count(*) >= 3""",
        ),
        (
            "not_happened … after",
            'opened.email not_happened in campaigns "Black Friday" after delivered',
            f"""WITH sel AS (SELECT campaign_id FROM campaigns WHERE name = 'Black Friday')
                SELECT profile_id FROM events
                WHERE channel = 'email' AND event IN ('delivered', 'opened') AND ts <= {AS_OF_SQL}
                  AND campaign_id IN (SELECT campaign_id FROM sel) AND {universe}
                GROUP BY profile_id
                HAVING count(*) FILTER (WHERE event = 'opened') = 0 AND count(*) FILTER (WHERE event = 'delivered') >= 1""",
        ),
        (
            "distinct days, click.*",
            "click.* at_least 3 days last 30d",
            f"""SELECT profile_id FROM events WHERE event = 'click' AND {window_sql(30)} AND {universe}
                GROUP BY profile_id HAVING count(DISTINCT CAST(timezone('UTC', ts) AS DATE)) >= 3""",
        ),
        (
            "universe negation",
            "not click.* exists",
            f"""SELECT profile_id FROM profiles
                EXCEPT SELECT profile_id FROM events WHERE event = 'click' AND ts <= {AS_OF_SQL}""",
        ),
    ]
    # Eight conditions.
    eight = [
        ("opened", "email", 30), ("click", "email", 30), ("read", "whatsapp", 60), ("click", "push", 14),
        ("delivered", "sms", 7), ("click", "viber", 30), ("unsubscribe_click", "email", 90), ("link_click", "telegram_bot", 30),
    ]
    seg8 = " or ".join(f"{e}.{c} at_least 1 last {d}d" for e, c, d in eight[:6])
    seg8 = f"({seg8}) and not {eight[6][0]}.{eight[6][1]} exists and not {eight[7][0]}.{eight[7][1]} exists"
    conds = [f"count(*) FILTER (WHERE event = '{e}' AND channel = '{c}' AND ts > {ago(d)})" for e, c, d in eight]
    sql8 = f"""SELECT profile_id FROM events
               WHERE ts <= {AS_OF_SQL} AND event IN ({", ".join(sorted({f"'{e}'" for e, _, _ in eight}))}) AND {universe}
               GROUP BY profile_id
               HAVING ({" OR ".join(f"{c} >= 1" for c in conds[:6])})
                  AND count(*) FILTER (WHERE event = 'unsubscribe_click' AND channel = 'email') = 0
                  AND count(*) FILTER (WHERE event = 'link_click' AND channel = 'telegram_bot') = 0"""
    cases.append(("8 conditions", seg8, sql8))
    # Thirty conditions: event × channel × window, at_least k.
    pairs = [("click", c) for c in CHANNELS] + [("delivered", c) for c in CHANNELS] + [("read", c) for c in ["email", "whatsapp", "viber", "vk_notify"]] + [("opened", c) for c in ["email", "sms", "push"]]
    thirty = [(e, c, 7 * (1 + i % 8), 1 + i % 3) for i, (e, c) in enumerate((pairs * 2)[:30])]
    seg30 = " or ".join(f"{e}.{c} at_least {k} last {d}d" for e, c, d, k in thirty)
    sql30 = f"""SELECT profile_id FROM events WHERE ts <= {AS_OF_SQL} AND event IN ('click', 'delivered', 'read', 'opened') AND {universe}
                GROUP BY profile_id HAVING {" OR ".join(f"count(*) FILTER (WHERE event = '{e}' AND channel = '{c}' AND ts > {ago(d)}) >= {k}" for e, c, d, k in thirty)}"""
    cases.append(("30 conditions", seg30, sql30))
    return cases


def twenty_segments():
    lines = []
    for i in range(20):
        ch = CHANNELS[i % len(CHANNELS)]
        lines.append(f"segment s{i} = click.{ch} at_least {1 + i % 3} last {7 * (1 + i % 4)}d or delivered.{ch} at_least {2 + i % 5} last 30d;")
    return "\n".join(lines)


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS in MiB, stdout).

    The peak RSS comes from GNU time where it is installed. Otherwise it is
    wait4's ru_maxrss, which counts the forked Python process (and so the
    memory DuckDB holds in it) until exec: an upper bound only."""
    if os.path.exists("/usr/bin/time"):
        with tempfile.NamedTemporaryFile("r") as t:
            start = time.perf_counter()
            out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name, *cmd], capture_output=True, text=True)
            secs = time.perf_counter() - start
            if out.returncode != 0:
                sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
            rss = int(t.read().strip().splitlines()[-1]) / 1024
        return secs, rss, out.stdout
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{err.read()}")
        # ru_maxrss is in KiB on Linux.
        return secs, usage.ru_maxrss / 1024, out.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--profiles", type=int, default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--seg", default=os.path.join(ROOT, "target", "release", "seg"))
    ap.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md and the chart")
    ap.add_argument("--check", action="store_true", help="fail when Seg, DuckDB and Seg's SQL disagree on a count")
    args = ap.parse_args()
    import duckdb

    profiles = args.profiles or max(1000, args.events // 10)
    data = os.path.join(args.out, f"data-{args.events}")
    if not os.path.isdir(os.path.join(data, "events")):
        os.makedirs(args.out, exist_ok=True)
        secs, rss, _ = timed([args.seg, "gen", "--out", data, "--events", str(args.events), "--profiles", str(profiles)])
        print(f"seg gen: {args.events} events in {secs:.2f} s ({args.events / secs / 1e6:.2f} M events/s), peak RSS {rss:.0f} MiB")

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/*.parquet')")
    for t in ["profiles", "campaigns", "templates", "tags", "attributes"]:
        if os.path.exists(f"{data}/{t}.parquet"):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data}/{t}.parquet')")

    def duck(sql):
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append(time.perf_counter() - start)
        return statistics.median(times), rows

    floor_t, _ = duck(f"SELECT count(*) FROM events WHERE event = 'click' AND ts <= {AS_OF_SQL}")
    results = []
    mismatches = 0
    script_dir = tempfile.mkdtemp()
    for name, seg, sql in suite():
        path = os.path.join(script_dir, "q.seg")
        with open(path, "w") as f:
            f.write(seg)
        runs = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--format", "count"]) for _ in range(args.runs)]
        seg_t = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        count = int(runs[0][2].strip())
        duck_t, rows = duck(sql)
        # Seg's own SQL for DuckDB, run there.
        _, _, seg_sql = timed([args.seg, "compile", path, "--emit", "sql", "--dialect", "duckdb", "--data", data, "--as-of", AS_OF])
        sql_t, sql_rows = duck(seg_sql)
        for who, n in [("DuckDB", len(rows)), ("Seg's SQL on DuckDB", len(sql_rows))]:
            if n != count:
                print(f"{'error' if args.check else 'warning'}: {name}: Seg counts {count}, {who} {n}")
                mismatches += 1
        results.append((name, seg_t, duck_t, floor_t, rss, count, sql_t))
    # Twenty segments with --all, against one of them alone.
    path = os.path.join(script_dir, "twenty.seg")
    with open(path, "w") as f:
        f.write(twenty_segments())
    runs = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--all", "--format", "count"]) for _ in range(args.runs)]
    all_t = statistics.median(r[0] for r in runs)
    one = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--segment", "s0", "--format", "count"]) for _ in range(args.runs)]
    one_t = statistics.median(r[0] for r in one)

    header = (
        "| segment | Seg (s) | DuckDB (s) | Seg/DuckDB | Seg/floor | peak RSS (MiB) | ids | Seg's SQL on DuckDB (s) |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {n} | {s:.3f} | {d:.3f} | {s / d:.2f} | {s / fl:.2f} | {r:.0f} | {c} | {q:.3f} |\n"
        for n, s, d, fl, r, c, q in results
    )
    gm = statistics.geometric_mean([r[1] / r[2] for r in results])
    summary = (
        f"\nGeometric mean Seg/DuckDB: {gm:.2f}. Floor (DuckDB filtered scan of events): {floor_t:.3f} s.\n"
        f"20 segments with --all: {all_t:.3f} s; one of them alone: {one_t:.3f} s ({all_t / one_t:.2f}×).\n"
    )
    print(table + summary)
    if args.check and mismatches:
        sys.exit(f"{mismatches} count disagreements")
    if args.write_docs:
        when = datetime.date.today().isoformat()
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}"
        doc = os.path.join(ROOT, "docs", "benchmarks.md")
        # Sections below the marker (compile latency, notes) are kept.
        kept = ""
        if os.path.exists(doc):
            with open(doc) as f:
                old = f.read()
            if "<!-- kept -->" in old:
                kept = old[old.index("<!-- kept -->"):]
        with open(doc, "w") as f:
            f.write(
                f"# Benchmarks\n\n{when}, {machine}; {args.events:,} events, {profiles:,} profiles, "
                f"{args.threads} threads, median of {args.runs} runs. Seg times are whole `seg run` processes "
                f"(start-up, validation and planning included); DuckDB times are in-process queries over the "
                f"same Parquet files.\n\n`python3 bench/run.py --write-docs` regenerates this page.\n\n"
                + table + summary
            )
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(figsize=(9, 4))
            names = [r[0] for r in results]
            xs = range(len(names))
            ax.bar([x - 0.2 for x in xs], [r[1] for r in results], 0.4, label="Seg")
            ax.bar([x + 0.2 for x in xs], [r[2] for r in results], 0.4, label="DuckDB")
            ax.axhline(floor_t, color="grey", linestyle="--", label="floor")
            ax.set_xticks(list(xs), names, rotation=20, ha="right")
            ax.set_ylabel("seconds (median)")
            ax.legend()
            fig.tight_layout()
            fig.savefig(os.path.join(ROOT, "docs", "benchmarks.png"), dpi=100)
            with open(doc, "a") as f:
                f.write("\n![Seg vs DuckDB](benchmarks.png)\n")
        except ImportError:
            print("matplotlib not installed: no chart")
        with open(doc, "a") as f:
            f.write("\n" + kept)


if __name__ == "__main__":
    main()
