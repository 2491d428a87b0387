"""Work leases: recurring work (a guard policy, an incident's re-checks) shared by several workers on several hosts.

Each piece of work is a row with the time it is next due. A worker claims one due row at a time with
`SELECT ... FOR UPDATE SKIP LOCKED` (on PostgreSQL, workers claiming at the same moment pass over each other's
rows instead of queueing behind them; SQLite, which has no row locks, serialises its writers anyway), writes
itself in as holder until `lease_until`, and renews the lease while it works (`beating`). Finishing moves the
row to its next due time in the same transaction as the work's result, and only while the worker still holds
the lease, so a slot is never recorded twice. A worker killed mid-run stops renewing: its row is claimable once
the lease ends, or at once on the same host when its pid is gone (as the incident locks in locks.py do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from sevtool.core.timeparse import as_utc, utcnow
from sevtool.errors import LockHeld, StoreError
from sevtool.store.locks import holder_is_dead, new_holder
from sevtool.store.models import WorkLeaseRow
from sevtool.store.repository import Store

__all__ = ["beating", "claim", "ensure", "finish", "new_holder", "release", "renew", "rows"]

_CANDIDATES = 16  # due rows looked at per claim: enough to pass over live holders on this host
# Updates below are plain SQL (synchronize_session=False): the ORM would otherwise re-check their conditions in Python
# against rows the session loaded, and SQLite hands times back without a zone.


def ensure(store: Store, kind: str, keys: list[str], due_at: datetime, *, drop_others: bool = False) -> None:
    """Give every key a row (due at `due_at` when new); with `drop_others`, keys no longer wanted lose theirs.

    Inside a store write, which every writer serialises on, so two workers adding the same key cannot collide.
    """
    with store.write() as tx:
        have = {row.key: row for row in tx.session.exec(select(WorkLeaseRow).where(WorkLeaseRow.kind == kind)).all()}
        for key in keys:
            if key not in have:
                tx.session.add(WorkLeaseRow(kind=kind, key=key, due_at=due_at))
        if drop_others:
            for key, row in have.items():
                if key not in keys and row.holder is None:
                    tx.session.delete(row)


def claim(store: Store, kind: str, holder: str, now: datetime, lease: timedelta) -> tuple[str, datetime] | None:
    """Claim one due row for `lease`: (its key, the due time it serves), or None when nothing is due and free."""
    try:
        with Session(store.engine, expire_on_commit=False) as session, session.begin():
            free = or_(WorkLeaseRow.holder.is_(None), WorkLeaseRow.lease_until < now)
            candidates = session.exec(
                select(WorkLeaseRow)
                .where(WorkLeaseRow.kind == kind, WorkLeaseRow.due_at <= now)
                .order_by(WorkLeaseRow.due_at, WorkLeaseRow.key)
                .limit(_CANDIDATES)
                .with_for_update(skip_locked=True)
            ).all()
            for row in candidates:
                held = row.holder is not None and as_utc(row.lease_until) >= now
                if held and not holder_is_dead(row.holder):
                    continue
                result = session.execute(
                    update(WorkLeaseRow)
                    .where(
                        WorkLeaseRow.kind == kind,
                        WorkLeaseRow.key == row.key,
                        or_(free, WorkLeaseRow.holder == row.holder),
                    )
                    .values(holder=holder, lease_until=now + lease)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    return row.key, as_utc(row.due_at)
            return None
    except OperationalError as exc:
        raise StoreError(
            f"the store could not be written: {exc.orig}", hint="retry; if it persists check SEVTOOL_DB"
        ) from None


def renew(store: Store, kind: str, key: str, holder: str, until: datetime) -> None:
    with Session(store.engine) as session, session.begin():
        done = session.execute(
            update(WorkLeaseRow)
            .where(WorkLeaseRow.kind == kind, WorkLeaseRow.key == key, WorkLeaseRow.holder == holder)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
    if done != 1:
        raise LockHeld(f"lost the lease on {kind} {key}", hint="another worker took it over and runs it")


def finish(session: Session, kind: str, key: str, holder: str, next_due: datetime) -> None:
    """Inside the write that records the work: release the lease and move the row on, only if still ours."""
    done = session.execute(
        update(WorkLeaseRow)
        .where(and_(WorkLeaseRow.kind == kind, WorkLeaseRow.key == key, WorkLeaseRow.holder == holder))
        .values(holder=None, lease_until=None, due_at=next_due)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise LockHeld(
            f"lost the lease on {kind} {key} while working; its result is not recorded",
            hint="the worker holding it now runs it",
        )


def release(store: Store, kind: str, key: str, holder: str) -> None:
    """Give a claimed row back unfinished (due as before), e.g. when the worker stops."""
    with Session(store.engine) as session, session.begin():
        session.execute(
            update(WorkLeaseRow)
            .where(WorkLeaseRow.kind == kind, WorkLeaseRow.key == key, WorkLeaseRow.holder == holder)
            .values(holder=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


def rows(store: Store, kind: str) -> list[WorkLeaseRow]:
    with store.read() as session:
        return list(
            session.exec(select(WorkLeaseRow).where(WorkLeaseRow.kind == kind).order_by(WorkLeaseRow.key)).all()
        )


def next_due(due_at: datetime, every: timedelta, now: datetime) -> datetime:
    """The first slot after `now` on the grid that starts at `due_at`: a late run does not shift the grid,
    and slots missed while nobody ran are skipped, not run back to back."""
    if due_at > now:
        return due_at
    return due_at + every * ((now - due_at) // every + 1)


@contextmanager
def beating(store: Store, kind: str, key: str, holder: str, lease: timedelta) -> Iterator[None]:
    """Renew the lease three times per period in a background thread while the body runs.

    A lost lease or an unwritable store stops the renewing; the worker learns of it at `finish`, so its result
    is never recorded over the worker that took the row over.
    """
    stop = threading.Event()
    every = lease.total_seconds() / 3

    def beat() -> None:
        while not stop.wait(every):
            try:
                renew(store, kind, key, holder, utcnow() + lease)
            except (LockHeld, StoreError, OperationalError):
                return

    thread = threading.Thread(target=beat, name=f"{kind}-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
