"""`watch --all`: watchers on several hosts share every open incident's re-check schedule through work leases.

Each contained or verifying incident gets a work-lease row (store/leases.py) due when its next re-check is. A
worker claims one due incident (`FOR UPDATE SKIP LOCKED`), runs what is due with the ordinary watch (`once`,
under the incident's own watch lock, so a single-incident `sevtool watch` and the fleet never both run a slot),
and moves the row to the incident's next re-check. A killed worker's incident is claimed again when its lease
lapses; the incident lock it left is taken over as `watch` always does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sevtool.core.incident import Status
from sevtool.core.timeparse import utcnow
from sevtool.errors import LockHeld, SevtoolError
from sevtool.store import leases

if TYPE_CHECKING:
    from sevtool.services import Workbench

KIND = "watch"
WATCHED = (Status.CONTAINED, Status.VERIFYING)
IDLE = timedelta(minutes=1)  # a finished schedule is looked at again this often (a regression starts a new round)
SYNC_EVERY = timedelta(seconds=5)  # how often a worker adds newly contained incidents and drops settled ones


class WatchFleetService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    def watched(self) -> list[int]:
        return [i.id for i in self.wb.incidents.all() if i.status in WATCHED and i.id is not None]

    def serve(
        self,
        *,
        lease: timedelta,
        poll: float = 1.0,
        probe_role: str | None = None,
        on_check: Callable | None = None,
        on_error: Callable[[int, SevtoolError], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        stop = stop or threading.Event()
        holder = leases.new_holder()
        synced: datetime | None = None
        while not stop.is_set():
            now = utcnow()
            if synced is None or now - synced >= SYNC_EVERY:
                leases.ensure(self.store, KIND, [str(i) for i in self.watched()], now, drop_others=True)
                synced = now
            claimed = leases.claim(self.store, KIND, holder, now, lease)
            if claimed is None:
                stop.wait(poll)
                continue
            key = claimed[0]
            incident_id = int(key)
            try:
                with leases.beating(self.store, KIND, key, holder, lease):
                    report = self.wb.verification.watch(
                        incident_id, once=True, probe_role=probe_role, on_check=on_check
                    )
                next_due = report.next_due or utcnow() + IDLE
            except LockHeld:
                next_due = utcnow() + lease  # a single-incident watcher has it: look again once its lock could lapse
            except SevtoolError as exc:
                if on_error is not None:
                    on_error(incident_id, exc)
                next_due = utcnow() + lease
            try:
                with self.store.write() as tx:
                    leases.finish(tx.session, KIND, key, holder, max(next_due, utcnow()))
            except LockHeld:
                continue  # another worker took the incident over meanwhile; its schedule says what is left
