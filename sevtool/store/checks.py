"""Store queries for verification: checks and what each found, regressions, the re-check schedule.

Writes take the `Tx` of a `Store.write()`, so a check, its regressions, the timeline events and the
status change commit together. Findings are bulk-inserted: a check over 45,000 exposed tables must not
pay for one ORM object per row.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter
from sqlalchemy import Text, cast, func, update
from sqlmodel import Session, select

from sevtool.core.checks import CheckState, LedgerChange, PlannedSlot, SlotState
from sevtool.core.exposure import Finding
from sevtool.core.timeparse import as_utc
from sevtool.store.models import ActionRow, CheckFindingRow, CheckRow, FindingRow, RegressionRow, ScheduleSlotRow, ScopeRow
from sevtool.store.repository import Store

FINDINGS_OF = "findings_of_check"   # summary key: findings unchanged since that check, stored there

_CHUNK = 900   # ids per IN (...): SQLite's default limit is 999 bound parameters

# Ledger action kinds that remove a role membership: they close every object reached through that role.
MEMBERSHIP_KINDS = ("revoke_membership",)


# --- checks -----------------------------------------------------------------------------------


def next_check_number(session: Session, incident_id: int) -> int:
    current = session.exec(select(func.max(CheckRow.number)).where(CheckRow.incident_id == incident_id)).one()
    return (current or 0) + 1


def add_check(session: Session, row: CheckRow, findings: list[Finding], *, same_as: int | None = None) -> CheckRow:
    """Store a check and what remained. `same_as`: an earlier check whose stored findings are exactly these,
    so a watch over an incident still exposed on 45,000 tables does not write them again at every check."""
    if same_as is not None:
        row.summary = {**row.summary, FINDINGS_OF: same_as}
    session.add(row)
    session.flush()
    if findings and same_as is None:
        # Core insert of each finding's own field dict (the path enum is a str): the ORM bulk path and model_dump
        # cost seconds at 45,000 rows.
        session.connection().execute(CheckFindingRow.__table__.insert(), [{"check_id": row.id, "detail": f.__dict__} for f in findings])
    return row


def latest_check(store: Store, incident_id: int) -> CheckRow | None:
    with store.read() as s:
        return s.exec(select(CheckRow).where(CheckRow.incident_id == incident_id).order_by(CheckRow.number.desc()).limit(1)).first()


def checks(store: Store, incident_id: int) -> list[CheckRow]:
    with store.read() as s:
        return list(s.exec(select(CheckRow).where(CheckRow.incident_id == incident_id).order_by(CheckRow.number)).all())


def check_states(store: Store, incident_id: int) -> list[CheckState]:
    with store.read() as s:
        rows = s.exec(select(CheckRow.id, CheckRow.number, CheckRow.ran_at, CheckRow.clean, CheckRow.regressions)
                      .where(CheckRow.incident_id == incident_id).order_by(CheckRow.number)).all()
    return [CheckState(id=r[0], number=r[1], ran_at=as_utc(r[2]), clean=r[3], regressions=r[4]) for r in rows]


_FINDINGS = TypeAdapter(list[Finding])


def findings_check_id(row: CheckRow) -> int:
    """The check whose rows hold this check's findings (itself, unless they were unchanged)."""
    return row.summary.get(FINDINGS_OF, row.id)


def check_findings(store: Store, check_id: int) -> list[Finding]:
    """What remained at a check (pass `findings_check_id`). The JSON texts are parsed and validated in one
    pass: decoding row by row took seconds at 45,000."""
    with store.read() as s:
        texts = s.exec(select(cast(CheckFindingRow.detail, Text)).where(CheckFindingRow.check_id == check_id).order_by(CheckFindingRow.id)).all()
    return _FINDINGS.validate_json("[" + ",".join(texts) + "]")


# --- regressions ------------------------------------------------------------------------------


def close_regressions(session: Session, incident_id: int, readable: set[tuple[str, str]], at: datetime, closed_by: str) -> int:
    """Open regressions whose object x principal is no longer readable are closed by this check."""
    open_rows = session.exec(select(RegressionRow.id, RegressionRow.object_fqn, RegressionRow.principal)
                             .where(RegressionRow.incident_id == incident_id, RegressionRow.closed_at.is_(None))).all()
    closing = [row_id for row_id, obj, principal in open_rows if (obj, principal) not in readable]
    for start in range(0, len(closing), _CHUNK):
        session.execute(update(RegressionRow).where(RegressionRow.id.in_(closing[start:start + _CHUNK]))
                        .values(closed_at=at, closed_by=closed_by))
    return len(closing)


def regressions(store: Store, incident_id: int) -> list[RegressionRow]:
    with store.read() as s:
        return list(s.exec(select(RegressionRow).where(RegressionRow.incident_id == incident_id).order_by(RegressionRow.id)).all())


def open_regression_count(store: Store, incident_id: int) -> int:
    with store.read() as s:
        return s.exec(select(func.count()).select_from(RegressionRow)
                      .where(RegressionRow.incident_id == incident_id, RegressionRow.closed_at.is_(None))).one()


def add_regressions(session: Session, rows: list[dict]) -> None:
    if rows:
        session.connection().execute(RegressionRow.__table__.insert(), rows)


