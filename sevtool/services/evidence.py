"""Evidence use case: who read the in-scope objects during their exposure windows, from pgaudit server logs.

The incident gives the exposure start, the ledger when each object was closed or reopened, verification its
regressions and clean checks; the target who the principal's members are and which database is the one
exposed; the logs the reads and the time they cover. The answer is recorded on the timeline as counts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sevtool.core.evidence import (
    ObjectEvidence,
    ObjectFacts,
    ReadTally,
    coverage,
    exposure_start,
    judge,
    source_pieces,
    windows_for,
)
from sevtool.core.timeparse import as_utc, format_utc, utcnow
from sevtool.errors import NotFound, UsageError

if TYPE_CHECKING:
    from sevtool.services import Workbench

FUTURE_TABLES = "(future tables)"


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
        return {"incident_id": self.incident_id, "database": self.database, "principals": self.principals,
                "principal_members": self.members, "max_gap_seconds": self.max_gap_seconds, "summary": self.counts,
                "member_readers": self.readers(True), "non_member_readers": self.readers(False),
                "coverage": [[a.isoformat(), b.isoformat()] for a, b in self.coverage],
                "logs": self.logs, "notes": self.notes, "objects": [o.as_dict() for o in self.objects], "event_seq": self.event_seq}


class EvidenceService:
    def __init__(self, wb: "Workbench"):
        self.wb = wb
        self.store = wb.store

    def evidence(self, incident_id: int, logs: list[str], *, line_prefix: str | None = None,
                 max_gap: timedelta = timedelta(hours=1), now: datetime | None = None) -> EvidenceReport:
        from sevtool.evidence.logs import LogReader
        from sevtool.store import checks
        from sevtool.store.evidence import object_ledger_times

        incident = self.store.incident(incident_id)
        if not logs:
            raise UsageError("evidence needs the server logs", hint="--log PATH (a file, a .gz or a log directory), repeatable")
        versions = self.wb.scanning.versions(incident_id)
        if not versions:
            raise NotFound(f"incident {incident_id} has no scope", hint=f"run `sevtool scan {incident_id} --target ... --principal ...` first")
        scope = versions[-1].scope
        objects = sorted({f.object_fqn for v in versions for f in self.wb.scanning.findings(incident_id, v.version)
                          if f.object_name != FUTURE_TABLES})
        database, members = self._target_facts(scope)
        principals = list(scope.principals)
        members |= set(principals)

        reader = LogReader([Path(p) for p in logs], database=database, line_prefix=line_prefix, max_gap=max_gap)
        tally = ReadTally(objects=set(objects), principals=set(principals))
        for record in reader.records():
            tally.add(record)
        if not reader.sources:
            raise UsageError("no log file could be read: " + "; ".join(reader.unreadable or logs),
                             hint="pass csvlog (.csv) or jsonlog (.json) files or their directory; stderr logs need --line-prefix")

        pieces = []
        for s in reader.sources:
            if s.first is None:
                continue
            pieces += source_pieces(_dt(s.first), _dt(s.last), [(_dt(a), _dt(b)) for a, b in s.gaps],
                                    [(_dt(a), _dt(b)) for a, b in s.holes], broken_at_start=s.broken_at_start,
                                    broken_at_end=s.broken_at_end)
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
            facts = ObjectFacts(tuple(applied.get(obj, ())), tuple(undone.get(obj, ())), tuple(regressions.get(obj, ())))
            results.append(judge(obj, tally, windows_for(start, facts, clean_checks, now), source, covered, members))

        notes = []
        if object_less:
            notes.append(f"{object_less} applied action(s) name no object (role memberships, default privileges): "
                         "they do not close a window here, so those windows run to the last table-level apply or now")
        if "PUBLIC" in principals:
            notes.append("the principal is PUBLIC: every reader is a member")
        notes.append("membership is as of now: a role that left the principal since reads as a non-member")
        log_info = {**reader.totals(), "sources": [s.as_dict() for s in reader.sources], "skipped": reader.skipped,
                    "unreadable": reader.unreadable}
        report = EvidenceReport(incident_id, database, principals, len(members - set(principals)), int(max_gap.total_seconds()),
                                log_info, covered, results, notes)
        report.event_seq = self._record(report).seq
        return report

    def _target_facts(self, scope) -> tuple[str, set[str]]:
        from sevtool.targets.postgres.members import database_name, principal_members

        try:
            target = self.wb.scanning.target(scope.target)
            if getattr(target, "kind", "") != "postgresql":
                raise UsageError(f"evidence reads PostgreSQL server logs; the scope's target {scope.target} is {getattr(target, 'kind', '?')}")
            return database_name(target), principal_members(target, list(scope.principals))
        finally:
            self.wb.scanning.close()

    def _record(self, report: EvidenceReport):
        counts = report.counts
        members, others = report.readers(True), report.readers(False)
        totals = report.logs
        summary = (f"Evidence from {totals['files']} log file(s): {counts['reads']} of {len(report.objects)} object(s) read during "
                   f"the exposure window ({len(members)} member role(s), {len(others)} non-member role(s)); "
                   f"{counts['no_reads']} no reads; {counts['unknown']} unknown")
        data = {"summary": counts, "member_readers": members, "non_member_readers": others,
                "coverage": [[format_utc(a), format_utc(b)] for a, b in report.coverage],
                "logs": {k: totals[k] for k in ("files", "entries", "audit", "other_database", "corrupt", "other_format",
                                                "skipped_duplicate_format", "unreadable")},
                "read": {o.object_fqn: {r.role: r.reads for r in o.readers} for o in report.objects if o.readers}}
        with self.store.write() as tx:
            tx.incident_row(report.incident_id)
            return tx.append(report.incident_id, "evidence", summary, data)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
