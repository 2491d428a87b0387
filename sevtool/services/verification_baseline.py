"""What a check compares with (the previous check or, before the first check, the scan), and the comparison.

A check compares digests first: when it sees what the previous check saw, the baseline is its own findings
and nothing is read back; otherwise the baseline's grants are copied by the database into the comparison's
tables (store/check_compare.py), never read into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sevtool.core import checks as core
from sevtool.core.access_exceptions import ExceptionReview
from sevtool.core.exposure import AccessPath
from sevtool.core.timeparse import as_utc
from sevtool.store import checks as q
from sevtool.store.check_compare import Comparison, Staged
from sevtool.store.repository import Store
from sevtool.targets.plugin import closes


@dataclass(frozen=True)
class Seen:
    """Digests of what a check saw, compared with the previous check's before anything is read back."""

    findings: str
    objects: str


@dataclass(frozen=True)
class Held:
    """Earlier checks that already store exactly what this check saw, so it is not stored again."""

    findings: int | None = None
    objects: int | None = None


@dataclass(frozen=True)
class Baseline:
    """The observation a check is compared with, once its grants are staged.

    `objects_known`: it recorded the objects in scope (a scan does not), so `new_objects` are those in scope now
    and not then. `pairs_readable` is set instead of staged grants when nothing is readable now: every pair
    readable then has closed, and only their number matters.
    """

    label: str  # "check 3", "scan v2"
    at: datetime | None
    objects_known: bool = False
    new_objects: tuple[str, ...] = ()
    pairs_readable: int | None = None


class Baselines:
    """Finds a check's baseline, stages its grants in the check's comparison, and compares."""

    def __init__(self, store: Store):
        self.store = store

    def baseline(
        self,
        comparison: Comparison,
        incident_id: int,
        version: int,
        scope_at: datetime | None,
        objects: dict[str, int | None],
        seen: Seen,
        readable_now: bool,
    ) -> tuple[Baseline, Held]:
        """The previous check, or before any check the scan; and which earlier checks already hold what this one saw.

        When nothing is readable now, only the number of pairs readable then is read, not their grants.
        """
        previous = q.latest_check(self.store, incident_id)
        # A re-scan with a different scope starts the comparison over from that scan: the previous check
        # looked at other objects, so "not seen then" would not mean "created after the fix".
        if previous is None or previous.scope_version != version:
            label = f"scan v{version}"
            if not readable_now:
                return Baseline(
                    label, scope_at, pairs_readable=q.scan_pair_count(self.store, incident_id, version)
                ), Held()
            comparison.stage_scan(incident_id, version)
            return Baseline(label, scope_at), Held()
        label, at = f"check {previous.number}", as_utc(previous.ran_at)
        stored_in = q.findings_check_id(previous)
        same_findings = previous.summary.get(q.FINDINGS_DIGEST) == seen.findings
        same_objects = previous.summary.get(q.OBJECTS_DIGEST) == seen.objects
        held = Held(
            findings=stored_in if same_findings else None,
            objects=q.objects_check_id(previous) if same_objects else None,
        )
        then = None if same_objects else q.check_objects(self.store, previous)
        known = same_objects or then is not None
        new_objects = tuple(sorted(objects.keys() - then)) if then is not None else ()
        del then  # every object in scope then: gone before the comparison's own work
        if not readable_now and q.READABLE_PAIRS in previous.summary:
            return Baseline(label, at, known, new_objects, pairs_readable=previous.summary[q.READABLE_PAIRS]), held
        if same_findings:
            comparison.stage_same()
        else:
            comparison.stage_check(stored_in)
        return Baseline(label, at, known, new_objects), held

    def compare(
        self,
        comparison: Comparison,
        incident_id: int,
        version: int,
        findings: core.Findings,
        staged: Staged,
        baseline: Baseline,
        exceptions: ExceptionReview,
        probe: dict,
    ) -> core.CheckOutcome:
        """What this check found against its baseline, decided in the store's SQL; only the pairs that may have
        regressed are read back, a few hundred at a time, to be named."""
        regressions: list[core.Regression] = []
        comparison.stage_new_objects(baseline.new_objects)
        # The ledger and the roles reached before only explain pairs readable now: a clean check needs neither.
        ledger = comparison.stage_ledger(incident_id, baseline.at, closes) if findings else None
        comparison.close_pairs(applied=ledger is not None and ledger.applied)
        if ledger is not None:
            attribution = core.Attribution(
                default_privileges=staged.default_privileges,
                objects_known=baseline.objects_known,
                known_reach=(q.role_reach(self.store, incident_id, version) if staged.paths[AccessPath.ROLE] else set())
                | comparison.baseline_reach(),
                membership_revoked=ledger.membership_revoked,
            )
            for chunk in comparison.candidates():
                # The store answered for each finding's own grant; the other roles on a route are asked here.
                keys = {
                    key
                    for c in chunk
                    if ledger.undone and not c.restored
                    for key in core.undo_keys(c.findings) - {(f.grantee, f.object_fqn) for f in c.findings}
                }
                restored = comparison.undone_exact(keys) if keys else set()
                for c in chunk:
                    reopened = ledger.undone and (
                        c.restored
                        or any(
                            key in restored or ledger.undone_broad.covers(*key) for key in core.undo_keys(c.findings)
                        )
                    )
                    regressions.append(
                        attribution.regression(
                            c.obj, c.principal, c.findings, previous=c.previous, is_new=c.new_object, reopened=reopened
                        )
                    )
            regressions.sort(key=core.regression_order)
        closed_since = baseline.pairs_readable if baseline.pairs_readable is not None else comparison.closed_since()
        breach_pairs = {(b.object_fqn, b.principal) for b in exceptions.breaches}
        extra_pairs = breach_pairs - comparison.pairs_readable(breach_pairs)
        return core.CheckOutcome(
            findings=findings,
            regressions=regressions,
            readable_pairs=comparison.readable_pairs() + len(extra_pairs),
            exposed_objects=comparison.exposed_objects(
                set(probe.get("readable_but_closed", [])) | {obj for obj, _principal in breach_pairs}
            ),
            remaining=comparison.remaining() if findings else 0,
            closed_since=closed_since,
            new_objects=list(baseline.new_objects),
            by_path=core.by_path(staged.paths),
            by_dss=core.by_dss(comparison.dss_ratings()),
            probe_readable=sorted(probe.get("readable_but_closed", [])),
            probe_inconclusive=sorted(probe.get("inconclusive", [])),
        )
