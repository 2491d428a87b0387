"""Table statistics as a second source of evidence: how often an object was read between two snapshots.

Audit logs say who read what and when; where there are none, a platform's own counters (PostgreSQL's
`pg_stat_user_tables`) still say how many scans an object had. sevtool snapshots them after each scan, apply and
check; the difference between the first snapshot and the one taken at or after an object's containment is how many
times it was read meanwhile. The counters name no reader and start again from zero when statistics are reset: a
reset between the two snapshots (the reset time changed, or a counter went down) means no count, said as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise


@dataclass(frozen=True, slots=True)
class TableCounters:
    seq_scan: int
    idx_scan: int
    last_seq_scan: datetime | None = None  # PostgreSQL 16+; None where the platform does not keep it
    last_idx_scan: datetime | None = None

    @property
    def scans(self) -> int:
        return self.seq_scan + self.idx_scan


@dataclass(frozen=True, slots=True)
class TableStats:
    """What a target's statistics say now: per object (as findings name it) its counters, and when they were reset."""

    stats_reset: datetime | None
    counters: dict[str, TableCounters]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    taken_at: datetime
    phase: str  # scan | apply | check
    stats: TableStats


@dataclass(frozen=True, slots=True)
class StatsReads:
    """Reads counted from the statistics between two snapshots; `reads` is None when they were reset between."""

    reads: int | None
    start: datetime  # the first snapshot holding the object
    end: datetime  # the first snapshot at or after its containment (the latest one if it was never contained)
    reset: bool


def stats_reads(obj: str, snapshots: Iterable[StatsSnapshot], contained_at: datetime | None) -> StatsReads | None:
    """Reads of `obj` from its first snapshot to its containment snapshot; None without a snapshot on each side.

    A snapshot taken after the containment closes the count (reads after it are not in the window); an object never
    contained counts up to the latest snapshot. The first snapshot must precede the containment, or there is no
    "before" to count from.
    """
    held = sorted((s for s in snapshots if obj in s.stats.counters), key=lambda s: s.taken_at)
    if len(held) < 2:
        return None
    first = held[0]
    if contained_at is None:
        end_index = len(held) - 1
    else:
        if first.taken_at > contained_at:
            return None
        after = [i for i, s in enumerate(held) if s.taken_at >= contained_at]
        if not after:
            return None
        end_index = after[0]
    if end_index == 0:
        return None
    between = held[: end_index + 1]
    end = between[-1]
    reset = any(
        later.stats.stats_reset != earlier.stats.stats_reset
        or later.stats.counters[obj].seq_scan < earlier.stats.counters[obj].seq_scan
        or later.stats.counters[obj].idx_scan < earlier.stats.counters[obj].idx_scan
        for earlier, later in pairwise(between)
    )
    reads = None if reset else end.stats.counters[obj].scans - first.stats.counters[obj].scans
    return StatsReads(reads, first.taken_at, end.taken_at, reset)
