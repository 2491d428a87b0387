"""Compile a postmortem (GitHub-flavoured markdown) from a plain data bundle.

The store gathers a `PostmortemData`; this module only computes and renders, so it is testable
without a database. Every number is read from the bundle; a missing input renders as "unknown" or
"none recorded", never as a guess. Cells are escaped (`|`, newlines, `<`) and anything that looks
like a password or token is masked, because summaries are free text typed by people.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz
from pydantic import BaseModel, Field
from tabulate import tabulate

from sevtool.core.incident import Incident
from sevtool.core.postmortem_inputs import NOTE_SECTIONS
from sevtool.core.timeline import Event
from sevtool.core.timeparse import as_utc, format_duration, format_utc, parse_duration


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

    seq: int                 # the event that first recorded the note: its stable identity
    latest_seq: int          # the event holding the current text
    at: datetime
    kind: str
    actor: str
    text: str
    revisions: int = 0


class PrincipalFacts(BaseModel):
    name: str
    objects: int
    members: int | None = None   # how many roles/people the principal stands for, when the scan recorded it


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
        return self.model_copy(update={"principals": [p.model_copy(update={"members": members.get(p.name)}) for p in self.principals]})


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
    examples: list[str] = Field(default_factory=list)   # a few object names, for the reader to recognise
    first_seen_at: datetime | None = None
    still_open: int = 0
    closed_at: datetime | None = None                    # when the last of them was closed
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
    zone: str = "UTC"                     # the responder's IANA zone, for the local-time column
    events: list[TimelineEntry] = Field(default_factory=list)
    notes: list[NoteEntry] = Field(default_factory=list)   # current notes; render reads only DOCUMENT_NOTE_KINDS
    exposure: ExposureFacts | None = None
    ledger: LedgerFacts | None = None
    first_apply_at: datetime | None = None
    checks: list[CheckFacts] = Field(default_factory=list)
    regressions: list[RegressionFacts] = Field(default_factory=list)
    action_items: list[ActionItemFacts] = Field(default_factory=list)
    audit: AuditFacts | None = None
    update_every: str | None = None       # stakeholder update cadence of the SEV policy at the highest SEV reached


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
    first: dict[int, Event] = {}                      # the event that first recorded a note: its identity
    latest: dict[int, tuple[Event, str, int]] = {}    # its current text: the latest event, the kind, edits so far
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
    notes = [NoteEntry(seq=seq, latest_seq=event.seq, at=first[seq].at, kind=kind, actor=first[seq].actor, text=event.summary,
                       revisions=revisions)
             for seq, (event, kind, revisions) in latest.items() if kinds is None or kind in kinds]
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
        contained = Milestone(name="contained (first apply)", at=data.first_apply_at, source="first revocation run that changed grants")
    elif inc.contained_at:
        contained = Milestone(name="contained (first apply)", at=inc.contained_at, source="status set to contained; no apply in the ledger")
    else:
        contained = Milestone(name="contained (first apply)", at=None, source="no apply recorded")
    clean = exposure_ended_at(data.checks)
    first_clean = min((c for c in data.checks if c.clean and c.ran_at), key=lambda c: (as_utc(c.ran_at), c.number), default=None)
    if clean:
        verified = Milestone(name="verified clean", at=clean.ran_at, source=f"check #{clean.number}, first of the final clean streak")
    elif inc.verified_at and not data.checks:
        verified = Milestone(name="verified clean", at=inc.verified_at, source="verified time set by a responder")
    else:
        verified = Milestone(name="verified clean", at=None,
                             source="latest check still found access" if data.checks else "no check recorded")
    return [
        Milestone(name="exposure started", at=inc.exposure_started_at, source="recorded by a responder" if inc.exposure_started_at else "not recorded"),
        Milestone(name="detected", at=inc.detected_at, source="recorded by a responder" if inc.detected_at else "not recorded"),
        Milestone(name="declared", at=inc.declared_at, source="declaration" if inc.declared_at else "not recorded"),
        contained,
        Milestone(name="first clean check", at=first_clean.ran_at if first_clean else None,
                  source=(f"check #{first_clean.number}" + ("" if clean and clean.number == first_clean.number else "; access came back later"))
                  if first_clean else "no clean check"),
        verified,
        Milestone(name="resolved", at=inc.resolved_at, source="status set to resolved" if inc.resolved_at else "not resolved yet"),
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


# --- escaping and redaction ----------------------------------------------------------------------

_URL_SECRET = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]+)@", re.I)
_KV_SECRET = re.compile(r"\b(?P<key>password|passwd|pwd|pgpassword|token|secret|api[_-]?key)(?P<sep>\s*[=:]\s*)(?P<secret>'[^']*'|\"[^\"]*\"|\S+)", re.I)
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=\-]+", re.I)


# Lower-case fragments every secret pattern above contains: a cell without any of them needs no regex
# (a case-insensitive regex search per cell was a fifth of a 10,000-event render).
_SECRET_HINTS = ("://", "pass", "pwd", "token", "secret", "api", "bearer")
_NEEDS_ESCAPE = re.compile(r"[<\\|\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def redact(text: str) -> str:
    """Mask anything shaped like a password or token; DSNs keep their user, host and database."""
    lower = text.lower()
    if not any(hint in lower for hint in _SECRET_HINTS):
        return text
    text = _URL_SECRET.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _KV_SECRET.sub(lambda m: f"{m['key']}{m['sep']}***", text)
    return _BEARER.sub(r"\1 ***", text)


def cell(value: object) -> str:
    """One table cell: redacted, `<` escaped (no HTML), `|` escaped, newlines as <br>, so the row stays one row."""
    if value is None:
        return ""
    text = redact(str(value))
    if not _NEEDS_ESCAPE.search(text):
        return text.strip()
    text = text.replace("<", "&lt;")
    text = _CONTROL.sub("", text).replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"\r\n|\r|\n", "<br>", text.strip())


def prose(value: str) -> str:
    """Free text outside tables: redacted, and `<` escaped so a stray tag cannot swallow the rest."""
    return _CONTROL.sub("", redact(value)).replace("<", "&lt;").strip()


def table(rows: list[list[Any]], headers: list[str], *, escaped: bool = False, pad: bool = True) -> str:
    """A GitHub table; `escaped=True` when the caller already passed every cell through `cell`.

    `pad=False` skips column padding: markdown does not need it, and a 10,000-row timeline is then
    written directly instead of through tabulate.
    """
    body = rows if escaped else [[cell(v) for v in row] for row in rows]
    head = [cell(h) for h in headers]
    if not pad:
        return _unpadded_table(body, head)
    return tabulate(body, headers=head, tablefmt="github", disable_numparse=True, stralign="left")


def _unpadded_table(rows: list[list[str]], headers: list[str]) -> str:
    """The text tabulate's github format gives for unaligned cells, without its per-cell type deduction,
    which took most of a 10,000-event render: cells as they are, a rule as wide as each column
    (at least its header plus two)."""
    widths = [len(h) + 2 for h in headers]
    for i, column in enumerate(zip(*rows)):
        widths[i] = max(widths[i], max(map(len, column)))
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- rendering -----------------------------------------------------------------------------------

def _when(value: datetime | None) -> str:
    return format_utc(value) if value else "unknown"


def _local(value: datetime, zone: tzinfo) -> str:
    return as_utc(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def load_zone(name: str) -> tuple[tzinfo, str]:
    """The responder's zone by IANA name, and its label; an unknown name falls back to UTC rather than failing the export."""
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        zone = tz.gettz(name)
        return (zone, name) if zone else (timezone.utc, "UTC")


