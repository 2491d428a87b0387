"""Verify the fix stuck: re-run the scope, compare with what was closed, re-check on the SEV schedule.

A check re-runs the incident's latest scope on its target (so tables created after the fix are
seen), optionally probes as a canary member, and compares with the previous check (or, before the
first check, the scan). Everything a check decides is written in one store transaction: the check,
what remained, its regressions, the timeline events and any status change.

Status rules: a regression, or any access found while `verifying`/`resolved`, moves the incident back
to `contained`; a clean check moves `contained` to `verifying`. `verified_at` marks the start of the
current clean streak: a check that finds access clears it, and the next clean check sets it again.

Schedule rules (`watch`): the SEV policy's offsets from containment are persisted as slots, round 1.
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

Cost at 45,000 tables: a check compares digests first, so a check that sees what the previous one saw
reads nothing back; the ledger and role reach are read only when something is readable now.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sevtool.core import checks as core
from sevtool.core.exposure import AccessPath, Scope
from sevtool.core.incident import Status
from sevtool.core.timeparse import as_utc, format_duration, format_utc, utcnow
from sevtool.describe import via
from sevtool.errors import UsageError
from sevtool.gcpause import gc_paused
from sevtool.store import checks as q
from sevtool.store import locks
from sevtool.store.models import CheckRow
from sevtool.targets.base import ProbeResult, ScanResult
from sevtool.targets.plugin import closes, plugin

if TYPE_CHECKING:
    from sevtool.services import Workbench
    from sevtool.services.scanning import ScopeVersion

PROBE_SAMPLE = 25                      # objects probed at random besides the sensitive closed ones
BEATS_PER_WINDOW = 3                   # heartbeats per staleness window: two can be late before a takeover
EVENT_SAMPLE = 20                      # objects named in a timeline event; the count is always complete


@dataclass
class CheckReport:
    incident_id: int
    check_id: int
    number: int
    ran_at: datetime
    duration_ms: int
    baseline: str
    objects_in_scope: int
    outcome: core.CheckOutcome
    status: Status
    probe: dict = field(default_factory=dict)
    slot: dict | None = None

    @property
    def clean(self) -> bool:
        return self.outcome.clean

    def as_dict(self) -> dict:
        out = self.outcome
        return {
            "incident_id": self.incident_id, "check": self.number, "check_id": self.check_id, "ran_at": format_utc(self.ran_at),
            "duration_ms": self.duration_ms, "clean": out.clean, "baseline": self.baseline, "objects_in_scope": self.objects_in_scope,
            "exposed_objects": out.exposed_objects, "findings": len(out.findings), "remaining_pairs": out.remaining,
            "closed_since_baseline": out.closed_since, "new_objects": out.new_objects,
            "regressions": [r.as_dict() for r in out.regressions],
            "remains": [{"object": f.object_fqn, "principal": f.principal, "path": f.path.value, "via": via(f), "route": list(f.route),
                         "grantee": f.grantee, "grantor": f.grantor, "column": f.column, "dss": f.dss, "privilege": f.privilege} for f in out.findings],
            "probe": self.probe, "slot": self.slot, "status": self.status.value,
        }


@dataclass
class WatchReport:
    checks: list[CheckReport]
    finished: bool                      # no slot left to run in the current round
    next_due: datetime | None
    gate: str | None                    # why resolving is still refused, or None

    @property
    def exposed(self) -> bool:
        return bool(self.checks) and not self.checks[-1].clean


@dataclass(frozen=True)
class _Seen:
    """Digests of what a check saw, compared with the previous check's before anything is read back."""

    findings: str
    objects: str


@dataclass(frozen=True)
class _Held:
    """Earlier checks that already store exactly what this check saw, so it is not stored again."""

    findings: int | None = None
    objects: int | None = None


