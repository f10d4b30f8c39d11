#!/usr/bin/env python3
"""Benchmarks: Seg (release `seg run`) against hand-written SQL on DuckDB.

    python3 bench/run.py [--events 10000000] [--runs 5] [--threads 2] [--out bench/out]
                         [--layout seg,duckdb,pyarrow,spark,unsorted,small-files | all]

Generates data with `seg gen` (kept between runs in --out) and rewrites it as
other writers would (`--layout`: DuckDB's COPY, pyarrow's defaults, Spark's
INT96 and many uneven files, random order, small Hive-partitioned files).
Over each layout it runs each suite segment through `seg run --format count`,
the same segment as expert SQL on DuckDB (same thread count) and on
DataFusion's Python package when installed, and a bare filtered scan of the
events on DuckDB as the floor. It also runs Seg's own SQL for DuckDB (`seg compile --emit sql`)
there. Prints medians, the ratios Seg/DuckDB and Seg/floor, and peak RSS, and
writes docs/benchmarks.md (and a PNG chart when matplotlib is installed).
`--check` fails on any count disagreement (the CI smoke run uses it).
`--cluster` runs the suite on a loopback Ballista cluster instead, and
`--store s3` over an S3 copy on a loopback moto server (with the requests
and bytes Seg fetched), each against local runs.
Needs: `pip install duckdb pyarrow` (datafusion for its column, matplotlib for the chart).
"""
import argparse
import datetime
import glob
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AS_OF = "2026-11-01T00:00:00Z"

# Rows per Arrow batch when a layout is streamed from DuckDB.
BATCH_ROWS = 1_000_000

CHANNELS = ["email", "sms", "push", "telegram_bot", "max_bot", "whatsapp", "viber", "vk_notify"]


class Dialect:
    """The few spellings in which DuckDB's, DataFusion's and chDB's
    (ClickHouse's) SQL differ."""

    def __init__(self, name):
        self.name = name
        if name == "duckdb":
            self.as_of = "TIMESTAMPTZ '2026-11-01 00:00:00+00'"
        elif name == "chdb":
            self.as_of = "toDateTime64('2026-11-01 00:00:00', 6, 'UTC')"
        else:
            self.as_of = "to_timestamp_micros('2026-11-01T00:00:00Z')"

    def ago(self, days):
        if self.name in ("duckdb", "chdb"):
            return f"({self.as_of} - INTERVAL {days} DAY)"
        return f"({self.as_of} - INTERVAL '{days} days')"

    def day(self, col):
        # The session's time zone is UTC in all three.
        if self.name == "chdb":
            return f"toDate({col}, 'UTC')"
        return f"CAST({col} AS DATE)" if self.name == "duckdb" else f"date_trunc('day', {col})"


DUCKDB = Dialect("duckdb")

# The eight conditions' (event, channel, days): six `at_least 1 last <days>d`
# joined by `or`, then the last two as `not … exists` (all time).
EIGHT = [
    ("opened", "email", 30), ("click", "email", 30), ("read", "whatsapp", 60), ("click", "push", 14),
    ("delivered", "sms", 7), ("click", "viber", 30), ("unsubscribe_click", "email", 90), ("link_click", "telegram_bot", 30),
]
# The thirty conditions' (event, channel, days, k): `at_least k last <days>d`.
_PAIRS = ([("click", c) for c in CHANNELS] + [("delivered", c) for c in CHANNELS]
          + [("read", c) for c in ["email", "whatsapp", "viber", "vk_notify"]] + [("opened", c) for c in ["email", "sms", "push"]])
THIRTY = [(e, c, 7 * (1 + i % 8), 1 + i % 3) for i, (e, c) in enumerate((_PAIRS * 2)[:30])]


