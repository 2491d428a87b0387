"""Store queries for just-in-time access exceptions (see core/access_exceptions.py).

An exception is recorded before its grants are made and ended only after they are read back gone, so a process
that dies in between leaves a row that is still open: the next `access expire` revokes it again (revoking twice
is harmless, leaving a grant is not). `finish_end` is a conditional UPDATE: of two expirers, one records the end.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, select

from sevtool.core.access_exceptions import AccessException, Ending, ExceptionGrant
from sevtool.core.exposure import Securable
from sevtool.core.timeparse import as_utc
from sevtool.store.models import AccessExceptionRow
from sevtool.store.repository import Store


def _grant_json(grant: ExceptionGrant) -> dict:
    return {"kind": grant.securable.kind, "name": grant.securable.name, "privilege": grant.privilege}


def _exception(row: AccessExceptionRow) -> AccessException:
    assert row.granted_at is not None and row.until is not None
    return AccessException(
        incident_id=row.incident_id,
        number=row.number,
        target=row.target,
        role=row.role,
        objects=tuple(row.objects),
        why=row.why,
        requested_by=row.requested_by,
        granted_at=as_utc(row.granted_at),
        until=as_utc(row.until),
        approver=row.approver,
        grants=tuple(ExceptionGrant(Securable(g["kind"], g["name"]), g["privilege"]) for g in row.grants),
        held_before={k: tuple(v) for k, v in row.held_before.items()},
        ended_at=as_utc(row.ended_at),
        ending=Ending(row.ending) if row.ending else None,
        ended_by=row.ended_by,
    )


def add(session: Session, exc: AccessException) -> AccessException:
    """Record an exception; its number is the next one of the incident."""
    number = (
        session.exec(
            select(func.max(AccessExceptionRow.number)).where(AccessExceptionRow.incident_id == exc.incident_id)
        ).one()
        or 0
    ) + 1
    row = AccessExceptionRow(
        incident_id=exc.incident_id,
        number=number,
        target=exc.target,
        role=exc.role,
        objects=list(exc.objects),
        why=exc.why,
        approver=exc.approver,
        requested_by=exc.requested_by,
        granted_at=exc.granted_at,
        until=exc.until,
        grants=[_grant_json(g) for g in exc.grants],
        held_before={k: list(v) for k, v in exc.held_before.items()},
    )
    session.add(row)
    session.flush()
    return _exception(row)


def of_incident(store: Store, incident_id: int) -> list[AccessException]:
    with store.read() as session:
        rows = session.exec(
            select(AccessExceptionRow)
            .where(AccessExceptionRow.incident_id == incident_id)
            .order_by(AccessExceptionRow.number)
        ).all()
        return [_exception(r) for r in rows]


def one(store: Store, incident_id: int, number: int) -> AccessException | None:
    with store.read() as session:
        row = session.exec(
            select(AccessExceptionRow).where(
                AccessExceptionRow.incident_id == incident_id, AccessExceptionRow.number == number
            )
        ).first()
        return _exception(row) if row else None


def due(store: Store, now: datetime, incident_id: int | None = None) -> list[AccessException]:
    """Exceptions past their end and not yet revoked, oldest end first."""
    with store.read() as session:
        query = select(AccessExceptionRow).where(
            AccessExceptionRow.ended_at.is_(None),  # type: ignore[union-attr]
            AccessExceptionRow.until <= now,  # type: ignore[operator]
        )
        if incident_id is not None:
            query = query.where(AccessExceptionRow.incident_id == incident_id)
        return [_exception(r) for r in session.exec(query.order_by(AccessExceptionRow.until)).all()]


def next_end(store: Store, incident_id: int) -> datetime | None:
    """When the incident's next open exception ends: a watcher wakes up for it."""
    with store.read() as session:
        value = session.exec(
            select(func.min(AccessExceptionRow.until)).where(
                AccessExceptionRow.incident_id == incident_id,
                AccessExceptionRow.ended_at.is_(None),  # type: ignore[union-attr]
            )
        ).one()
        return as_utc(value)


def finish_end(session: Session, incident_id: int, number: int, at: datetime, ending: Ending, by: str) -> bool:
    """Record how an open exception ended; False when another process recorded it first."""
    result = session.exec(  # type: ignore[call-overload]
        update(AccessExceptionRow)
        .where(
            AccessExceptionRow.incident_id == incident_id,  # type: ignore[arg-type]
            AccessExceptionRow.number == number,  # type: ignore[arg-type]
            AccessExceptionRow.ended_at.is_(None),  # type: ignore[union-attr]
        )
        .values(ended_at=at, ending=ending.value, ended_by=by)
    )
    return bool(result.rowcount)
