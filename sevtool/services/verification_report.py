"""What checks found, as people and tools read it: a check's report, the history of checks, regressions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sevtool.core import checks as core
from sevtool.core.access_exceptions import Authorized
from sevtool.core.exposure import Finding
from sevtool.core.incident import Status
from sevtool.core.timeline import Event
from sevtool.core.timeparse import format_utc
from sevtool.describe import via
from sevtool.store import checks as q

if TYPE_CHECKING:
    from sevtool.services import Workbench
    from sevtool.store.repository import Store


def remains_json(f: Finding) -> dict:
    """One finding still readable at a check, as `--json`'s `remains` and `--jsonl`'s lines show it."""
    return {
        "object": f.object_fqn,
        "principal": f.principal,
        "path": f.path.value,
        "via": via(f),
        "route": list(f.route),
        "grantee": f.grantee,
        "grantor": f.grantor,
        "column": f.column,
        "dss": f.dss,
        "privilege": f.privilege,
    }


def authorized_dict(a: Authorized) -> dict:
    """A read an active exception explains, as the check's event, `--json` and the TUI show it."""
    return {
        "exception": a.exception.number,
        "object": a.object_fqn,
        "role": a.exception.role,
        "until": format_utc(a.exception.until),
        "why": a.exception.why,
        "approver": a.exception.approver,
    }


def _made(items: Iterable[Any], convert: Callable[[Any], Any]) -> list:
    return [convert(item) for item in items]


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
    authorized: list[dict] = field(default_factory=list)  # reads active access exceptions explain

    @property
    def clean(self) -> bool:
        return self.outcome.clean

    def as_dict(self, *, rows: Callable[[Iterable[Any], Callable[[Any], Any]], Any] = _made) -> dict:
        """`rows(items, convert)` makes each long list: a list by default; the CLI's `--json` passes one that converts
        each item as it is written (`cli.output.streamed`), so 45,000 remaining findings are never all dicts at once."""
        out = self.outcome
        return {
            "incident_id": self.incident_id,
            "check": self.number,
            "check_id": self.check_id,
            "ran_at": format_utc(self.ran_at),
            "duration_ms": self.duration_ms,
            "clean": out.clean,
            "baseline": self.baseline,
            "objects_in_scope": self.objects_in_scope,
            "exposed_objects": out.exposed_objects,
            "findings": len(out.findings),
            "remaining_pairs": out.remaining,
            "closed_since_baseline": out.closed_since,
            "new_objects": rows(out.new_objects, str),
            "regressions": rows(out.regressions, core.Regression.as_dict),
            "remains": rows(out.findings, remains_json),
            "probe": self.probe,
            "slot": self.slot,
            "status": self.status.value,
            "authorized_by_exception": self.authorized,
            "exception_breaches": [r.as_dict() for r in out.exception_breaches],
        }


class CheckHistory:
    """The read side of VerificationService (which provides `store` and `wb`): TUI, postmortem, countdown."""

    store: Store
    wb: Workbench

    def history(self, incident_id: int) -> list[dict]:
        self.store.incident(incident_id)
        return [
            {
                "check": c.number,
                "id": c.id,
                "scheduled_at": format_utc(c.scheduled_at) if c.scheduled_at else None,
                "ran_at": format_utc(c.ran_at),
                "duration_ms": c.duration_ms,
                "clean": c.clean,
                "exposed_objects": c.exposed_objects,
                "findings": c.findings,
                "regressions": c.regressions,
                "objects_in_scope": c.summary.get("objects_in_scope"),
                "baseline": c.summary.get("baseline"),
                "probe": c.probe,
            }
            for c in q.checks(self.store, incident_id)
        ]

    def regressions(self, incident_id: int) -> list[dict]:
        self.store.incident(incident_id)
        return [
            {
                "object": r.object_fqn,
                "principal": r.principal,
                "path": r.path,
                "cause": r.cause,
                "check_id": r.check_id,
                "first_seen_at": format_utc(r.first_seen_at),
                "closed_at": format_utc(r.closed_at) if r.closed_at else None,
                "closed_by": r.closed_by,
            }
            for r in q.regressions(self.store, incident_id)
        ]

    def open_regressions(self, incident_id: int) -> list[Event]:
        """Regression events not yet answered by a clean check: the fix did not stick and nobody has re-closed it
        (the TUI's loudest marker). Each event names one cause and counts its objects."""
        events = self.wb.incidents.timeline(incident_id)
        last_clean = max((e.seq for e in events if e.kind == "check" and e.data.get("clean")), default=0)
        return [e for e in events if e.kind == "regression" and e.seq > last_clean]
