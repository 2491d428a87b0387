"""What reading a PostgreSQL log yields: one `AuditRecord` per pgaudit AUDIT line, a `SourceStats` per file, and
log times read to epoch seconds.

`AuditRecord` never holds the statement text or parameters of an AUDIT line (they can hold data values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

CSV, JSON, STDERR = "csvlog", "jsonlog", "stderr"
# Common log_timezone abbreviations; PostgreSQL writes '+05'-style offsets for zones without one.
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "UT": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "CET": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "JST": 9,
    "KST": 9,
    "AEST": 10,
    "AEDT": 11,
    "NZST": 12,
    "NZDT": 13,
}
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})?$")


@dataclass(slots=True)
class AuditRecord:
    """One pgaudit AUDIT line: who, where, when, which class, command and object. Never the statement.

    Slotted, not frozen: a frozen dataclass sets each field through object.__setattr__, a third of the reader's time."""

    epoch: float  # seconds since 1970 UTC, to the millisecond; `time` is the same as a datetime
    database: str
    user: str
    session: str  # the session id (csvlog, jsonlog, %c), else the process id
    audit_type: str  # SESSION or OBJECT
    statement_id: int
    substatement_id: int
    audit_class: str  # READ, WRITE, ROLE, DDL, FUNCTION, MISC, MISC_SET
    command: str  # SELECT (COPY ... TO is logged as SELECT too), GRANT, ...
    object_type: str  # TABLE, VIEW, ... ('' for ROLE lines)
    object_name: str  # as pgaudit writes it: schema.name, quoted where PostgreSQL would quote
    grant_objects: tuple[str, ...] = ()  # ROLE GRANT only: the objects it names ('schema.*' for ALL TABLES IN SCHEMA)
    grantees: tuple[str, ...] = ()  # ROLE GRANT only: who it grants to (lower-cased unless quoted)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.epoch, UTC)


@dataclass(slots=True)
class SourceStats:
    """What one log file held, and the time it covers (epoch seconds; gaps and holes as (from, to))."""

    path: str
    format: str
    entries: int = 0  # lines with a readable time, of any database
    audit: int = 0  # AUDIT lines of the database asked for
    other_database: int = 0  # lines of another database: ignored
    corrupt: int = 0  # unreadable: bad quoting, missing fields, bad time, bad AUDIT payload, bad JSON
    other_format: int = 0  # a line in another log format than the file's
    continuation: int = 0  # stderr lines continuing a multi-line message (statement text): skipped unread
    first: float | None = None
    last: float | None = None
    gaps: list[tuple[float, float]] = field(default_factory=list)
    holes: list[tuple[float, float]] = field(default_factory=list)
    broken_at_start: bool = False  # unreadable lines before the first readable one: coverage starts there, hard
    broken_at_end: bool = False  # the file ends in unreadable lines: its coverage ends at its last readable one, hard

    def as_dict(self) -> dict:
        def when(epoch: float | None) -> str | None:
            return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()

        return {
            "path": self.path,
            "format": self.format,
            "entries": self.entries,
            "audit": self.audit,
            "other_database": self.other_database,
            "corrupt": self.corrupt,
            "other_format": self.other_format,
            "first": when(self.first),
            "last": when(self.last),
            "gaps": [[when(a), when(b)] for a, b in self.gaps],
            "holes": [[when(a), when(b)] for a, b in self.holes],
        }


class Clock:
    """Log times ('2026-06-18 14:05:09.123 UTC') to epoch seconds; the zone and date are parsed once per second."""

    __slots__ = ("base", "prefix")

    def __init__(self):
        self.prefix = ""
        self.base = 0.0

    def epoch(self, ts: str) -> float:
        """Raises ValueError for a time it cannot read."""
        prefix = ts[:19]
        if prefix != self.prefix:
            if len(ts) < 21 or ts[10] != " ":
                raise ValueError(ts)
            zone = ts[24:] if ts[19] == "." else ts[20:]
            self.base = datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp() - zone_offset(zone)
            self.prefix = prefix
        if ts[19] == ".":
            return self.base + int(ts[20:23]) / 1000
        return self.base


def zone_offset(zone: str) -> int:
    """Seconds east of UTC for a log_timezone abbreviation or '+05' / '-0330' offset; ValueError if unknown."""
    hours = _ZONES.get(zone)
    if hours is not None:
        return hours * 3600
    match = _OFFSET.match(zone)
    if not match:
        raise ValueError(f"unknown time zone {zone!r}")
    sign = -1 if match.group(1) == "-" else 1
    return sign * (int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60)
