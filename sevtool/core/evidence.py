"""Who read the exposed objects during the exposure window, and how much of that window the logs cover.

Pure: no IO. The use case hands in the incident's facts (exposure start, apply and undo times from the ledger,
regressions and check times) and the pgaudit records read from the logs; this module answers, per object:

- its windows: exposure start -> the apply that closed it (open until now if nothing closed it), plus each
  regression window (last clean check before it was seen -> the re-apply, or now);
- the part of each window the logs cover: sources' first..last entry, minus silences longer than `max_gap` and
  holes around unreadable lines; adjacent files bridge over a silence up to `max_gap`;
- reads by role (count of statements, first and last time), split into members of the principal and others;
- the answer: `reads` when some were found, `no_reads` only when every window is covered and pgaudit is known to
  have logged READ for the object, `unknown` otherwise. Never a guess: uncovered time is listed as unknown.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypedDict

from sevtool.core.identifiers import normalise_name
from sevtool.core.table_stats import StatsReads

UTC = UTC
Span = tuple[datetime | None, datetime]  # start None: unknown, before anything the logs or the incident say


@dataclass(frozen=True, slots=True)
class Piece:
    """Covered time from one source; a hard end borders unreadable lines, so no silence is bridged there."""

    start: datetime
    end: datetime
    hard_start: bool = False
    hard_end: bool = False


def source_pieces(
    first: datetime,
    last: datetime,
    gaps: Iterable[tuple[datetime, datetime]],
    holes: Iterable[tuple[datetime, datetime]],
    *,
    broken_at_start: bool = False,
    broken_at_end: bool = False,
) -> list[Piece]:
    """One source's covered pieces: [first, last] cut at its long silences and around its unreadable lines. Those
    cuts are hard (never bridged again); only a file's own first and last entries may bridge to another file's."""
    pieces, start = [], first
    hard_start = broken_at_start
    for a, b in sorted([*gaps, *holes]):
        if a >= start:
            pieces.append(Piece(start, a, hard_start, True))
        start, hard_start = max(start, b), True
    pieces.append(Piece(start, last, hard_start, broken_at_end))
    return [p for p in pieces if p.end >= p.start]


def coverage(pieces: Iterable[Piece], max_gap: timedelta) -> list[tuple[datetime, datetime]]:
    """Merge pieces of all sources; a silence of at most max_gap between soft ends counts as covered."""
    merged: list[tuple[datetime, datetime, bool]] = []  # (start, end, hard_end)
    for p in sorted(pieces, key=lambda p: (p.start, p.end)):
        if merged:
            start, end, hard_end = merged[-1]
            if p.start <= end or (p.start - end <= max_gap and not hard_end and not p.hard_start):
                if p.end >= end:
                    merged[-1] = (start, p.end, p.hard_end)
                continue
        merged.append((p.start, p.end, p.hard_end))
    return [(a, b) for a, b, _ in merged]


def intersect(windows: list[Span], covered: list[tuple[datetime, datetime]]) -> tuple[list[Span], list[Span]]:
    """(covered, uncovered) parts of the windows."""
    inside: list[Span] = []
    outside: list[Span] = []
    for start, end in windows:
        cursor = start  # None: nothing before it is known
        for a, b in covered:
            if cursor is not None and b <= cursor:
                continue
            if a >= end:
                break
            lo = a if cursor is None else max(a, cursor)
            if cursor is None or lo > cursor:
                outside.append((cursor, lo))
            hi = min(b, end)
            inside.append((lo, hi))
            cursor = hi
        if cursor is None or cursor < end:
            outside.append((cursor, end))
    return inside, outside


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans, key=lambda s: (s[0] is not None, s[0] or datetime.min.replace(tzinfo=UTC), s[1])):
        if out and (start is None or start <= out[-1][1]):
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


# --- windows -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    """What the store knows about one object: when the ledger closed it, reopened it, and its regressions."""

    applied: tuple[datetime, ...] = ()  # updated_at of applied actions on it
    undone: tuple[datetime, ...] = ()  # updated_at of undone actions on it
    regressions: tuple[tuple[datetime | None, datetime | None], ...] = ()  # (first_seen_at, closed_at)


def windows_for(
    start: datetime | None, facts: ObjectFacts, clean_checks: list[datetime], now: datetime
) -> list[tuple[Span, str]]:
    """(span, kind) of the object's exposure: `exposure` from start to the last apply (now if none), `reopened` from
    an undo no apply followed, `regression` from the last clean check before a regression was seen to its close."""
    close = max(facts.applied) if facts.applied else now
    out: list[tuple[Span, str]] = [((start, close), "exposure")]
    for undone in facts.undone:
        if undone > close:
            out.append(((undone, now), "reopened"))
    for seen, closed in facts.regressions:
        seen = seen or now
        before = [c for c in clean_checks if c < seen]
        out.append(((max(before) if before else close, closed or now), "regression"))
    return out


def exposure_start(recorded: datetime | None, grants: list[datetime]) -> tuple[datetime | None, str]:
    if recorded is not None:
        return recorded, "recorded on the incident"
    if grants:
        return min(grants), "earliest GRANT to the principal in the pgaudit ROLE entries"
    return None, "unknown: not recorded on the incident and no GRANT to the principal in the logs"


# --- reads -------------------------------------------------------------------------------------


class AuditEntry(Protocol):
    """What a tally reads of one pgaudit entry (`sevtool.evidence.records.AuditRecord`)."""

    @property
    def epoch(self) -> float: ...
    @property
    def time(self) -> datetime: ...
    @property
    def user(self) -> str: ...
    @property
    def session(self) -> str: ...
    @property
    def audit_type(self) -> str: ...
    @property
    def audit_class(self) -> str: ...
    @property
    def statement_id(self) -> int: ...
    @property
    def command(self) -> str: ...
    @property
    def object_name(self) -> str: ...
    @property
    def grant_objects(self) -> tuple[str, ...]: ...
    @property
    def grantees(self) -> tuple[str, ...]: ...


@dataclass(slots=True)
class ReadTally:
    """Reads of in-scope objects as they stream by: times per (object, role), one per statement."""

    objects: set[str]
    principals: set[str]
    times: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    grants: dict[str, list[datetime]] = field(default_factory=dict)  # object -> GRANT to a principal times
    session_read_logged: bool = False  # some SESSION READ entry: pgaudit.log includes READ (for that session)
    source: str = "pgaudit"  # what logged the reads, for the reasons given
    object_read_logged: set[str] = field(default_factory=set)
    _last: dict[str, tuple[int, set[str]]] = field(default_factory=dict)

    def add(self, rec: AuditEntry) -> None:
        if rec.audit_class == "READ":
            self._read(rec)
        elif rec.audit_class == "ROLE" and rec.command == "GRANT" and any(g in self.principals for g in rec.grantees):
            for name in rec.grant_objects:
                for obj in self._match(name):
                    self.grants.setdefault(obj, []).append(rec.time)

    def _read(self, rec: AuditEntry) -> None:
        if rec.audit_type == "SESSION":
            self.session_read_logged = True
        obj = _unquote(rec.object_name)
        if obj not in self.objects:
            return
        if rec.audit_type == "OBJECT":
            self.object_read_logged.add(obj)
        # One read per statement and object: a self-join logs the table twice, SESSION and OBJECT audit both log
        # it, and a log read twice (its csvlog and jsonlog) replays statement ids already seen in that session.
        last = self._last.get(rec.session)
        if last is not None:
            if rec.statement_id < last[0] or (rec.statement_id == last[0] and obj in last[1]):
                return
            if rec.statement_id == last[0]:
                last[1].add(obj)
            else:
                self._last[rec.session] = (rec.statement_id, {obj})
        else:
            self._last[rec.session] = (rec.statement_id, {obj})
        key = (obj, rec.user)
        times = self.times.get(key)
        if times is None:
            times = self.times[key] = array("d")
        times.append(rec.epoch)

    def _match(self, name: str) -> list[str]:
        if name.endswith(".*"):
            schema = name[:-2]
            return [o for o in self.objects if o.split(".", 1)[0] == schema]
        if name in self.objects:
            return [name]
        if "." not in name:  # unqualified in the GRANT: whichever in-scope table has that name
            return [o for o in self.objects if o.split(".", 1)[-1] == name]
        return []


def _unquote(name: str) -> str:
    return normalise_name(name) if '"' in name else name


@dataclass(frozen=True, slots=True)
class Reader:
    role: str
    member: bool
    reads: int
    first: datetime
    last: datetime


class WindowDict(TypedDict):
    kind: str  # exposure | reopened | regression
    start: str | None
    end: str


class ReaderDict(TypedDict):
    role: str
    reads: int
    first: str
    last: str


class ObjectEvidenceDict(TypedDict):
    object: str
    answer: str
    reason: str
    window_start: str
    windows: list[WindowDict]
    read_logged: str | None
    covered: list[list[str | None]]
    uncovered: list[list[str | None]]
    members: list[ReaderDict]
    non_members: list[ReaderDict]
    reads: int
    stats_reads: int | None  # scans counted by the table statistics between stats_from and stats_to (no reader)
    stats_from: str | None
    stats_to: str | None
    stats_reset: bool  # the statistics were reset between the two snapshots: no count


@dataclass(frozen=True, slots=True)
class ObjectEvidence:
    object_fqn: str
    start_source: str
    windows: list[WindowDict]
    covered: list[Span]
    uncovered: list[Span]
    read_logged: str | None  # "session", "object" or None: no sign pgaudit logged READ for it
    readers: list[Reader]
    answer: str  # reads | no_reads | unknown
    reason: str
    stats: StatsReads | None = None  # the second source, shown beside the answer: it never decides it

    def as_dict(self) -> ObjectEvidenceDict:
        def when(v: datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "object": self.object_fqn,
            "answer": self.answer,
            "reason": self.reason,
            "window_start": self.start_source,
            "windows": self.windows,
            "read_logged": self.read_logged,
            "covered": [[when(a), when(b)] for a, b in self.covered],
            "uncovered": [[when(a), when(b)] for a, b in self.uncovered],
            "members": [_reader_dict(r) for r in self.readers if r.member],
            "non_members": [_reader_dict(r) for r in self.readers if not r.member],
            "reads": sum(r.reads for r in self.readers),
            "stats_reads": self.stats.reads if self.stats else None,
            "stats_from": when(self.stats.start) if self.stats else None,
            "stats_to": when(self.stats.end) if self.stats else None,
            "stats_reset": self.stats.reset if self.stats else False,
        }


def _reader_dict(r: Reader) -> ReaderDict:
    return {"role": r.role, "reads": r.reads, "first": r.first.isoformat(), "last": r.last.isoformat()}


def judge(
    obj: str,
    tally: ReadTally,
    windows: list[tuple[Span, str]],
    start_source: str,
    covered: list[tuple[datetime, datetime]],
    members: set[str],
    *,
    everyone: bool = False,
) -> ObjectEvidence:
    """everyone: every reader is a member (PUBLIC, or a group the target says holds every identity)."""
    spans = merge_spans(span for span, _ in windows)
    inside, outside = intersect(spans, covered)
    read_logged = "session" if tally.session_read_logged else ("object" if obj in tally.object_read_logged else None)
    bounds = [(-float("inf") if a is None else a.timestamp(), b.timestamp()) for a, b in spans]
    readers = []
    for (o, role), times in tally.times.items():
        if o != obj:
            continue
        hits = [t for t in times if any(lo <= t <= hi for lo, hi in bounds)]
        if hits:
            readers.append(
                Reader(
                    role,
                    everyone or "PUBLIC" in tally.principals or role in members,
                    len(hits),
                    datetime.fromtimestamp(min(hits), UTC),
                    datetime.fromtimestamp(max(hits), UTC),
                )
            )
    readers.sort(key=lambda r: (not r.member, -r.reads, r.role))
    if readers:
        answer = "reads"
        reason = "reads found" + ("; the uncovered time is unknown: there may be more" if outside else "")
    elif outside:
        answer, reason = "unknown", "the logs do not cover all of the window"
    elif read_logged is None:
        why = (
            " (no SESSION READ, no OBJECT audit of it)"
            if tally.source == "pgaudit"
            else " (no table read of any object in it)"
        )
        answer, reason = "unknown", f"no sign in the logs that {tally.source} logged READ for this object{why}"
    else:
        answer, reason = "no_reads", f"the whole window is covered and {tally.source} logged READ"
    shown: list[WindowDict] = [
        {"kind": kind, "start": a.isoformat() if a else None, "end": b.isoformat()} for (a, b), kind in windows
    ]
    return ObjectEvidence(obj, start_source, shown, inside, outside, read_logged, readers, answer, reason)


def answers_by_dss(objects: list[ObjectEvidence], dss: dict[str, int | None]) -> dict[str, dict[str, int]]:
    """Sensitivity label -> how many objects were exposed, and how many of them were read / not read / unknown."""
    out: dict[str, dict[str, int]] = {}
    for o in objects:
        rating = dss.get(o.object_fqn)
        counts = out.setdefault(
            f"DSS {rating}" if rating else "unrated", {"exposed": 0, "reads": 0, "no_reads": 0, "unknown": 0}
        )
        counts["exposed"] += 1
        counts[o.answer] += 1
    return dict(sorted(out.items(), key=lambda item: item[0] != "unrated" and -int(item[0].split()[-1])))


def most_read(objects: list[ObjectEvidence], limit: int = 10) -> list[dict[str, object]]:
    """The objects read most often during their windows, with how many roles read them and how many were not members."""
    read = [o for o in objects if o.readers]
    read.sort(key=lambda o: (-sum(r.reads for r in o.readers), o.object_fqn))
    return [
        {
            "object": o.object_fqn,
            "reads": sum(r.reads for r in o.readers),
            "readers": len(o.readers),
            "non_members": sum(1 for r in o.readers if not r.member),
        }
        for o in read[:limit]
    ]
