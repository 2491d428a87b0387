"""Store queries for the guard: where each (policy, target) stands, and the log of its runs.

Writes take the session of a `Store.write()`, so a run's state, its incident and its lease move together.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from sevtool.store.models import GuardRunRow, GuardStateRow
from sevtool.store.repository import Store


def state_row(session: Session, key: str, policy: str, target: str) -> GuardStateRow:
    """The row of one (policy, target), made on its first run."""
    row = session.get(GuardStateRow, key)
    if row is None:
        row = GuardStateRow(key=key, policy=policy, target=target)
        session.add(row)
    return row


def states(store: Store) -> dict[str, GuardStateRow]:
    with store.read() as session:
        return {row.key: row for row in session.exec(select(GuardStateRow)).all()}


def digest_of(store: Store, key: str) -> dict | None:
    with store.read() as session:
        row = session.get(GuardStateRow, key)
        return row.digest if row else None


def add_run(
    session: Session,
    key: str,
    slot: datetime,
    holder: str,
    ran_at: datetime,
    state: str,
    objects: int,
    incident_id: int | None,
) -> None:
    session.add(
        GuardRunRow(
            key=key, slot=slot, holder=holder, ran_at=ran_at, state=state, objects=objects, incident_id=incident_id
        )
    )


def runs(store: Store, key: str | None = None) -> list[GuardRunRow]:
    with store.read() as session:
        query = select(GuardRunRow).order_by(GuardRunRow.id)
        if key is not None:
            query = query.where(GuardRunRow.key == key)
        return list(session.exec(query).all())
