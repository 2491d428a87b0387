"""Scope an exposure: scan a target, keep every scope as a new version with its findings, read them back.

Revocation plans from the latest findings, verification re-runs the stored scope (`run`), the TUI and
the postmortem read summaries. Nothing is recorded when the target cannot be scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from sevtool.core.classification import Classifier
from sevtool.core.exposure import PUBLIC, ExposureCount, ExposureSummary, Finding, Scope, dss_label
from sevtool.core.timeparse import as_utc
from sevtool.errors import NotFound, UsageError
from sevtool.gcpause import gc_paused, hand_back_freed
from sevtool.store import scans
from sevtool.targets.base import ScanResult, Target

if TYPE_CHECKING:
    from sevtool.services import Workbench

_NOTICES_IN_EVENT = 20


@dataclass
class ScanOutcome:
    incident_id: int
    version: int
    scope: Scope
    result: ScanResult
    summary: ExposureSummary
    event_seq: int
    readable_in_scope: int  # in-scope tables with at least one finding (see `readable_in_scope`)


@dataclass
class ScopeVersion:
    version: int
    scope: Scope
    created_at: datetime | None
    findings: int
    objects: int


def readable_in_scope(result: ScanResult) -> int:
    """In-scope tables with at least one finding; views and future-table defaults are counted apart."""
    exposed = {f.object_fqn for f in result.findings}
    return sum(1 for fqn in result.objects if fqn in exposed)


def normalise_principals(principals: list[str]) -> list[str]:
    """PUBLIC in any case means the PUBLIC pseudo-role; duplicates are dropped, order kept."""
    names = [PUBLIC if p.strip().upper() == PUBLIC else p.strip() for p in principals if p.strip()]
    return list(dict.fromkeys(names))


class ScanService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store
        self._targets: dict[str, Target] = {}

    # --- targets ---------------------------------------------------------------------------

    def classifier(self) -> Classifier:
        return Classifier(self.wb.settings.team.classification)

    def target(self, spec: str) -> Target:
        """Targets stay open for the process (watch re-scans the same one); `close` releases them."""
        from sevtool.services.targets import open_target

        if spec not in self._targets:
            self._targets[spec] = open_target(spec, self.wb.settings)
        return self._targets[spec]

    def close(self) -> None:
        for target in self._targets.values():
            target.close()
        self._targets.clear()

    @gc_paused()
    def run(self, scope: Scope) -> ScanResult:
        """Scan a stored scope again without recording anything (verification records its own checks).

        The findings stay as the target spooled them: a check reads them once, into the store's comparison, so a
        list of them beside the check would only add to its peak (about 30 MB at 200,000 tables)."""
        return self.target(scope.target).scan(scope, self.classifier())

    # --- scan and record -------------------------------------------------------------------

    @gc_paused()
    def scan(
        self,
        incident_id: int,
        target: str,
        principals: list[str],
        *,
        schemas: list[str] | None = None,
        table_glob: str | None = None,
        min_dss: int | None = None,
    ) -> ScanOutcome:
        self.store.incident(incident_id)  # an unknown incident fails before the target is touched
        names = normalise_principals(principals)
        if not names:
            raise UsageError("a scan needs at least one principal", hint="--principal all_employees (or PUBLIC)")
        opened = self.target(target)
        try:
            scope = Scope(
                target=opened.display,
                principals=names,
                schemas=list(dict.fromkeys(schemas or [])),
                table_glob=table_glob or None,
                min_dss=min_dss,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UsageError(
                f"invalid scope: {'.'.join(map(str, err['loc']))}: {err['msg']}", hint="--min-dss takes 1 to 4"
            ) from None
        result = opened.scan(scope, self.classifier())
        hand_back_freed()  # the target's catalog and read model: the store write and statistics snapshot start lower
        count = ExposureCount()  # counted as they are stored: a large scan's findings are read back once, not twice
        # The counters right after the scan are where evidence's second source starts counting reads from.
        with (
            self.wb.table_stats.snapshot_meanwhile(incident_id, target, list(result.objects), "scan"),
            self.store.write() as tx,
        ):
            tx.incident_row(incident_id)
            version = scans.next_version(tx.session, incident_id)
            scope_id = scans.add_scope(
                tx.session,
                incident_id,
                version,
                scope,
                finding_count=len(result.findings),
                object_count=result.objects_in_scope,
            )
            scans.add_findings(tx.session, scope_id, _counted(result.findings, count))
            summary = count.summary()
            readable = sum(1 for fqn in result.objects if fqn in count.objects)
            del count  # every object's name, twice: gone before the statistics snapshot is recorded on leaving
            hand_back_freed()
            event = tx.append(
                incident_id,
                "scan",
                scan_event_summary(version, scope, result, summary, readable),
                scan_event_data(version, scope, result, summary, readable),
            )
        return ScanOutcome(incident_id, version, scope, result, summary, event.seq, readable)

    # --- read back -------------------------------------------------------------------------

    def latest_scope(self, incident_id: int) -> tuple[int, Scope] | None:
        with self.store.read() as session:
            row = scans.scope_row(session, incident_id)
            return (row.version, scans.scope_from_row(row)) if row else None

    def scope(self, incident_id: int, version: int | None = None) -> Scope:
        with self.store.read() as session:
            return scans.scope_from_row(self._row(session, incident_id, version))

    def findings(self, incident_id: int, version: int | None = None) -> list[Finding]:
        """The findings of one scope version (the latest by default); [] if the incident was never scanned."""
        with self.store.read() as session:
            row = scans.scope_row(session, incident_id, version)
            if row is None:
                if version is not None:
                    self._row(session, incident_id, version)
                return []
            return scans.findings_of(session, row.id)

    @contextmanager
    def finding_stream(self, incident_id: int, version: int) -> Iterator[tuple[int, Iterator[Finding]]]:
        """(how many, the findings as they are read) of one scope version, for work that looks at each once:
        planning from 45,000 findings need not hold them all beside the actions it makes."""
        with self.store.read() as session:
            row = self._row(session, incident_id, version)
            yield row.finding_count, scans.iter_findings(session, row.id)

    def summary(self, incident_id: int, version: int | None = None) -> ExposureSummary | None:
        """Counts by DSS, path and principal for one scope version; None if the incident was never scanned."""
        if version is None and self.latest_scope(incident_id) is None:
            return None
        return ExposureSummary.of(self.findings(incident_id, version))

    def aggregate_summary(self, incident_id: int) -> tuple[ScopeVersion, ExposureSummary] | None:
        """The latest scope version and the same counts as `summary`, counted by the store: milliseconds at
        45,000 findings, where `summary` reads every finding back first. None if the incident was never scanned."""
        with self.store.read() as session:
            row = scans.scope_row(session, incident_id)
            if row is None:
                return None
            version = ScopeVersion(
                row.version, scans.scope_from_row(row), as_utc(row.created_at), row.finding_count, row.object_count
            )
            return version, scans.exposure_summary(session, row.id)

    def versions(self, incident_id: int) -> list[ScopeVersion]:
        with self.store.read() as session:
            return [
                ScopeVersion(r.version, scans.scope_from_row(r), as_utc(r.created_at), r.finding_count, r.object_count)
                for r in scans.scope_rows(session, incident_id)
            ]

    def _row(self, session, incident_id: int, version: int | None):
        row = scans.scope_row(session, incident_id, version)
        if row is None:
            self.store.incident(incident_id)
            what = f"scope version {version}" if version is not None else "scope"
            raise NotFound(
                f"incident {incident_id} has no {what}",
                hint=f"run `sevtool scan {incident_id} --target ... --principal ...` first",
            )
        return row


def _counted(findings: Iterable[Finding], count: ExposureCount) -> Iterator[Finding]:
    for f in findings:
        count.add(f)
        yield f


def scan_event_summary(
    version: int, scope: Scope, result: ScanResult, summary: ExposureSummary, readable: int | None = None
) -> str:
    by_dss = ", ".join(f"{label}: {count}" for label, count in sorted(summary.by_dss.items(), key=_dss_sort))
    who = ", ".join(scope.principals)
    readable = readable_in_scope(result) if readable is None else readable
    text = (
        f"Scan v{version} of {scope.target}: {readable} of {result.objects_in_scope} tables in scope readable by {who}"
    )
    if summary.objects > readable:
        text += f", plus {summary.objects - readable} views or future-table defaults"
    text += f" ({summary.findings} findings"
    return text + (f"; {by_dss})" if by_dss else ")")


def scan_event_data(
    version: int, scope: Scope, result: ScanResult, summary: ExposureSummary, readable: int | None = None
) -> dict:
    return {
        "version": version,
        "scope": scope.model_dump(mode="json"),
        **summary.model_dump(mode="json"),
        "objects_in_scope": result.objects_in_scope,
        "readable_in_scope": readable_in_scope(result) if readable is None else readable,
        "principal_members": result.principal_members,
        "notices": result.notices[:_NOTICES_IN_EVENT],
        "duration_ms": result.duration_ms,
    }


def _dss_sort(item: tuple[str, int]) -> int:
    """Most sensitive first: unrated, DSS 4, ..., DSS 1."""
    label = item[0]
    return -5 if label == dss_label(None) else -int(label.split()[-1])
