"""Postmortem: gather the facts from the store, render markdown, and keep its editable inputs.

The inputs a review needs beyond what sevtool records by itself (root cause, lessons, action items)
are entered with commands and are timeline events like everything else: editing a note appends a
new note event that supersedes the old one, so the latest text wins and the history stays.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sevtool.core.postmortem import render
from sevtool.core.postmortem_evidence import EVIDENCE_EVENT, EvidenceFacts
from sevtool.core.postmortem_facts import (
    DOCUMENT_NOTE_KINDS,
    ActionItemFacts,
    AuditFacts,
    CheckFacts,
    LedgerFacts,
    NoteEntry,
    PostmortemData,
    RegressionFacts,
    TimelineEntry,
    current_notes,
)
from sevtool.core.postmortem_inputs import ACTION_ITEM_STATUSES, ACTION_ITEM_TYPES
from sevtool.core.timeline import Event, verify_chain
from sevtool.core.timeparse import format_utc, utcnow
from sevtool.errors import NotFound, StoreError, UsageError
from sevtool.gcpause import gc_paused
from sevtool.store import postmortem as queries
from sevtool.store.models import ActionItemRow

if TYPE_CHECKING:
    from sqlmodel import Session

    from sevtool.services import Workbench

T = TypeVar("T")

# Timeline event kinds written by other use-cases that the postmortem reads.
APPLY_EVENT = (
    "apply"  # a revocation run; data.counts = {applied, skipped, failed}. The first that did something = contained
)
SCAN_EVENT = "scan"  # a scan; data.principal_members = {principal: member count}


class PostmortemService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    # --- the document --------------------------------------------------------------------------

    @gc_paused()
    def bundle(self, incident_id: int) -> PostmortemData:
        # The store's counts are SQL the database runs without holding the GIL: two threads read them, each in
        # its own read, while this one reads the incident and reads and audits the chain.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="postmortem-facts") as pool:
            exposure = pool.submit(self._read, queries.exposure_facts, incident_id)
            recorded = pool.submit(self._read, _recorded_facts, incident_id)
            incident = self.store.incident(incident_id)
            # One read of the whole chain serves both the audit and this incident's timeline.
            chain, head = self._chain_and_head()
            report = verify_chain(chain, head)
            events = sorted((e for e in chain if e.incident_id == incident_id), key=lambda e: (e.at, e.seq))
            keys = self.wb.incidents.key_events(events)
            ledger, checks, regressions, items = recorded.result()
            exposure = exposure.result().with_members(_latest_members(events))
        first_apply = next((e.at for e in events if e.kind == APPLY_EVENT and _did_something(e)), None)
        return PostmortemData(
            incident=incident,
            generated_at=utcnow(),
            zone=self.zone_name(),
            events=[
                TimelineEntry(seq=e.seq, at=e.at, kind=e.kind, actor=e.actor, summary=e.summary, key=e.seq in keys)
                for e in events
            ],
            notes=current_notes(events, DOCUMENT_NOTE_KINDS),
            exposure=exposure,
            ledger=ledger,
            first_apply_at=first_apply,
            checks=checks,
            regressions=regressions,
            action_items=items,
            audit=AuditFacts(
                events=report.events, head_seq=head[0], head_hash=report.head, ok=report.ok, problem=report.problem
            ),
            update_every=self.wb.policy.level(incident.highest_sev).update_every,
            evidence=_latest_evidence(events),
            access_exceptions=self.wb.access.list(incident_id),
        )

    def _read(self, query: Callable[[Session, int], T], incident_id: int) -> T:
        with self.store.read() as s:
            return query(s, incident_id)

    def _chain_and_head(self, attempts: int = 3) -> tuple[list[Event], tuple[int, str]]:
        """The chain, then the head. The head is written with each event, so a head ahead of the chain
        means a responder appended meanwhile: read again rather than report deleted events."""
        for _ in range(attempts):
            with self.store.read() as s:
                chain = queries.chain(s)
            head = self.store.chain_head()
            if head[0] <= (chain[-1].seq if chain else 0):
                break
        return chain, head

    @gc_paused()
    def render(self, incident_id: int) -> str:
        return render(self.bundle(incident_id))

    def export(self, incident_id: int, path: Path | None = None) -> tuple[str, Event]:
        """Render, write the file if asked, then record the export with the document's hash."""
        markdown = self.render(incident_id)
        if path is not None:
            try:
                path.write_text(markdown, encoding="utf-8")
            except OSError as exc:
                raise StoreError(
                    f"cannot write the postmortem to {path}: {exc.strerror}", hint="choose a writable path with -o"
                ) from None
        digest = hashlib.sha256(markdown.encode("utf-8")).hexdigest()
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            event = tx.append(
                incident_id,
                "postmortem_exported",
                f"Postmortem exported{f' to {path.name}' if path else ''} (sha256 {digest[:12]})",
                {"sha256": digest, "file": str(path) if path else None, "bytes": len(markdown.encode("utf-8"))},
            )
        return markdown, event

    def zone_name(self) -> str:
        """The responder's zone as an IANA name for the local-time column: configured, else the machine's, else UTC."""
        settings = self.wb.settings
        return settings.tz or settings.team.timezone or os.environ.get("TZ") or _machine_zone() or "UTC"

    # --- notes -----------------------------------------------------------------------------------

    def notes(self, incident_id: int, kind: str | None = None) -> list[NoteEntry]:
        notes = current_notes(self.wb.incidents.timeline(incident_id))
        return [n for n in notes if kind is None or n.kind == kind]

    def edit_note(self, incident_id: int, seq: int, text: str) -> Event:
        """A new note event that supersedes note `seq` (its first or latest event); the old text stays on the timeline."""
        text = (text or "").strip()
        if not text:
            raise UsageError("a note needs text", hint="give the new text of the note")
        note = next((n for n in self.notes(incident_id) if seq in (n.seq, n.latest_seq)), None)
        if note is None:
            raise NotFound(
                f"incident {incident_id} has no current note at event {seq}",
                hint=f"`sevtool notes {incident_id}` lists the notes and their event numbers",
            )
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            return tx.append(
                incident_id, "note", text, {"note_kind": note.kind, "supersedes": note.latest_seq, "key": False}
            )

    # --- action items ----------------------------------------------------------------------------

    def add_item(
        self, incident_id: int, title: str, *, owner: str | None = None, type: str = "prevent", due: str | None = None
    ) -> ActionItemFacts:
        title = _title(title)
        row = ActionItemRow(
            incident_id=incident_id,
            title=title,
            owner=_clean(owner),
            type=_item_type(type),
            due=_due(due),
            status="open",
            created_at=utcnow(),
        )
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            tx.session.add(row)
            tx.session.flush()
            tx.append(
                incident_id,
                "action_item_added",
                f"Action item AI-{row.id} ({row.type}): {title}",
                {"item": row.id, "title": title, "owner": row.owner, "type": row.type, "due": row.due},
            )
            return _facts(row)

    def items(self, incident_id: int) -> list[ActionItemFacts]:
        self.store.incident(incident_id)
        with self.store.read() as s:
            return queries.action_items(s, incident_id)

    def edit_item(
        self,
        incident_id: int,
        item_id: int,
        *,
        title: str | None = None,
        owner: str | None = None,
        type: str | None = None,
        due: str | None = None,
        status: str | None = None,
    ) -> ActionItemFacts:
        given = {"title": title, "owner": owner, "type": type, "due": due, "status": status}
        parse = {"title": _title, "owner": _clean, "type": _item_type, "due": _due, "status": _item_status}
        wanted = {name: parse[name](value) for name, value in given.items() if value is not None}
        if not wanted:
            raise UsageError("nothing to change", hint="pass --title, --owner, --type, --due or --status")
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            row = tx.session.get(ActionItemRow, item_id)
            if row is None or row.incident_id != incident_id:
                raise NotFound(
                    f"incident {incident_id} has no action item {item_id}",
                    hint=f"`sevtool action list {incident_id}` lists them",
                )
            changes = {k: [getattr(row, k), v] for k, v in wanted.items() if getattr(row, k) != v}
            if not changes:
                raise UsageError(f"action item AI-{item_id} already has those values")
            for name, (_, new) in changes.items():
                setattr(row, name, new)
            tx.session.add(row)
            described = ", ".join(f"{k} {old or '-'} -> {new}" for k, (old, new) in changes.items())
            tx.append(
                incident_id,
                "action_item_changed",
                f"Action item AI-{item_id}: {described}",
                {"item": item_id, "changes": changes},
            )
            return _facts(row)


