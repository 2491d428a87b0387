"""Revoke: apply the plan in batches under the incident's apply lock, undo exactly.

The ledger (ActionRow) is the memory across crashes: a plan is journaled as `planned` before anything
runs; each batch is marked `applying` before it is sent and gets its read-back outcome after. A killed
run leaves `applying` rows behind; the next run reads those grants back, and records the ones that are
gone as applied (we did it) rather than skipped (someone else did). Apply and undo are timeline events
with counts; the first apply with no failure moves the incident to `contained`.

The plan is made in services.revocation_plan; the gates a run passes (size, confirmed plan, held
collateral) are in services.revocation_gates.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from sevtool.core import blast
from sevtool.core.incident import Status
from sevtool.core.plan import (
    PENDING,
    Action,
    ActionResult,
    ActionStatus,
)
from sevtool.core.timeparse import utcnow
from sevtool.errors import UsageError
from sevtool.gcpause import gc_paused, hand_back_freed
from sevtool.services.revocation_gates import RevocationGates
from sevtool.services.revocation_plan import RevocationPlanning
from sevtool.services.revocation_run import (
    APPLY_WORKERS,
    HEARTBEAT_EVERY_S,
    RESUMED,
    Progress,
    ProgressCallback,
    RunReport,
    read_ahead,
    shape_runs,
)
from sevtool.services.revocation_undo import RevocationUndo
from sevtool.store import ledger, locks

if TYPE_CHECKING:
    pass


class RevocationService(RevocationUndo, RevocationPlanning, RevocationGates):
    """Plans (RevocationPlanning), the gates a run passes (RevocationGates), undo (RevocationUndo), and here apply."""

    # --- apply ------------------------------------------------------------------------------

    @gc_paused()
    def apply(
        self,
        incident_id: int,
        *,
        plan_version: int | None = None,
        batch_size: int | None = None,
        workers: int = APPLY_WORKERS,
        progress: ProgressCallback | None = None,
        now: Callable[[], datetime] = utcnow,
        accept_collateral: bool = False,
        max_actions: int | None = None,
    ) -> RunReport:
        """Run what the plan still has to do; safe to repeat and to resume after a crash.

        `plan_version` is the plan a responder confirmed: refused if someone planned again meanwhile.
        `progress` is called after every batch, from a worker thread. `now` stamps containment and the
        re-check schedule's restart (tests run the schedule on a clock of their own).
        Actions with collateral run only with `accept_collateral`; otherwise they stay `planned`, say why in
        their message, and are reported as held. More pending actions than `max_actions` (default: the
        SEV's) is refused before anything runs.
        """
        size = batch_size or self.wb.settings.team.revoke_batch_size
        if size < 1:
            raise UsageError(f"batch size must be at least 1, not {size}")
        limit = self.max_actions(incident_id, max_actions)
        started = time.perf_counter()
        with locks.held(self.store, incident_id, "apply") as holder:
            if plan_version is None:  # what plan_to_apply names, without counting the whole plan for a summary
                self.store.incident(incident_id)
                if current := self._newest_if_current(incident_id):
                    version, _, target_spec = current
                else:
                    made = self.journal_plan(incident_id, max_actions=limit)
                    version, target_spec = made.plan_version, made.target
                    del made  # the run reads its actions back page by page, like any other
            else:
                version, target_spec = self._confirmed(incident_id, plan_version)
            before = ledger.status_counts(self.store, incident_id, version)
            total = sum(before[s.value] for s in PENDING)
            in_flight_count = before[ActionStatus.APPLYING.value]
            blast.check_size(incident_id, total, limit, "apply")
            counts: Counter[str] = Counter()
            failures: list[dict] = []
            held: list[Action] = []
            done = 0
            guard = threading.Lock()  # batches report from worker threads
            taking = threading.Lock()  # workers take chunks one at a time (taking one may read the next page)
            stop = threading.Event()  # a worker or the run failed: take no more chunks
            beat = time.monotonic()

            def tally(results: list[ActionResult], sent: dict[int, Action]) -> None:
                nonlocal done
                with guard:
                    for status, n in Counter(r.status for r in results).items():
                        counts[status.value] += n
                    failures.extend(
                        {
                            "seq": r.seq,
                            "object": sent[r.seq].object_fqn,
                            "kind": sent[r.seq].kind,
                            "message": r.message,
                        }
                        for r in results
                        if r.status == ActionStatus.FAILED
                    )
                    done += len(results)
                    if progress and results:  # a worker's first and last store writes record no outcome
                        progress(Progress(done=done, total=total, results=results, counts=dict(counts)))

            def heartbeat_due() -> bool:
                nonlocal beat
                with guard:
                    if time.monotonic() - beat < HEARTBEAT_EVERY_S:
                        return False
                    beat = time.monotonic()
                    return True

            def worker(chunks: Iterator[list[Action]], target) -> None:
                """Send chunks one by one; one store write records a chunk's outcome and marks the next one `applying`."""
                finished: list[ActionResult] = []
                sent: dict[int, Action] = {}  # seq -> action of the chunk `finished` is the outcome of
                while True:
                    with taking:
                        chunk = None if stop.is_set() else next(chunks, None)
                    if heartbeat_due():
                        locks.heartbeat(self.store, incident_id, "apply", holder)
                    if finished or chunk:
                        with (
                            self.store.write() as tx
                        ):  # journal before sending: a kill from here on is resolved by read-back
                            ledger.record(tx.session, incident_id, version, finished)
                            if chunk:
                                ledger.mark(
                                    tx.session, incident_id, version, [a.seq for a in chunk], ActionStatus.APPLYING
                                )
                        tally(finished, sent)
                    if not chunk:
                        return
                    finished, sent = [], {a.seq: a for a in chunk}
                    try:
                        target.apply(chunk, finished.extend, batch_size=size)
                    except BaseException:  # keep what this chunk finished before the error
                        stop.set()
                        with self.store.write() as tx:
                            ledger.record(tx.session, incident_id, version, confirm_resumed(finished, sent))
                        tally(finished, sent)
                        raise
                    finished = confirm_resumed(finished, sent)

            def confirm_resumed(results: list[ActionResult], sent: dict[int, Action]) -> list[ActionResult]:
                """In flight when an earlier run died, and gone now: that run revoked it."""
                return [
                    ActionResult(seq=r.seq, status=ActionStatus.APPLIED, message=RESUMED)
                    if r.status == ActionStatus.SKIPPED and sent[r.seq].status == ActionStatus.APPLYING
                    else r
                    for r in results
                ]

            def runnable(pages: Iterator[list[Action]]) -> Iterator[list[Action]]:
                """Each page without the actions held back for their collateral (kept for the report)."""
                for todo in pages:
                    todo, held_here = blast.split_held(todo, accept_collateral)
                    held.extend(held_here)
                    yield todo

            if total:
                self._event(
                    incident_id,
                    "apply_started",
                    f"Revocation started: {total} actions of plan {version}"
                    + (f" ({in_flight_count} in flight when the last run stopped)" if in_flight_count else ""),
                    {
                        "plan_version": version,
                        "pending": total,
                        "resumed_in_flight": in_flight_count,
                        "batch_size": size,
                    },
                )
                target = self._open(target_spec)
                try:
                    # A page of the plan at a time, read from the ledger: enough batches to keep every worker busy.
                    pages = read_ahead(ledger.pages(self.store, incident_id, version, PENDING, page=size * workers * 2))
                    for chunks in shape_runs(runnable(pages), size):
                        with ThreadPoolExecutor(max_workers=workers) as pool:
                            running = [pool.submit(worker, chunks, target) for _ in range(workers)]
                            try:
                                for future in running:
                                    future.result()
                            except BaseException:
                                stop.set()  # the others finish the chunk they hold, and take no more
                                raise
                except Exception as exc:
                    self._event(
                        incident_id,
                        "apply_interrupted",
                        f"Revocation stopped after {done} of {total} actions: {exc}",
                        {"plan_version": version, "counts": dict(counts), "error": str(exc)},
                    )
                    raise
                finally:
                    target.close()
            hand_back_freed()
            # Read once every batch is committed, while the ledger records the containment, and recorded after it:
            # where evidence's count of reads from statistics ends.
            with self.wb.table_stats.exposed_meanwhile(incident_id, "apply"):
                report = self._finish_apply(incident_id, version, counts, failures, started, size, now(), held)
        return report

    def _finish_apply(
        self,
        incident_id: int,
        version: int,
        counts: Counter,
        failures: list[dict],
        started: float,
        size: int,
        at: datetime,
        held: list[Action],
    ) -> RunReport:
        # The ledger afterwards, counted by the store; and a plan this process keeps for the TUI is read again
        # next time, now that its statuses and held messages moved on.
        totals = ledger.status_counts(self.store, incident_id, version)
        self._made.pop(incident_id, None)
        run = {
            s.value: counts.get(s.value, 0) for s in (ActionStatus.APPLIED, ActionStatus.SKIPPED, ActionStatus.FAILED)
        }
        duration_ms = int((time.perf_counter() - started) * 1000)
        kept = blast.held_report(held)
        with self.store.write() as tx:
            row = tx.incident_row(incident_id)
            if sum(run.values()):
                summary = (
                    f"Revocation applied: {run['applied']} applied, {run['skipped']} already absent, {run['failed']} failed "
                    f"(plan {version}, {duration_ms} ms)"
                )
            elif held:
                summary = f"Revocation held back: nothing applied in plan {version}"
            else:
                undone = totals[ActionStatus.UNDONE.value]
                summary = f"Revocation re-run: nothing left to do in plan {version}" + (
                    f" ({undone} of its actions were undone: plan again to revoke them)" if undone else ""
                )
            if held:
                summary += (
                    f"; {len(held)} action(s) held: they would also take access beyond the incident's scope from "
                    f"{', '.join(kept['roles'])} (apply with {blast.ACCEPT_FLAG} to run them)"
                )
                self._hold(tx, incident_id, version, held)
            tx.append(
                incident_id,
                "apply",
                summary,
                {
                    "plan_version": version,
                    "counts": run,
                    "totals": totals,
                    "batch_size": size,
                    "duration_ms": duration_ms,
                    "failures": failures[:20],
                    "held": kept,
                },
                at=at,
            )  # before what it causes, on the timeline too
            # Contained only while the plan's grants are really gone (revoked or found absent), not after an undo put them back,
            # and not while actions the responder held back leave access in place.
            closed = totals[ActionStatus.APPLIED.value] + totals[ActionStatus.SKIPPED.value]
            if (
                not failures
                and not held
                and totals[ActionStatus.FAILED.value] == 0
                and row.status == Status.DECLARED.value
                and closed
            ):
                self.wb.incidents._apply_status(
                    tx, row, Status.CONTAINED, at=at, why=f"revocation plan {version} applied"
                )
            if run["applied"]:
                self.wb.verification.restart_after_fix(tx, row, at, f"Revocation plan {version} applied")
            status = row.status
        return RunReport(
            incident_id=incident_id,
            mode="apply",
            plan_versions=[version],
            counts=run,
            totals=totals,
            failures=failures,
            status=status,
            duration_ms=duration_ms,
            held=len(held),
            held_roles=kept["roles"],
            held_actions=kept["actions"],
            hint=(
                f"{len(held)} action(s) held back: they would also take access beyond the incident's scope from "
                f"{', '.join(kept['roles'])}, so exposure remains; `sevtool revoke {incident_id} --apply` lists them "
                f"and asks, `sevtool revoke {incident_id} --apply --yes {blast.ACCEPT_FLAG}` runs them"
            )
            if held
            else "",
        )

    # --- ledger views -----------------------------------------------------------------------

    def ledger(self, incident_id: int, plan_version: int | None = None) -> list[tuple[int, Action]]:
        self.store.incident(incident_id)
        return [(version, action) for version, _, action in ledger.actions(self.store, incident_id, plan_version)]

    def _event(self, incident_id: int, kind: str, summary: str, data: dict) -> None:
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            tx.append(incident_id, kind, summary, data)
