"""Evidence from Databricks' audit system table: a JSON Lines export of `system.access.audit` (plain or .gz).

Which rows are table reads, and where the table's name sits, follow Databricks' documentation:
- "Audit log system table reference" (docs.databricks.com/admin/system-tables/audit-logs): the columns
  `event_time` (timestamp with its offset, e.g. 2023-01-01T01:01:01.123+00:00), `workspace_id`,
  `user_identity` (struct: `email`), `service_name`, `action_name`, `request_params` (map; a table's full name
  in `full_name_arg`, and `metastore_id`), `response` (struct: `statusCode`), `event_id`.
- "Audit Unity Catalog events" (docs.databricks.com/data-governance/unity-catalog/audit): under `service_name`
  `unityCatalog`, `getTable` is the metadata fetch every engine makes before reading a table, and
  `generateTemporaryTableCredential` hands out storage credentials to read (or write) its files; Databricks'
  own sample query for "who accessed a table" selects these two actions by `request_params.full_name_arg`.
  A credential request may name the table by `table_id` only: the caller resolves ids through the catalog.

So a read here is an *access*: a successful (statusCode 200) getTable or credential request on the table. A
refused request (403) is counted as denied, never as a read. Rows from another metastore (or workspace, when the
incident's target says which) are counted and ignored. A line that is not a JSON object with a readable
`event_time` is counted as malformed and coverage is cut around it; nothing ends the reading. Statement text
(`commandText` of verbose audit rows) is never read.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sevtool.evidence.records import AuditRecord, SourceStats

FORMAT = "uc-audit"
SERVICE = "unityCatalog"
READ_ACTIONS = ("getTable", "generateTemporaryTableCredential")
NAME_KEYS = ("full_name_arg", "table_full_name")


@dataclass(slots=True)
class UcSourceStats(SourceStats):
    """What one export file held, and the time it covers: a log file's stats, and what only an export has."""

    format: str = FORMAT
    denied: int = 0  # read requests the catalog refused (statusCode not 200)
    unresolved: int = 0  # read requests naming a table id the catalog does not know
    duplicates: int = 0  # an event_id seen before (the same export passed twice, overlapping exports)
    unordered: bool = False  # rows not in event_time order

    def as_dict(self) -> dict:
        extra = {"denied": self.denied, "unresolved": self.unresolved, "duplicates": self.duplicates}
        return {**SourceStats.as_dict(self), **extra, "unordered": self.unordered}


def event_epoch(value) -> float:
    """`event_time` as exported: ISO text with an offset ('Z' or +00:00), or epoch milliseconds; ValueError else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000
    if not isinstance(value, str) or len(value) < 19:
        raise ValueError(value)
    when = datetime.fromisoformat(value.replace(" ", "T", 1))
    if when.tzinfo is None:  # the table stores UTC; an export without an offset is still UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class UcAuditReader:
    """Reads export files one after the other; `records()` streams the table reads, `sources` holds the stats."""

    def __init__(
        self,
        paths: list[str | Path],
        *,
        metastore_id: str | None = None,
        workspace_id: str | None = None,
        table_ids: dict[str, str] | None = None,
        max_gap: timedelta = timedelta(hours=1),
    ):
        self.metastore_id = metastore_id
        self.workspace_id = workspace_id
        self.table_ids = table_ids or {}
        self.max_gap = max_gap.total_seconds()
        self.sources: list[UcSourceStats] = []
        self.skipped: list[str] = []
        self.unreadable: list[str] = []
        self.files = []
        for path in map(Path, paths):
            if path.is_dir():
                self.files += [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
            elif path.exists():
                self.files.append(path)
            else:
                self.unreadable.append(str(path))
        self._seen: set[str] = set()
        self._count = 0

    def records(self) -> Iterator[AuditRecord]:
        for path in self.files:
            stats = UcSourceStats(str(path))
            try:
                with _open(path) as stream:
                    self.sources.append(stats)
                    yield from self._read(stream, stats)
            except (OSError, EOFError, gzip.BadGzipFile, UnicodeError) as exc:
                self.unreadable.append(f"{path}: {exc}")

    def _read(self, stream, stats: UcSourceStats) -> Iterator[AuditRecord]:
        times = array("d")  # every readable event time, for the gaps of an export in any order
        broken = False
        for line in stream:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not an object")
                t = event_epoch(row["event_time"])
            except (ValueError, KeyError, TypeError):
                stats.corrupt += 1
                broken = True
                continue
            stats.entries += 1
            if stats.last is None:
                stats.broken_at_start, stats.first, stats.last = broken, t, t
            elif t >= stats.last:
                if broken:
                    stats.holes.append((stats.last, t))
                stats.last = t
            else:
                stats.unordered = True
                if broken:
                    stats.holes.append((t, stats.last))
                stats.first = min(stats.first, t)
            broken = False
            times.append(t)
            record = self._record(row, t, stats)
            if record is not None:
                stats.audit += 1
                yield record
        stats.broken_at_end = broken
        if times:
            ordered = sorted(times)
            stats.gaps = [(a, b) for a, b in itertools.pairwise(ordered) if b - a > self.max_gap]

    def _record(self, row: dict, t: float, stats: UcSourceStats) -> AuditRecord | None:
        if row.get("service_name") != SERVICE or row.get("action_name") not in READ_ACTIONS:
            return None
        params = row.get("request_params") or {}
        if isinstance(params, list):  # a map exported as [[key, value], ...]
            params = {k: v for k, v in params if isinstance(k, str)}
        if not isinstance(params, dict):
            stats.corrupt += 1
            return None
        if self.metastore_id and params.get("metastore_id") not in (None, self.metastore_id):
            stats.other_database += 1
            return None
        if self.workspace_id and str(row.get("workspace_id") or "") not in ("", "0", self.workspace_id):
            stats.other_database += 1
            return None
        response = row.get("response") or {}
        status = response.get("statusCode") if isinstance(response, dict) else None
        if status not in (200, "200", None):
            stats.denied += 1
            return None
        name = next((params[k] for k in NAME_KEYS if isinstance(params.get(k), str) and params[k]), None)
        if name is None:
            name = self.table_ids.get(str(params.get("table_id") or ""))
            if name is None:
                stats.unresolved += 1
                return None
        identity = row.get("user_identity") or {}
        user = identity.get("email") if isinstance(identity, dict) else None
        if not isinstance(user, str) or not user:
            stats.corrupt += 1
            return None
        event_id = row.get("event_id") or row.get("request_id")
        if isinstance(event_id, str) and event_id:
            if event_id in self._seen:
                stats.duplicates += 1
                return None
            self._seen.add(event_id)
        self._count += 1
        # One record per access: the tally de-duplicates by (session, statement); give each access its own number.
        return AuditRecord(
            t,
            str(row.get("workspace_id") or ""),
            user,
            "uc-audit",
            "SESSION",
            self._count,
            0,
            "READ",
            row["action_name"],
            "TABLE",
            name.lower(),
        )

    def totals(self) -> dict:
        keys = ("entries", "audit", "other_database", "denied", "unresolved", "duplicates", "corrupt", "other_format")
        return {key: sum(getattr(s, key) for s in self.sources) for key in keys} | {
            "files": len(self.sources),
            "skipped_duplicate_format": 0,
            "unreadable": len(self.unreadable),
        }


def _open(path: Path):
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")
