"""Per-incident named locks (e.g. "apply", "watch") that hold across processes and machines.

Taken inside a store write, which is already serialised on the chain head row, so check-then-insert
is race-free on SQLite and PostgreSQL. A holder that stopped heart-beating (killed with -9) is
taken over after `stale_after`; on the same host a dead pid is taken over at once.

A holder doing one long piece of work (a check slower than `stale_after`) keeps `beating` in a background
thread while it runs, and writes its result only after `ensure_holder` in the same store transaction: a
holder that lost the lock anyway (frozen, partitioned from the store) cannot record over its successor.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlmodel import Session

from sevtool.core.timeparse import as_utc, utcnow
from sevtool.errors import LockHeld, StoreError
from sevtool.store.models import LockRow
from sevtool.store.repository import Store

STALE_AFTER = timedelta(seconds=60)


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """A holder on this host whose process is gone (shared with the work leases in store/leases.py)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(store: Store, incident_id: int, name: str, holder: str, *, stale_after: timedelta = STALE_AFTER) -> None:
    now = utcnow()
    with store.write() as tx:
        row = tx.session.get(LockRow, (incident_id, name))
        if row is None:
            tx.session.add(
                LockRow(incident_id=incident_id, name=name, holder=holder, acquired_at=now, heartbeat_at=now)
            )
            return
        if row.holder == holder:
            row.heartbeat_at = now
        elif now - as_utc(row.heartbeat_at) > stale_after or holder_is_dead(row.holder):
            row.holder, row.acquired_at, row.heartbeat_at = holder, now, now
        else:
            raise LockHeld(
                f"incident {incident_id} is busy: {name} is already running ({row.holder}, since {as_utc(row.acquired_at):%H:%M:%SZ})",
                hint=f"wait for it to finish; a crashed holder is taken over after {int(stale_after.total_seconds())}s",
            )
        tx.session.add(row)


def heartbeat(store: Store, incident_id: int, name: str, holder: str) -> None:
    with store.write() as tx:
        row = tx.session.get(LockRow, (incident_id, name))
        if row is None or row.holder != holder:
            raise LockHeld(
                f"lost the {name} lock on incident {incident_id} to {row.holder if row else 'nobody'}",
                hint="another process took it over; stop and re-run to resume",
            )
        row.heartbeat_at = utcnow()
        tx.session.add(row)


def ensure_holder(session: Session, incident_id: int, name: str, holder: str) -> None:
    """Inside a store write: refuse (LockHeld, so the write rolls back) unless `holder` still holds the lock."""
    row = session.get(LockRow, (incident_id, name))
    if row is None or row.holder != holder:
        raise LockHeld(
            f"lost the {name} lock on incident {incident_id} to {row.holder if row else 'nobody'} while working; "
            "its result is not recorded",
            hint="the process holding it now does that work; if none does, run the command again",
        )


@contextmanager
def beating(store: Store, incident_id: int, name: str, holder: str, every: float) -> Iterator[None]:
    """Heartbeat every `every` seconds in a background thread while the body runs.

    A lost lock or a store that cannot be written stops the beating; the caller learns of it when it writes
    its result (`ensure_holder`), so the work is never recorded by a holder that no longer holds the lock.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                heartbeat(store, incident_id, name, holder)
            except (LockHeld, StoreError):
                return

    thread = threading.Thread(target=beat, name=f"{name}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def release(store: Store, incident_id: int, name: str, holder: str) -> None:
    with store.write() as tx:
        row = tx.session.get(LockRow, (incident_id, name))
        if row is not None and row.holder == holder:
            tx.session.delete(row)


@contextmanager
def held(store: Store, incident_id: int, name: str, *, stale_after: timedelta = STALE_AFTER) -> Iterator[str]:
    holder = new_holder()
    acquire(store, incident_id, name, holder, stale_after=stale_after)
    try:
        yield holder
    finally:
        release(store, incident_id, name, holder)
