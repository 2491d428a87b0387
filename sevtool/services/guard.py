"""Guard: evaluate the team's standing exposure policies, open (or attach to) the incident a violation calls for,
and record when access broadens before any rule is broken.

One run of one policy scans its target for its principals, keeps what no live exception exempts, and records in one
store write: the policy's state, its digest, the run, and, on a violation, the incident:

- no incident yet for this policy and target, or the last one is closed: a new incident, declared by `guard`,
  pre-scoped with the violations (a scope version and a `scan` event), so `revoke` can plan at once;
- the last one is still open (declared, contained, verifying): a `guard_violation` event on it, nothing new;
- the last one is resolved: it is re-opened as a regression (resolved -> declared, with a new scope version),
  because the same exposure came back and its history belongs together. A closed incident is final, so a
  violation after it opens a new incident whose `declared` event names the one it follows.

Webhooks hear of it through the store's event hook, as for any incident: `declared` for a new one, a
`status_changed` regression for a re-opened one. Runs that only attach notify nobody again.

`serve` shares the runs among workers through the store's work leases (store/leases.py): each (policy, target)
runs once per interval, whichever worker claims it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sevtool.core.broadening import broadened, digest
from sevtool.core.exposure import ExposureSummary, Scope
from sevtool.core.guard import Policy, PolicyException, Verdict, evaluate
from sevtool.core.incident import Status
from sevtool.core.timeparse import as_utc, utcnow
from sevtool.errors import LockHeld, SevtoolError, UsageError
from sevtool.store import guard as guard_store
from sevtool.store import leases, scans
from sevtool.store.models import IncidentRow
from sevtool.targets.base import ScanResult

if TYPE_CHECKING:
    from sevtool.services import Workbench

KIND = "guard"  # the work-lease kind of policy runs
ACTOR = "guard"  # who the timeline says declared, re-opened or saw
_SAMPLE = 20  # violating objects named in a guard event; the scope holds them all


@dataclass
class PolicyRun:
    policy: Policy
    state: str  # holds, violated, error
    ran_at: datetime
    objects: int = 0
    findings: int = 0
    exempted: int = 0
    by_dss: dict[str, int] = field(default_factory=dict)
    incident_id: int | None = None
    action: str | None = None  # opened, attached, reopened (a violation); None otherwise
    broadened: list[dict[str, Any]] = field(default_factory=list)
    expired: list[PolicyException] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "target": self.policy.target,
            "state": self.state,
            "ran_at": self.ran_at,
            "objects": self.objects,
            "findings": self.findings,
            "exempted": self.exempted,
            "by_dss": self.by_dss,
            "incident": self.incident_id,
            "action": self.action,
            "broadened": self.broadened,
            "expired_exceptions": [_exception_dict(e) for e in self.expired],
            "error": self.error,
        }


def _exception_dict(e: PolicyException) -> dict[str, Any]:
    return {
        "objects": e.objects,
        "principals": e.principals,
        "owner": e.owner,
        "reason": e.reason,
        "expires": e.expires_at.isoformat(),
    }


class GuardService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    def policies(self) -> list[Policy]:
        return list(self.wb.settings.team.policy)

    def _policy_list(self) -> list[Policy]:
        found = self.policies()
        if not found:
            raise UsageError(
                f"no [[policy]] in {self.wb.settings.config}",
                hint='add one: [[policy]] name = "no-broad-sensitive" target = "warehouse" principals = ["all_employees"]',
            )
        return found

    # --- one pass over every policy (`guard --once`) ----------------------------------------------

    def run_once(self) -> list[PolicyRun]:
        """Every policy now, one after the other; a policy whose target fails is reported and the others still run."""
        holder = leases.new_holder()
        self.wb.access.expire()  # access exceptions past their end are revoked on every guard run
        return [self.run_policy(policy, holder=holder) for policy in self._policy_list()]

    # --- one policy --------------------------------------------------------------------------------

    def run_policy(
        self, policy: Policy, *, holder: str, slot: datetime | None = None, every: timedelta | None = None
    ) -> PolicyRun:
        """Scan, judge and record one policy. With `every`, the run serves the leased `slot` and moves it on."""
        now = utcnow()
        try:
            target = self.wb.scanning.target(policy.target)
            # Every DSS is scanned: the broadening digest counts them all; `evaluate` keeps the policy's own.
            scope = Scope(
                target=target.display, principals=policy.principals, schemas=policy.schemas, min_dss=policy.min_dss
            )
            result = target.scan(scope.model_copy(update={"min_dss": None}), self.wb.scanning.classifier())
        except SevtoolError as exc:
            run = PolicyRun(policy, "error", now, error=exc.as_dict())
            self._record(run, policy, holder, slot or now, every, None)
            return run
        verdict = evaluate(policy, result.findings, now)
        after = digest(result.findings)
        changes = broadened(guard_store.digest_of(self.store, policy.key), after, self.wb.settings.team.guard)
        run = PolicyRun(
            policy,
            verdict.state,
            now,
            objects=verdict.objects,
            findings=len(verdict.findings),
            exempted=verdict.exempted,
            by_dss=ExposureSummary.of(verdict.findings).by_dss,
            broadened=changes,
            expired=verdict.expired,
        )
        self._record(run, policy, holder, slot or now, every, (scope, result, verdict, after))
        return run

    def _record(
        self,
        run: PolicyRun,
        policy: Policy,
        holder: str,
        slot: datetime,
        every: timedelta | None,
        seen: tuple[Scope, ScanResult, Verdict, dict] | None,
    ) -> None:
        with self.store.write() as tx:
            tx.actor = ACTOR
            if every is not None:
                leases.finish(tx.session, KIND, policy.key, holder, leases.next_due(slot, every, run.ran_at))
            row = guard_store.state_row(tx.session, policy.key, policy.name, policy.target)
            if seen is not None:
                scope, result, verdict, after = seen
                if verdict.findings:
                    run.incident_id, run.action = self._incident_for(
                        tx, row.incident_id, policy, scope, result, verdict, run
                    )
                    row.incident_id = run.incident_id
                if run.broadened:
                    open_incident = row.incident_id if row.incident_id and self._is_open(tx, row.incident_id) else None
                    tx.append(
                        open_incident,
                        "access_broadened",
                        _broadened_summary(policy, run.broadened),
                        {"policy": policy.name, "target": policy.target, "changes": run.broadened},
                        at=run.ran_at,
                    )
                row.digest = dict(after)
            row.state, row.last_run_at, row.objects, row.findings, row.exempted = (
                run.state,
                run.ran_at,
                run.objects,
                run.findings,
                run.exempted,
            )
            row.error = run.error["message"] if run.error else None
            tx.session.add(row)
            guard_store.add_run(
                tx.session, policy.key, slot, holder, run.ran_at, run.state, run.objects, run.incident_id
            )

    @staticmethod
    def _is_open(tx, incident_id: int) -> bool:
        row = tx.session.get(IncidentRow, incident_id)
        return row is not None and row.status not in (Status.RESOLVED.value, Status.CLOSED.value)

    def _incident_for(
        self, tx, last: int | None, policy: Policy, scope: Scope, result: ScanResult, verdict: Verdict, run: PolicyRun
    ) -> tuple[int, str]:
        """The incident this violation belongs to (see the module's docstring for the rule), with what was done to it."""
        current = tx.session.get(IncidentRow, last) if last else None
        if current is not None and current.status not in (Status.RESOLVED.value, Status.CLOSED.value):
            action, incident_id = "attached", current.id
        elif current is not None and current.status == Status.RESOLVED.value:
            action, incident_id = "reopened", current.id
            self.wb.incidents._apply_status(
                tx,
                current,
                Status.DECLARED,
                at=run.ran_at,
                why=f"policy {policy.name} is violated again on {policy.target}",
                cause={"policy": policy.name, "target": policy.target},
            )
            self._scope(tx, incident_id, scope, result, verdict, run.ran_at)
        else:
            action = "opened"
            who = ", ".join(policy.principals)
            incident_id = self.wb.incidents.declare_in(
                tx,
                f"Policy {policy.name}: {who} can read {verdict.objects} sensitive object(s) on {policy.target}",
                policy.sev,
                playbook=policy.playbook,
                at=run.ran_at,
                reason=f"policy {policy.name} violated",
                extra={
                    "declared_by": ACTOR,
                    "policy": policy.name,
                    "target": policy.target,
                    **({"follows": current.id} if current else {}),
                },
            )
            self._scope(tx, incident_id, scope, result, verdict, run.ran_at)
        tx.append(
            incident_id,
            "guard_violation",
            _violation_summary(policy, run, action),
            {
                "policy": policy.name,
                "target": policy.target,
                "principals": policy.principals,
                "min_dss": policy.min_dss,
                "action": action,
                "objects": verdict.objects,
                "findings": len(verdict.findings),
                "by_dss": run.by_dss,
                "exempted": verdict.exempted,
                "expired_exceptions": [_exception_dict(e) for e in verdict.expired],
                "sample": sorted({f.object_fqn for f in verdict.findings})[:_SAMPLE],
            },
            at=run.ran_at,
        )
        return incident_id, action

    def _scope(self, tx, incident_id: int, scope: Scope, result: ScanResult, verdict: Verdict, at: datetime) -> None:
        """Pre-scope the incident with what the guard saw, as a scan records it: the violations, not the exempt findings."""
        from sevtool.services.scanning import scan_event_data, scan_event_summary

        objects = {fqn: dss for fqn, dss in result.objects.items() if scope.matches_dss(dss)}
        seen = result.model_copy(
            update={"findings": verdict.findings, "objects": objects, "objects_in_scope": len(objects)}
        )
        summary = ExposureSummary.of(verdict.findings)
        version = scans.next_version(tx.session, incident_id)
        scope_id = scans.add_scope(
            tx.session, incident_id, version, scope, finding_count=len(verdict.findings), object_count=len(objects)
        )
        scans.add_findings(tx.session, scope_id, verdict.findings)
        tx.append(
            incident_id,
            "scan",
            scan_event_summary(version, scope, seen, summary),
            scan_event_data(version, scope, seen, summary),
            at=at,
        )

    # --- every interval, shared by workers (`guard --every`) ----------------------------------------

    def serve(
        self,
        every: timedelta,
        *,
        lease: timedelta,
        on_run: Callable[[PolicyRun], None] | None = None,
        stop: threading.Event | None = None,
        poll: float = 1.0,
    ) -> None:
        """Run each policy once per interval, among however many workers share this store, until `stop` is set."""
        policies = {p.key: p for p in self._policy_list()}
        stop = stop or threading.Event()
        holder = leases.new_holder()
        leases.ensure(self.store, KIND, list(policies), utcnow(), drop_others=True)
        while not stop.is_set():
            self.wb.access.expire()  # cheap when none is due: one indexed query
            claimed = leases.claim(self.store, KIND, holder, utcnow(), lease)
            if claimed is None:
                stop.wait(poll)
                continue
            key, slot = claimed
            policy = policies.get(key)
            if policy is None:  # another worker's config has a policy this one's lacks: leave it to that worker
                leases.release(self.store, KIND, key, holder)
                stop.wait(poll)
                continue
            try:
                with leases.beating(self.store, KIND, key, holder, lease):
                    run = self.run_policy(policy, holder=holder, slot=slot, every=every)
            except LockHeld:
                continue  # another worker took the run over; it records it
            if on_run is not None:
                on_run(run)

    # --- reading (the TUI's Guard screen) -------------------------------------------------------------

    def overview(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Each configured policy with its last run, state, incident and exceptions (live or expired, with expiry)."""
        states = guard_store.states(self.store)
        now = now or utcnow()
        out = []
        for policy in self.policies():
            row = states.get(policy.key)
            out.append(
                {
                    "policy": policy.name,
                    "target": policy.target,
                    "principals": policy.principals,
                    "min_dss": policy.min_dss,
                    "sev": policy.sev,
                    "state": row.state if row else "never",
                    "last_run_at": as_utc(row.last_run_at) if row else None,
                    "objects": row.objects if row else 0,
                    "incident": row.incident_id if row else None,
                    "error": row.error if row else None,
                    "exceptions": [{**_exception_dict(e), "expired": e.expired(now)} for e in policy.exception],
                }
            )
        return out


def _violation_summary(policy: Policy, run: PolicyRun, action: str) -> str:
    verb = {"opened": "opened this incident", "attached": "still violated", "reopened": "violated again: re-opened"}[
        action
    ]
    text = (
        f"Guard: policy {policy.name} on {policy.target} {verb}: {', '.join(policy.principals)} can read {run.objects} object(s) "
        f"rated DSS {policy.min_dss}+ or unrated ({run.findings} finding(s)"
    )
    if run.exempted:
        text += f"; {run.exempted} exempt by exceptions"
    if run.expired:
        text += f"; {len(run.expired)} expired exception(s) no longer exempt"
    return text + ")"


def _broadened_summary(policy: Policy, changes: list[dict[str, Any]]) -> str:
    parts = []
    for c in changes:
        if c["kind"] == "objects":
            parts.append(f"{c['principal']} reads {c['after']} sensitive object(s), was {c['before']}")
        elif c["kind"] == "roles":
            parts.append(f"{c['principal']} now reads through {', '.join(c['new_roles'])}")
        else:
            parts.append(f"PUBLIC reads {c['after']} object(s) in {c['schema']}, was {c['before']}")
    return f"Access broadened ({policy.name} on {policy.target}): " + "; ".join(parts)
