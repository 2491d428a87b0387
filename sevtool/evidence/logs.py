"""Streaming readers for PostgreSQL server logs with pgaudit entries: csvlog, jsonlog, and stderr with a known prefix.

A reader yields one `AuditRecord` per pgaudit AUDIT line of the database asked for, and counts the rest. The
statement text and parameters of an AUDIT line (they can hold data values: `WHERE ssn = '...'`) are never kept:
the AUDIT payload is cut after the object name, and only a ROLE-class GRANT's statement is looked at, in
passing, for the objects and grantees it names.

Coverage is measured per source (one file): the time of its first and last entry, silences longer than
`max_gap`, and holes around lines that could not be read (corrupt, truncated, or in another format). Every
line with a readable time counts for coverage, whatever its database: the log was being written then.

Files, directories (every log file in them, rotated ones included), and `.gz` files are read as streams,
line by line: memory stays flat whatever the size of the logs. In a directory holding the same log in
several formats (postgresql-X.csv, .json and .log from `log_destination = 'csvlog,jsonlog,stderr'`), one is
read (csvlog, then jsonlog, then stderr) and the others are counted as skipped, so no read is counted twice.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sevtool.evidence.audit import parse_audit
from sevtool.evidence.prefix import PrefixParser

UTC = UTC
CSV, JSON, STDERR = "csvlog", "jsonlog", "stderr"
_FORMAT_RANK = {CSV: 0, JSON: 1, STDERR: 2}
_AUDIT = "AUDIT: "
_CSV_MIN_FIELDS = 23  # PostgreSQL 12 writes 23 csvlog fields, 13 writes 24, 14+ write 26
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


class _Clock:
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


class LogReader:
    """Reads log sources one after the other; `records()` streams the AUDIT records, `sources` holds the stats."""

    def __init__(
        self,
        paths: list[str | Path],
        *,
        database: str | None = None,
        line_prefix: str | None = None,
        max_gap: timedelta = timedelta(hours=1),
    ):
        self.database = database
        self.prefix = PrefixParser(line_prefix) if line_prefix else None
        self.max_gap = max_gap.total_seconds()
        self.sources: list[SourceStats] = []
        self.skipped: list[str] = []  # same log in another format, read from its csvlog or jsonlog twin
        self.unreadable: list[
            str
        ] = []  # files that could not be opened or decompressed, or stderr without --line-prefix
        self.files = self._expand([Path(p) for p in paths])

    # --- which files ------------------------------------------------------------------------

    def _expand(self, paths: list[Path]) -> list[tuple[Path, str | None]]:
        files: list[tuple[Path, str | None]] = []
        for path in paths:
            if path.is_dir():
                found = [
                    (p, guess_format(p)) for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")
                ]
                best: dict[str, int] = {}
                for p, fmt in found:
                    if fmt is not None:
                        best[_stem(p)] = min(best.get(_stem(p), 9), _FORMAT_RANK[fmt])
                for p, fmt in found:
                    if fmt is None:
                        continue
                    if _FORMAT_RANK[fmt] > best[_stem(p)]:
                        self.skipped.append(str(p))
                    else:
                        files.append((p, fmt))
            elif path.exists():
                files.append((path, guess_format(path)))
            else:
                self.unreadable.append(str(path))
        return files

    # --- reading ----------------------------------------------------------------------------

    def records(self) -> Iterator[AuditRecord]:
        for path, fmt in self.files:
            try:
                with _open(path) as stream:
                    fmt = fmt or sniff(stream)
                    if fmt == STDERR and self.prefix is None:
                        self.unreadable.append(f"{path}: stderr log; pass --line-prefix as in log_line_prefix")
                        continue
                    stats = SourceStats(str(path), fmt)
                    self.sources.append(stats)
                    reader = {CSV: self._csv, JSON: self._json, STDERR: self._stderr}[fmt]
                    yield from reader(stream, stats)
            except (OSError, EOFError, gzip.BadGzipFile, UnicodeError) as exc:
                self.unreadable.append(f"{path}: {exc}")

    def _csv(self, stream, stats: SourceStats) -> Iterator[AuditRecord]:
        """The hot loop, kept flat: the time's date and zone are parsed once per second, the AUDIT payload is split
        once, and only a quoted object name or a GRANT goes through the full parser."""
        clock, database, max_gap, audit_prefix, record = _Clock(), self.database, self.max_gap, _AUDIT, AuditRecord
        first = last = None
        prefix, base = "", 0.0
        broken = False
        entries = audit = other_database = 0
        for row in csv.reader(stream):
            if len(row) < _CSV_MIN_FIELDS:
                if row:
                    head = row[0]
                    if head[:1] == "{" or (len(row) < 4 and head[:2] == "20" and "]" in head[:40]):
                        stats.other_format += 1
                    else:
                        stats.corrupt += 1
                    broken = True
                continue
            ts = row[0]
            try:
                if ts[:19] != prefix:
                    base = clock.epoch(ts) - int(ts[20:23]) / 1000
                    prefix = ts[:19]
                t = base + int(ts[20:23]) / 1000
            except ValueError:
                stats.corrupt += 1
                broken = True
                continue
            entries += 1
            if last is None:
                stats.broken_at_start = broken
                first = last = t
            elif t > last:
                if broken:
                    stats.holes.append((last, t))
                elif t - last > max_gap:
                    stats.gaps.append((last, t))
                last = t
            elif t < first:
                first = t
            broken = False
            message, db = row[13], row[2]
            if not message.startswith(audit_prefix):
                if db and database is not None and db != database:
                    other_database += 1
                continue
            if database is not None and db != database:
                other_database += 1
                continue
            parts = message.split(",", 7)
            try:
                if len(parts) < 8 or parts[6][:1] == '"' or parts[3] == "ROLE":
                    raise ValueError
                audit_type = parts[0][7:]
                if audit_type != "SESSION" and audit_type != "OBJECT":
                    raise ValueError
                rec = record(
                    t,
                    db,
                    row[1],
                    row[5] or row[3],
                    audit_type,
                    int(parts[1]),
                    int(parts[2]),
                    parts[3],
                    parts[4],
                    parts[5],
                    parts[6],
                )
            except ValueError:
                fields = parse_audit(message[7:])
                if fields is None:
                    stats.corrupt += 1
                    continue
                rec = record(t, db, row[1], row[5] or row[3], *fields)
            audit += 1
            yield rec
        stats.entries, stats.first, stats.last, stats.broken_at_end = entries, first, last, broken
        stats.audit += audit
        stats.other_database += other_database

    def _json(self, stream, stats: SourceStats) -> Iterator[AuditRecord]:
        for line in stream:
            if not line.strip():
                continue
            if line[:1] != "{":
                stats.other_format += 1
                stats.broken_at_end = True
                continue
            try:
                entry = json.loads(line)
                t = self._clock.epoch(entry["timestamp"])
            except (ValueError, KeyError, TypeError):
                stats.corrupt += 1
                stats.broken_at_end = True
                continue
            self._cover(stats, t)
            message, db = entry.get("message", ""), entry.get("dbname", "")
            if self.database is not None and db != self.database:
                if db:
                    stats.other_database += 1
                continue
            if isinstance(message, str) and message.startswith(_AUDIT):
                record = self._record(
                    t, db, entry.get("user", ""), str(entry.get("session_id") or entry.get("pid", "")), message, stats
                )
                if record is not None:
                    yield record

    def _stderr(self, stream, stats: SourceStats) -> Iterator[AuditRecord]:
        parse = self.prefix.parse
        for line in stream:
            if line[:1] == "\t":
                stats.continuation += 1
                continue
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parsed = parse(line)
            if parsed is None:
                stats.other_format += 1
                stats.broken_at_end = True
                continue
            try:
                t = self._clock.epoch(parsed.time) if parsed.time else float(parsed.epoch)
            except ValueError:
                stats.corrupt += 1
                stats.broken_at_end = True
                continue
            self._cover(stats, t)
            if self.database is not None and parsed.database != self.database:
                if parsed.database:
                    stats.other_database += 1
                continue
            if parsed.severity == "LOG" and parsed.message.startswith(_AUDIT):
                record = self._record(
                    t, parsed.database, parsed.user, parsed.session or parsed.pid, parsed.message, stats
                )
                if record is not None:
                    yield record

    @property
    def _clock(self) -> _Clock:
        clock = getattr(self, "_shared_clock", None)
        if clock is None:
            clock = self._shared_clock = _Clock()
        return clock

    def _cover(self, stats: SourceStats, t: float) -> None:
        """Coverage bookkeeping for the jsonlog and stderr readers (the csvlog reader inlines it)."""
        stats.entries += 1
        if stats.last is None:
            stats.broken_at_start = stats.broken_at_end
            stats.first = stats.last = t
        elif t > stats.last:
            if stats.broken_at_end:
                stats.holes.append((stats.last, t))
            elif t - stats.last > self.max_gap:
                stats.gaps.append((stats.last, t))
            stats.last = t
        elif t < stats.first:
            stats.first = t
        stats.broken_at_end = False

    @staticmethod
    def _record(
        t: float, database: str, user: str, session: str, message: str, stats: SourceStats
    ) -> AuditRecord | None:
        fields = parse_audit(message[7:])
        if fields is None:
            stats.corrupt += 1
            return None
        stats.audit += 1
        return AuditRecord(t, database, user, str(session), *fields)

    def totals(self) -> dict:
        keys = ("entries", "audit", "other_database", "corrupt", "other_format")
        return {key: sum(getattr(s, key) for s in self.sources) for key in keys} | {
            "files": len(self.sources),
            "skipped_duplicate_format": len(self.skipped),
            "unreadable": len(self.unreadable),
        }


def _stem(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    for ext in (".csv", ".json", ".log"):
        if name.endswith(ext):
            return str(path.parent / name.removesuffix(ext))
        if ext + "." in name:  # rotated by logrotate: postgresql.csv.1
            return str(path.parent / name.replace(ext + ".", "."))
    return str(path.parent / name)


def guess_format(path: Path) -> str | None:
    """By name: .csv -> csvlog, .json -> jsonlog, .log -> stderr (also rotated .csv.1 and .gz); None: look inside."""
    name = path.name.removesuffix(".gz")
    for ext, fmt in ((".csv", CSV), (".json", JSON), (".log", STDERR)):
        if name.endswith(ext) or ext + "." in name:
            return fmt
    return None


def sniff(stream) -> str:
    """The format of a file whose name does not tell, from its first line (the stream is rewound)."""
    head = stream.readline()
    stream.seek(0)
    if head.startswith("{"):
        return JSON
    if re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? [^,]*,", head):
        return CSV
    return STDERR


def _open(path: Path):
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return path.open("r", encoding="utf-8", errors="replace", newline="")


# Statement text can be long; a field beyond csv's default 128 KB limit would otherwise raise mid-file.
csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 1 << 28)))
