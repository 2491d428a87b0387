"""The re-check schedule (`watch`) of VerificationService: slots from the SEV policy, claimed and run one by one.

The SEV policy's offsets from containment are persisted as slots, round 1.
A watcher holds the incident's "watch" lock and claims each slot with a conditional UPDATE (pending ->
running), so a slot is never run twice. After a stop, overdue slots run at once: the latest one runs
and the earlier ones are recorded as `covered` by that check, each with its delay. A regression
starts a new round anchored at the check that found it (that check is the round's first slot, and
never its last: see `core.regression_round`); the previous round's pending slots become `superseded`.
An apply that revokes something once the schedule has started (a fix re-applied after a regression, or
access found later and closed) starts a fresh round of the policy's offsets from that apply: the checks
that let an incident resolve all come after the last change that closed access.
A slot left `running` by a watcher that died is given back when the next watcher takes the lock. A
manual `verify` is an extra check: it never takes a slot, but it is the baseline the next check
compares with. A SEV change applies from the next round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sevtool.core import checks as core
from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_utc, utcnow
from sevtool.errors import UsageError
from sevtool.store import checks as q
from sevtool.store import locks
from sevtool.store import schedule as sched

if TYPE_CHECKING:
    from sevtool.services import Workbench
    from sevtool.services.verification_report import CheckReport
    from sevtool.store.repository import Store

BEATS_PER_WINDOW = 3  # heartbeats per staleness window: two can be late before a takeover


@dataclass
class WatchReport:
    checks: list[CheckReport]
    finished: bool  # no slot left to run in the current round
    next_due: datetime | None
    gate: str | None  # why resolving is still refused, or None

    @property
    def exposed(self) -> bool:
        return bool(self.checks) and not self.checks[-1].clean


class RecheckSchedule:
    """The schedule half of VerificationService (which mixes it in): watch, slots, rounds and the resolution gate.
    It runs each slot's check with the service's `_check`."""

    wb: Workbench
    store: Store

    # --- the schedule -----------------------------------------------------------------------------

    def watch(
        self,
        incident_id: int,
        *,
        once: bool = False,
        probe_role: str | None = None,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        on_check: Callable[[CheckReport], None] | None = None,
        on_wait: Callable[[dict], None] | None = None,
    ) -> WatchReport:
        """Run the re-check schedule until its current round is done and no access exception is left open (`once`:
        only what is due now). Exceptions past their end are revoked on every turn."""
        incident = self.store.incident(incident_id)
        if incident.status == Status.CLOSED:
            raise UsageError(f"incident {incident_id} is closed; there is nothing left to watch")
        holder = locks.new_holder()
        stale = timedelta(seconds=self.wb.settings.watch_stale_after)
        beat_every = stale / BEATS_PER_WINDOW
        locks.acquire(self.store, incident_id, "watch", holder, stale_after=stale)
        reports: list[CheckReport] = []
        try:
            self._start(incident_id, now())
            while True:
                self.wb.access.expire(incident_id, now=now)  # exceptions end on time while the incident is watched
                states = [sched.slot_state(s) for s in sched.slots(self.store, incident_id)]
                decision = core.due(states, now())
                if decision is not None:
                    report = self._run_slot(incident_id, decision, holder, probe_role, now, beat_every)
                    if report is not None:
                        reports.append(report)
                        if on_check:
                            on_check(report)
                    continue
                pending = core.next_pending(states)
                exception_ends = self.wb.access.next_end(incident_id)
                if (
                    (pending is None and exception_ends is None)
                    or once
                    or self.store.status_of(incident_id) == Status.CLOSED
                ):
                    break
                wake = min(t for t in (pending.due_at if pending else None, exception_ends) if t is not None)
                wait = min(wake - now(), beat_every)
                if on_wait and pending is not None:
                    on_wait({"round": pending.round, "idx": pending.idx, "due_at": pending.due_at})
                sleep(max(wait.total_seconds(), 0))
                locks.heartbeat(self.store, incident_id, "watch", holder)
        finally:
            locks.release(self.store, incident_id, "watch", holder)
        upcoming = core.next_pending([sched.slot_state(s) for s in sched.slots(self.store, incident_id)])
        return WatchReport(
            checks=reports,
            finished=upcoming is None,
            next_due=upcoming.due_at if upcoming else None,
            gate=self.resolution_gate(incident_id),
        )

    def _start(self, incident_id: int, at: datetime) -> None:
        """Round 1 from containment, created once; slots a dead watcher left `running` go back to pending."""
        incident = self.store.incident(incident_id)
        anchor = incident.contained_at or q.first_applied_at(self.store, incident_id)
        with self.store.write() as tx:
            released = sched.release_running(tx.session, incident_id)
            if released:
                tx.append(
                    incident_id,
                    "schedule",
                    f"{released} re-check(s) left running by a stopped watcher will run again",
                    {"released": released},
                    at=at,
                )
            if sched.current_round(tx.session, incident_id):
                return
            if anchor is None:
                raise UsageError(
                    f"incident {incident_id} is not contained yet: the re-check schedule runs from the fix",
                    hint=f"apply the fix (`sevtool revoke {incident_id} --apply`) or mark it contained; `sevtool verify {incident_id}` checks now",
                )
            row = tx.incident_row(incident_id)
            level = self.wb.policy.level(row.sev)
            sched.add_round(tx.session, incident_id, 1, core.schedule(anchor, level))
            tx.append(
                incident_id,
                "schedule",
                f"Re-check schedule started (SEV {row.sev}): {', '.join(level.recheck)} from containment at {format_utc(anchor)}",
                {"round": 1, "offsets": level.recheck, "anchor": format_utc(anchor)},
                at=at,
            )

    def _run_slot(
        self,
        incident_id: int,
        decision: core.DueDecision,
        holder: str,
        probe_role: str | None,
        now: Callable[[], datetime],
        beat_every: timedelta,
    ) -> CheckReport | None:
        wanted = [decision.run, *decision.covered]
        with self.store.write() as tx:
            claimed = set(sched.claim(tx.session, [s.id for s in wanted], holder, now()))
        if decision.run.id not in claimed:
            return None  # another process ran it; re-read the schedule
        mine = core.DueDecision(run=decision.run, covered=[s for s in decision.covered if s.id in claimed])
        try:
            # A check can outlast the lock's staleness window (45,000 tables, a slow catalog): keep the lock alive
            # while it runs, or a second watcher would take the lock over and run this slot again.
            with locks.beating(self.store, incident_id, "watch", holder, beat_every.total_seconds()):
                return self._check(incident_id, probe_role, now=now, decision=mine, holder=holder)
        except BaseException:
            with self.store.write() as tx:
                sched.release_running(tx.session, incident_id, holder)
            raise

    def resolution_gate(self, incident_id: int) -> str | None:
        """Why `resolved` must wait, or None once the schedule's last check was clean with no regression since."""
        states = [sched.slot_state(s) for s in sched.slots(self.store, incident_id)]
        return core.gate_reason(states, q.check_states(self.store, incident_id), utcnow())

    def _finish_slots(
        self, tx, incident_id: int, decision: core.DueDecision, holder: str, check_id: int, ran_at: datetime
    ) -> dict:
        """The slot this check ran for is done; earlier overdue ones are covered by it. Each keeps its delay.
        Only their claimant, still holding the watch lock, finishes them (the store refuses anyone else)."""

        def delay(slot: core.SlotState) -> int:
            return int(decision.delay(slot, ran_at).total_seconds())

        run = decision.run
        sched.finish_claimed(tx.session, incident_id, run.id, holder, "done", check_id, ran_at, delay(run))
        for slot in decision.covered:
            sched.finish_claimed(tx.session, incident_id, slot.id, holder, "covered", check_id, ran_at, delay(slot))
        return {
            "round": run.round,
            "idx": run.idx,
            "due_at": format_utc(run.due_at),
            "delay_seconds": delay(run),
            "covered": [
                {"idx": s.idx, "due_at": format_utc(s.due_at), "delay_seconds": delay(s)} for s in decision.covered
            ],
        }

    def _new_round(self, tx, row, check_id: int, at: datetime, cause: str) -> None:
        """The check that found a regression (or access left at the end of a round) is the first slot of a fresh round."""
        round_number = sched.current_round(tx.session, row.id) + 1
        self._add_round(tx, row, round_number, at, cause, core.regression_round(at, self.wb.policy.level(row.sev)))
        sched.finish(tx.session, sched.slot_id(tx.session, row.id, round_number, 0), "done", check_id, at, 0)

    def restart_after_fix(self, tx, row, at: datetime, cause: str) -> None:
        """Access was revoked again after the re-check schedule started: the schedule restarts from this fix.

        The checks that let an incident resolve must all come after the last change that closed access. Otherwise
        a fix re-applied after a regression, seconds before the round's last re-check, would be "verified" by that
        one check: the first fix that did not stick, over again.
        """
        current = sched.current_round(tx.session, row.id)
        if current:
            self._add_round(tx, row, current + 1, at, cause, core.schedule(at, self.wb.policy.level(row.sev)))

    def _add_round(self, tx, row, round_number: int, at: datetime, cause: str, planned: list[core.PlannedSlot]) -> None:
        superseded = sched.supersede_pending(tx.session, row.id, round_number)
        sched.add_round(tx.session, row.id, round_number, planned)
        offsets = [p.offset for p in planned]
        tx.append(
            row.id,
            "schedule",
            f"{cause} restarts the re-check schedule (round {round_number}): {', '.join(offsets)} from {format_utc(at)}"
            + (f"; {superseded} pending re-check(s) of the previous round superseded" if superseded else ""),
            {"round": round_number, "offsets": offsets, "anchor": format_utc(at), "superseded": superseded},
            at=at,
        )

    def schedule(self, incident_id: int) -> list[dict]:
        self.store.incident(incident_id)
        return [
            {
                "round": s.round,
                "idx": s.idx,
                "offset": s.offset,
                "due_at": format_utc(s.due_at),
                "status": s.status,
                "check_id": s.check_id,
                "ran_at": format_utc(s.ran_at) if s.ran_at else None,
                "delay_seconds": s.delay_seconds,
            }
            for s in sched.slots(self.store, incident_id)
        ]

    def next_check(self, incident_id: int, now: datetime | None = None) -> dict | None:
        """The next pending re-check and how long until it is due (negative: overdue), for a countdown."""
        pending = core.next_pending([sched.slot_state(s) for s in sched.slots(self.store, incident_id)])
        if pending is None:
            return None
        remaining = pending.due_at - (now or utcnow())
        return {
            "round": pending.round,
            "idx": pending.idx,
            "due_at": pending.due_at,
            "seconds": int(remaining.total_seconds()),
            "in": format_duration(remaining),
        }
