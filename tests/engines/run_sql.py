#!/usr/bin/env python3
"""Runs Seg's emitted SQL on real engines, for the differential tests.

    run_sql.py DATA_DIR QUERIES.json > RESULTS.json

QUERIES.json: {"engines": ["duckdb", "sqlite", "postgres"],
               "queries": [{"duckdb": SQL, "sqlite": SQL, "postgres": SQL}, ...]}

The data directory (SPEC section 5 layout) is loaded once per engine:
- DuckDB reads the Parquet files as they are (ts is TIMESTAMP WITH TIME ZONE);
- SQLite gets ts as UTC text, 'YYYY-MM-DD HH:MM:SS[.ffffff]' with a space or
  a T, and no suffix, +00:00 or Z, the spellings mixed row by row (docs/sql.md);
- PostgreSQL (the server in $SEG_PG_DSN) gets ts as timestamptz, in a
  schema of its own that is dropped afterwards.
Both servers' sessions use a time zone far from UTC, so SQL that leaned on
the session's zone would give other ids.

RESULTS.json: {"unavailable": {engine: reason},
               "results": {engine: [{"ids": [...]} or {"error": "..."}]}}
"""

import datetime
import glob
import json
import os
import sqlite3
import sys

TABLES = {
    "profiles": [("profile_id", "BIGINT")],
    "campaigns": [("campaign_id", "BIGINT"), ("name", "TEXT")],
    "templates": [("template_id", "BIGINT"), ("name", "TEXT")],
    "tags": [("object", "TEXT"), ("object_id", "BIGINT"), ("tag", "TEXT")],
    "attributes": [("object", "TEXT"), ("object_id", "BIGINT"), ("key", "TEXT"), ("value", "TEXT")],
}
EVENTS = [
    ("profile_id", "BIGINT"),
    ("channel", "TEXT"),
    ("event", "TEXT"),
    ("ts", "TIMESTAMP"),
    ("message_id", "BIGINT"),
    ("campaign_id", "BIGINT"),
    ("template_id", "BIGINT"),
    ("link", "TEXT"),
]


def parquet_sources(data):
    """table name -> the read_parquet() argument, for the tables present."""
    out = {}
    events_dir = os.path.join(data, "events")
    if os.path.isdir(events_dir):
        files = [
            f
            for f in glob.glob(os.path.join(events_dir, "**", "*.parquet"), recursive=True)
            if not os.path.basename(f).startswith(("_", "."))
        ]
        out["events"] = sorted(files)
    else:
        out["events"] = [os.path.join(data, "events.parquet")]
    for table in TABLES:
        path = os.path.join(data, table + ".parquet")
        if os.path.exists(path):
            out[table] = [path]
    return out


def sql_list(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def load_duckdb(data):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'Pacific/Kiritimati'")
    for table, paths in parquet_sources(data).items():
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet({sql_list(paths)})")
    return con


def zoned(duck):
    """Whether events.ts is TIMESTAMP WITH TIME ZONE (else UTC wall-clock)."""
    types = dict(duck.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    return "TIME ZONE" in types["ts"]


def rows_of(duck, table):
    """Rows of a table as Python values, ts as naive UTC datetimes."""
    if table == "events":
        ts = "timezone('UTC', ts) AS ts" if zoned(duck) else "ts"
        cols = ", ".join(ts if name == "ts" else name for name, _ in EVENTS)
    else:
        cols = ", ".join(name for name, _ in TABLES[table])
    return duck.execute(f"SELECT {cols} FROM {table}").fetchall()


def sqlite_text(ts, i):
    """UTC text as the usual writers spell it, one spelling per row in turn:
    Python's sqlite3 and pandas (space, microseconds only when not zero), ISO
    8601 with T, and each with a +00:00 or Z suffix."""
    sep, suffix = [(" ", ""), ("T", ""), (" ", "+00:00"), ("T", "Z")][i % 4]
    return ts.isoformat(sep) + suffix


def load_sqlite(duck, tables):
    con = sqlite3.connect(":memory:")
    for table in tables:
        columns = EVENTS if table == "events" else TABLES[table]
        decl = ", ".join(f'"{n}" {"TEXT" if t == "TIMESTAMP" else t}' for n, t in columns)
        con.execute(f"CREATE TABLE {table} ({decl})")
        rows = rows_of(duck, table)
        if table == "events":
            rows = [r[:3] + (sqlite_text(r[3], i),) + r[4:] for i, r in enumerate(rows)]
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return con


def load_postgres(duck, tables, dsn):
    import psycopg

    con = psycopg.connect(dsn, autocommit=True)
    schema = f"seg_diff_{os.getpid()}"
    con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"SET search_path TO {schema}")
    con.execute("SET TIME ZONE 'Asia/Kathmandu'")
    ts_type = "timestamptz" if zoned(duck) else "timestamp"
    for table in tables:
        columns = EVENTS if table == "events" else TABLES[table]
        decl = ", ".join(f'"{n}" {ts_type if t == "TIMESTAMP" else t}' for n, t in columns)
        con.execute(f"CREATE TABLE {table} ({decl})")
        rows = rows_of(duck, table)
        utc = datetime.timezone.utc
        if table == "events" and ts_type == "timestamptz":
            rows = [r[:3] + (r[3].replace(tzinfo=utc),) + r[4:] for r in rows]
        with con.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        con.execute(f"ANALYZE {table}")
    return con, schema


def run_all(con, queries, engine):
    out = []
    for q in queries:
        try:
            rows = con.execute(q[engine]).fetchall()
            out.append({"ids": [r[0] for r in rows]})
        except Exception as e:  # the test reports it with the SQL
            out.append({"error": f"{type(e).__name__}: {e}"})
    return out


def main():
    data, queries_path = sys.argv[1], sys.argv[2]
    with open(queries_path) as f:
        job = json.load(f)
    engines, queries = job["engines"], job["queries"]
    unavailable, results = {}, {}
    try:
        duck = load_duckdb(data)
    except Exception as e:
        json.dump({"unavailable": {e_: f"duckdb: {e}" for e_ in engines}, "results": {}}, sys.stdout)
        return
    tables = list(parquet_sources(data))
    if "duckdb" in engines:
        results["duckdb"] = run_all(duck, queries, "duckdb")
    if "sqlite" in engines:
        results["sqlite"] = run_all(load_sqlite(duck, tables), queries, "sqlite")
    if "postgres" in engines:
        dsn = os.environ.get("SEG_PG_DSN")
        if not dsn:
            unavailable["postgres"] = "SEG_PG_DSN is not set"
        else:
            try:
                pg, schema = load_postgres(duck, tables, dsn)
            except Exception as e:
                unavailable["postgres"] = f"{type(e).__name__}: {e}"
            else:
                try:
                    results["postgres"] = run_all(pg, queries, "postgres")
                finally:
                    pg.execute(f"DROP SCHEMA {schema} CASCADE")
    json.dump({"unavailable": unavailable, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
