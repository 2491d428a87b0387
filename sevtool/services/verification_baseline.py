"""What a check compares with: the previous check or, before the first check, the scan.

A check compares digests first: when it sees what the previous check saw, the baseline is its own findings
and nothing is read back; otherwise the baseline's grants are copied by the database into the comparison's
tables (store/check_compare.py), never read into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sevtool.core.timeparse import as_utc
from sevtool.store import checks as q
from sevtool.store.check_compare import Comparison
from sevtool.store.repository import Store


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
    """Finds a check's baseline and stages its grants in the check's comparison."""

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
