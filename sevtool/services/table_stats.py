"""Table statistics snapshots: taken after each scan, apply and check, read back by evidence.

The statistics are a second source beside the audit logs (see core/table_stats.py). Reading them is best effort:
a target that keeps none, refuses the query or is unreachable, or a store that cannot take the row, never fails the
scan, apply or check it follows. Nothing is recorded then, and the reason is logged at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sevtool.core.table_stats import StatsReads, StatsSnapshot, TableStats, stats_reads
from sevtool.core.timeparse import utcnow
from sevtool.store import table_stats as store
from sevtool.targets.plugin import plugin

if TYPE_CHECKING:
    from sevtool.services import Workbench

log = logging.getLogger(__name__)


class TableStatsService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    def snapshot(self, incident_id: int, target_spec: str, objects: list[str], phase: str) -> bool:
        """Record the target's counters for `objects` now; False (and nothing recorded) if they could not be read."""
        return self._record(incident_id, phase, self._read(incident_id, target_spec, objects, phase))

    @contextmanager
    def snapshot_meanwhile(self, incident_id: int, target_spec: str, objects: list[str], phase: str) -> Iterator[None]:
        """`snapshot`, its counters read on a thread while the block runs (a scan's store write) and recorded after
        it: at 200,000 tables the server takes seconds to answer, time the client would otherwise only wait."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="table-stats") as pool:
            stats = pool.submit(self._read, incident_id, target_spec, objects, phase)
            yield
        self._record(incident_id, phase, stats.result())

    def _read(self, incident_id: int, target_spec: str, objects: list[str], phase: str) -> TableStats | None:
        if not objects:
            return None
        try:
            target = self.wb.scanning.target(target_spec)
            read = plugin(target.kind).table_stats
            if read is None:
                log.debug(
                    "no table statistics after the %s of incident %s: %s keeps none", phase, incident_id, target.kind
                )
                return None
            return read(target, objects)
        except Exception as exc:  # a second source: whatever went wrong, the scan, apply or check stands
            log.debug("no table statistics after the %s of incident %s: %s", phase, incident_id, exc)
            return None

    def _record(self, incident_id: int, phase: str, stats: TableStats | None) -> bool:
        if stats is None:
            return False
        try:
            with self.store.write() as tx:
                store.add_snapshot(tx.session, incident_id, phase, utcnow(), stats)
        except Exception as exc:  # as in `_read`
            log.debug("no table statistics after the %s of incident %s: %s", phase, incident_id, exc)
            return False
        return True

    @contextmanager
    def exposed_meanwhile(self, incident_id: int, phase: str) -> Iterator[None]:
        """After an apply: the counters of the objects the latest scope found exposed (those evidence reports on),
        looked up and read on a thread while the block runs (the apply's closing store writes) and recorded after it,
        so the snapshot still follows the containment the block records."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="table-stats") as pool:
            stats = pool.submit(self._read_exposed, incident_id, phase)
            yield
        self._record(incident_id, phase, stats.result())

    def _read_exposed(self, incident_id: int, phase: str) -> TableStats | None:
        try:
            with self.store.read() as session:
                found = store.exposed_objects(session, incident_id)
        except Exception as exc:  # as in `_read`: never fails what it follows
            log.debug("no table statistics after the %s of incident %s: %s", phase, incident_id, exc)
            return None
        return self._read(incident_id, found[0], found[1], phase) if found else None

    def snapshots(self, incident_id: int) -> list[StatsSnapshot]:
        with self.store.read() as session:
            return store.snapshots(session, incident_id)

    def reads(self, incident_id: int, contained: dict[str, datetime | None]) -> dict[str, StatsReads]:
        """Per object (-> its containment time, None if never contained): reads counted from the statistics."""
        taken = self.snapshots(incident_id)
        out: dict[str, StatsReads] = {}
        for obj, at in contained.items():
            found = stats_reads(obj, taken, at)
            if found is not None:
                out[obj] = found
        return out
