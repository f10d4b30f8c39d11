"""Types of the native module (see ``seglang``'s docstring)."""

import datetime
import os
from typing import Final, Literal, Optional, Union

import pyarrow

__version__: Final[str]

#: A data directory or an object-store URL (``s3://bucket/prefix``).
DataPath = Union[str, os.PathLike[str]]
#: When relative windows end: a date or RFC 3339 string, a ``date`` (midnight
#: UTC) or a ``datetime`` (UTC when it has no time zone); ``None`` is now.
AsOf = Union[str, datetime.date, datetime.datetime, None]
Dialect = Literal["duckdb", "postgres", "sqlite", "mysql", "datafusion"]

class SegError(Exception):
    """The base class of the errors Seg raises."""

class ScriptError(SegError):
    """The script has errors; ``str(error)`` renders them."""

    #: Every error and warning, in source order.
    diagnostics: list[Diagnostic]

class DataError(SegError):
    """The data cannot be read, or does not have Seg's layout; the message
    names the file, and the column and types where one is at fault."""

class SegWarning(UserWarning):
    """A warning about a script that still runs."""

class Diagnostic:
    """One problem found in a script, as ``seg check --format json`` reports it."""

    #: The code, such as ``"E010"``.
    @property
    def code(self) -> str: ...
    @property
    def severity(self) -> Literal["error", "warning"]: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def message(self) -> str: ...
    #: 1-based line and column (in characters) of the start and the end.
    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def end_column(self) -> int: ...
    #: The byte range in the script's UTF-8 text.
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def label(self) -> Optional[str]: ...
    @property
    def help(self) -> Optional[str]: ...
    def __str__(self) -> str:
        """The text ``seg check`` prints for it, without colour."""

def check(text: str, data: Optional[DataPath] = None) -> list[Diagnostic]:
    """Every error and warning of a script, in source order; with ``data``,
    names of campaigns, templates, tags and attributes are checked too."""

def compile(
    text: str,
    dialect: Dialect = "duckdb",
    segment: Optional[str] = None,
    as_of: AsOf = None,
    data: Optional[DataPath] = None,
) -> str:
    """The SQL of ``seg compile --emit sql``: one SELECT of the segment's
    profile ids, ascending. Raises ``ScriptError`` or ``ValueError``."""

class Engine:
    """A data directory opened for queries, kept open between calls."""

    def __init__(self, data: DataPath) -> None:
        """Opens and validates ``data``; raises ``DataError``."""
    @property
    def data(self) -> str: ...
    def check(self, text: str) -> list[Diagnostic]:
        """``check(text, data=...)`` without opening the data again."""
    def compile(
        self,
        text: str,
        dialect: Dialect = "duckdb",
        segment: Optional[str] = None,
        as_of: AsOf = None,
    ) -> str:
        """The SQL of a segment for this data's tables."""
    def run(self, text: str, segment: Optional[str] = None, as_of: AsOf = None) -> pyarrow.Table:
        """The profiles in a segment: one column ``profile_id`` (int64), ascending."""
    def run_all(self, text: str, as_of: AsOf = None) -> pyarrow.Table:
        """Every segment: columns ``segment`` (string) and ``profile_id`` (int64)."""
    def count(self, text: str, segment: Optional[str] = None, as_of: AsOf = None) -> int:
        """The number of profiles in a segment."""
    def plan(self, text: str, segment: Optional[str] = None, as_of: AsOf = None) -> str:
        """The optimized DataFusion logical plan, as ``seg compile --emit plan``."""
