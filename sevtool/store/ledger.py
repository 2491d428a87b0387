"""The revocation ledger's queries: plans written as `planned` rows, statuses updated batch by batch.

An ActionRow's `detail` holds the whole Action (SQL, prior state, review flag); `status` and `message`
are the authoritative outcome, kept in columns so a batch is recorded with a few set-based UPDATEs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, select

from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.core.timeparse import utcnow
from sevtool.store.models import ActionRow
from sevtool.store.repository import Store

_DETAIL_EXCLUDE = {"status", "message"}
_TABLE = ActionRow.__table__   # Core statements: the ORM's per-row bookkeeping costs seconds at 45,000 rows
_INSERT_COLUMNS = ("incident_id", "plan_version", "scope_version", "seq", "kind", "target", "object_fqn", "status", "message",
                   "detail", "updated_at")
_CHUNK = 900   # SQLite allows 999 bound parameters per statement


def next_plan_version(session: Session, incident_id: int) -> int:
    current = session.exec(select(func.max(ActionRow.plan_version)).where(ActionRow.incident_id == incident_id)).one()
    return (current or 0) + 1


def insert_plan(session: Session, incident_id: int, plan_version: int, scope_version: int, target: str, actions: list[Action]) -> None:
    """Journal first: every action lands as `planned`, with its prior state, before anything runs.

    Through the driver (COPY on PostgreSQL, one executemany on SQLite), as scans store findings: SQLAlchemy's
    per-row parameter and JSON processing took seconds at 45,000 rows. Values are what the column types
    would bind: the detail as JSON text, the time as the dialect stores it.
    """
    if not actions:
        return
    bind = session.get_bind()
    stamp = _TABLE.c.updated_at.type.bind_processor(bind.dialect)
    now = stamp(utcnow()) if stamp else utcnow()
    planned = ActionStatus.PLANNED.value
    rows = [(incident_id, plan_version, scope_version, a.seq, a.kind.value, target,
             a.object_fqn if a.column is None else f"{a.object_fqn}.{a.column}", planned, "", json.dumps(_detail(a)), now)
            for a in actions]
    driver = session.connection().connection.driver_connection
    if bind.dialect.name == "postgresql":
        with driver.cursor() as cur, cur.copy(f"COPY action ({', '.join(_INSERT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        driver.executemany(f"INSERT INTO action ({', '.join(_INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})", rows)


def _detail(action: Action) -> dict:
    """The Action as JSON-ready data; every field is a str, bool, int, list or dict (kind is a StrEnum)."""
    detail = dict(action.__dict__)
    for name in _DETAIL_EXCLUDE:
        del detail[name]
    return detail


def latest_plan(store: Store, incident_id: int) -> tuple[int, int, str] | None:
    """(plan_version, scope_version, target) of the newest plan, or None."""
    with store.read() as s:
        row = s.exec(select(ActionRow.plan_version, ActionRow.scope_version, ActionRow.target)
                     .where(ActionRow.incident_id == incident_id).order_by(ActionRow.plan_version.desc()).limit(1)).first()
    return tuple(row) if row else None


def actions(store: Store, incident_id: int, plan_version: int | None = None,
            statuses: Iterable[ActionStatus] | None = None) -> list[tuple[int, str, Action]]:
    """(plan_version, target, action) in plan order; all plan versions when none is given."""
    query = select(ActionRow.plan_version, ActionRow.target, ActionRow.status, ActionRow.message, ActionRow.detail) \
        .where(ActionRow.incident_id == incident_id)
    if plan_version is not None:
        query = query.where(ActionRow.plan_version == plan_version)
    if statuses is not None:
        query = query.where(ActionRow.status.in_([s.value for s in statuses]))
    with store.read() as s:
        rows = s.exec(query.order_by(ActionRow.plan_version, ActionRow.seq)).all()
    return [(version, target, Action.model_validate({**detail, "status": status, "message": message}))
            for version, target, status, message, detail in rows]


def mark(session: Session, incident_id: int, plan_version: int, seqs: list[int], status: ActionStatus) -> None:
    """Set one status on many actions (e.g. `applying` for a batch about to be sent)."""
    now = utcnow()
    for start in range(0, len(seqs), _CHUNK):
        session.execute(_TABLE.update()
                        .where(_TABLE.c.incident_id == incident_id, _TABLE.c.plan_version == plan_version,
                               _TABLE.c.seq.in_(seqs[start:start + _CHUNK]))
                        .values(status=status.value, message="", updated_at=now))


def statuses(store: Store, incident_id: int, plan_version: int) -> dict[int, ActionStatus]:
    with store.read() as s:
        rows = s.exec(select(ActionRow.seq, ActionRow.status)
                      .where(ActionRow.incident_id == incident_id, ActionRow.plan_version == plan_version)).all()
    return {seq: ActionStatus(status) for seq, status in rows}


def status_counts(store: Store, incident_id: int, plan_version: int | None = None) -> dict[str, int]:
    query = select(ActionRow.status, func.count()).where(ActionRow.incident_id == incident_id).group_by(ActionRow.status)
    if plan_version is not None:
        query = query.where(ActionRow.plan_version == plan_version)
    counts = {s.value: 0 for s in ActionStatus}
    with store.read() as s:
        for status, n in s.exec(query).all():
            counts[status] = n
    return counts


def record(session: Session, incident_id: int, plan_version: int, results: list[ActionResult]) -> None:
    """Write one batch's outcomes: one UPDATE per distinct (status, message)."""
    by_outcome: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in results:
        by_outcome[(ActionStatus(r.status).value, r.message)].append(r.seq)
    now = utcnow()
    for (status, message), seqs in by_outcome.items():
        for start in range(0, len(seqs), _CHUNK):
            session.execute(_TABLE.update()
                            .where(_TABLE.c.incident_id == incident_id, _TABLE.c.plan_version == plan_version,
                                   _TABLE.c.seq.in_(seqs[start:start + _CHUNK]))
                            .values(status=status, message=message, updated_at=now))