def _who(value: str | None) -> str:
    return value or "not assigned"


def _notes_block(notes: list[NoteEntry], kind: str, hint: str) -> list[str]:
    picked = [n for n in notes if n.kind == kind]
    if not picked:
        return [f"_None recorded._ {hint}", ""]
    out = []
    for n in picked:
        edited = f", edited {n.revisions}x" if n.revisions else ""
        text = prose(n.text).replace("\r\n", "\n").replace("\n", "\n  ")
        out.append(f"- {text} _(event {n.seq}, {n.actor}{edited})_")
    return [*out, ""]


def _note_hint(incident: Incident, kind: str) -> str:
    return f"Add with `sevtool note {incident.id} TEXT --kind {kind}`."


def render(data: PostmortemData) -> str:
    inc = data.incident
    zone, zone_label = load_zone(data.zone)
    out: list[str] = []
    add = out.extend

    # Header
    add([f"# Postmortem {inc.ref}: {prose(' '.join(inc.title.split()))}", ""])
    sev_changes = len(inc.sev_history) - 1 if inc.sev_history else 0
    add([table([
        ["incident", inc.ref],
        ["title", inc.title],
        ["SEV", f"SEV {inc.sev} now; first SEV {inc.first_sev}, highest SEV {inc.highest_sev}, {sev_changes} change(s)"],
        ["status", inc.status.value],
        ["commander", _who(inc.commander)],
        ["scribe", _who(inc.scribe)],
        ["comms", _who(inc.comms)],
        ["playbook", inc.playbook or "none"],
        ["declared", _when(inc.declared_at)],
        ["resolved", _when(inc.resolved_at)],
        ["closed", _when(inc.closed_at)],
        ["generated", f"{format_utc(data.generated_at)} (times in UTC; local times in {zone_label})"],
    ], ["field", "value"]), ""])
    add(["### SEV history", ""])
    if inc.sev_history:
        add([table([[format_utc(c.at), "-" if c.from_sev is None else f"SEV {c.from_sev}", f"SEV {c.to_sev}", c.reason]
                    for c in inc.sev_history], ["when (UTC)", "from", "to", "reason"]), ""])
    else:
        add([f"SEV {inc.sev} since declaration; no change recorded.", ""])

    # Summary
    add(["## Summary", ""])
    add(_notes_block(data.notes, "summary", _note_hint(inc, "summary")))

    # Impact
    add(["## Impact", ""])
    add(_impact(data))

    # Detection
    add(["## Detection", ""])
    add([f"Detected at {_when(inc.detected_at)}; exposure started at {_when(inc.exposure_started_at)}.", ""])
    add(_notes_block(data.notes, "detection", _note_hint(inc, "detection")))

    # Key timestamps and durations
    add(["## Key timestamps and durations", ""])
    stones = milestones(data)
    add([table([[m.name, _when(m.at), _local(m.at, zone) if m.at else "unknown", m.source] for m in stones],
               ["milestone", "UTC", f"local ({zone_label})", "source"]), ""])
    add([table([[d.name, d.start, d.end, d.text] for d in durations(stones)], ["metric", "from", "to", "duration"]), ""])

    # Timeline
    add(["## Timeline", ""])
    add(_timeline(data, zone, zone_label))

    # Communications
    add(["## Communications", ""])
    add(_communications(data))

    # Resolution and verification
    add(["## Resolution and verification", ""])
    add(_resolution(data))

    # Root cause
    add(["## Root cause", ""])
    add(_notes_block(data.notes, "root-cause", _note_hint(inc, "root-cause")))
    add(["### Trigger", ""])
    add(_notes_block(data.notes, "trigger", _note_hint(inc, "trigger")))
    add(["### Contributing factors", ""])
    add(_notes_block(data.notes, "contributing", _note_hint(inc, "contributing")))

    # Lessons
    add(["## Lessons", ""])
    for kind in ("went-well", "went-wrong", "lucky"):
        add([f"### {NOTE_SECTIONS[kind]}", ""])
        add(_notes_block(data.notes, kind, _note_hint(inc, kind)))

    # Action items
    add(["## Action items", ""])
    if data.action_items:
        add([table([[f"AI-{a.id}", a.title, a.owner or "unowned", a.type, a.due or "no due date", a.status] for a in data.action_items],
                   ["id", "action", "owner", "type", "due", "status"]), ""])
    else:
        add([f"_None recorded._ Add with `sevtool action add {inc.id} --title T --owner WHO --type prevent --due YYYY-MM-DD`.", ""])

    # Appendix
    add(["## Appendix: audit", ""])
    if data.audit:
        verdict = "passed" if data.audit.ok else f"FAILED: {data.audit.problem}"
        add([table([
            ["chain head", f"event {data.audit.head_seq}, sha256 {data.audit.head_hash}"],
            ["audit verify", f"{verdict} ({data.audit.events} events in the store)"],
            ["events of this incident", str(len(data.events))],
        ], ["field", "value"]), ""])
    else:
        add(["Audit not run: unknown.", ""])
    add(["_Generated by sevtool from the incident's timeline, ledger, checks and notes. It holds no passwords, "
         "DSN secrets or table contents: sevtool reads catalogs only._", ""])
    return "\n".join(out)


