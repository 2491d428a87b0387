"""Store the target's table statistics snapshots: one row each, the per-object counters packed.

Packed as zlib-compressed JSON `{object: [seq_scan, idx_scan, last_seq_scan, last_idx_scan]}` (times ISO 8601 or
null): a 45,000-table check writes one row of a few hundred kilobytes instead of 45,000 rows.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime

from sqlmodel import Session, select

from sevtool.core.table_stats import StatsSnapshot, TableCounters, TableStats
from sevtool.core.timeparse import as_utc
from sevtool.store.models import FindingRow, ScopeRow, StatsSnapshotRow


def pack(counters: dict[str, TableCounters]) -> bytes:
    def when(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    body = {k: [c.seq_scan, c.idx_scan, when(c.last_seq_scan), when(c.last_idx_scan)] for k, c in counters.items()}
    return zlib.compress(json.dumps(body, separators=(",", ":"), sort_keys=True).encode(), 6)


def unpack(blob: bytes) -> dict[str, TableCounters]:
    def when(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    body = json.loads(zlib.decompress(blob))
    return {k: TableCounters(int(s), int(i), when(ls), when(li)) for k, (s, i, ls, li) in body.items()}


def add_snapshot(session: Session, incident_id: int, phase: str, taken_at: datetime, stats: TableStats) -> None:
    session.add(
        StatsSnapshotRow(
            incident_id=incident_id,
            phase=phase,
            taken_at=taken_at,
            stats_reset=stats.stats_reset,
            objects=len(stats.counters),
            counters=pack(stats.counters),
        )
    )


def snapshots(session: Session, incident_id: int) -> list[StatsSnapshot]:
    """Every snapshot of the incident, oldest first."""
    rows = session.exec(
        select(StatsSnapshotRow)
        .where(StatsSnapshotRow.incident_id == incident_id)
        .order_by(StatsSnapshotRow.taken_at, StatsSnapshotRow.id)
    ).all()
    return [
        StatsSnapshot(as_utc(r.taken_at), r.phase, TableStats(as_utc(r.stats_reset), unpack(r.counters))) for r in rows
    ]


def exposed_objects(session: Session, incident_id: int) -> tuple[str, list[str]] | None:
    """(target, objects the latest scope found exposed, as findings name them), without reading the findings back."""
    scope = session.exec(
        select(ScopeRow).where(ScopeRow.incident_id == incident_id).order_by(ScopeRow.version.desc()).limit(1)
    ).first()
    if scope is None:
        return None
    names = session.exec(
        select(FindingRow.schema_name, FindingRow.object_name).where(FindingRow.scope_id == scope.id).distinct()
    ).all()
    return scope.target, sorted({f"{s}.{o}" for s, o in names})
