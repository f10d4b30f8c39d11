"""Seg, the audience segment language, from Python.

Seg selects customer profiles by what they did with the messages they were
sent: ``click.email at_least 3 in campaigns tagged "Online store" last 30d``.
This package is Seg's own checker, SQL compiler and engine (the ``seg``
command line's), as a native module:

* ``check(text, data=None)`` lists a script's errors and warnings as
  ``Diagnostic`` objects (code, severity, message, line, column, byte range,
  help); ``str(d)`` is what ``seg check`` prints.
* ``compile(text, dialect="duckdb", segment=None, as_of=None, data=None)``
  returns the SQL of ``seg compile --emit sql``: one SELECT of the segment's
  profile ids for DuckDB, PostgreSQL, SQLite, MySQL or DataFusion.
* ``Engine(data)`` opens a data directory (or ``s3://…``, ``gs://…`` URL)
  once; ``run`` returns a segment's profile ids as a ``pyarrow.Table``,
  ``run_all`` every segment's, ``count`` their number and ``plan`` the
  DataFusion plan. Queries release the GIL and stop at Ctrl-C.

A script with errors raises ``ScriptError`` (its ``diagnostics`` list them);
data that cannot be read raises ``DataError``, naming the file and column;
both are ``SegError``. Warnings of a script that runs anyway are issued as
``SegWarning`` through Python's ``warnings``.

Example::

    import seglang

    seglang.check("clik.email exists")[0].help     # 'did you mean `click`?'
    engine = seglang.Engine("examples/data")
    table = engine.run("click.email at_least 3 last 30d", as_of="2026-11-01")
    table.column("profile_id").to_pylist()[:3]
    sql = seglang.compile("click.email at_least 3 last 30d", dialect="duckdb")

See docs/python.md in the repository for a walk-through.
"""

from ._seglang import (
    DataError,
    Diagnostic,
    Engine,
    ScriptError,
    SegError,
    SegWarning,
    __version__,
    check,
    compile,
)

__all__ = [
    "DataError",
    "Diagnostic",
    "Engine",
    "ScriptError",
    "SegError",
    "SegWarning",
    "__version__",
    "check",
    "compile",
]