def _impact(data: PostmortemData) -> list[str]:
    exp = data.exposure
    out: list[str] = []
    if exp is None or exp.scope_versions == 0:
        out += ["_No scan recorded: objects exposed unknown._", ""]
    else:
        out += [f"**{exp.objects:,} objects** exposed ({exp.findings:,} findings: object x principal x access path x privilege), "
                f"found by {exp.scope_versions} scope version(s) on {prose(', '.join(exp.targets)) or 'unknown target'}.", ""]
        out += ["### By data sensitivity", ""]
        out += [table([[k, f"{v:,}"] for k, v in exp.by_dss.items()] or [["none", "0"]], ["DSS rating", "objects"]), ""]
        out += ["### By access path", ""]
        out += [table([[p.path, f"{p.objects:,}", f"{p.findings:,}"] for p in exp.by_path] or [["none", "0", "0"]],
                      ["access path", "objects", "findings"]), ""]
        out += ["### Principals", ""]
        out += [table([[p.name, "unknown" if p.members is None else f"{p.members:,}", f"{p.objects:,}"] for p in exp.principals]
                      or [["none", "", "0"]], ["principal", "members", "objects readable"]), ""]
    stones = {m.name: m for m in milestones(data)}
    window = next(d for d in durations(list(stones.values())) if d.name == "exposure window")
    end = stones["verified clean"]
    end_text = _when(end.at) if end.at else ("ongoing: " + end.source)
    out += [f"**Exposure window:** {window.text} (from {_when(stones['exposure started'].at)} to {end_text}).", ""]
    total = sum(r.objects for r in data.regressions)
    open_regressions = sum(r.still_open for r in data.regressions)
    if total:
        checks = len({r.check_number for r in data.regressions})
        out += [f"**Regressions:** {total:,} object(s) readable again after a fix, found by {checks} check(s); "
                f"{open_regressions:,} still open.", ""]
    elif data.checks:
        out += ["**Regressions:** none: every fix stuck.", ""]
    else:
        out += ["**Regressions:** unknown: no check recorded.", ""]
    return out


