"""Store queries for the webhook outbox.

Rows are added inside the transaction that appends the event (so a notification exists exactly when its
event does) and delivered after commit. A sender claims a row with a conditional UPDATE that marks it
`sending`, bumps `attempts` and sets `next_attempt_at` to the end of a lease: two senders (the background
flush of one command and a `sevtool notify flush`) never post the same row at once, and a sender killed
mid-post leaves a row that becomes due again when the lease runs out. That is at-least-once; receivers deduplicate on the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, select

from sevtool.core.timeparse import as_utc
from sevtool.store.models import EventRow, OutboxRow
from sevtool.store.repository import Store

PENDING, SENDING, DELIVERED, DEAD = "pending", "sending", "delivered", "dead"


def due(store: Store, now: datetime, limit: int, *, ignore_backoff: bool = False) -> list[tuple[OutboxRow, str]]:
    """Rows ready for an attempt, each with its event's chain hash (the idempotency key derives from it).

    `ignore_backoff` (a responder's manual flush) takes every pending row now; an unexpired lease is
    always respected, since another sender may be posting that row at this moment.
    """
    pending = (
        OutboxRow.status == PENDING
        if ignore_backoff
        else and_(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now)
    )
    abandoned = and_(OutboxRow.status == SENDING, OutboxRow.next_attempt_at <= now)
    with store.read() as s:
        query = (
            select(OutboxRow, EventRow.hash)
            .join(EventRow, EventRow.seq == OutboxRow.event_seq)
            .where(or_(pending, abandoned))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [(row, event_hash) for row, event_hash in s.exec(query).all()]


def claim(store: Store, row: OutboxRow, now: datetime, lease: timedelta) -> bool:
    """Take the row for one attempt; False when another sender took it first."""
    with Session(store.engine) as s, s.begin():
        result = s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row.id, OutboxRow.status == row.status, OutboxRow.attempts == row.attempts)
            .values(status=SENDING, attempts=row.attempts + 1, next_attempt_at=now + lease)
        )
        return result.rowcount == 1


def delivered(store: Store, row_id: int, now: datetime) -> None:
    with Session(store.engine) as s, s.begin():
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(status=DELIVERED, delivered_at=now, next_attempt_at=None, last_error=None)
        )


def failed(store: Store, row_id: int, error: str, next_attempt_at: datetime | None) -> None:
    """Record a failed attempt: retried at `next_attempt_at`, or dead when that is None."""
    with Session(store.engine) as s, s.begin():
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row_id)
            .values(
                status=PENDING if next_attempt_at else DEAD, next_attempt_at=next_attempt_at, last_error=error[:500]
            )
        )


def revive_dead(store: Store, now: datetime) -> int:
    """Give dead rows a fresh start (after the receiver or the config was fixed)."""
    with Session(store.engine) as s, s.begin():
        return s.execute(
            update(OutboxRow).where(OutboxRow.status == DEAD).values(status=PENDING, attempts=0, next_attempt_at=now)
        ).rowcount


@dataclass
class OutboxStats:
    counts: dict[str, int]
    next_attempt_at: datetime | None  # when the soonest pending row is due


def stats(store: Store) -> OutboxStats:
    with store.read() as s:
        counts = dict(s.exec(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())
        soonest = s.exec(select(func.min(OutboxRow.next_attempt_at)).where(OutboxRow.status == PENDING)).one()
    return OutboxStats(
        counts={k: counts.get(k, 0) for k in (PENDING, SENDING, DELIVERED, DEAD)}, next_attempt_at=as_utc(soonest)
    )


def rows(store: Store, *, status: str | None = None, limit: int = 50) -> list[OutboxRow]:
    with store.read() as s:
        query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if status:
            query = query.where(OutboxRow.status == status)
        return list(s.exec(query).all())
