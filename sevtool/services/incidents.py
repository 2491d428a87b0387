"""Declare, re-rate, move through statuses, annotate, and audit incidents."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sevtool.core.incident import ROLES, STATUS_TIMESTAMP, TIMESTAMPS, Incident, Status, check_transition, is_regression
from sevtool.core.severity import check_sev
from sevtool.core.timeline import ChainReport, Event, verify_chain
from sevtool.core.timeparse import format_utc, parse_at, utcnow
from sevtool.errors import UsageError
from sevtool.store.models import IncidentRow, SevChangeRow

if TYPE_CHECKING:
    from sevtool.services import Workbench


class IncidentService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    def parse_time(self, text: str | None) -> datetime | None:
        return None if text is None else parse_at(text, default_zone=self.wb.zone)

    def declare(
        self,
        title: str,
        sev: int,
        *,
        commander: str | None = None,
        playbook: str | None = None,
        at: datetime | None = None,
        reason: str | None = None,
    ) -> Incident:
        check_sev(sev)
        title = (title or "").strip()
        if not title:
            raise UsageError("an incident needs a title", hint="--title 'what is exposed to whom'")
        self.wb.policy.level(sev)
        with self.store.write() as tx:
            incident_id = self.declare_in(tx, title, sev, commander=commander, playbook=playbook, at=at, reason=reason)
        return self.store.incident(incident_id)

    def declare_in(
        self,
        tx,
        title: str,
        sev: int,
        *,
        commander: str | None = None,
        playbook: str | None = None,
        at: datetime | None = None,
        reason: str | None = None,
        extra: dict | None = None,
    ) -> int:
        """Declare inside a caller's store write (the guard opens an incident and records why in one transaction)."""
        declared_at = at or utcnow()
        row = IncidentRow(
            title=title,
            sev=sev,
            status=Status.DECLARED.value,
            commander=commander,
            playbook=playbook,
            declared_at=declared_at,
            created_at=utcnow(),
        )
        tx.session.add(row)
        tx.session.flush()
        tx.session.add(
            SevChangeRow(incident_id=row.id, from_sev=None, to_sev=sev, reason=reason or "declared", at=declared_at)
        )
        tx.append(
            row.id,
            "declared",
            f"Declared SEV {sev}: {title}",
            {"sev": sev, "title": title, "commander": commander, "playbook": playbook, **(extra or {})},
            at=declared_at,
        )
        return row.id

    def get(self, incident_id: int) -> Incident:
        return self.store.incident(incident_id)

    def details(self, incident_id: int) -> dict:
        """What `show` adds beyond the incident itself: counts and where the response stands."""
        return {"events": len(self.store.events(incident_id)), **self._playbook_details(incident_id)}

    def _playbook_details(self, incident_id: int) -> dict:
        """Playbook progress derived from the timeline, and the step to do next."""
        from sevtool.core.playbook import next_step
        from sevtool.errors import SevtoolError

        try:
            steps = self.wb.playbooks.progress(incident_id)
        except SevtoolError as exc:
            return {"next_step": f"unknown: the playbook cannot be loaded ({exc})"}
        if not steps:
            return {"next_step": "no playbook: declare with --playbook NAME (`sevtool playbook list`)"}
        required = [s for s in steps if s.required]
        upcoming = next_step(steps)
        return {
            "playbook_progress": f"{sum(s.done for s in steps)}/{len(steps)} steps done "
            f"({sum(s.done for s in required)}/{len(required)} required at this SEV)",
            "next_step": (
                f"{upcoming.step.title}{'' if upcoming.required else ' (optional)'}"
                f"{': ' + upcoming.step.command.replace(' ID', f' {incident_id}') if upcoming.step.command else ''}"
            )
            if upcoming
            else "all steps done",
            "playbook_steps": [s.as_dict() for s in steps],
        }

    def all(self) -> list[Incident]:
        return self.store.incidents()

    def change_sev(self, incident_id: int, sev: int, why: str, *, at: datetime | None = None) -> Incident:
        check_sev(sev)
        if not (why or "").strip():
            raise UsageError("a SEV change needs a reason", hint="--why 'what we learned'")
        at = at or utcnow()
        with self.store.write() as tx:
            row = tx.incident_row(incident_id)
            if row.sev == sev:
                raise UsageError(f"incident {incident_id} is already SEV {sev}")
            old = row.sev
            row.sev = sev
            tx.session.add(row)
            tx.session.add(SevChangeRow(incident_id=incident_id, from_sev=old, to_sev=sev, reason=why.strip(), at=at))
            tx.append(
                incident_id,
                "sev_changed",
                f"SEV {old} -> SEV {sev}: {why.strip()}",
                {"from": old, "to": sev, "why": why.strip()},
                at=at,
            )
        return self.store.incident(incident_id)

    def set_status(
        self, incident_id: int, new: Status, *, at: datetime | None = None, why: str | None = None, force: bool = False
    ) -> Incident:
        """Move along the state machine. Resolving is gated on verification (see VerificationService)."""
        at = at or utcnow()
        current = self.store.status_of(incident_id)
        check_transition(current, new)
        gate = self._resolution_gate(incident_id) if new == Status.RESOLVED else None
        if gate and not force:
            raise UsageError(
                f"incident {incident_id} cannot be resolved yet: {gate}",
                hint="wait for the re-check schedule, or pass --force with --why explaining the decision",
            )
        if gate and force and not (why or "").strip():
            raise UsageError(
                "--force needs a written justification",
                hint="--why 'why resolving before verification is done is safe'",
            )
        with self.store.write() as tx:
            row = tx.incident_row(incident_id)
            check_transition(Status(row.status), new)  # re-check under the lock: another responder may have moved it
            self._apply_status(tx, row, new, at=at, why=why)
            if gate and force:
                tx.append(
                    incident_id,
                    "resolve_forced",
                    f"Resolved before verification finished: {why.strip()} (gate: {gate})",
                    {"gate": gate, "why": why.strip()},
                    at=at,
                )
        return self.store.incident(incident_id)

    def _apply_status(
        self, tx, row: IncidentRow, new: Status, *, at: datetime, why: str | None = None, cause: dict | None = None
    ) -> None:
        """Shared by manual moves and automatic ones (first apply -> contained, regression -> contained)."""
        old = Status(row.status)
        row.status = new.value
        stamp = STATUS_TIMESTAMP.get(new)
        if stamp and getattr(row, stamp) is None:
            setattr(row, stamp, at)
        tx.session.add(row)
        regression = is_regression(old, new)
        summary = f"Status {old.value} -> {new.value}" + (f": {why}" if why else "")
        tx.append(
            row.id,
            "status_changed",
            summary,
            {
                "from": old.value,
                "to": new.value,
                "why": why,
                "regression": regression,
                **({"cause": cause} if cause else {}),
            },
            at=at,
        )

    def _resolution_gate(self, incident_id: int) -> str | None:
        verification = getattr(self.wb, "verification", None)
        return verification.resolution_gate(incident_id) if verification else None

    def assign(self, incident_id: int, role: str, person: str) -> Incident:
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}", hint="roles: " + ", ".join(ROLES))
        with self.store.write() as tx:
            row = tx.incident_row(incident_id)
            setattr(row, role, person)
            tx.session.add(row)
            tx.append(incident_id, "role_assigned", f"{role} is {person}", {"role": role, "person": person})
        return self.store.incident(incident_id)

    def set_time(self, incident_id: int, name: str, at: datetime) -> Incident:
        field = name if name.endswith("_at") else f"{name.replace('-', '_')}_at"
        if field not in TIMESTAMPS:
            raise UsageError(
                f"unknown timestamp {name!r}",
                hint="one of: " + ", ".join(t.removesuffix("_at").replace("_", "-") for t in TIMESTAMPS),
            )
        with self.store.write() as tx:
            row = tx.incident_row(incident_id)
            old = getattr(row, field)
            setattr(row, field, at)
            tx.session.add(row)
            tx.append(
                incident_id,
                "time_set",
                f"{field.removesuffix('_at').replace('_', ' ')} set to {format_utc(at)}",
                {"field": field, "value": format_utc(at), "previous": format_utc(old) if old else None},
            )
        return self.store.incident(incident_id)

    def note(
        self, incident_id: int, text: str, *, at: datetime | None = None, kind: str = "note", key: bool = False
    ) -> Event:
        text = (text or "").strip()
        if not text:
            raise UsageError("a note needs text")
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            return tx.append(incident_id, "note", text, {"note_kind": kind, "key": key}, at=at)

    def mark_key(self, incident_id: int, seq: int, key: bool = True) -> Event:
        """Events are immutable, so marking one as key is itself an event that points at it."""
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            if not any(e.seq == seq for e in self.store.events(incident_id)):
                raise UsageError(f"incident {incident_id} has no timeline event {seq}")
            return tx.append(
                incident_id,
                "key_marked",
                f"event {seq} {'marked' if key else 'unmarked'} as key",
                {"event": seq, "key": key},
            )

    def timeline(self, incident_id: int) -> list[Event]:
        """Events in the order they happened: notes back-dated with --at sit where they belong."""
        self.store.incident(incident_id)
        return sorted(self.store.events(incident_id), key=lambda e: (e.at, e.seq))

    def key_events(self, events: list[Event]) -> set[int]:
        keys = {e.seq for e in events if e.kind != "key_marked" and e.data.get("key")}
        for e in events:
            if e.kind == "key_marked":
                (keys.add if e.data.get("key") else keys.discard)(e.data.get("event"))
        return keys

    def audit(self) -> ChainReport:
        return verify_chain(self.store.events(), self.store.chain_head())