def _timeline(data: PostmortemData, zone: tzinfo, zone_label: str) -> list[str]:
    if not data.events:
        return ["_No events._", ""]
    # Events come in bursts and from few people: times are formatted once per second, kinds and actors
    # escaped once per value.
    times: dict[datetime, tuple[str, str]] = {}
    escaped: dict[str, str] = {}

    def escaped_once(value: str) -> str:
        text = escaped.get(value)
        if text is None:
            text = escaped[value] = cell(value)
        return text

    rows = []
    for e in data.events:
        second = e.at.replace(microsecond=0)
        utc_and_local = times.get(second)
        if utc_and_local is None:
            utc_and_local = times[second] = (format_utc(second), _local(second, zone))
        what = cell(e.summary)
        # Seq, times and the marker are generated here; only kind, actor and summary come from people.
        rows.append([str(e.seq), *utc_and_local, "★" if e.key else "", escaped_once(e.kind), escaped_once(e.actor),
                     f"**{what}**" if e.key and what else what])
    keys = sum(1 for e in data.events if e.key)
    return [f"{len(data.events)} events; {keys} marked key (★, bold). Mark more with `sevtool mark {data.incident.id} EVENT`.", "",
            table(rows, ["#", "UTC", f"local ({zone_label})", "key", "kind", "who", "what"], escaped=True, pad=False), ""]


