"""Evidence use case: who read the in-scope objects during their exposure windows, from pgaudit server logs.

The incident gives the exposure start, the ledger when each object was closed or reopened, verification its
regressions and clean checks; the target who the principal's members are and which database is the one
exposed; the logs the reads and the time they cover. The answer is recorded on the timeline as counts only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sevtool.core.evidence import (
    ObjectEvidence,
    ObjectFacts,
    ReadTally,
    answers_by_dss,
    coverage,
    exposure_start,
    judge,
    most_read,
    source_pieces,
    windows_for,
)
from sevtool.core.exposure import Scope
from sevtool.core.timeparse import as_utc, format_utc, utcnow
from sevtool.errors import NotFound, UsageError
from sevtool.targets.plugin import AuditFacts, plugin

if TYPE_CHECKING:
    from sevtool.services import Workbench


@dataclass
class EvidenceReport:
    incident_id: int
    database: str
    principals: list[str]
    members: int
    max_gap_seconds: int
    logs: dict
    coverage: list[tuple[datetime, datetime]]
    objects: list[ObjectEvidence]
    notes: list[str] = field(default_factory=list)
    event_seq: int | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {"reads": 0, "no_reads": 0, "unknown": 0}
        for o in self.objects:
            out[o.answer] += 1
        return out

    def readers(self, member: bool) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.objects:
            for r in o.readers:
                if r.member == member:
                    out[r.role] = out.get(r.role, 0) + r.reads
        return dict(sorted(out.items()))

    def as_dict(self) -> dict:
        return {
            "incident_id": self.incident_id,
            "database": self.database,
            "principals": self.principals,
            "principal_members": self.members,
            "max_gap_seconds": self.max_gap_seconds,
            "summary": self.counts,
            "member_readers": self.readers(True),
            "non_member_readers": self.readers(False),
            "coverage": [[a.isoformat(), b.isoformat()] for a, b in self.coverage],
            "logs": self.logs,
            "notes": self.notes,
            "objects": [o.as_dict() for o in self.objects],
            "event_seq": self.event_seq,
        }


class EvidenceService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    def evidence(
        self,
        incident_id: int,
        logs: list[str] | None = None,
        *,
        uc_audit: list[str] | None = None,
        sources: list[str] | None = None,
        line_prefix: str | None = None,
        max_gap: timedelta = timedelta(hours=1),
        now: datetime | None = None,
    ) -> EvidenceReport:
        from sevtool.store import checks
        from sevtool.store.evidence import object_ledger_times

        incident = self.store.incident(incident_id)
        logs, uc_audit = list(logs or []), list(uc_audit or [])
        if not logs and not uc_audit and not sources:
            logs = self.configured_logs()
        if not logs and not uc_audit and not sources:
            raise UsageError(
                "evidence needs the server logs or the catalog's audit export",
                hint="--log PATH (PostgreSQL: a file, a .gz or a log directory) or --uc-audit FILE "
                "(Unity Catalog: system.access.audit as JSON Lines), repeatable",
            )
        versions = self.wb.scanning.versions(incident_id)
        if not versions:
            raise NotFound(
                f"incident {incident_id} has no scope",
                hint=f"run `sevtool scan {incident_id} --target ... --principal ...` first",
            )
        scope = versions[-1].scope
        dss: dict[str, int | None] = {}
        for v in versions:
            for f in self.wb.scanning.findings(incident_id, v.version):
                if not f.future_tables:
                    dss.setdefault(f.object_fqn, f.dss)
        objects = sorted(dss)
        principals = list(scope.principals)
        opened = self._target_facts(scope, objects, logs, uc_audit, list(sources or []))
        facts = opened.target
        members = facts.members | set(principals)

        reader = opened.reader(max_gap, line_prefix)
        tally = ReadTally(objects=set(objects), principals=set(principals), source=facts.source)
        for record in reader.records():
            tally.add(record)
        if not reader.sources:
            raise UsageError(
                "no log file could be read: " + "; ".join(reader.unreadable or logs or uc_audit),
                hint="pass csvlog (.csv) or jsonlog (.json) files or their directory (stderr logs need --line-prefix), "
                "or a JSON Lines export of system.access.audit",
            )

        pieces = []
        for s in reader.sources:
            if s.first is None:
                continue
            pieces += source_pieces(
                _dt(s.first),
                _dt(s.last),
                [(_dt(a), _dt(b)) for a, b in s.gaps],
                [(_dt(a), _dt(b)) for a, b in s.holes],
                broken_at_start=s.broken_at_start,
                broken_at_end=s.broken_at_end,
            )
        covered = coverage(pieces, max_gap)

        now = now or utcnow()
        applied, undone, object_less = object_ledger_times(self.store, incident_id)
        regressions: dict[str, list] = {}
        for row in checks.regressions(self.store, incident_id):
            regressions.setdefault(row.object_fqn, []).append((as_utc(row.first_seen_at), as_utc(row.closed_at)))
        clean_checks = sorted(c.ran_at for c in checks.check_states(self.store, incident_id) if c.clean and c.ran_at)

        results = []
        for obj in objects:
            start, source = exposure_start(incident.exposure_started_at, tally.grants.get(obj, []))
            ledger = ObjectFacts(
                tuple(applied.get(obj, ())), tuple(undone.get(obj, ())), tuple(regressions.get(obj, ()))
            )
            results.append(
                judge(
                    obj,
                    tally,
                    windows_for(start, ledger, clean_checks, now),
                    source,
                    covered,
                    members,
                    everyone=facts.everyone,
                )
            )

        # The second source: read counters snapshotted after scans, applies and checks, up to each containment.
        counted = self.wb.table_stats.reads(
            incident_id, {obj: max(applied[obj]) if applied.get(obj) else None for obj in objects}
        )
        results = [replace(r, stats=counted.get(r.object_fqn)) for r in results]

        notes = list(facts.notes)
        if object_less:
            notes.append(
                f"{object_less} applied action(s) name no object (role memberships, default privileges): "
                "they do not close a window here, so those windows run to the last table-level apply or now"
            )
        if "PUBLIC" in principals:
            notes.append("the principal is PUBLIC: every reader is a member")
        notes.append("membership is as of now: a role that left the principal since reads as a non-member")
        unordered = [s.path for s in reader.sources if getattr(s, "unordered", False) and s.corrupt]
        if unordered:
            notes.append(
                f"{len(unordered)} export(s) are not in event_time order and hold malformed rows, which could be from "
                "any time: coverage is cut around them in file order only; export ORDER BY event_time"
            )
        log_info = {
            **reader.totals(),
            "sources": [s.as_dict() for s in reader.sources],
            "skipped": reader.skipped,
            "unreadable": reader.unreadable,
        }
        report = EvidenceReport(
            incident_id,
            facts.source_id,
            principals,
            len(members - set(principals)),
            int(max_gap.total_seconds()),
            log_info,
            covered,
            results,
            notes,
        )
        report.event_seq = self._record(report, dss).seq
        return report

    def configured_logs(self) -> list[str]:
        """The team config's `[evidence] logs = [...]`: where this team's server logs are (the demo writes its own)."""
        import tomllib

        path = Path(self.wb.settings.config)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, tomllib.TOMLDecodeError):
            return []  # loading the team config proper reports a broken file
        logs = (raw.get("evidence") or {}).get("logs") or []
        return [str(p) for p in logs if isinstance(p, str)] if isinstance(logs, list) else []

    def _target_facts(
        self, scope: Scope, objects: list[str], logs: list[str], uc_audit: list[str], sources: list[str]
    ) -> _Facts:
        """`sources`: paths of whatever audit trail the target's kind has (the TUI asks for "the audit logs")."""
        try:
            target = self.wb.scanning.target(scope.target)
            trail = plugin(target.kind).audit
            given = {"--log": logs, "--uc-audit": uc_audit}
            if trail is None:
                raise UsageError(
                    f"the scope's target {scope.target} ({target.kind}) has no audit trail sevtool can read",
                    hint="evidence reads pgaudit logs (PostgreSQL) and system.access.audit exports (Unity Catalog)",
                )
            files = [*given.get(trail.option, []), *sources]
            if not files or any(paths for option, paths in given.items() if option != trail.option):
                raise UsageError(
                    f"the scope's target {scope.target} is {target.kind}: its evidence comes from "
                    f"{trail.option} ({trail.described})",
                    hint="--log is for pgaudit server logs, --uc-audit for Unity Catalog's system.access.audit export",
                )
            facts = trail.facts(target, list(scope.principals), objects)
            read = _READERS[trail.format]
            return _Facts(facts, lambda gap, prefix: read(files, facts, prefix, gap))
        finally:
            self.wb.scanning.close()

    def _record(self, report: EvidenceReport, dss: dict[str, int | None]) -> Any:
        counts = report.counts
        members, others = report.readers(True), report.readers(False)
        totals = report.logs
        summary = (
            f"Evidence from {totals['files']} log file(s): {counts['reads']} of {len(report.objects)} object(s) read during "
            f"the exposure window ({len(members)} member role(s), {len(others)} non-member role(s)); "
            f"{counts['no_reads']} no reads; {counts['unknown']} unknown"
        )
        data = {
            "summary": counts,
            "member_readers": members,
            "non_member_readers": others,
            "coverage": [[format_utc(a), format_utc(b)] for a, b in report.coverage],
            "logs": {
                k: totals[k]
                for k in (
                    "files",
                    "entries",
                    "audit",
                    "other_database",
                    "corrupt",
                    "other_format",
                    "skipped_duplicate_format",
                    "unreadable",
                    "denied",
                    "duplicates",
                )
                if k in totals
            },
            "read": {o.object_fqn: {r.role: r.reads for r in o.readers} for o in report.objects if o.readers},
            # What the postmortem's "Access during exposure" shows: answers by sensitivity, the most-read objects.
            "by_dss": answers_by_dss(report.objects, dss),
            "most_read": most_read(report.objects),
            "reads": sum(r.reads for o in report.objects for r in o.readers),
            # Table statistics (no reader identity): objects counted, reset between snapshots, and those read.
            "stats": {
                "counted": sum(1 for o in report.objects if o.stats and o.stats.reads is not None),
                "reset": sum(1 for o in report.objects if o.stats and o.stats.reset),
                "read": {o.object_fqn: o.stats.reads for o in report.objects if o.stats and o.stats.reads},
            },
        }
        with self.store.write() as tx:
            tx.incident_row(report.incident_id)
            return tx.append(report.incident_id, "evidence", summary, data)


@dataclass
class _Facts:
    """What the target says for evidence, and how to read its kind of audit trail."""

    target: AuditFacts
    reader: Callable[[timedelta, str | None], Any]


def _log_reader(logs: list[str], facts: AuditFacts, line_prefix: str | None, max_gap: timedelta) -> Any:
    from sevtool.evidence.logs import LogReader

    return LogReader([Path(p) for p in logs], database=facts.source_id, line_prefix=line_prefix, max_gap=max_gap)


def _uc_reader(exports: list[str], facts: AuditFacts, line_prefix: str | None, max_gap: timedelta) -> Any:
    from sevtool.evidence.uc_audit import UcAuditReader

    return UcAuditReader(
        [Path(p) for p in exports], metastore_id=facts.source_id or None, table_ids=facts.table_ids, max_gap=max_gap
    )


# The audit-trail formats sevtool.evidence reads, as target plug-ins name them.
_READERS: dict[str, Callable[[list[str], AuditFacts, str | None, timedelta], Any]] = {
    "pgaudit-log": _log_reader,
    "databricks-audit-table": _uc_reader,
}


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
