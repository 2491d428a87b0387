"""The repository: the only code that turns store rows into domain objects and back.

Every write runs in `Store.write()`, whose first statement locks the chain head row. That one lock
serialises appends to the hash-chained timeline on SQLite and PostgreSQL alike, so concurrent
writers (two responders adding notes at once) queue instead of forking the chain.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from sevtool.core.incident import Incident, SevChange, Status
from sevtool.core.timeline import GENESIS, Event, event_hash
from sevtool.core.timeparse import as_utc, utcnow
from sevtool.errors import NotFound, StoreError
from sevtool.store.engine import READ_ONLY, make_engine
from sevtool.store.models import ChainHeadRow, EventRow, IncidentRow, SevChangeRow

_TIME_FIELDS = (
    "exposure_started_at",
    "detected_at",
    "declared_at",
    "contained_at",
    "verifying_at",
    "verified_at",
    "resolved_at",
    "closed_at",
)


def incident_from_row(row: IncidentRow, changes: list[SevChangeRow]) -> Incident:
    data = {name: getattr(row, name) for name in Incident.model_fields if name != "sev_history" and hasattr(row, name)}
    for name in _TIME_FIELDS:
        data[name] = as_utc(data[name])
    return Incident(
        **data,
        sev_history=[
            SevChange(from_sev=c.from_sev, to_sev=c.to_sev, reason=c.reason, at=as_utc(c.at)) for c in changes
        ],
    )


def event_from_row(row: EventRow) -> Event:
    return Event(
        seq=row.seq,
        incident_id=row.incident_id,
        at=as_utc(row.at),
        kind=row.kind,
        actor=row.actor,
        summary=row.summary,
        data=row.data or {},
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@dataclass
class Tx:
    """A write transaction. `append` adds a timeline event linked to the chain head."""

    session: Session
    actor: str
    hooks: list = field(default_factory=list)

    def append(
        self, incident_id: int | None, kind: str, summary: str, data: dict | None = None, at: datetime | None = None
    ) -> Event:
        head = self.session.get(ChainHeadRow, 1)
        self.session.refresh(head)
        draft = Event(
            seq=head.seq + 1,
            incident_id=incident_id,
            at=as_utc(at) or utcnow(),
            kind=kind,
            actor=self.actor,
            summary=summary,
            data=data or {},
            prev_hash=head.hash or GENESIS,
        )
        final = Event(**{**draft.__dict__, "hash": event_hash(draft)})
        self.session.add(
            EventRow(
                seq=final.seq,
                incident_id=incident_id,
                at=final.at,
                recorded_at=utcnow(),
                kind=kind,
                actor=final.actor,
                summary=summary,
                data=final.data,
                prev_hash=final.prev_hash,
                hash=final.hash,
            )
        )
        head.seq, head.hash = final.seq, final.hash
        self.session.add(head)
        self.session.flush()
        for hook in self.hooks:
            hook(self, final)
        return final

    def incident_row(self, incident_id: int) -> IncidentRow:
        row = self.session.get(IncidentRow, incident_id)
        if row is None:
            raise NotFound(f"no incident {incident_id}", hint="`sevtool list` shows the incidents in this store")
        return row


class Store:
    def __init__(self, url: str, *, actor: str = "unknown", engine: Engine | None = None):
        self.url = url
        self.actor = actor
        self.engine = engine or make_engine(url)
        self._read_engine = self.engine.execution_options(**{READ_ONLY: True})
        # Called inside the writing transaction for every appended event (e.g. the webhook outbox).
        self.event_hooks: list = []
        # Threads of one process (apply's batch workers) queue here: waiting on SQLite's lock instead goes
        # through its busy handler, which sleeps 1-100 ms between tries while the REVOKE workers stand idle.
        self._writers = threading.RLock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Tx]:
        try:
            with self._writers, Session(self.engine, expire_on_commit=False) as session, session.begin():
                # Lock first: the chain head is the one row every writer updates.
                session.execute(text("UPDATE chain_head SET seq = seq WHERE id = 1"))
                yield Tx(session, self.actor, self.event_hooks)
        except OperationalError as exc:
            raise StoreError(
                f"the store could not be written: {exc.orig}", hint="retry; if it persists check SEVTOOL_DB"
            ) from None

    # --- incidents -------------------------------------------------------------------------

    def incident(self, incident_id: int) -> Incident:
        with self.read() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound(f"no incident {incident_id}", hint="`sevtool list` shows the incidents in this store")
            changes = s.exec(
                select(SevChangeRow).where(SevChangeRow.incident_id == incident_id).order_by(SevChangeRow.id)
            ).all()
            return incident_from_row(row, list(changes))

    def incidents(self) -> list[Incident]:
        with self.read() as s:
            rows = s.exec(select(IncidentRow).order_by(IncidentRow.id)).all()
            changes = s.exec(select(SevChangeRow).order_by(SevChangeRow.id)).all()
        by_incident: dict[int, list[SevChangeRow]] = {}
        for c in changes:
            by_incident.setdefault(c.incident_id, []).append(c)
        return [incident_from_row(r, by_incident.get(r.id, [])) for r in rows]

    # --- timeline --------------------------------------------------------------------------

    def events(self, incident_id: int | None = None) -> list[Event]:
        with self.read() as s:
            query = select(EventRow).order_by(EventRow.seq)
            if incident_id is not None:
                query = query.where(EventRow.incident_id == incident_id)
            return [event_from_row(r) for r in s.exec(query).all()]

    def chain_head(self) -> tuple[int, str]:
        with self.read() as s:
            head = s.get(ChainHeadRow, 1)
            return head.seq, head.hash

    def status_of(self, incident_id: int) -> Status:
        return self.incident(incident_id).status
