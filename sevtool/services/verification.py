"""Verify the fix stuck: re-run the scope, compare with what was closed, re-check on the SEV schedule.

A check re-runs the incident's latest scope on its target (so tables created after the fix are
seen), optionally probes as a canary member, and compares with the previous check (or, before the
first check, the scan). Everything a check decides is written in one store transaction: the check,
what remained, its regressions, the timeline events and any status change.

Status rules: a regression, or any access found while `verifying`/`resolved`, moves the incident back
to `contained`; a clean check moves `contained` to `verifying`. `verified_at` marks the start of the
current clean streak: a check that finds access clears it, and the next clean check sets it again.

The re-check schedule is in services.verification_schedule, the baseline a check compares with and the
comparison in services.verification_baseline: it is made in the store's SQL (store.check_compare), in the
transaction that records the check, so no list or dict the size of the scope is held besides the scan's own.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sevtool.core import checks as core
from sevtool.core.access_exceptions import with_exceptions
from sevtool.core.exposure import Scope
from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_utc, utcnow
from sevtool.errors import UsageError
from sevtool.gcpause import gc_paused
from sevtool.services.verification_baseline import Baseline, Baselines, Held, Seen
from sevtool.services.verification_report import CheckHistory, CheckReport, authorized_dict
from sevtool.services.verification_schedule import RecheckSchedule
from sevtool.store import checks as q
from sevtool.store import schedule as sched
from sevtool.store.check_compare import Comparison
from sevtool.store.models import CheckRow
from sevtool.targets.base import ProbeResult, ScanResult
from sevtool.targets.plugin import plugin

if TYPE_CHECKING:
    from sevtool.services import Workbench
    from sevtool.services.scanning import ScopeVersion
    from sevtool.store.repository import Tx

PROBE_SAMPLE = 25  # objects probed at random besides the sensitive closed ones
EVENT_SAMPLE = 20  # objects named in a timeline event; the count is always complete


class VerificationService(RecheckSchedule, CheckHistory):
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store
        self.baselines = Baselines(self.store)

    # --- one check ------------------------------------------------------------------------------

    def verify(
        self, incident_id: int, probe_role: str | None = None, *, now: Callable[[], datetime] = utcnow
    ) -> CheckReport:
        """A check outside the schedule: answers now, never takes a scheduled slot."""
        return self._check(incident_id, probe_role, now=now)

    def _check(
        self,
        incident_id: int,
        probe_role: str | None,
        *,
        now: Callable[[], datetime],
        decision: core.DueDecision | None = None,
        holder: str | None = None,
    ) -> CheckReport:
        incident = self.store.incident(incident_id)
        if incident.status == Status.CLOSED:
            raise UsageError(
                f"incident {incident_id} is closed; closed is final and is not re-checked",
                hint="declare a new incident if access came back",
            )
        scanned = self._scope(incident_id)
        with gc_paused():
            report, objects = self._check_scope(
                incident_id, scanned, probe_role, now=now, decision=decision, holder=holder
            )
            # Taken once the check's working set is gone: the counters of 200,000 tables on top of it were a check's
            # peak memory.
            self.wb.table_stats.snapshot(incident_id, scanned.scope.target, objects, "check")
            return report

    def _check_scope(
        self,
        incident_id: int,
        scanned: ScopeVersion,
        probe_role: str | None,
        *,
        now: Callable[[], datetime],
        decision: core.DueDecision | None,
        holder: str | None,
    ) -> tuple[CheckReport, list[str]]:
        """The check, recorded; and the objects in scope, for the statistics snapshot that follows it."""
        started = time.perf_counter()
        result, probe = self._observe(scanned.scope, probe_role)
        # Reads an active access exception explains are not exposure: set apart before anything compares them.
        exceptions = self.wb.access.review(incident_id, scanned.scope.target, result.findings, now())
        findings = exceptions.findings
        # The comparison's tables live in the transaction that records the check: its findings are stored from them.
        with self.store.write() as tx:
            comparison = Comparison(tx.session)
            staged = comparison.stage_findings(findings)
            seen = Seen(findings=staged.digest, objects=core.objects_digest(result.objects))
            baseline, held = self.baselines.baseline(
                comparison, incident_id, scanned.version, scanned.created_at, result.objects, seen, bool(findings)
            )
            outcome = self.baselines.compare(
                comparison, incident_id, scanned.version, findings, staged, baseline, exceptions, probe
            )
            ran_at = now()
            if exceptions.exceptions:
                outcome = with_exceptions(outcome, exceptions, q.open_regression_pairs(self.store, incident_id), ran_at)
            duration_ms = int((time.perf_counter() - started) * 1000)
            report = self._record(
                tx,
                comparison,
                incident_id,
                scanned.version,
                result,
                outcome,
                baseline,
                probe,
                ran_at,
                duration_ms,
                decision,
                seen,
                held,
                holder,
                [authorized_dict(a) for a in exceptions.authorized],
            )
            comparison.drop()
        return report, list(result.objects)

    def _scope(self, incident_id: int) -> ScopeVersion:
        versions = self.wb.scanning.versions(incident_id)
        if not versions:
            raise UsageError(
                f"incident {incident_id} has no scope to verify",
                hint=f"run `sevtool scan {incident_id} --target DSN_OR_NAME --principal P` first",
            )
        return versions[-1]  # the latest: oldest first

    def _observe(self, scope: Scope, probe_role: str | None) -> tuple[ScanResult, dict]:
        """The scope scanned again through the scan service's open target (a watch reuses its connection)."""
        target = self.wb.scanning.target(scope.target)
        if probe_role and not plugin(target.kind).capabilities.live_probe:  # refused before the scan, not after
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
            "role": role,
            "probed": len(answers),
            "readable_but_closed": sorted(readable - exposed),
            "denied_but_exposed": sorted(
                a.object_fqn for a in answers if not a.readable and a.object_fqn in exposed and not a.inconclusive
            ),
            "inconclusive": sorted(a.object_fqn for a in answers if a.inconclusive),
        }

    def _record(
        self,
        tx: Tx,
        comparison: Comparison,
        incident_id: int,
        version: int,
        result: ScanResult,
        outcome: core.CheckOutcome,
        baseline: Baseline,
        probe: dict,
        ran_at: datetime,
        duration_ms: int,
        decision: core.DueDecision | None,
        seen: Seen,
        held: Held,
        holder: str | None = None,
        authorized: list[dict] | None = None,
    ) -> CheckReport:
        """In the check's transaction; a scheduled check (`decision`) is recorded only while `holder` still holds the
        watch lock."""
        row = tx.incident_row(incident_id)
        number = q.next_check_number(tx.session, incident_id)
        check = q.add_check(
            tx.session,
            CheckRow(
                incident_id=incident_id,
                number=number,
                scope_version=version,
                scheduled_at=decision.run.due_at if decision else None,
                ran_at=ran_at,
                duration_ms=duration_ms,
                clean=outcome.clean,
                exposed_objects=outcome.exposed_objects,
                findings=len(outcome.findings),
                regressions=len(outcome.regressions),
                probe=probe,
                summary={
                    "baseline": baseline.label,
                    "objects_in_scope": len(result.objects),
                    "remaining_pairs": outcome.remaining,
                    "closed_since_baseline": outcome.closed_since,
                    "new_objects": outcome.new_objects[:100],
                    "new_object_count": len(outcome.new_objects),
                    "by_path": outcome.by_path,
                    "by_dss": outcome.by_dss,
                    "authorized": authorized or [],
                    q.READABLE_PAIRS: outcome.readable_pairs,
                    q.FINDINGS_DIGEST: seen.findings,
                    q.OBJECTS_DIGEST: seen.objects,
                },
            ),
            comparison,
            result.objects,
            same_as=held.findings,
            objects_in=held.objects,
        )
        slot = self._finish_slots(tx, incident_id, decision, holder, check.id, ran_at) if decision else None
        verified = outcome.clean and row.verified_at is None
        self._append_check_event(
            tx,
            incident_id,
            number,
            outcome,
            baseline,
            len(result.objects),
            probe,
            slot,
            duration_ms,
            ran_at,
            authorized or [],
            verified=verified,
            unverified=not outcome.clean and row.verified_at is not None,
        )
        # verified_at is when the current clean streak began: after a regression it names the check that closed
        # access again, not the one before the fix failed.
        if not outcome.clean:
            row.verified_at = None
        elif verified:
            row.verified_at = ran_at
        self._record_regressions(tx, comparison, incident_id, check.id, number, outcome, ran_at)
        self._move_status(tx, row, number, outcome, ran_at)
        if outcome.regressions:
            self._new_round(tx, row, check.id, ran_at, "Regression")
        elif slot and not outcome.clean and not sched.round_open(tx.session, row.id, slot["round"]):
            # The round's last re-check still found access: that check cannot be the clean one resolving needs.
            self._new_round(tx, row, check.id, ran_at, "Access remaining at the schedule's last re-check")
        status = Status(row.status)
        return CheckReport(
            incident_id=incident_id,
            check_id=check.id,
            number=number,
            ran_at=ran_at,
            duration_ms=duration_ms,
            baseline=baseline.label,
            objects_in_scope=len(result.objects),
            outcome=outcome,
            status=status,
            probe=probe,
            slot=slot,
            authorized=authorized or [],
        )

    @staticmethod
    def _append_check_event(
        tx,
        incident_id: int,
        number: int,
        outcome: core.CheckOutcome,
        baseline: Baseline,
        in_scope: int,
        probe: dict,
        slot: dict | None,
        duration_ms: int,
        at: datetime,
        authorized: list[dict],
        *,
        verified: bool,
        unverified: bool,
    ) -> None:
        if outcome.clean:
            what = f"clean: no in-scope principal can read any of {in_scope} object(s)"
        else:
            what = f"access remains on {outcome.exposed_objects} of {in_scope} object(s) ({len(outcome.findings)} finding(s))"
        if outcome.regressions:
            what += f"; {len(outcome.regressions)} regression(s)"
        if authorized:
            numbers = ", ".join(str(n) for n in sorted({a["exception"] for a in authorized}))
            what += f"; {len(authorized)} read(s) authorized by exception(s) {numbers}"
        when = ""
        if slot:
            late = (
                f", {format_duration(timedelta(seconds=slot['delay_seconds']))} late"
                if slot["delay_seconds"] >= 60
                else ""
            )
            covers = f"; also covers {len(slot['covered'])} overdue re-check(s)" if slot["covered"] else ""
            when = f" (scheduled re-check {slot['idx'] + 1}, round {slot['round']}{late}{covers})"
        data = {
            "check": number,
            "clean": outcome.clean,
            "objects_in_scope": in_scope,
            "exposed_objects": outcome.exposed_objects,
            "findings": len(outcome.findings),
            "regressions": len(outcome.regressions),
            "remaining_pairs": outcome.remaining,
            "closed_since_baseline": outcome.closed_since,
            "new_objects": len(outcome.new_objects),
            "baseline": baseline.label,
            "duration_ms": duration_ms,
            "slot": slot,
            "verified_at_set": verified,
            "verified_at_cleared": unverified,
            "authorized": authorized,
        }
        if probe:
            data["probe"] = {k: (v if not isinstance(v, list) else len(v)) for k, v in probe.items()}
        tx.append(incident_id, "check", f"Check {number}{when}: {what}", data, at=at)

    @staticmethod
    def _record_regressions(
        tx,
        comparison: Comparison,
        incident_id: int,
        check_id: int,
        number: int,
        outcome: core.CheckOutcome,
        at: datetime,
    ) -> None:
        breaches = {(b.object_fqn, b.principal) for b in outcome.exception_breaches}
        comparison.close_regressions(incident_id, breaches, at, f"check {number}")
        q.add_regressions(
            tx.session,
            incident_id,
            check_id,
            at,
            ((r.object_fqn, r.principal, r.path.value, r.cause) for r in outcome.regressions),
        )
        named: dict[tuple, list[str]] = defaultdict(list)  # per cause: the first objects, and every principal
        principals: dict[tuple, set[str]] = defaultdict(set)
        for r in outcome.regressions:
            if len(named[r.group]) < EVENT_SAMPLE:
                named[r.group].append(r.object_fqn)
            principals[r.group].add(r.principal)
        for example, count in core.group_regressions(outcome.regressions):
            others = f" (and {count - 1} more object(s) for the same cause)" if count > 1 else ""
            tx.append(
                incident_id,
                "regression",
                f"REGRESSION at check {number}: {example.object_fqn} readable by {example.principal} again: "
                f"{example.cause}{others}",
                {
                    "check": number,
                    "cause_kind": example.cause_kind.value,
                    "cause": example.cause,
                    "grantee": example.grantee,
                    "grantor": example.grantor,
                    "count": count,
                    "objects": named[example.group],
                    "principals": sorted(principals[example.group]),
                    "first_seen_at": format_utc(at),
                },
                at=at,
            )

    def _move_status(self, tx, row, number: int, outcome: core.CheckOutcome, at: datetime) -> None:
        status = Status(row.status)
        if not outcome.clean and status in (Status.VERIFYING, Status.RESOLVED):
            reason = "regression" if outcome.regressions else "access remains"
            cause = outcome.regressions[0].as_dict() if outcome.regressions else None
            self.wb.incidents._apply_status(
                tx,
                row,
                Status.CONTAINED,
                at=at,
                why=f"check {number} found {reason} on {outcome.exposed_objects} object(s)",
                cause=cause,
            )
        elif outcome.clean and status == Status.CONTAINED:
            self.wb.incidents._apply_status(
                tx, row, Status.VERIFYING, at=at, why=f"check {number} found no access remaining"
            )
