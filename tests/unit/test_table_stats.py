"""Reads counted from table statistics snapshots (pure: no server, the snapshots are given)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sevtool.core.table_stats import StatsSnapshot, TableCounters, TableStats, stats_reads
from sevtool.store.table_stats import pack, unpack

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RESET = T0 - timedelta(days=30)


def snap(minutes: int, seq: int, idx: int = 0, reset: datetime | None = RESET, phase: str = "check") -> StatsSnapshot:
    return StatsSnapshot(T0 + timedelta(minutes=minutes), phase, TableStats(reset, {"s.t": TableCounters(seq, idx)}))


def test_reads_are_counted_up_to_the_first_snapshot_at_or_after_containment():
    taken = [snap(0, 5, 1, phase="scan"), snap(10, 7, 2, phase="apply"), snap(20, 50, 2)]
    got = stats_reads("s.t", taken, T0 + timedelta(minutes=9))
    assert got is not None and got.reads == 3 and (got.start, got.end) == (T0, T0 + timedelta(minutes=10))


def test_an_object_never_contained_counts_to_the_latest_snapshot():
    got = stats_reads("s.t", [snap(0, 5), snap(10, 7), snap(20, 9)], None)
    assert got is not None and got.reads == 4 and got.end == T0 + timedelta(minutes=20)


def test_no_count_without_a_snapshot_on_each_side():
    assert stats_reads("s.t", [snap(0, 5)], None) is None
    assert stats_reads("s.t", [snap(0, 5), snap(10, 6)], T0 + timedelta(minutes=11)) is None, "none after"
    assert stats_reads("s.t", [snap(5, 5), snap(10, 6)], T0) is None, "none before"
    assert stats_reads("other.t", [snap(0, 5), snap(10, 6)], None) is None


def test_a_reset_is_reported_whether_the_reset_time_changed_or_a_counter_went_down():
    moved = stats_reads("s.t", [snap(0, 5), snap(10, 9, reset=T0 + timedelta(minutes=5))], None)
    assert moved is not None and moved.reset and moved.reads is None
    down = stats_reads("s.t", [snap(0, 5), snap(5, 1), snap(10, 9)], None)
    assert down is not None and down.reset and down.reads is None, "a reset hidden by later reads is still seen"


def test_counters_survive_packing():
    counters = {"s.t": TableCounters(3, 4, T0, None), "s.u": TableCounters(0, 0)}
    assert unpack(pack(counters)) == counters
