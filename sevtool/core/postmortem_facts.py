"""The facts a postmortem is compiled from: the data bundle the store gathers, and what is derived from it
without a database (current notes, milestones, durations).

Every number is read from the bundle; a missing input is None, for the renderer to show as "unknown".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from sevtool.core.access_exceptions import AccessException
from sevtool.core.incident import Incident
from sevtool.core.postmortem_evidence import EvidenceFacts
from sevtool.core.postmortem_inputs import NOTE_SECTIONS
from sevtool.core.timeline import Event
from sevtool.core.timeparse import as_utc, format_duration


@dataclass(slots=True)
class TimelineEntry:
    """One timeline row. A dataclass, not a model: a postmortem can hold 10,000 of them, and pydantic takes
    dataclass instances into PostmortemData as they are instead of validating each."""

    seq: int
    at: datetime
    kind: str
    actor: str
    summary: str
    key: bool = False


class NoteEntry(BaseModel):
    """The current text of one postmortem note; `revisions` counts the edits that superseded it."""

    seq: int  # the event that first recorded the note: its stable identity
    latest_seq: int  # the event holding the current text
    at: datetime
    kind: str
    actor: str
    text: str
    revisions: int = 0


class PrincipalFacts(BaseModel):
    name: str
    objects: int
    members: int | None = None  # how many roles/people the principal stands for, when the scan recorded it


class PathFacts(BaseModel):
    path: str
    objects: int
    findings: int


class ExposureFacts(BaseModel):
    targets: list[str] = Field(default_factory=list)
    scope_versions: int = 0
    objects: int = 0
    findings: int = 0
    by_dss: dict[str, int] = Field(default_factory=dict)
    by_path: list[PathFacts] = Field(default_factory=list)
    principals: list[PrincipalFacts] = Field(default_factory=list)

    def with_members(self, members: dict[str, int]) -> ExposureFacts:
        """These facts with each principal's member count (from the latest scan's event, read apart from the findings)."""
        return self.model_copy(
            update={"principals": [p.model_copy(update={"members": members.get(p.name)}) for p in self.principals]}
        )


class LedgerFacts(BaseModel):
    plan_versions: int = 0
    actions: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    objects: int = 0


class CheckFacts(BaseModel):
    number: int
    scheduled_at: datetime | None = None
    ran_at: datetime | None = None
    clean: bool
    exposed_objects: int = 0
    findings: int = 0
    regressions: int = 0


class RegressionFacts(BaseModel):
    """Regressions found by one check with one cause over one path, grouped: a re-run job can bring back 45,000 tables."""

    check_number: int | None = None
    principal: str
    path: str
    cause: str
    objects: int = 1
    examples: list[str] = Field(default_factory=list)  # a few object names, for the reader to recognise
    first_seen_at: datetime | None = None
    still_open: int = 0
    closed_at: datetime | None = None  # when the last of them was closed
    closed_by: str | None = None


class ActionItemFacts(BaseModel):
    id: int
    title: str
    owner: str | None = None
    type: str
    due: str | None = None
    status: str


class AuditFacts(BaseModel):
    events: int
    head_seq: int
    head_hash: str
    ok: bool
    problem: str = ""


class PostmortemData(BaseModel):
    incident: Incident
    generated_at: datetime
    zone: str = "UTC"  # the responder's IANA zone, for the local-time column
    events: list[TimelineEntry] = Field(default_factory=list)
    notes: list[NoteEntry] = Field(default_factory=list)  # current notes; render reads only DOCUMENT_NOTE_KINDS
    exposure: ExposureFacts | None = None
    ledger: LedgerFacts | None = None
    first_apply_at: datetime | None = None
    checks: list[CheckFacts] = Field(default_factory=list)
    regressions: list[RegressionFacts] = Field(default_factory=list)
    action_items: list[ActionItemFacts] = Field(default_factory=list)
    audit: AuditFacts | None = None
    update_every: str | None = None  # stakeholder update cadence of the SEV policy at the highest SEV reached
    evidence: EvidenceFacts | None = None  # the latest `sevtool evidence`: who read the exposed data
    access_exceptions: list[AccessException] = Field(default_factory=list)  # just-in-time access after lock-down


# --- notes: latest text wins, history stays on the timeline ---------------------------------------

UPDATE_NOTE_KINDS = ("update", "comms")
# The note kinds the document shows; a plain note appears only in the timeline.
DOCUMENT_NOTE_KINDS = frozenset(NOTE_SECTIONS) | frozenset(UPDATE_NOTE_KINDS)


def current_notes(events: list[Event], kinds: Collection[str] | None = None) -> list[NoteEntry]:
    """Fold note events into current notes. An edit is a note event with `supersedes: SEQ`.

    `kinds` keeps only the notes whose current kind is one of them. The fold runs on the events and
    builds a NoteEntry only for a note it keeps: an incident can hold thousands of plain notes.
    """
    root_of: dict[int, int] = {}
    first: dict[int, Event] = {}  # the event that first recorded a note: its identity
    latest: dict[int, tuple[Event, str, int]] = {}  # its current text: the latest event, the kind, edits so far
    for event in sorted(events, key=lambda e: e.seq):
        if event.kind != "note":
            continue
        kind = event.data.get("note_kind") or "note"
        supersedes = event.data.get("supersedes")
        root = root_of.get(supersedes) if supersedes is not None else None
        if root is None:
            root, revisions = event.seq, 0
            first[root] = event
        else:
            revisions = latest[root][2] + 1
        root_of[event.seq] = root
        latest[root] = (event, kind, revisions)
    notes = [
        NoteEntry(
            seq=seq,
            latest_seq=event.seq,
            at=first[seq].at,
            kind=kind,
            actor=first[seq].actor,
            text=event.summary,
            revisions=revisions,
        )
        for seq, (event, kind, revisions) in latest.items()
        if kinds is None or kind in kinds
    ]
    return sorted(notes, key=lambda n: (as_utc(n.at), n.seq))


# --- milestones and durations --------------------------------------------------------------------


class Milestone(BaseModel):
    name: str
    at: datetime | None
    source: str


class Duration(BaseModel):
    name: str
    start: str
    end: str
    value: timedelta | None

    @property
    def text(self) -> str:
        if self.value is None:
            return "unknown"
        if self.value < timedelta(0):
            return f"{format_duration(self.value)} (end precedes start: check the timestamps)"
        return format_duration(self.value)


def exposure_ended_at(checks: list[CheckFacts]) -> CheckFacts | None:
    """The first clean check of the final clean streak: after it, no check found access again.

    None when there is no check, or the latest check still found access.
    """
    ran = sorted((c for c in checks if c.ran_at is not None), key=lambda c: (as_utc(c.ran_at), c.number))
    if not ran or not ran[-1].clean:
        return None
    first_clean = ran[-1]
    for check in reversed(ran):
        if not check.clean:
            break
        first_clean = check
    return first_clean


def milestones(data: PostmortemData) -> list[Milestone]:
    inc = data.incident
    if data.first_apply_at:
        contained = Milestone(
            name="contained (first apply)", at=data.first_apply_at, source="first revocation run that changed grants"
        )
    elif inc.contained_at:
        contained = Milestone(
            name="contained (first apply)",
            at=inc.contained_at,
            source="status set to contained; no apply in the ledger",
        )
    else:
        contained = Milestone(name="contained (first apply)", at=None, source="no apply recorded")
    clean = exposure_ended_at(data.checks)
    first_clean = min(
        (c for c in data.checks if c.clean and c.ran_at), key=lambda c: (as_utc(c.ran_at), c.number), default=None
    )
    if clean:
        verified = Milestone(
            name="verified clean", at=clean.ran_at, source=f"check #{clean.number}, first of the final clean streak"
        )
    elif inc.verified_at and not data.checks:
        verified = Milestone(name="verified clean", at=inc.verified_at, source="verified time set by a responder")
    else:
        verified = Milestone(
            name="verified clean",
            at=None,
            source="latest check still found access" if data.checks else "no check recorded",
        )
    return [
        Milestone(
            name="exposure started",
            at=inc.exposure_started_at,
            source="recorded by a responder" if inc.exposure_started_at else "not recorded",
        ),
        Milestone(
            name="detected", at=inc.detected_at, source="recorded by a responder" if inc.detected_at else "not recorded"
        ),
        Milestone(name="declared", at=inc.declared_at, source="declaration" if inc.declared_at else "not recorded"),
        contained,
        Milestone(
            name="first clean check",
            at=first_clean.ran_at if first_clean else None,
            source=(
                f"check #{first_clean.number}"
                + ("" if clean and clean.number == first_clean.number else "; access came back later")
            )
            if first_clean
            else "no clean check",
        ),
        verified,
        Milestone(
            name="resolved",
            at=inc.resolved_at,
            source="status set to resolved" if inc.resolved_at else "not resolved yet",
        ),
    ]


def durations(stones: list[Milestone]) -> list[Duration]:
    at = {m.name: m.at for m in stones}

    def between(name: str, start: str, end: str) -> Duration:
        a, b = at[start], at[end]
        return Duration(name=name, start=start, end=end, value=(as_utc(b) - as_utc(a)) if a and b else None)

    return [
        between("time to detect", "exposure started", "detected"),
        between("time to declare", "detected", "declared"),
        between("time to contain", "declared", "contained (first apply)"),
        between("time to verified clean", "declared", "verified clean"),
        between("time to resolve", "declared", "resolved"),
        between("exposure window", "exposure started", "verified clean"),
    ]