class VerificationService:
    def __init__(self, wb: "Workbench"):
        self.wb = wb
        self.store = wb.store
        # What the findings this process last stored give a comparison, by the check holding them: a watch loop
        # does not read them back. Rows, not Findings: 45,000 Findings kept alive were ~100 MB.
        self._last_findings: tuple[int, list[tuple[str, str, str, str, str]]] | None = None

    # --- one check ------------------------------------------------------------------------------

    def verify(self, incident_id: int, probe_role: str | None = None, *, now: Callable[[], datetime] = utcnow) -> CheckReport:
        """A check outside the schedule: answers now, never takes a scheduled slot."""
        return self._check(incident_id, probe_role, now=now)

    def _check(self, incident_id: int, probe_role: str | None, *, now: Callable[[], datetime],
               decision: core.DueDecision | None = None, holder: str | None = None) -> CheckReport:
        incident = self.store.incident(incident_id)
        if incident.status == Status.CLOSED:
            raise UsageError(f"incident {incident_id} is closed; closed is final and is not re-checked",
                             hint="declare a new incident if access came back")
        scanned = self._scope(incident_id)
        with gc_paused():
            return self._check_scope(incident_id, scanned, probe_role, now=now, decision=decision, holder=holder)

    def _check_scope(self, incident_id: int, scanned: ScopeVersion, probe_role: str | None, *,
                     now: Callable[[], datetime], decision: core.DueDecision | None, holder: str | None) -> CheckReport:
        started = time.perf_counter()
        version = scanned.version
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-baseline") as pool:
            # The first check after a scan that found something compares with that scan's grants, which never change:
            # a thread reads them from the store while the target answers (the client mostly waits on the server then).
            scan_grants = pool.submit(q.scan_grants, self.store, incident_id, version) \
                if scanned.findings and not q.checked(self.store, incident_id, version) else None
            result, probe = self._observe(scanned.scope, probe_role)
            findings_json = core.findings_json(result.findings)
            seen = _Seen(findings=core.findings_digest(findings_json), objects=core.objects_digest(result.objects))
            baseline, held = self._baseline(incident_id, version, scanned.created_at, result, seen, scan_grants)
        # The ledger and the roles reached before only explain pairs readable now: a clean check needs neither.
        ledger = q.ledger_changes_since(self.store, incident_id, baseline.at, closes) if result.findings else []
        role_findings = any(f.path == AccessPath.ROLE for f in result.findings)
        outcome = core.compare(result.findings, set(result.objects), baseline, ledger=ledger,
                               known_reach=q.role_reach(self.store, incident_id, version) if role_findings else set(),
                               probe_readable=probe.get("readable_but_closed", []), probe_inconclusive=probe.get("inconclusive", []))
        ran_at = now()
        duration_ms = int((time.perf_counter() - started) * 1000)
        return self._record(incident_id, version, result, outcome, findings_json, baseline, probe, ran_at, duration_ms, decision, seen, held,
                            holder)

    def _scope(self, incident_id: int) -> ScopeVersion:
        versions = self.wb.scanning.versions(incident_id)
        if not versions:
            raise UsageError(f"incident {incident_id} has no scope to verify",
                             hint=f"run `sevtool scan {incident_id} --target DSN_OR_NAME --principal P` first")
        return versions[-1]   # the latest: oldest first

    def _observe(self, scope: Scope, probe_role: str | None) -> tuple[ScanResult, dict]:
        """The scope scanned again through the scan service's open target (a watch reuses its connection)."""
        target = self.wb.scanning.target(scope.target)
        if probe_role and not plugin(target.kind).capabilities.live_probe:   # refused before the scan, not after
            raise UsageError(f"{target.display} cannot be probed live", hint="verify without --probe-role")
        result = self.wb.scanning.run(scope)
        probe = self._probe(target, probe_role, result) if probe_role else {}
        return result, probe

    @staticmethod
    def _probe(target, role: str, result: ScanResult) -> dict:
        """Probe every object the catalog calls closed that is DSS 3-4 or unrated, plus a random sample of the rest."""
        exposed = {f.object_fqn for f in result.findings if not f.future_tables}
        sensitive_closed = [o for o, dss in result.objects.items() if o not in exposed and (dss is None or dss >= 3)]
        rest = sorted(set(result.objects) - set(sensitive_closed))
        sample = random.sample(rest, min(PROBE_SAMPLE, len(rest)))
        answers: list[ProbeResult] = target.probe(role, sorted(sensitive_closed) + sample)
        readable = {a.object_fqn for a in answers if a.readable}
        return {
            "role": role, "probed": len(answers),
            "readable_but_closed": sorted(readable - exposed),
            "denied_but_exposed": sorted(a.object_fqn for a in answers if not a.readable and a.object_fqn in exposed
                                         and not a.inconclusive),
            "inconclusive": sorted(a.object_fqn for a in answers if a.inconclusive),
        }

    def _baseline(self, incident_id: int, version: int, scope_at: datetime | None, result: ScanResult,
                  seen: _Seen, scan_grants: Future | None = None) -> tuple[core.Baseline, _Held]:
        """The previous check, or before any check the scan; and which earlier checks already hold what this one saw.

        When nothing is readable now, only the number of pairs readable then is read, not their grants.
        `scan_grants`: the scan's grants, if they are being read already.
        """
        previous = q.latest_check(self.store, incident_id)
        # A re-scan with a different scope starts the comparison over from that scan: the previous check
        # looked at other objects, so "not seen then" would not mean "created after the fix".
        if previous is None or previous.scope_version != version:
            label = f"scan v{version}"
            if not result.findings:
                return core.Baseline(label, scope_at, pairs_readable=q.scan_pair_count(self.store, incident_id, version)), _Held()
            grants = scan_grants.result() if scan_grants else q.scan_grants(self.store, incident_id, version)
            return core.Baseline.of_rows(label, scope_at, grants), _Held()
        label, at = f"check {previous.number}", as_utc(previous.ran_at)
        stored_in = q.findings_check_id(previous)
        same_findings = previous.summary.get(q.FINDINGS_DIGEST) == seen.findings
        same_objects = previous.summary.get(q.OBJECTS_DIGEST) == seen.objects
        objects = result.objects.keys() if same_objects else q.check_objects(self.store, previous)
        held = _Held(findings=stored_in if same_findings else None, objects=q.objects_check_id(previous) if same_objects else None)
        if not result.findings and q.READABLE_PAIRS in previous.summary:
            return core.Baseline(label, at, objects=frozenset(objects) if objects is not None else None,
                                 pairs_readable=previous.summary[q.READABLE_PAIRS]), held
        cached = self._last_findings
        if same_findings:
            return core.Baseline.of(label, at, result.findings, objects), held
        if cached and cached[0] == stored_in:
            return core.Baseline.of_rows(label, at, cached[1], objects), held
        return core.Baseline.of_rows(label, at, q.check_grants(self.store, stored_in), objects), held

    def _record(self, incident_id: int, version: int, result: ScanResult, outcome: core.CheckOutcome, findings_json: list[bytes],
                baseline: core.Baseline, probe: dict, ran_at: datetime, duration_ms: int,
                decision: core.DueDecision | None, seen: _Seen, held: _Held, holder: str | None = None) -> CheckReport:
        """One transaction; a scheduled check (`decision`) is recorded only while `holder` still holds the watch lock."""
        with self.store.write() as tx:
            row = tx.incident_row(incident_id)
            number = q.next_check_number(tx.session, incident_id)
            check = q.add_check(tx.session, CheckRow(
                incident_id=incident_id, number=number, scope_version=version,
                scheduled_at=decision.run.due_at if decision else None, ran_at=ran_at, duration_ms=duration_ms,
                clean=outcome.clean, exposed_objects=outcome.exposed_objects, findings=len(outcome.findings),
                regressions=len(outcome.regressions), probe=probe,
                summary={"baseline": baseline.label, "objects_in_scope": len(result.objects), "remaining_pairs": outcome.remaining,
                         "closed_since_baseline": outcome.closed_since, "new_objects": outcome.new_objects[:100],
                         "new_object_count": len(outcome.new_objects), "by_path": outcome.by_path, "by_dss": outcome.by_dss,
                         q.READABLE_PAIRS: len(outcome.readable), q.FINDINGS_DIGEST: seen.findings, q.OBJECTS_DIGEST: seen.objects}),
                findings_json, result.objects, same_as=held.findings, objects_in=held.objects)
            slot = self._finish_slots(tx, incident_id, decision, holder, check.id, ran_at) if decision else None
            verified = outcome.clean and row.verified_at is None
            self._append_check_event(tx, incident_id, number, outcome, baseline, len(result.objects), probe, slot, duration_ms, ran_at,
                                     verified=verified, unverified=not outcome.clean and row.verified_at is not None)
            # verified_at is when the current clean streak began: after a regression it names the check that closed
            # access again, not the one before the fix failed.
            if not outcome.clean:
                row.verified_at = None
            elif verified:
                row.verified_at = ran_at
            self._record_regressions(tx, incident_id, check.id, number, outcome, ran_at)
            self._move_status(tx, row, number, outcome, ran_at)
            if outcome.regressions:
                self._new_round(tx, row, check.id, ran_at, "Regression")
            elif slot and not outcome.clean and not q.round_open(tx.session, row.id, slot["round"]):
                # The round's last re-check still found access: that check cannot be the clean one resolving needs.
                self._new_round(tx, row, check.id, ran_at, "Access remaining at the schedule's last re-check")
            status = Status(row.status)
        self._last_findings = (held.findings or check.id,
                               [(f.schema_name, f.object_name, f.principal, f.grantee, f.path) for f in outcome.findings])
        return CheckReport(incident_id=incident_id, check_id=check.id, number=number, ran_at=ran_at, duration_ms=duration_ms,
                           baseline=baseline.label, objects_in_scope=len(result.objects), outcome=outcome, status=status,
                           probe=probe, slot=slot)

    def _finish_slots(self, tx, incident_id: int, decision: core.DueDecision, holder: str, check_id: int, ran_at: datetime) -> dict:
        """The slot this check ran for is done; earlier overdue ones are covered by it. Each keeps its delay.
        Only their claimant, still holding the watch lock, finishes them (the store refuses anyone else)."""
        def delay(slot: core.SlotState) -> int:
            return int(decision.delay(slot, ran_at).total_seconds())

        run = decision.run
        q.finish_claimed(tx.session, incident_id, run.id, holder, "done", check_id, ran_at, delay(run))
        for slot in decision.covered:
            q.finish_claimed(tx.session, incident_id, slot.id, holder, "covered", check_id, ran_at, delay(slot))
        return {"round": run.round, "idx": run.idx, "due_at": format_utc(run.due_at), "delay_seconds": delay(run),
                "covered": [{"idx": s.idx, "due_at": format_utc(s.due_at), "delay_seconds": delay(s)} for s in decision.covered]}

    @staticmethod
    def _append_check_event(tx, incident_id: int, number: int, outcome: core.CheckOutcome, baseline: core.Baseline, in_scope: int,
                            probe: dict, slot: dict | None, duration_ms: int, at: datetime, *, verified: bool, unverified: bool) -> None:
        if outcome.clean:
            what = f"clean: no in-scope principal can read any of {in_scope} object(s)"
        else:
            what = f"access remains on {outcome.exposed_objects} of {in_scope} object(s) ({len(outcome.findings)} finding(s))"
        if outcome.regressions:
            what += f"; {len(outcome.regressions)} regression(s)"
        when = ""
        if slot:
            late = f", {format_duration(timedelta(seconds=slot['delay_seconds']))} late" if slot["delay_seconds"] >= 60 else ""
            covers = f"; also covers {len(slot['covered'])} overdue re-check(s)" if slot["covered"] else ""
            when = f" (scheduled re-check {slot['idx'] + 1}, round {slot['round']}{late}{covers})"
        data = {"check": number, "clean": outcome.clean, "objects_in_scope": in_scope, "exposed_objects": outcome.exposed_objects,
                "findings": len(outcome.findings), "regressions": len(outcome.regressions), "remaining_pairs": outcome.remaining,
                "closed_since_baseline": outcome.closed_since, "new_objects": len(outcome.new_objects), "baseline": baseline.label,
                "duration_ms": duration_ms, "slot": slot, "verified_at_set": verified, "verified_at_cleared": unverified}
        if probe:
            data["probe"] = {k: (v if not isinstance(v, list) else len(v)) for k, v in probe.items()}
        tx.append(incident_id, "check", f"Check {number}{when}: {what}", data, at=at)

    @staticmethod
    def _record_regressions(tx, incident_id: int, check_id: int, number: int, outcome: core.CheckOutcome, at: datetime) -> None:
        q.close_regressions(tx.session, incident_id, outcome.readable, at, f"check {number}")
        q.add_regressions(tx.session, incident_id, check_id, at, ((r.object_fqn, r.principal, r.path.value, r.cause) for r in outcome.regressions))
        named: dict[tuple, list[str]] = defaultdict(list)      # per cause: the first objects, and every principal
        principals: dict[tuple, set[str]] = defaultdict(set)
        for r in outcome.regressions:
            if len(named[r.group]) < EVENT_SAMPLE:
                named[r.group].append(r.object_fqn)
            principals[r.group].add(r.principal)
        for example, count in core.group_regressions(outcome.regressions):
            others = f" (and {count - 1} more object(s) for the same cause)" if count > 1 else ""
            tx.append(incident_id, "regression", f"REGRESSION at check {number}: {example.object_fqn} readable by {example.principal} again: "
                      f"{example.cause}{others}",
                      {"check": number, "cause_kind": example.cause_kind.value, "cause": example.cause, "grantee": example.grantee,
                       "grantor": example.grantor, "count": count, "objects": named[example.group],
                       "principals": sorted(principals[example.group]), "first_seen_at": format_utc(at)}, at=at)

    def _move_status(self, tx, row, number: int, outcome: core.CheckOutcome, at: datetime) -> None:
        status = Status(row.status)
        if not outcome.clean and status in (Status.VERIFYING, Status.RESOLVED):
            reason = "regression" if outcome.regressions else "access remains"
            cause = outcome.regressions[0].as_dict() if outcome.regressions else None
            self.wb.incidents._apply_status(tx, row, Status.CONTAINED, at=at,
                                            why=f"check {number} found {reason} on {outcome.exposed_objects} object(s)", cause=cause)
        elif outcome.clean and status == Status.CONTAINED:
            self.wb.incidents._apply_status(tx, row, Status.VERIFYING, at=at, why=f"check {number} found no access remaining")

    def _new_round(self, tx, row, check_id: int, at: datetime, cause: str) -> None:
        """The check that found a regression (or access left at the end of a round) is the first slot of a fresh round."""
        round_number = q.current_round(tx.session, row.id) + 1
        self._add_round(tx, row, round_number, at, cause, core.regression_round(at, self.wb.policy.level(row.sev)))
        q.finish(tx.session, q.slot_id(tx.session, row.id, round_number, 0), "done", check_id, at, 0)

    def restart_after_fix(self, tx, row, at: datetime, cause: str) -> None:
        """Access was revoked again after the re-check schedule started: the schedule restarts from this fix.

        The checks that let an incident resolve must all come after the last change that closed access. Otherwise
        a fix re-applied after a regression, seconds before the round's last re-check, would be "verified" by that
        one check: the first fix that did not stick, over again.
        """
        current = q.current_round(tx.session, row.id)
        if current:
            self._add_round(tx, row, current + 1, at, cause, core.schedule(at, self.wb.policy.level(row.sev)))

    def _add_round(self, tx, row, round_number: int, at: datetime, cause: str, planned: list[core.PlannedSlot]) -> None:
        superseded = q.supersede_pending(tx.session, row.id, round_number)
        q.add_round(tx.session, row.id, round_number, planned)
        offsets = [p.offset for p in planned]
        tx.append(row.id, "schedule", f"{cause} restarts the re-check schedule (round {round_number}): {', '.join(offsets)} from {format_utc(at)}"
                  + (f"; {superseded} pending re-check(s) of the previous round superseded" if superseded else ""),
                  {"round": round_number, "offsets": offsets, "anchor": format_utc(at), "superseded": superseded}, at=at)

    # --- the schedule -----------------------------------------------------------------------------

    def watch(self, incident_id: int, *, once: bool = False, probe_role: str | None = None,
              now: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep,
              on_check: Callable[[CheckReport], None] | None = None,
              on_wait: Callable[[dict], None] | None = None) -> WatchReport:
        """Run the re-check schedule until its current round is done (`once`: only what is due now)."""
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
                states = [q.slot_state(s) for s in q.slots(self.store, incident_id)]
                decision = core.due(states, now())
                if decision is not None:
                    report = self._run_slot(incident_id, decision, holder, probe_role, now, beat_every)
                    if report is not None:
                        reports.append(report)
                        if on_check:
                            on_check(report)
                    continue
                pending = core.next_pending(states)
                if pending is None or once or self.store.status_of(incident_id) == Status.CLOSED:
                    break
                wait = min(pending.due_at - now(), beat_every)
                if on_wait:
                    on_wait({"round": pending.round, "idx": pending.idx, "due_at": pending.due_at})
                sleep(max(wait.total_seconds(), 0))
                locks.heartbeat(self.store, incident_id, "watch", holder)
        finally:
            locks.release(self.store, incident_id, "watch", holder)
        upcoming = core.next_pending([q.slot_state(s) for s in q.slots(self.store, incident_id)])
        return WatchReport(checks=reports, finished=upcoming is None, next_due=upcoming.due_at if upcoming else None,
                           gate=self.resolution_gate(incident_id))

    def _start(self, incident_id: int, at: datetime) -> None:
        """Round 1 from containment, created once; slots a dead watcher left `running` go back to pending."""
        incident = self.store.incident(incident_id)
        anchor = incident.contained_at or q.first_applied_at(self.store, incident_id)
        with self.store.write() as tx:
            released = q.release_running(tx.session, incident_id)
            if released:
                tx.append(incident_id, "schedule", f"{released} re-check(s) left running by a stopped watcher will run again",
                          {"released": released}, at=at)
            if q.current_round(tx.session, incident_id):
                return
            if anchor is None:
                raise UsageError(f"incident {incident_id} is not contained yet: the re-check schedule runs from the fix",
                                 hint=f"apply the fix (`sevtool revoke {incident_id} --apply`) or mark it contained; `sevtool verify {incident_id}` checks now")
            row = tx.incident_row(incident_id)
            level = self.wb.policy.level(row.sev)
            q.add_round(tx.session, incident_id, 1, core.schedule(anchor, level))
            tx.append(incident_id, "schedule", f"Re-check schedule started (SEV {row.sev}): {', '.join(level.recheck)} from containment at {format_utc(anchor)}",
                      {"round": 1, "offsets": level.recheck, "anchor": format_utc(anchor)}, at=at)

    def _run_slot(self, incident_id: int, decision: core.DueDecision, holder: str, probe_role: str | None,
                  now: Callable[[], datetime], beat_every: timedelta) -> CheckReport | None:
        wanted = [decision.run, *decision.covered]
        with self.store.write() as tx:
            claimed = set(q.claim(tx.session, [s.id for s in wanted], holder, now()))
        if decision.run.id not in claimed:
            return None      # another process ran it; re-read the schedule
        mine = core.DueDecision(run=decision.run, covered=[s for s in decision.covered if s.id in claimed])
        try:
            # A check can outlast the lock's staleness window (45,000 tables, a slow catalog): keep the lock alive
            # while it runs, or a second watcher would take the lock over and run this slot again.
            with locks.beating(self.store, incident_id, "watch", holder, beat_every.total_seconds()):
                return self._check(incident_id, probe_role, now=now, decision=mine, holder=holder)
        except BaseException:
            with self.store.write() as tx:
                q.release_running(tx.session, incident_id, holder)
            raise

    def resolution_gate(self, incident_id: int) -> str | None:
        """Why `resolved` must wait, or None once the schedule's last check was clean with no regression since."""
        states = [q.slot_state(s) for s in q.slots(self.store, incident_id)]
        return core.gate_reason(states, q.check_states(self.store, incident_id), utcnow())

    # --- read side: TUI, postmortem, countdown ----------------------------------------------------------

    def history(self, incident_id: int) -> list[dict]:
        self.store.incident(incident_id)
        return [{"check": c.number, "id": c.id, "scheduled_at": format_utc(c.scheduled_at) if c.scheduled_at else None,
                 "ran_at": format_utc(c.ran_at), "duration_ms": c.duration_ms, "clean": c.clean, "exposed_objects": c.exposed_objects,
                 "findings": c.findings, "regressions": c.regressions, "objects_in_scope": c.summary.get("objects_in_scope"),
                 "baseline": c.summary.get("baseline"), "probe": c.probe}
                for c in q.checks(self.store, incident_id)]

    def regressions(self, incident_id: int) -> list[dict]:
        self.store.incident(incident_id)
        return [{"object": r.object_fqn, "principal": r.principal, "path": r.path, "cause": r.cause, "check_id": r.check_id,
                 "first_seen_at": format_utc(r.first_seen_at), "closed_at": format_utc(r.closed_at) if r.closed_at else None,
                 "closed_by": r.closed_by} for r in q.regressions(self.store, incident_id)]

    def open_regressions(self, incident_id: int) -> int:
        """How many object x principal pairs regressed and are still readable (the TUI's loudest marker)."""
        return q.open_regression_count(self.store, incident_id)

    def schedule(self, incident_id: int) -> list[dict]:
        self.store.incident(incident_id)
        return [{"round": s.round, "idx": s.idx, "offset": s.offset, "due_at": format_utc(s.due_at), "status": s.status,
                 "check_id": s.check_id, "ran_at": format_utc(s.ran_at) if s.ran_at else None, "delay_seconds": s.delay_seconds}
                for s in q.slots(self.store, incident_id)]

    def next_check(self, incident_id: int, now: datetime | None = None) -> dict | None:
        """The next pending re-check and how long until it is due (negative: overdue), for a countdown."""
        pending = core.next_pending([q.slot_state(s) for s in q.slots(self.store, incident_id)])
        if pending is None:
            return None
        remaining = pending.due_at - (now or utcnow())
        return {"round": pending.round, "idx": pending.idx, "due_at": pending.due_at, "seconds": int(remaining.total_seconds()),
                "in": format_duration(remaining)}