def _machine_zone() -> str | None:
    """The IANA name /etc/localtime points at (e.g. .../zoneinfo/Europe/Paris), if it is a link."""
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return None
    _, found, name = target.partition("/zoneinfo/")
    return name if found and name else None


def _recorded_facts(
    s: Session, incident_id: int
) -> tuple[LedgerFacts, list[CheckFacts], list[RegressionFacts], list[ActionItemFacts]]:
    return (
        queries.ledger_facts(s, incident_id),
        queries.check_facts(s, incident_id),
        queries.regression_facts(s, incident_id),
        queries.action_items(s, incident_id),
    )


def _latest_members(events: list[Event]) -> dict[str, int]:
    """Member counts the most recent scan recorded, per principal."""
    for event in reversed(events):
        members = event.data.get("principal_members") if event.kind == SCAN_EVENT else None
        if isinstance(members, dict):
            return {str(k): v for k, v in members.items() if isinstance(v, int)}
    return {}


def _did_something(event: Event) -> bool:
    """A re-run with nothing left to do is not a containment."""
    counts = event.data.get("counts")
    return not isinstance(counts, dict) or sum(v for v in counts.values() if isinstance(v, int)) > 0


def _clean(value: str | None) -> str | None:
    """Blank means none: `--owner ''` clears the owner."""
    return (value or "").strip() or None


def _title(value: str | None) -> str:
    title = (value or "").strip()
    if not title:
        raise UsageError("an action item needs a title", hint="--title 'what will be done'")
    return title


def _item_type(value: str) -> str:
    value = value.strip().lower()
    if value not in ACTION_ITEM_TYPES:
        raise UsageError(f"unknown action item type {value!r}", hint="one of: " + ", ".join(ACTION_ITEM_TYPES))
    return value


def _item_status(value: str) -> str:
    value = value.strip().lower().replace("_", "-")
    if value not in ACTION_ITEM_STATUSES:
        raise UsageError(f"unknown action item status {value!r}", hint="one of: " + ", ".join(ACTION_ITEM_STATUSES))
    return value


def _due(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise UsageError(f"invalid due date {value!r}", hint="use YYYY-MM-DD, e.g. 2026-12-01") from None


def _facts(row: ActionItemRow) -> ActionItemFacts:
    return ActionItemFacts(id=row.id, title=row.title, owner=row.owner, type=row.type, due=row.due, status=row.status)


def _latest_evidence(events: list[Event]) -> EvidenceFacts | None:
    """The evidence the latest `sevtool evidence` recorded: a later run reads more logs, so it supersedes."""
    latest = next((e for e in reversed(events) if e.kind == EVIDENCE_EVENT), None)
    return EvidenceFacts.of_event(format_utc(latest.at), latest.data) if latest else None
