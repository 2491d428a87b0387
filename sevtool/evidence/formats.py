"""One line parser per PostgreSQL log format (csvlog, jsonlog, stderr with a known prefix), and how a file's format
is told from its name or first line.

Each parser streams one open file, yields an `AuditRecord` per pgaudit AUDIT line of the database asked for,
and keeps the file's coverage in its `SourceStats`: first and last time, silences longer than `max_gap`, and
holes around lines it could not read. The AUDIT payload is cut after the object name; only a ROLE-class
GRANT's statement is looked at, in passing, for the objects and grantees it names.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from sevtool.evidence.audit import parse_audit
from sevtool.evidence.prefix import PrefixParser
from sevtool.evidence.records import CSV, JSON, STDERR, AuditRecord, Clock, SourceStats

_AUDIT = "AUDIT: "
_CSV_MIN_FIELDS = 23  # PostgreSQL 12 writes 23 csvlog fields, 13 writes 24, 14+ write 26


def read_csv(stream, stats: SourceStats, *, database: str | None, max_gap: float) -> Iterator[AuditRecord]:
    """The hot loop, kept flat: the time's date and zone are parsed once per second, the AUDIT payload is split
    once, and only a quoted object name or a GRANT goes through the full parser."""
    clock, audit_prefix, record = Clock(), _AUDIT, AuditRecord
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


def read_json(
    stream, stats: SourceStats, *, database: str | None, max_gap: float, clock: Clock
) -> Iterator[AuditRecord]:
    for line in stream:
        if not line.strip():
            continue
        if line[:1] != "{":
            stats.other_format += 1
            stats.broken_at_end = True
            continue
        try:
            entry = json.loads(line)
            t = clock.epoch(entry["timestamp"])
        except (ValueError, KeyError, TypeError):
            stats.corrupt += 1
            stats.broken_at_end = True
            continue
        _cover(stats, t, max_gap)
        message, db = entry.get("message", ""), entry.get("dbname", "")
        if database is not None and db != database:
            if db:
                stats.other_database += 1
            continue
        if isinstance(message, str) and message.startswith(_AUDIT):
            record = _record(
                t, db, entry.get("user", ""), str(entry.get("session_id") or entry.get("pid", "")), message, stats
            )
            if record is not None:
                yield record


def read_stderr(
    stream, stats: SourceStats, *, database: str | None, max_gap: float, clock: Clock, prefix: PrefixParser
) -> Iterator[AuditRecord]:
    parse = prefix.parse
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
            t = clock.epoch(parsed.time) if parsed.time else float(parsed.epoch)
        except ValueError:
            stats.corrupt += 1
            stats.broken_at_end = True
            continue
        _cover(stats, t, max_gap)
        if database is not None and parsed.database != database:
            if parsed.database:
                stats.other_database += 1
            continue
        if parsed.severity == "LOG" and parsed.message.startswith(_AUDIT):
            record = _record(t, parsed.database, parsed.user, parsed.session or parsed.pid, parsed.message, stats)
            if record is not None:
                yield record


def _cover(stats: SourceStats, t: float, max_gap: float) -> None:
    """Coverage bookkeeping for the jsonlog and stderr readers (the csvlog reader inlines it)."""
    stats.entries += 1
    if stats.last is None:
        stats.broken_at_start = stats.broken_at_end
        stats.first = stats.last = t
    elif t > stats.last:
        if stats.broken_at_end:
            stats.holes.append((stats.last, t))
        elif t - stats.last > max_gap:
            stats.gaps.append((stats.last, t))
        stats.last = t
    elif t < stats.first:
        stats.first = t
    stats.broken_at_end = False


def _record(t: float, database: str, user: str, session: str, message: str, stats: SourceStats) -> AuditRecord | None:
    fields = parse_audit(message[7:])
    if fields is None:
        stats.corrupt += 1
        return None
    stats.audit += 1
    return AuditRecord(t, database, user, str(session), *fields)


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


# Statement text can be long; a field beyond csv's default 128 KB limit would otherwise raise mid-file.
csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 1 << 28)))
