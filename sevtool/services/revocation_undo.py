"""Undo: put back what apply removed, object by object, newest plan first, under the incident's apply lock."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sevtool.core.incident import Status
from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.core.timeparse import utcnow
from sevtool.gcpause import gc_paused
from sevtool.services.revocation_run import (
    APPLY_WORKERS,
    Progress,
    ProgressCallback,
    RunReport,
    _by_object,
    read_ahead,
)
from sevtool.store import ledger, locks
from sevtool.targets.plugin import membership_kinds, undo_phases

if TYPE_CHECKING:
    from sevtool.services.revocation_plan import RevocationPlanning

    _Base = RevocationPlanning
else:
    _Base = object


class RevocationUndo(_Base):
    """The undo half of RevocationService (which provides the store, the workbench, `_open` and `_event`)."""

    # --- undo -------------------------------------------------------------------------------

    def undoable(self, incident_id: int) -> list[tuple[int, str, Action]]:
        """(plan_version, target, action) of every applied action, oldest plan first."""
        self.store.incident(incident_id)
        return [
            (version, target, action)
            for version, target in ledger.versions_with(self.store, incident_id, ActionStatus.APPLIED)
            for action in self._actions(incident_id, version, [ActionStatus.APPLIED])
        ]

    def undo_outline(self, incident_id: int) -> dict[str, int]:
        """How many applied actions an undo would restore, by kind: counted by the store, for the question asked."""
        self.store.incident(incident_id)
        return ledger.kind_counts(self.store, incident_id, status=ActionStatus.APPLIED)

    def _undo_outline(self, incident_id: int, version: int) -> tuple[set[int], list[str]]:
        """A plan's applied actions that share an object with another, and the kinds restored first."""
        shared = ledger.sharing_an_object(self.store, incident_id, version, ActionStatus.APPLIED)
        return shared, membership_kinds(ledger.kind_counts(self.store, incident_id, version, ActionStatus.APPLIED))

    @gc_paused()
    def undo(
        self, incident_id: int, *, workers: int = APPLY_WORKERS, progress: ProgressCallback | None = None
    ) -> RunReport:
        """Restore every applied action's object to its recorded prior ACL, newest plan first.

        Objects are restored side by side on `workers` connections; all actions on one object go to the same worker.
        A plan is read a page at a time; the few actions that share an object with another are set aside and
        restored together at the end of their phase.
        """
        started = time.perf_counter()
        with locks.held(self.store, incident_id, "apply"):
            versions = ledger.versions_with(self.store, incident_id, ActionStatus.APPLIED)
            # What each plan's run needs to know of its ledger, asked while the steps before that run go on (the
            # store answers without holding the GIL); no other run changes a plan's applied actions under the lock.
            reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="undo-outline")
            outlines = {v: reader.submit(self._undo_outline, incident_id, v) for v, _ in reversed(versions)}
            reader.shutdown(wait=False)
            total = ledger.status_counts(self.store, incident_id)[ActionStatus.APPLIED.value]
            # Exceptions to the revocation end first, so the prior ACLs come back exactly and no exception grant
            # outlives what it was an exception to.
            ended = [e.as_dict() for e in self.wb.access.end_for_undo(incident_id)] if total else []
            counts: Counter[str] = Counter()
            failures: list[dict] = []
            drift: list[dict] = []  # restored, but something was left as it is now (the target says what)
            done = 0
            guard = threading.Lock()  # batches report from worker threads
            size = self.wb.settings.team.revoke_batch_size
            for version, target_spec in reversed(versions):
                objects: dict[int, str] = {}  # seq -> object of the actions being restored

                def on_batch(results: list[ActionResult], version=version, objects=objects) -> None:
                    nonlocal done
                    # A failed undo leaves the action applied: the grant stays revoked, the message says why.
                    recorded = [
                        r
                        if r.status == ActionStatus.UNDONE
                        else ActionResult(seq=r.seq, status=ActionStatus.APPLIED, message=r.message)
                        for r in results
                    ]
                    with self.store.write() as tx:
                        ledger.record(tx.session, incident_id, version, recorded)
                    with guard:
                        for status, n in Counter(r.status for r in results).items():
                            counts[status.value] += n
                        for r in results:
                            if r.status == ActionStatus.FAILED or (
                                r.status == ActionStatus.UNDONE and "drift" in r.message
                            ):
                                (failures if r.status == ActionStatus.FAILED else drift).append(
                                    {
                                        "seq": r.seq,
                                        "plan_version": version,
                                        "object": objects[r.seq],
                                        "message": r.message,
                                    }
                                )
                        done += len(results)
                        if progress:
                            progress(Progress(done=done, total=total, results=results, counts=dict(counts)))

                def run(actions: list[Action], target, objects=objects) -> None:
                    objects.clear()
                    objects.update((a.seq, a.object_fqn) for a in actions)
                    chunks = _by_object(actions, size)
                    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks) or 1))) as pool:
                        for future in [pool.submit(target.undo, chunk, on_batch) for chunk in chunks]:
                            future.result()

                target = self._open(target_spec)
                try:
                    shared, first_kinds = outlines[version].result()
                    # Memberships first, on their own: a grant being restored may need what a membership gives its
                    # grantor (schema USAGE, a grant option), and chunks run side by side.
                    later: list[Action] = []  # of a membership's kind, but not closing a role (see undo_phases)
                    for other_kinds in (False, True):
                        together: list[Action] = later if other_kinds else []
                        for page in read_ahead(
                            ledger.pages(
                                self.store,
                                incident_id,
                                version,
                                [ActionStatus.APPLIED],
                                size * workers * 2,
                                kinds=first_kinds,
                                other_kinds=other_kinds,
                            )
                        ):
                            if not other_kinds:
                                page, rest = undo_phases(page)
                                later += rest
                            together += [a for a in page if a.seq in shared]
                            run([a for a in page if a.seq not in shared], target)
                        run(together, target)
                finally:
                    target.close()
            run = {
                ActionStatus.UNDONE.value: counts.get(ActionStatus.UNDONE.value, 0),
                ActionStatus.FAILED.value: counts.get(ActionStatus.FAILED.value, 0),
            }
            duration_ms = int((time.perf_counter() - started) * 1000)
            with self.store.write() as tx:
                row = tx.incident_row(incident_id)
                drifted = f", {len(drift)} with drift left as it is now (see the ledger)" if drift else ""
                tx.append(
                    incident_id,
                    "undo",
                    f"Revocation undone: {run['undone']} restored to their prior ACL, {run['failed']} failed{drifted}"
                    if total
                    else "Undo: nothing applied to restore",
                    {
                        "plan_versions": [version for version, _ in versions],
                        "counts": run,
                        "duration_ms": duration_ms,
                        "failures": failures[:20],
                        "drift": drift[:20],
                        "exceptions_ended": [e["number"] for e in ended],
                    },
                )
                if run["undone"] and row.status in (
                    Status.CONTAINED.value,
                    Status.VERIFYING.value,
                    Status.RESOLVED.value,
                ):
                    self.wb.incidents._apply_status(
                        tx, row, Status.DECLARED, at=utcnow(), why="revocation undone: the prior access is back"
                    )
                status = row.status
        return RunReport(
            incident_id=incident_id,
            mode="undo",
            plan_versions=[version for version, _ in versions],
            counts=run,
            totals=ledger.status_counts(self.store, incident_id),
            failures=failures,
            status=status,
            duration_ms=duration_ms,
            exceptions_ended=ended,
        )
