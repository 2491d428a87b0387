"""Store queries for the re-check schedule: rounds of slots, claimed by one watcher at a time.

Writes take the session of a `Store.write()`; a slot is claimed with a conditional UPDATE, so it never runs twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, select

from sevtool.core.checks import PlannedSlot, SlotState
from sevtool.core.timeparse import as_utc
from sevtool.errors import LockHeld
from sevtool.store import locks
from sevtool.store.models import ScheduleSlotRow
from sevtool.store.repository import Store


def slot_state(row: ScheduleSlotRow) -> SlotState:
    return SlotState(
        id=row.id, round=row.round, idx=row.idx, due_at=as_utc(row.due_at), status=row.status, check_id=row.check_id
    )


def slots(store: Store, incident_id: int) -> list[ScheduleSlotRow]:
    with store.read() as s:
        return list(
            s.exec(
                select(ScheduleSlotRow)
                .where(ScheduleSlotRow.incident_id == incident_id)
                .order_by(ScheduleSlotRow.round, ScheduleSlotRow.idx)
            ).all()
        )


def current_round(session: Session, incident_id: int) -> int:
    return (
        session.exec(select(func.max(ScheduleSlotRow.round)).where(ScheduleSlotRow.incident_id == incident_id)).one()
        or 0
    )


def round_open(session: Session, incident_id: int, round_number: int) -> bool:
    """Whether a slot of this round is still to run (pending or running)."""
    return (
        session.exec(
            select(func.count())
            .select_from(ScheduleSlotRow)
            .where(
                ScheduleSlotRow.incident_id == incident_id,
                ScheduleSlotRow.round == round_number,
                ScheduleSlotRow.status.in_(("pending", "running")),
            )
        ).one()
        > 0
    )


def add_round(session: Session, incident_id: int, round_number: int, planned: list[PlannedSlot]) -> None:
    session.connection().execute(
        ScheduleSlotRow.__table__.insert(),
        [
            {
                "incident_id": incident_id,
                "round": round_number,
                "idx": p.idx,
                "offset": p.offset,
                "due_at": p.due_at,
                "status": "pending",
            }
            for p in planned
        ],
    )


def supersede_pending(session: Session, incident_id: int, before_round: int) -> int:
    """A regression starts a new round; the old round's pending slots will never run, and say so."""
    result = session.execute(
        update(ScheduleSlotRow)
        .where(
            ScheduleSlotRow.incident_id == incident_id,
            ScheduleSlotRow.round < before_round,
            ScheduleSlotRow.status == "pending",
        )
        .values(status="superseded")
    )
    return result.rowcount


def claim(session: Session, slot_ids: list[int], holder: str, at: datetime) -> list[int]:
    """pending -> running, one conditional UPDATE per slot: a slot another watcher claimed first is not ours."""
    claimed = []
    for slot_id in slot_ids:
        result = session.execute(
            update(ScheduleSlotRow)
            .where(ScheduleSlotRow.id == slot_id, ScheduleSlotRow.status == "pending")
            .values(status="running", claimed_by=holder, claimed_at=at)
        )
        if result.rowcount == 1:
            claimed.append(slot_id)
    return claimed


def release_running(session: Session, incident_id: int, holder: str | None = None) -> int:
    """Give back slots left `running`: by a watcher that died (holder None: any) or by our own failed check."""
    query = update(ScheduleSlotRow).where(
        ScheduleSlotRow.incident_id == incident_id, ScheduleSlotRow.status == "running"
    )
    if holder is not None:
        query = query.where(ScheduleSlotRow.claimed_by == holder)
    return session.execute(query.values(status="pending", claimed_by=None, claimed_at=None)).rowcount


def slot_id(session: Session, incident_id: int, round_number: int, idx: int) -> int:
    return session.exec(
        select(ScheduleSlotRow.id).where(
            ScheduleSlotRow.incident_id == incident_id,
            ScheduleSlotRow.round == round_number,
            ScheduleSlotRow.idx == idx,
        )
    ).one()


def finish(session: Session, slot_id: int, status: str, check_id: int, ran_at: datetime, delay_seconds: int) -> None:
    session.execute(
        update(ScheduleSlotRow)
        .where(ScheduleSlotRow.id == slot_id)
        .values(status=status, check_id=check_id, ran_at=ran_at, delay_seconds=delay_seconds)
    )


def finish_claimed(
    session: Session,
    incident_id: int,
    slot_id: int,
    holder: str,
    status: str,
    check_id: int,
    ran_at: datetime,
    delay_seconds: int,
) -> None:
    """Finish a slot this watcher claimed, only while it still holds the watch lock and the claim.

    Refused with LockHeld (the write rolls back, the check is not recorded) when another watcher took the lock
    or the slot: that watcher runs the slot, so it is never finished twice.
    """
    locks.ensure_holder(session, incident_id, "watch", holder)
    done = session.execute(
        update(ScheduleSlotRow)
        .where(ScheduleSlotRow.id == slot_id, ScheduleSlotRow.status == "running", ScheduleSlotRow.claimed_by == holder)
        .values(status=status, check_id=check_id, ran_at=ran_at, delay_seconds=delay_seconds)
    ).rowcount
    if done != 1:
        raise LockHeld(
            f"re-check slot {slot_id} of incident {incident_id} is no longer this watcher's to finish",
            hint="another watcher took it over and runs it",
        )