def _communications(data: PostmortemData) -> list[str]:
    """Stakeholder updates (notes of kind update) against the SEV policy's cadence."""
    inc = data.incident
    updates = [n for n in data.notes if n.kind in UPDATE_NOTE_KINDS]
    cadence = f"the SEV {inc.highest_sev} policy asks for an update every {data.update_every}" if data.update_every else "no cadence known"
    if not updates:
        return [f"_No stakeholder update recorded_ ({cadence}). Add with `sevtool note {inc.id} TEXT --kind update`.", ""]
    end = inc.resolved_at or data.generated_at
    marks = sorted(as_utc(t) for t in [inc.declared_at, *(n.at for n in updates), end] if t is not None)
    gap = max((b - a for a, b in zip(marks, marks[1:])), default=None)
    late = ""
    if gap is not None and data.update_every:
        late = " (longer than the cadence)" if gap > parse_duration(data.update_every) else " (within the cadence)"
    return [f"{len(updates)} stakeholder update(s); {cadence}. Longest gap from declaration through the updates to "
            f"{'resolution' if inc.resolved_at else 'now'}: {format_duration(gap)}{late}.", "",
            table([[format_utc(n.at), n.actor, n.text] for n in updates], ["UTC", "who", "update"]), ""]


def _resolution(data: PostmortemData) -> list[str]:
    out: list[str] = ["### Revocation ledger", ""]
    ledger = data.ledger
    if ledger is None or ledger.actions == 0:
        out += ["_No revocation plan recorded._", ""]
    else:
        out += [f"{ledger.actions:,} actions over {ledger.objects:,} objects in {ledger.plan_versions} plan version(s); "
                f"first applied {_when(data.first_apply_at)}.", ""]
        out += [table([[status, f"{count:,}"] for status, count in ledger.by_status.items()], ["status", "actions"]), ""]
    out += ["### Checks", ""]
    if data.checks:
        out += [table([[f"#{c.number}", format_utc(c.scheduled_at) if c.scheduled_at else "on demand", _when(c.ran_at), "clean" if c.clean else "EXPOSED",
                        f"{c.exposed_objects:,}", f"{c.findings:,}", str(c.regressions)] for c in data.checks],
                      ["check", "scheduled (UTC)", "ran (UTC)", "result", "objects exposed", "findings", "regressions"]), ""]
    else:
        out += ["_No check recorded: the fix is unverified._", ""]
    out += ["### Regressions", ""]
    if data.regressions:
        out += [table([[f"#{r.check_number}" if r.check_number else "", r.cause, r.principal, r.path, _objects_text(r),
                        _when(r.first_seen_at), _closed_text(r)] for r in data.regressions],
                      ["found by check", "cause", "principal", "access path", "objects", "first seen (UTC)", "closed"]), ""]
    else:
        out += ["None." if data.checks else "_Unknown: no check recorded._", ""]
    return out


def _objects_text(r: RegressionFacts) -> str:
    shown = ", ".join(r.examples)
    more = r.objects - len(r.examples)
    return f"{r.objects:,}: {shown}" + (f" and {more:,} more" if more > 0 else "")


def _closed_text(r: RegressionFacts) -> str:
    if r.still_open:
        return f"OPEN ({r.still_open:,} not closed)"
    return f"{_when(r.closed_at)} by {r.closed_by or 'unknown'}"