# (name, seg script, expert SQL returning the ids, in dialect d)
def suite(d=DUCKDB):
    AS_OF_SQL = d.as_of
    ago = d.ago

    def window_sql(days):
        return f"ts > {ago(days)} AND ts <= {AS_OF_SQL}"

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
                GROUP BY profile_id HAVING count(DISTINCT {d.day('ts')}) >= 3""",
        ),
        (
            "universe negation",
            "not click.* exists",
            f"""SELECT profile_id FROM profiles
                EXCEPT SELECT profile_id FROM events WHERE event = 'click' AND ts <= {AS_OF_SQL}""",
        ),
    ]
    # Eight conditions.
    eight = EIGHT
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
    thirty = THIRTY
    seg30 = " or ".join(f"{e}.{c} at_least {k} last {d}d" for e, c, d, k in thirty)
    sql30 = f"""SELECT profile_id FROM events WHERE ts <= {AS_OF_SQL} AND event IN ('click', 'delivered', 'read', 'opened') AND {universe}
                GROUP BY profile_id HAVING {" OR ".join(f"count(*) FILTER (WHERE event = '{e}' AND channel = '{c}' AND ts > {ago(d)}) >= {k}" for e, c, d, k in thirty)}"""
    cases.append(("30 conditions", seg30, sql30))
    cases.extend(spec10(d, window_sql, universe))
    return cases


def spec10(d, window_sql, universe):
    """SPEC §10's constructs, each with the SQL an expert would write: joins
    on (profile, message) with a time condition, NOT EXISTS, min/max and
    date_trunc. chDB (ClickHouse) has no correlated subqueries and joins only
    on equalities by default: its column is left out of the sequences."""
    AS_OF_SQL = d.as_of

    def hours(n):
        if d.name in ("duckdb", "chdb"):
            return f"INTERVAL {n} HOUR"
        return f"INTERVAL '{n} hours'"

    def rows(event, extra=""):
        return f"(SELECT profile_id, message_id, ts FROM events WHERE event = '{event}' AND channel = 'email' AND ts <= {AS_OF_SQL} {extra})"

    week = "toStartOfWeek(ts, 1)" if d.name == "chdb" else "date_trunc('week', ts)"
    sample = ("(((((profile_id % 2147483647) + 2147483647) % 2147483647 + 0) % 2147483647) "
              "* 1291394886 % 2147483647) % 10000 < 5000")
    seq = d.name != "chdb"
    return [
        (
            "then … within 1h same message",
            "delivered.email then opened.email within 1h same message last 30d",
            f"""SELECT DISTINCT a.profile_id FROM {rows('delivered', f"AND ts > {d.ago(30)} AND message_id IS NOT NULL")} a
                JOIN {rows('opened', 'AND message_id IS NOT NULL')} b
                  ON b.profile_id = a.profile_id AND b.message_id = a.message_id
                 AND b.ts > a.ts AND b.ts <= a.ts + {hours(1)}
                WHERE a.{universe}""" if seq else None,
        ),
        (
            "then not … within 1d same message",
            "delivered.email then not opened.email within 1d same message last 30d",
            f"""SELECT DISTINCT a.profile_id FROM {rows('delivered', f"AND ts > {d.ago(30)} AND ts <= {AS_OF_SQL} - {hours(24)} AND message_id IS NOT NULL")} a
                WHERE a.{universe} AND NOT EXISTS (
                  SELECT 1 FROM {rows('opened', 'AND message_id IS NOT NULL')} b
                  WHERE b.profile_id = a.profile_id AND b.message_id = a.message_id
                    AND b.ts > a.ts AND b.ts <= a.ts + {hours(24)})""" if seq else None,
        ),
        (
            "3 steps within 2d",
            "sent.email then opened.email then click.email within 2d last 30d",
            f"""SELECT DISTINCT a.profile_id FROM {rows('sent', f"AND ts > {d.ago(30)}")} a
                JOIN {rows('opened')} b ON b.profile_id = a.profile_id AND b.ts > a.ts AND b.ts <= a.ts + {hours(48)}
                JOIN {rows('click')} c ON c.profile_id = a.profile_id AND c.ts > b.ts AND c.ts <= a.ts + {hours(48)}
                WHERE a.{universe}""" if seq else None,
        ),
        (
            "last_seen before 30d ago",
            "click.email last_seen before 30d ago",
            f"""SELECT profile_id FROM events WHERE event = 'click' AND channel = 'email' AND ts <= {AS_OF_SQL} AND {universe}
                GROUP BY profile_id HAVING max(ts) < {d.ago(30)}""",
        ),
        (
            "4 weeks and sample 50%",
            "opened.email at_least 4 weeks last 90d and sample 50%",
            f"""SELECT profile_id FROM events WHERE event = 'opened' AND channel = 'email' AND {window_sql(90)} AND {universe}
                  AND {sample}
                GROUP BY profile_id HAVING count(DISTINCT {week}) >= 4""",
        ),
    ]


# --- Layouts: the same events as other writers would have written them. ---

LAYOUTS = ["seg", "duckdb", "pyarrow", "spark", "unsorted", "small-files", "clickhouse", "hive"]
# Layouts whose folder names hold columns (`channel=email/`), which every
# engine is told to read as such.
PARTITIONED = {"hive": ["channel", "event"]}
DIMENSIONS = ["profiles", "campaigns", "templates", "tags", "attributes"]

LAYOUT_NOTES = {
    "seg": "`seg gen`'s own files: dictionary types in the Arrow schema, LZ4, one ~1 M-row row group per time-sorted file",
    "duckdb": "DuckDB `COPY … (FORMAT parquet)` with its defaults: one file, Snappy, 122 880-row row groups, plain strings, `ts` as naive `timestamp[us]`",
    "pyarrow": "`pyarrow.parquet.write_table` defaults, one file per `seg gen` file: plain `string` columns (dictionary pages), Snappy, 1 Mi-row groups",
    "spark": "as Spark writes: INT96 `ts`, plain strings, Snappy, 200 `part-…` files of uneven size (hash-distributed by profile, no time locality), one row group each, `_SUCCESS`",
    "unsorted": "the events in random order in 4 files (pyarrow defaults): no time locality at all",
    "small-files": "files of 5 000 events in Hive folders `date=YYYY-MM-DD/` (pyarrow defaults)",
    "hive": "DuckDB `COPY … (FORMAT parquet, PARTITION_BY (channel, event))`: a Hive folder per channel and event (`channel=email/event=click/data_0.parquet`), the two columns in the folder names only, otherwise DuckDB's defaults as in `duckdb`",
    "clickhouse": "chDB (ClickHouse) exporting tables typed as ClickHouse users type them, events ordered as a MergeTree `ORDER BY (profile_id, ts)` keeps them: `UInt64` profile and message ids, `UInt32` campaign, template and object ids (in the small tables too), ZSTD, 1 M-row groups, one events file sorted by profile (no time locality)",
}


def record_batches(relation):
    """A reader of a DuckDB relation's rows, `BATCH_ROWS` to a batch
    (`to_arrow_reader`, or `fetch_record_batch` in older DuckDB releases)."""
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    return reader(BATCH_ROWS)


class Batches:
    """A DuckDB relation's rows as Arrow batches, cast by `cast`, written
    out in row groups of a given size up to a given row."""

    def __init__(self, relation, cast):
        import pyarrow as pa
        self.pa = pa
        self.reader = record_batches(relation)
        self.batches = iter(self.reader)
        self.cast = cast
        self.buffer = []
        self.buffered = 0
        self.written = 0
        first = next(self.batches, None)
        self.schema = cast(pa.Table.from_batches([first])).schema if first is not None else None
        if first is not None:
            self.buffer.append(first)
            self.buffered = first.num_rows

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.reader.close()

    def write_until(self, writer, end, group):
        """Writes rows up to row `end` (counted from the first) to `writer`,
        `group` rows to a row group."""
        while self.written < end:
            want = min(group, end - self.written)
            while self.buffered < want:
                batch = next(self.batches, None)
                if batch is None:
                    break
                self.buffer.append(batch)
                self.buffered += batch.num_rows
            if self.buffered == 0:
                return
            table = self.pa.Table.from_batches(self.buffer)
            take = min(want, table.num_rows)
            writer.write_table(self.cast(table.slice(0, take)), row_group_size=take)
            rest = table.slice(take)
            self.buffer = rest.to_batches()
            self.buffered = rest.num_rows
            self.written += take


def make_layout(layout, seg_data, path):
    """Writes the events of `seg_data` (and its dimension tables) to `path` as
    `layout`'s writer would. Skipped when `path` already holds them."""
    if layout == "seg" or os.path.isdir(os.path.join(path, "events")):
        return
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path + ".tmp"
    if os.path.exists(tmp):
        subprocess.run(["rm", "-rf", tmp], check=True)
    os.makedirs(os.path.join(tmp, "events"))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = f"read_parquet('{seg_data}/events/*.parquet')"

    def plain(table):
        # Dictionary-typed (and view) columns as plain strings, as most
        # writers type them.
        def typed(t):
            if pa.types.is_dictionary(t):
                t = t.value_type
            return pa.string() if t in (pa.large_string(), pa.string_view()) else t
        return table.cast(pa.schema([pa.field(f.name, typed(f.type), f.nullable) for f in table.schema]))

    def arrow(sql):
        relation = con.sql(sql)
        return (getattr(relation, "to_arrow_table", None) or relation.arrow)()

    start = time.perf_counter()
    if layout in ("duckdb", "hive"):
        # Naive timestamps (wall time in UTC), as many pipelines write them;
        # `hive` partitioned by channel and event, as a table kept for
        # per-channel jobs is.
        target, options = {
            "duckdb": (f"{tmp}/events/data_0.parquet", ""),
            "hive": (f"{tmp}/events", ", PARTITION_BY (channel, event), OVERWRITE_OR_IGNORE"),
        }[layout]
        con.execute(f"COPY (SELECT * REPLACE (CAST(ts AS TIMESTAMP) AS ts) FROM {src}) "
                    f"TO '{target}' (FORMAT parquet{options})")
        for t in DIMENSIONS:
            if os.path.exists(f"{seg_data}/{t}.parquet"):
                con.execute(f"COPY (SELECT * FROM read_parquet('{seg_data}/{t}.parquet')) TO '{tmp}/{t}.parquet' (FORMAT parquet)")
    elif layout == "clickhouse":
        # Typed as ClickHouse users type ids (UInt64 profiles and messages,
        # UInt32 campaigns and templates), and events in the order of a
        # MergeTree table `ORDER BY (profile_id, ts)`; ClickHouse's
        # Parquet defaults (ZSTD, 1 M-row groups).
        import chdb
        ids = {"profile_id": "UInt64", "message_id": "UInt64", "campaign_id": "UInt32",
               "template_id": "UInt32", "object_id": "UInt32"}

        def export(source, target, order=""):
            columns = pq.read_schema(sorted(glob.glob(source))[0]).names
            typed = ", ".join(f"CAST({c} AS Nullable({ids[c]})) AS {c}" if c in ids else c for c in columns)
            chdb.query(f"INSERT INTO FUNCTION file('{target}', Parquet) SELECT {typed} FROM file('{source}', Parquet) {order}")
        for t in DIMENSIONS:
            if os.path.exists(f"{seg_data}/{t}.parquet"):
                export(f"{seg_data}/{t}.parquet", f"{tmp}/{t}.parquet")
        export(f"{seg_data}/events/*.parquet", f"{tmp}/events/events.parquet", "ORDER BY profile_id, ts")
    else:
        for t in DIMENSIONS:
            if os.path.exists(f"{seg_data}/{t}.parquet"):
                pq.write_table(plain(pq.read_table(f"{seg_data}/{t}.parquet")), f"{tmp}/{t}.parquet")
        if layout == "pyarrow":
            for i, f in enumerate(sorted(os.listdir(f"{seg_data}/events"))):
                pq.write_table(plain(pq.read_table(f"{seg_data}/events/{f}")), f"{tmp}/events/part-{i}.parquet")
        elif layout == "spark":
            # 200 shuffle partitions of uneven size: a profile's events go to
            # one partition, partition sizes skewed towards the low numbers;
            # within a partition, the rows in the order of the source files.
            # Written a few partitions at a time, so that no pass holds more
            # than about 10 M rows (100 M events fit in memory this way).
            parts = 200
            part_of = f"CAST(floor({parts} * pow((hash(profile_id) % 1000003) / 1000003.0, 2)) AS INTEGER)"
            numbered = f"read_parquet('{seg_data}/events/*.parquet', filename = true, file_row_number = true)"
            sizes = con.execute(f"SELECT {part_of} AS part, count(*) FROM {src} GROUP BY part ORDER BY part").fetchall()
            passes, current, rows = [], [], 0
            for part, n in sizes:
                if current and rows + n > 10_000_000:
                    passes.append(current)
                    current, rows = [], 0
                current.append((part, n))
                rows += n
            passes.append(current)
            for chunk in passes:
                low, high = chunk[0][0], chunk[-1][0]
                table = plain(arrow(
                    f"SELECT * EXCLUDE (filename, file_row_number, part) FROM (SELECT *, {part_of} AS part FROM {numbered}) "
                    f"WHERE part BETWEEN {low} AND {high} ORDER BY part, filename, file_row_number"))
                offset = 0
                for part, n in chunk:
                    pq.write_table(table.slice(offset, n), f"{tmp}/events/part-{part:05d}-5e0e4a5c-c000.snappy.parquet",
                                   use_deprecated_int96_timestamps=True, compression="snappy",
                                   row_group_size=max(n, 1), use_dictionary=True)
                    offset += n
                del table
            open(f"{tmp}/events/_SUCCESS", "w").close()
        elif layout == "unsorted":
            # Random order, streamed from DuckDB's sort into 4 files of
            # pyarrow's default 1 Mi-row groups.
            n = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]
            ordered = con.sql(f"SELECT * FROM {src} ORDER BY hash(profile_id * 7919 + epoch_us(ts))")
            bounds = [(i + 1) * n // 4 for i in range(4)]
            with Batches(ordered, plain) as batches:
                for i, end in enumerate(bounds):
                    with pq.ParquetWriter(f"{tmp}/events/part-{i}.parquet", batches.schema) as writer:
                        batches.write_until(writer, end, group=1024 * 1024)
        elif layout == "small-files":
            # Time order; a new file at each UTC day and every 5 000 events,
            # each day's files in a Hive folder `date=YYYY-MM-DD`.
            import pyarrow.compute as pc
            ordered = con.sql(f"SELECT *, CAST(ts AS DATE) AS __day FROM {src} ORDER BY ts")
            pending, start_row = None, 0
            for batch in record_batches(ordered):
                batch = pa.Table.from_batches([batch])
                table = batch if pending is None else pa.concat_tables([pending, batch])
                days = table.column("__day")
                n = table.num_rows
                # The rows where a new day starts, and the end.
                change = pc.not_equal(days.slice(1), days.slice(0, n - 1)) if n > 1 else pa.array([], pa.bool_())
                starts = [0] + [i + 1 for i in pc.indices_nonzero(change).to_pylist()] + [n]
                files = []
                for s, e in zip(starts, starts[1:]):
                    files.extend((f, min(f + 5000, e)) for f in range(s, e, 5000))
                # The last file may go on in the next batch.
                *files, (last, _) = files
                for s, e in files:
                    day = days[s].as_py()
                    folder = f"{tmp}/events/date={day.isoformat()}"
                    os.makedirs(folder, exist_ok=True)
                    pq.write_table(plain(table.slice(s, e - s).drop_columns(["__day"])),
                                   f"{folder}/part-{start_row + s:09d}.parquet")
                pending, start_row = table.slice(last), start_row + last
            if pending is not None and pending.num_rows:
                day = pending.column("__day")[0].as_py()
                folder = f"{tmp}/events/date={day.isoformat()}"
                os.makedirs(folder, exist_ok=True)
                pq.write_table(plain(pending.drop_columns(["__day"])), f"{folder}/part-{start_row:09d}.parquet")
        else:
            sys.exit(f"unknown layout {layout}")
    os.rename(tmp, path)
    print(f"layout {layout}: written in {time.perf_counter() - start:.1f} s")


# Each sequence's steps as plain conditions, over the rows the sequence reads
# (its first step in the window; the later steps after the window's start, up
# to as_of): the single-condition work a sequence is set against.
STEPS_COUNTED = {
    "then … within 1h same message": "delivered.email at_least 1 last 30d or opened.email at_least 1 last 30d",
    "then not … within 1d same message": "delivered.email at_least 1 last 30d or opened.email at_least 1 last 30d",
    "3 steps within 2d": "sent.email at_least 1 last 30d or opened.email at_least 1 last 30d or click.email at_least 1 last 30d",
}


def rows_read(d=DUCKDB):
    """For each suite segment, the rows it has to read, as WHERE clauses in
    DuckDB's SQL (a string, or a list of equivalent or wider ones): its
    conditions' channels, events, windows and scopes, nothing of what it
    computes from them. DuckDB's fastest scan of those rows and their
    profile ids (`SELECT count(*), max(profile_id) ... WHERE ...`) is that
    segment's own floor: no engine answers it without reading them."""
    window = lambda days: f"ts > {d.ago(days)} AND ts <= {d.as_of}"  # noqa: E731
    upto = f"ts <= {d.as_of}"
    black_friday = "campaign_id IN (SELECT campaign_id FROM campaigns WHERE name = 'Black Friday')"
    tagged = "campaign_id IN (SELECT object_id FROM tags WHERE object = 'campaign' AND tag = 'Online store')"
    events = lambda conditions: ", ".join(sorted({repr(c[0]) for c in conditions}))  # noqa: E731
    email = lambda events, when: f"channel = 'email' AND event IN ({', '.join(repr(e) for e in events)}) AND {when}"  # noqa: E731
    return {
        "single condition": email(["click"], window(30)),
        "tag + window": f"{email(['click'], window(30))} AND {tagged}",
        "not_happened … after": f"{email(['delivered', 'opened'], upto)} AND {black_friday}",
        "distinct days, click.*": f"event = 'click' AND {window(30)}",
        "universe negation": f"event = 'click' AND {upto}",
        # Many conditions: their union exactly, and a coarser filter that
        # DuckDB may push into its scan; whichever it reads faster.
        "8 conditions": [
            " OR ".join([f"(event = '{e}' AND channel = '{c}' AND {window(days)})" for e, c, days in EIGHT[:6]]
                        + [f"(event = '{e}' AND channel = '{c}' AND {upto})" for e, c, _ in EIGHT[6:]]),
            f"event IN ({events(EIGHT)}) AND {upto}",
        ],
        "30 conditions": [
            " OR ".join(f"(event = '{e}' AND channel = '{c}' AND {window(days)})" for e, c, days, _ in THIRTY),
            f"event IN ({events(THIRTY)}) AND {window(max(days for _, _, days, _ in THIRTY))}",
        ],
        # A sequence's later steps can only follow its first inside the window.
        "then … within 1h same message": f"{email(['delivered', 'opened'], window(30))} AND message_id IS NOT NULL",
        "then not … within 1d same message": f"{email(['delivered', 'opened'], window(30))} AND message_id IS NOT NULL",
        "3 steps within 2d": email(["sent", "opened", "click"], window(30)),
        "last_seen before 30d ago": email(["click"], upto),
        "4 weeks and sample 50%": email(["opened"], window(90)),
    }


def many_segments(n):
    lines = []
    for i in range(n):
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


def duckdb_over(data, threads, hive):
    """An in-process DuckDB with `threads` threads, in UTC, with a view of
    each table of the data directory `data` (`hive`: the events in Hive
    folders)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/**/*.parquet', "
                f"hive_partitioning = {'true' if hive else 'false'})")
    for t in DIMENSIONS:
        if os.path.exists(f"{data}/{t}.parquet"):
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data}/{t}.parquet')")
    return con


def run_layout(args, layout, data, script_dir):
    """Runs the suite over one layout: Seg, DuckDB's and DataFusion's
    hand-written SQL, Seg's SQL on DuckDB. Returns (rows, floor, all, one,
    mismatches)."""
    partitioned = PARTITIONED.get(layout, [])
    con = duckdb_over(data, args.threads, bool(partitioned))
    dfx = None
    try:
        import datafusion

        config = datafusion.SessionConfig().with_target_partitions(args.threads).set("datafusion.execution.time_zone", "+00:00")
        dfx = datafusion.SessionContext(config)
        dfx.register_parquet("events", f"{data}/events/", file_extension=".parquet",
                             table_partition_cols=[(c, "string") for c in partitioned])
        for t in DIMENSIONS:
            if os.path.exists(f"{data}/{t}.parquet"):
                dfx.register_parquet(t, f"{data}/{t}.parquet")
    except Exception as e:  # not installed, or it cannot read the layout
        print(f"DataFusion (Python) left out on {layout}: {e}")
        dfx = None

    chdb_session = None
    try:
        from chdb import session as chdb_sessions

        chdb_session = chdb_sessions.Session()
        # profile_id as Int64 whatever the file's type: ClickHouse's EXCEPT
        # takes a UInt64 and an Int64 column for different values.
        as_int64 = "* REPLACE (CAST(profile_id AS Int64) AS profile_id)"
        hive = " SETTINGS use_hive_partitioning = 1" if partitioned else ""
        chdb_session.query(f"CREATE VIEW events AS SELECT {as_int64} FROM file('{data}/events/**/*.parquet', Parquet){hive}")
        for t in DIMENSIONS:
            if os.path.exists(f"{data}/{t}.parquet"):
                columns = as_int64 if t == "profiles" else "*"
                chdb_session.query(f"CREATE VIEW {t} AS SELECT {columns} FROM file('{data}/{t}.parquet', Parquet)")
    except Exception as e:  # not installed, or it cannot read the layout
        print(f"chDB left out on {layout}: {str(e).splitlines()[0] if str(e) else e}")
        chdb_session = None

    def median_of(run):
        times, out = [], None
        for _ in range(args.runs):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
        return statistics.median(times), out

    def duck(sql):
        return median_of(lambda: con.execute(sql).fetchall())

    floor_t, _ = duck(f"SELECT count(*) FROM events WHERE event = 'click' AND ts <= {DUCKDB.as_of}")
    reads = rows_read()

    def rows_scan(name):
        wheres = reads[name] if isinstance(reads[name], list) else [reads[name]]
        return min(duck(f"SELECT count(*), max(profile_id) FROM events WHERE {w}")[0] for w in wheres)

    results = []
    mismatches = 0
    df_cases = suite(Dialect("datafusion"))
    ch_cases = suite(Dialect("chdb"))
    for (name, seg, sql), (_, _, df_sql), (_, _, ch_sql) in zip(suite(), df_cases, ch_cases):
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
        counts = [("DuckDB", len(rows)), ("Seg's SQL on DuckDB", len(sql_rows))]
        df_t = None
        if dfx is not None and df_sql is not None:
            try:
                df_t, df_rows = median_of(lambda: dfx.sql(df_sql).to_arrow_table().num_rows)
                counts.append(("DataFusion", df_rows))
            except Exception as e:
                print(f"DataFusion (Python) failed on {layout} / {name}: {str(e).splitlines()[0]}")
        ch_t = None
        if chdb_session is not None and ch_sql is not None:
            try:
                ch_query = f"{ch_sql} SETTINGS max_threads = {args.threads}"
                ch_t, ch_rows = median_of(lambda: chdb_session.query(ch_query, "ArrowTable").num_rows)
                counts.append(("chDB", ch_rows))
            except Exception as e:
                print(f"chDB failed on {layout} / {name}: {str(e).splitlines()[0]}")
        for who, n in counts:
            if n != count:
                print(f"{'error' if args.check else 'warning'}: {layout}: {name}: Seg counts {count}, {who} {n}")
                mismatches += 1
        results.append((name, seg_t, duck_t, floor_t, rss, count, sql_t, df_t, ch_t, rows_scan(name)))
    # Twenty and fifty segments with --all, against one of them alone.
    all_t = {}
    for n in (20, 50):
        path = os.path.join(script_dir, f"many{n}.seg")
        with open(path, "w") as f:
            f.write(many_segments(n))
        runs = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--all", "--format", "count"]) for _ in range(args.runs)]
        all_t[n] = statistics.median(r[0] for r in runs)
    one = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--segment", "s0", "--format", "count"]) for _ in range(args.runs)]
    one_t = statistics.median(r[0] for r in one)
    # The sequences' steps counted over the same rows.
    steps_t = {}
    path = os.path.join(script_dir, "steps.seg")
    for text in sorted(set(STEPS_COUNTED.values())):
        with open(path, "w") as f:
            f.write(text)
        runs = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--format", "count"]) for _ in range(args.runs)]
        steps_t[text] = statistics.median(r[0] for r in runs)
    if chdb_session is not None:
        chdb_session.close()
    return results, floor_t, all_t, one_t, steps_t, mismatches


def layout_report(layout, results, floor_t, all_t, one_t, steps_t):
    header = (
        "| segment | Seg (s) | DuckDB (s) | Seg/DuckDB | Seg/floor | its rows' scan (s) | Seg/its rows | peak RSS (MiB) | ids | Seg's SQL on DuckDB (s) | DataFusion (s) | chDB (s) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    optional = lambda t: "—" if t is None else f"{t:.3f}"  # noqa: E731
    table = header + "".join(
        f"| {n} | {s:.3f} | {d:.3f} | {s / d:.2f} | {s / fl:.2f} | {o:.3f} | {s / o:.2f} | {r:.0f} | {c} | {q:.3f} | {optional(x)} | {optional(h)} |\n"
        for n, s, d, fl, r, c, q, x, h, o in results
    )
    gm = statistics.geometric_mean([r[1] / r[2] for r in results])
    summary = (
        f"\nGeometric mean Seg/DuckDB: {gm:.2f}. Floor (DuckDB filtered scan of events): {floor_t:.3f} s.\n"
        f"20 segments with --all: {all_t[20]:.3f} s, 50: {all_t[50]:.3f} s; one of them alone: {one_t:.3f} s "
        f"({all_t[20] / one_t:.2f}× and {all_t[50] / one_t:.2f}×).\n"
    )
    single = next((r for r in results if r[0] == "single condition"), None)
    sequences = [r for r in results if r[0].startswith(("then", "3 steps"))]
    if single and sequences:
        summary += "Sequences against the single condition (`click.email at_least 1 last 30d`): " + ", ".join(
            f"{r[0]} {r[1] / single[1]:.2f}×" for r in sequences) + ".\n"
    if sequences:
        summary += "Sequences against their steps counted over the same rows (" + "; ".join(
            f"{r[0]}: `{STEPS_COUNTED[r[0]]}` {steps_t[STEPS_COUNTED[r[0]]]:.3f} s, {r[1] / steps_t[STEPS_COUNTED[r[0]]]:.2f}×"
            for r in sequences) + ").\n"
    return table + summary, gm


def generated(args, events, profiles):
    """The `seg gen` data set of that size, generated once into --out."""
    data = os.path.join(args.out, f"data-{events}")
    if not os.path.isdir(os.path.join(data, "events")):
        os.makedirs(args.out, exist_ok=True)
        secs, rss, _ = timed([args.seg, "gen", "--out", data, "--events", str(events), "--profiles", str(profiles)])
        print(f"seg gen: {events} events in {secs:.2f} s ({events / secs / 1e6:.2f} M events/s), peak RSS {rss:.0f} MiB")
    return data


def scaling(args, sizes, script_dir):
    """The suite on the seg layout at each size: Seg's and DuckDB's times
    against the number of events, as a table and as docs/benchmarks.png."""
    rows = {}
    for n in sizes:
        data = generated(args, n, max(1000, n // 10))
        results, floor_t, all_t, one_t, _, _ = run_layout(args, "seg", data, script_dir)
        rows[n] = (results, floor_t, all_t)
        print(f"{n:,} events done")
    names = [r[0] for r in rows[sizes[0]][0]]
    text = "| segment | " + " | ".join(f"Seg at {n / 1e6:g} M (s)" for n in sizes) + " | " + \
        " | ".join(f"DuckDB at {n / 1e6:g} M (s)" for n in sizes) + " |\n|---|" + "---|" * (2 * len(sizes)) + "\n"
    for i, name in enumerate(names):
        text += f"| {name} | " + " | ".join(f"{rows[n][0][i][1]:.3f}" for n in sizes) + " | " + \
            " | ".join(f"{rows[n][0][i][2]:.3f}" for n in sizes) + " |\n"
    for k in (20, 50):
        text += f"| --all, {k} segments | " + " | ".join(f"{rows[n][2][k]:.3f}" for n in sizes) + " | " + " | ".join("—" for _ in sizes) + " |\n"
    text += "| floor (DuckDB scan) | " + " | ".join("—" for _ in sizes) + " | " + " | ".join(f"{rows[n][1]:.3f}" for n in sizes) + " |\n"
    print(text)
    with open(os.path.join(args.out, "scaling.md"), "w") as f:
        f.write(text)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 5))
        for i, name in enumerate(names):
            ax.plot(sizes, [rows[n][0][i][1] for n in sizes], marker="o", label=name)
        ax.plot(sizes, [rows[n][2][50] for n in sizes], marker="s", linestyle=":", label="--all, 50 segments")
        ax.plot(sizes, [rows[n][1] for n in sizes], color="grey", linestyle="--", label="floor (DuckDB scan)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events")
        ax.set_ylabel("seconds (median, whole seg process)")
        ax.set_title("Seg on seg gen's layout: time against events")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(ROOT, "docs", "benchmarks.png"), dpi=100)
    except ImportError:
        print("matplotlib not installed: no chart")


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                pass

def wait_port(port, proc):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"a cluster process exited: {proc.args}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def comparison_cases(script_dir):
    """The suite's segments and 20 segments run with --all, for runs set
    against local ones: (name, the script's path, extra arguments), the
    script written just before it is yielded."""
    cases = [(name, seg) for name, seg, _ in suite()]
    cases.append(("20 segments, --all", many_segments(20)))
    path = os.path.join(script_dir, "q.seg")
    for name, seg in cases:
        with open(path, "w") as f:
            f.write(seg)
        yield name, path, (["--all"] if "--all" in name else [])


def cluster_bench(args, data, script_dir):
    """The suite on a loopback Ballista cluster (`seg scheduler` and two
    `seg executor`s, each with half the threads) against local runs over the
    same files: both medians, the ratio, the seconds added, and the peak RSS
    of the client, the scheduler and each executor."""
    def peak_rss(proc):
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    work = tempfile.mkdtemp()
    port = free_port()
    scheduler = subprocess.Popen([args.seg, "scheduler", "--bind", f"127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [("scheduler", scheduler)]
    try:
        wait_port(port, scheduler)
        slots = max(1, args.threads // 2)
        for i in range(2):
            p = free_port()
            ex = subprocess.Popen([args.seg, "executor", "--scheduler", f"127.0.0.1:{port}",
                                   "--bind", f"127.0.0.1:{p}", "--concurrency", str(slots),
                                   "--memory-limit", "2G", "--work-dir", os.path.join(work, f"executor-{i}")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append((f"executor {i}", ex))
            wait_port(p + 1, ex)
        url = f"df://127.0.0.1:{port}"
        rows = []
        bad = 0
        for name, path, extra in comparison_cases(script_dir):
            base = [args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--format", "count", *extra]
            local = [timed(base) for _ in range(args.runs)]
            remote = [timed(base + ["--cluster", url]) for _ in range(args.runs)]
            if local[0][2] != remote[0][2]:
                print(f"error: cluster: {name}: local counts {local[0][2].split()}, cluster {remote[0][2].split()}")
                bad += 1
            lt = statistics.median(r[0] for r in local)
            rt = statistics.median(r[0] for r in remote)
            rows.append((name, lt, rt, max(r[1] for r in remote)))
        print(f"\n## Cluster: one scheduler and two executors ({slots} task slots each) on loopback, {args.events:,} events\n")
        print("| segment | local (s) | cluster (s) | cluster/local | added (s) | client peak RSS (MiB) |\n|---|---|---|---|---|---|")
        for name, lt, rt, rss in rows:
            print(f"| {name} | {lt:.3f} | {rt:.3f} | {rt / lt:.2f} | {rt - lt:+.3f} | {rss:.0f} |")
        gm = statistics.geometric_mean([rt / lt for _, lt, rt, _ in rows])
        print(f"\nGeometric mean cluster/local: {gm:.2f}; most added: {max(rt - lt for _, lt, rt, _ in rows):.3f} s.")
        print("Peak RSS of the servers (MiB): " + ", ".join(f"{who} {peak_rss(p):.0f}" for who, p in procs))
        return bad
    finally:
        for _, p in procs:
            p.kill()
            p.wait()


def store_bench(args, data, script_dir):
    """The suite over an S3 copy of `data` on a loopback moto server against
    local runs over the same files: both medians, the ratio, and per segment
    the requests Seg made and the bytes it fetched (from SEG_TIMINGS)."""
    import boto3

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, server)
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ALLOW_HTTP="true",
                   AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        s3.create_bucket(Bucket="bench")
        uploaded = 0
        for root, _, files in os.walk(data):
            for name in files:
                path = os.path.join(root, name)
                s3.upload_file(path, "bench", "data/" + os.path.relpath(path, data))
                uploaded += os.path.getsize(path)
        url = "s3://bench/data"
        rows = []
        bad = 0
        for name, path, extra in comparison_cases(script_dir):
            local = [timed([args.seg, "run", path, "--data", data, "--as-of", AS_OF, "--format", "count", *extra])
                     for _ in range(args.runs)]
            remote = []
            for _ in range(args.runs):
                start = time.perf_counter()
                out = subprocess.run([args.seg, "run", path, "--data", url, "--as-of", AS_OF, "--format", "count",
                                      *extra], capture_output=True, text=True, env=dict(env, SEG_TIMINGS="1"))
                secs = time.perf_counter() - start
                if out.returncode != 0:
                    sys.exit(f"failed over {url}: {name}\n{out.stderr}")
                stats = [l for l in out.stderr.splitlines() if "store so far" in l][-1]
                requests = int(stats.split("store so far: ")[1].split()[0])
                fetched = int(stats.split("), ")[1].split()[0])
                remote.append((secs, out.stdout, requests, fetched))
            if local[0][2] != remote[0][1]:
                print(f"error: store: {name}: local counts {local[0][2].split()}, s3 {remote[0][1].split()}")
                bad += 1
            lt = statistics.median(r[0] for r in local)
            rt = statistics.median(r[0] for r in remote)
            rows.append((name, lt, rt, remote[0][2], remote[0][3]))
        print(f"\n## Object store: moto's S3 server on loopback, {args.events:,} events, "
              f"{uploaded / 2**20:.0f} MiB in the bucket\n")
        print("| segment | local (s) | s3 (s) | s3/local | requests | MiB fetched |\n|---|---|---|---|---|---|")
        for name, lt, rt, requests, fetched in rows:
            print(f"| {name} | {lt:.3f} | {rt:.3f} | {rt / lt:.2f} | {requests} | {fetched / 2**20:.1f} |")
        gm = statistics.geometric_mean([rt / lt for _, lt, rt, _, _ in rows])
        print(f"\nGeometric mean s3/local: {gm:.2f}; worst: {max(rt / lt for _, lt, rt, _, _ in rows):.2f}.")
        return bad
    finally:
        server.kill()
        server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--profiles", type=int, default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--seg", default=os.path.join(ROOT, "target", "release", "seg"))
    ap.add_argument("--layout", default="seg",
                    help=f"comma-separated layouts, or 'all': {', '.join(LAYOUTS)}")
    ap.add_argument("--scaling", default=None,
                    help="comma-separated event counts (e.g. 1000000,10000000,100000000): the suite on the "
                         "seg layout at each, a table of times and docs/benchmarks.png (time against events)")
    ap.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md and the chart")
    ap.add_argument("--check", action="store_true", help="fail when Seg, DuckDB and Seg's SQL disagree on a count")
    ap.add_argument("--cluster", action="store_true",
                    help="the suite on a loopback cluster (seg scheduler, two seg executors) against local runs, "
                         "on the first --layout")
    ap.add_argument("--store", choices=["s3"], default=None,
                    help="the suite over an S3 copy of the first --layout on a loopback moto server "
                         "(pip install 'moto[server]') against local runs: times, requests, bytes fetched")
    args = ap.parse_args()
    layouts = LAYOUTS if args.layout == "all" else args.layout.split(",")
    for layout in layouts:
        if layout not in LAYOUTS:
            sys.exit(f"unknown layout `{layout}`; the layouts are {', '.join(LAYOUTS)}")

    script_dir = tempfile.mkdtemp()
    if args.scaling:
        scaling(args, [int(n) for n in args.scaling.split(",")], script_dir)
        return
    profiles = args.profiles or max(1000, args.events // 10)
    data = generated(args, args.events, profiles)
    if args.store:
        layout = layouts[0]
        path = data if layout == "seg" else f"{data}-{layout}"
        make_layout(layout, data, path)
        bad = store_bench(args, path, script_dir)
        if args.check and bad:
            sys.exit(f"{bad} count disagreements between the store and local runs")
        return
    if args.cluster:
        layout = layouts[0]
        path = data if layout == "seg" else f"{data}-{layout}"
        make_layout(layout, data, path)
        bad = cluster_bench(args, path, script_dir)
        if args.check and bad:
            sys.exit(f"{bad} count disagreements between the cluster and local runs")
        return

    reports = []
    mismatches = 0
    for layout in layouts:
        path = data if layout == "seg" else f"{data}-{layout}"
        make_layout(layout, data, path)
        results, floor_t, all_t, one_t, steps_t, bad = run_layout(args, layout, path, script_dir)
        mismatches += bad
        text, gm = layout_report(layout, results, floor_t, all_t, one_t, steps_t)
        print(f"\n## Layout `{layout}`\n\n{text}")
        reports.append((layout, results, floor_t, all_t, one_t, text, gm))
    if len(reports) > 1:
        print(summary_table(reports))
    if args.check and mismatches:
        sys.exit(f"{mismatches} count disagreements")
    if args.write_docs:
        write_docs(args, profiles, reports)


def summary_table(reports):
    """One line per layout: the geometric mean and the worst segment against
    DuckDB, against the layout's floor and against each segment's own rows'
    scan, and the peak RSS."""
    text = ("| layout | geometric mean Seg/DuckDB | worst Seg/DuckDB | worst Seg/floor | worst Seg/its rows' scan | peak RSS (MiB) |\n"
            "|---|---|---|---|---|---|\n")
    for layout, results, _, _, _, _, gm in reports:
        worst = lambda against: max(results, key=lambda r: r[1] / r[against])  # noqa: E731
        shown = lambda against: f"{worst(against)[1] / worst(against)[against]:.2f} ({worst(against)[0]})"  # noqa: E731
        text += f"| {layout} | {gm:.2f} | {shown(2)} | {shown(3)} | {shown(9)} | {max(r[4] for r in results):.0f} |\n"
    return text


def write_docs(args, profiles, reports):
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
    body = (
        f"# Benchmarks\n\n{when}, {machine}; {args.events:,} events, {profiles:,} profiles, "
        f"{args.threads} threads, median of {args.runs} runs. Seg times are whole `seg run` processes "
        f"(start-up, validation and planning included); DuckDB, DataFusion (its Python package) and chDB times are "
        f"in-process queries over the same Parquet files, hand-written SQL.\n\n"
        f"`python3 bench/run.py --layout all --write-docs` regenerates this page. Every layout holds the same "
        f"events (those of `seg gen`), rewritten as another writer would write them.\n\n"
        f"Two floors: the layout's (DuckDB counting the click rows up to the as-of time, one figure per layout) "
        f"and each segment's own, *its rows' scan*: DuckDB's fastest scan of the rows that segment has to read "
        f"(its conditions' channels, events, windows and scopes) and their profile ids, "
        f"`SELECT count(*), max(profile_id) … WHERE …` (`rows_read` in bench/run.py). A segment of thirty "
        f"conditions reads many times the click rows; against the first floor it can only look slow, against "
        f"the second it shows what it costs beyond reading its rows. Both are in-process DuckDB queries; "
        f"Seg's times also include starting its process and opening the data (about 5 ms on the Hive layout, `SEG_TIMINGS`).\n\n"
    )
    if len(reports) > 1:
        body += summary_table(reports) + "\n"
    for layout, _, _, _, _, text, _ in reports:
        body += f"## Layout `{layout}`\n\n{LAYOUT_NOTES[layout]}.\n\n{text}\n"
    with open(doc, "w") as f:
        f.write(body)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(10, 4))
        names = [r[0] for r in reports[0][1]]
        width = 0.8 / len(reports)
        for k, (layout, results, *_rest) in enumerate(reports):
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(names))]
            ax.bar(xs, [r[1] / r[2] for r in results], width, label=layout)
        ax.axhline(1.0, color="grey", linestyle="--", label="DuckDB")
        ax.set_xticks(list(range(len(names))), names, rotation=20, ha="right")
        ax.set_ylabel("Seg time / DuckDB time")
        ax.legend(fontsize=8, ncol=3)
        fig.tight_layout()
        fig.savefig(os.path.join(ROOT, "docs", "benchmarks-layouts.png"), dpi=100)
        with open(doc, "a") as f:
            f.write("\n![Seg / DuckDB per layout](benchmarks-layouts.png)\n")
    except ImportError:
        print("matplotlib not installed: no chart")
    with open(doc, "a") as f:
        f.write("\n" + kept)


if __name__ == "__main__":
    main()