# --- the ledger, as verification needs it ----------------------------------------------------------


def ledger_changes_since(store: Store, incident_id: int, since: datetime | None) -> list[LedgerChange]:
    """Grants the ledger closed (applied) or restored (undone) after `since`."""
    query = select(ActionRow.kind, ActionRow.status, ActionRow.detail).where(
        ActionRow.incident_id == incident_id, ActionRow.status.in_(("applied", "undone")))
    if since is not None:
        query = query.where(ActionRow.updated_at > since)
    with store.read() as s:
        rows = s.exec(query).all()
    changes = []
    for kind, status, detail in rows:
        undone = status == "undone"
        if kind in MEMBERSHIP_KINDS:
            # REVOKE role FROM member: the role (the finding's grantee) no longer reaches anything through that member.
            changes.append(LedgerChange(grantee=detail.get("object_name", ""), object_fqn=None, undone=undone))
        else:
            # Named as findings name objects: the ledger's object_fqn also carries the column, and drops an empty schema.
            fqn = f"{detail.get('schema_name') or ''}.{detail.get('object_name') or ''}"
            changes.append(LedgerChange(grantee=detail.get("grantee", ""), object_fqn=fqn, undone=undone))
    return changes


def role_reach(store: Store, incident_id: int, version: int) -> set[tuple[str, str]]:
    """(principal, role) pairs the scan of this scope version saw ROLE findings through."""
    with store.read() as s:
        rows = s.exec(select(FindingRow.principal, FindingRow.grantee).distinct()
                      .join(ScopeRow, ScopeRow.id == FindingRow.scope_id)
                      .where(ScopeRow.incident_id == incident_id, ScopeRow.version == version, FindingRow.path == "role")).all()
    return {(principal, grantee) for principal, grantee in rows}


def first_applied_at(store: Store, incident_id: int) -> datetime | None:
    with store.read() as s:
        value = s.exec(select(func.min(ActionRow.updated_at)).where(ActionRow.incident_id == incident_id, ActionRow.status == "applied")).one()
    return as_utc(value)


# --- the re-check schedule --------------------------------------------------------------------


def slot_state(row: ScheduleSlotRow) -> SlotState:
    return SlotState(id=row.id, round=row.round, idx=row.idx, due_at=as_utc(row.due_at), status=row.status, check_id=row.check_id)


def slots(store: Store, incident_id: int) -> list[ScheduleSlotRow]:
    with store.read() as s:
        return list(s.exec(select(ScheduleSlotRow).where(ScheduleSlotRow.incident_id == incident_id)
                           .order_by(ScheduleSlotRow.round, ScheduleSlotRow.idx)).all())


def current_round(session: Session, incident_id: int) -> int:
    return session.exec(select(func.max(ScheduleSlotRow.round)).where(ScheduleSlotRow.incident_id == incident_id)).one() or 0


def add_round(session: Session, incident_id: int, round_number: int, planned: list[PlannedSlot]) -> None:
    session.connection().execute(ScheduleSlotRow.__table__.insert(), [{"incident_id": incident_id, "round": round_number, "idx": p.idx, "offset": p.offset,
                                               "due_at": p.due_at, "status": "pending"} for p in planned])


def supersede_pending(session: Session, incident_id: int, before_round: int) -> int:
    """A regression starts a new round; the old round's pending slots will never run, and say so."""
    result = session.execute(update(ScheduleSlotRow)
                             .where(ScheduleSlotRow.incident_id == incident_id, ScheduleSlotRow.round < before_round,
                                    ScheduleSlotRow.status == "pending")
                             .values(status="superseded"))
    return result.rowcount


def claim(session: Session, slot_ids: list[int], holder: str, at: datetime) -> list[int]:
    """pending -> running, one conditional UPDATE per slot: a slot another watcher claimed first is not ours."""
    claimed = []
    for slot_id in slot_ids:
        result = session.execute(update(ScheduleSlotRow)
                                 .where(ScheduleSlotRow.id == slot_id, ScheduleSlotRow.status == "pending")
                                 .values(status="running", claimed_by=holder, claimed_at=at))
        if result.rowcount == 1:
            claimed.append(slot_id)
    return claimed


def release_running(session: Session, incident_id: int, holder: str | None = None) -> int:
    """Give back slots left `running`: by a watcher that died (holder None: any) or by our own failed check."""
    query = update(ScheduleSlotRow).where(ScheduleSlotRow.incident_id == incident_id, ScheduleSlotRow.status == "running")
    if holder is not None:
        query = query.where(ScheduleSlotRow.claimed_by == holder)
    return session.execute(query.values(status="pending", claimed_by=None, claimed_at=None)).rowcount


def slot_id(session: Session, incident_id: int, round_number: int, idx: int) -> int:
    return session.exec(select(ScheduleSlotRow.id).where(ScheduleSlotRow.incident_id == incident_id, ScheduleSlotRow.round == round_number,
                                                         ScheduleSlotRow.idx == idx)).one()


def finish(session: Session, slot_id: int, status: str, check_id: int, ran_at: datetime, delay_seconds: int) -> None:
    session.execute(update(ScheduleSlotRow).where(ScheduleSlotRow.id == slot_id)
                    .values(status=status, check_id=check_id, ran_at=ran_at, delay_seconds=delay_seconds))
