"""What a check compares with: the previous check or, before the first check, the scan.

Cost at 45,000 tables: a check compares digests first, so a check that sees what the previous one saw
reads nothing back; the ledger and role reach are read only when something is readable now.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sevtool.core import checks as core
from sevtool.core.timeparse import as_utc
from sevtool.store import checks as q
from sevtool.store.repository import Store
from sevtool.targets.base import ScanResult


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


class Baselines:
    """Reads a check's baseline, remembering the findings this process last stored so a watch loop does not read them back."""

    def __init__(self, store: Store):
        self.store = store
        # What the findings this process last stored give a comparison, by the check holding them: a watch loop
        # does not read them back. Rows, not Findings: 45,000 Findings kept alive were ~100 MB.
        self._last_findings: tuple[int, list[tuple[str, str, str, str, str]]] | None = None

    def baseline(
        self,
        incident_id: int,
        version: int,
        scope_at: datetime | None,
        result: ScanResult,
        seen: Seen,
        scan_grants: Future | None = None,
    ) -> tuple[core.Baseline, Held]:
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
                return core.Baseline(
                    label, scope_at, pairs_readable=q.scan_pair_count(self.store, incident_id, version)
                ), Held()
            grants = scan_grants.result() if scan_grants else q.scan_grants(self.store, incident_id, version)
            return core.Baseline.of_rows(label, scope_at, grants), Held()
        label, at = f"check {previous.number}", as_utc(previous.ran_at)
        stored_in = q.findings_check_id(previous)
        same_findings = previous.summary.get(q.FINDINGS_DIGEST) == seen.findings
        same_objects = previous.summary.get(q.OBJECTS_DIGEST) == seen.objects
        objects = result.objects.keys() if same_objects else q.check_objects(self.store, previous)
        held = Held(
            findings=stored_in if same_findings else None,
            objects=q.objects_check_id(previous) if same_objects else None,
        )
        if not result.findings and q.READABLE_PAIRS in previous.summary:
            return core.Baseline(
                label,
                at,
                objects=frozenset(objects) if objects is not None else None,
                pairs_readable=previous.summary[q.READABLE_PAIRS],
            ), held
        cached = self._last_findings
        if same_findings:
            return core.Baseline.of(label, at, result.findings, objects), held
        if cached and cached[0] == stored_in:
            return core.Baseline.of_rows(label, at, cached[1], objects), held
        return core.Baseline.of_rows(label, at, q.check_grants(self.store, stored_in), objects), held

    def remember(self, check_id: int, findings: list) -> None:
        """The findings `check_id` holds, as the rows a comparison takes, for the next check of this process."""
        self._last_findings = (
            check_id,
            [(f.schema_name, f.object_name, f.principal, f.grantee, f.path) for f in findings],
        )
