"""Compile a postmortem (GitHub-flavoured markdown) from a plain data bundle.

The store gathers a `PostmortemData` (core.postmortem_facts); this module lays out the document, so it
is testable without a database. Every number is read from the bundle; a missing input renders as "unknown" or
"none recorded", never as a guess. Cells are escaped (`|`, newlines, `<`) and anything that looks
like a password or token is masked (core.markdown, core.redaction), because summaries are free text typed by people.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import tz

from sevtool.core.incident import Incident
from sevtool.core.markdown import cell, prose, table
from sevtool.core.postmortem_evidence import access_during_exposure, access_exceptions
from sevtool.core.postmortem_facts import (
    UPDATE_NOTE_KINDS,
    NoteEntry,
    PostmortemData,
    durations,
    milestones,
)
from sevtool.core.postmortem_inputs import NOTE_SECTIONS
from sevtool.core.postmortem_resolution import resolution
from sevtool.core.timeparse import as_utc, format_duration, format_utc, parse_duration


def _local(value: datetime, zone: tzinfo) -> str:
    return as_utc(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def load_zone(name: str) -> tuple[tzinfo, str]:
    """The responder's zone by IANA name, and its label; an unknown name falls back to UTC rather than failing the export."""
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        zone = tz.gettz(name)
        return (zone, name) if zone else (UTC, "UTC")


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
    add(
        [
            table(
                [
                    ["incident", inc.ref],
                    ["title", inc.title],
                    [
                        "SEV",
                        f"SEV {inc.sev} now; first SEV {inc.first_sev}, highest SEV {inc.highest_sev}, {sev_changes} change(s)",
                    ],
                    ["status", inc.status.value],
                    ["commander", _who(inc.commander)],
                    ["scribe", _who(inc.scribe)],
                    ["comms", _who(inc.comms)],
                    ["playbook", inc.playbook or "none"],
                    ["declared", format_utc(inc.declared_at)],
                    ["resolved", format_utc(inc.resolved_at)],
                    ["closed", format_utc(inc.closed_at)],
                    ["generated", f"{format_utc(data.generated_at)} (times in UTC; local times in {zone_label})"],
                ],
                ["field", "value"],
            ),
            "",
        ]
    )
    add(["### SEV history", ""])
    if inc.sev_history:
        add(
            [
                table(
                    [
                        [
                            format_utc(c.at),
                            "-" if c.from_sev is None else f"SEV {c.from_sev}",
                            f"SEV {c.to_sev}",
                            c.reason,
                        ]
                        for c in inc.sev_history
                    ],
                    ["when (UTC)", "from", "to", "reason"],
                ),
                "",
            ]
        )
    else:
        add([f"SEV {inc.sev} since declaration; no change recorded.", ""])

    # Summary
    add(["## Summary", ""])
    add(_notes_block(data.notes, "summary", _note_hint(inc, "summary")))

    # Impact
    add(["## Impact", ""])
    add(_impact(data))

    add(["## Access during exposure", ""])
    add(access_during_exposure(data.evidence, inc.ref))

    # Detection
    add(["## Detection", ""])
    add([f"Detected at {format_utc(inc.detected_at)}; exposure started at {format_utc(inc.exposure_started_at)}.", ""])
    add(_notes_block(data.notes, "detection", _note_hint(inc, "detection")))

    # Key timestamps and durations
    add(["## Key timestamps and durations", ""])
    stones = milestones(data)
    add(
        [
            table(
                [[m.name, format_utc(m.at), _local(m.at, zone) if m.at else "unknown", m.source] for m in stones],
                ["milestone", "UTC", f"local ({zone_label})", "source"],
            ),
            "",
        ]
    )
    add(
        [table([[d.name, d.start, d.end, d.text] for d in durations(stones)], ["metric", "from", "to", "duration"]), ""]
    )

    # Timeline
    add(["## Timeline", ""])
    add(_timeline(data, zone, zone_label))

    # Communications
    add(["## Communications", ""])
    add(_communications(data))

    # Resolution and verification
    add(["## Resolution and verification", ""])
    add(resolution(data))
    add(["### Access exceptions", ""])
    add(access_exceptions(data.access_exceptions, data.generated_at))

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
        add(
            [
                table(
                    [
                        [f"AI-{a.id}", a.title, a.owner or "unowned", a.type, a.due or "no due date", a.status]
                        for a in data.action_items
                    ],
                    ["id", "action", "owner", "type", "due", "status"],
                ),
                "",
            ]
        )
    else:
        add(
            [
                f"_None recorded._ Add with `sevtool action add {inc.id} --title T --owner WHO --type prevent --due YYYY-MM-DD`.",
                "",
            ]
        )

    # Appendix
    add(["## Appendix: audit", ""])
    if data.audit:
        verdict = "passed" if data.audit.ok else f"FAILED: {data.audit.problem}"
        add(
            [
                table(
                    [
                        ["chain head", f"event {data.audit.head_seq}, sha256 {data.audit.head_hash}"],
                        ["audit verify", f"{verdict} ({data.audit.events} events in the store)"],
                        ["events of this incident", str(len(data.events))],
                    ],
                    ["field", "value"],
                ),
                "",
            ]
        )
    else:
        add(["Audit not run: unknown.", ""])
    add(
        [
            "_Generated by sevtool from the incident's timeline, ledger, checks and notes. It holds no passwords, "
            "DSN secrets or table contents: sevtool reads catalogs only._",
            "",
        ]
    )
    return "\n".join(out)


def _impact(data: PostmortemData) -> list[str]:
    exp = data.exposure
    out: list[str] = []
    if exp is None or exp.scope_versions == 0:
        out += ["_No scan recorded: objects exposed unknown._", ""]
    else:
        out += [
            f"**{exp.objects:,} objects** exposed ({exp.findings:,} findings: object x principal x access path x privilege), "
            f"found by {exp.scope_versions} scope version(s) on {prose(', '.join(exp.targets)) or 'unknown target'}.",
            "",
        ]
        out += ["### By data sensitivity", ""]
        out += [table([[k, f"{v:,}"] for k, v in exp.by_dss.items()] or [["none", "0"]], ["DSS rating", "objects"]), ""]
        out += ["### By access path", ""]
        out += [
            table(
                [[p.path, f"{p.objects:,}", f"{p.findings:,}"] for p in exp.by_path] or [["none", "0", "0"]],
                ["access path", "objects", "findings"],
            ),
            "",
        ]
        out += ["### Principals", ""]
        out += [
            table(
                [
                    [p.name, "unknown" if p.members is None else f"{p.members:,}", f"{p.objects:,}"]
                    for p in exp.principals
                ]
                or [["none", "", "0"]],
                ["principal", "members", "objects readable"],
            ),
            "",
        ]
    stones = {m.name: m for m in milestones(data)}
    window = next(d for d in durations(list(stones.values())) if d.name == "exposure window")
    end = stones["verified clean"]
    end_text = format_utc(end.at) if end.at else ("ongoing: " + end.source)
    out += [f"**Exposure window:** {window.text} (from {format_utc(stones['exposure started'].at)} to {end_text}).", ""]
    total = sum(r.objects for r in data.regressions)
    open_regressions = sum(r.still_open for r in data.regressions)
    if total:
        checks = len({r.check_number for r in data.regressions})
        out += [
            f"**Regressions:** {total:,} object(s) readable again after a fix, found by {checks} check(s); "
            f"{open_regressions:,} still open.",
            "",
        ]
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
        rows.append(
            [
                str(e.seq),
                *utc_and_local,
                "★" if e.key else "",
                escaped_once(e.kind),
                escaped_once(e.actor),
                f"**{what}**" if e.key and what else what,
            ]
        )
    keys = sum(1 for e in data.events if e.key)
    return [
        f"{len(data.events)} events; {keys} marked key (★, bold). Mark more with `sevtool mark {data.incident.id} EVENT`.",
        "",
        table(rows, ["#", "UTC", f"local ({zone_label})", "key", "kind", "who", "what"], escaped=True, pad=False),
        "",
    ]


def _communications(data: PostmortemData) -> list[str]:
    """Stakeholder updates (notes of kind update) against the SEV policy's cadence."""
    inc = data.incident
    updates = [n for n in data.notes if n.kind in UPDATE_NOTE_KINDS]
    cadence = (
        f"the SEV {inc.highest_sev} policy asks for an update every {data.update_every}"
        if data.update_every
        else "no cadence known"
    )
    if not updates:
        return [
            f"_No stakeholder update recorded_ ({cadence}). Add with `sevtool note {inc.id} TEXT --kind update`.",
            "",
        ]
    end = inc.resolved_at or data.generated_at
    marks = sorted(as_utc(t) for t in [inc.declared_at, *(n.at for n in updates), end] if t is not None)
    gap = max((b - a for a, b in itertools.pairwise(marks)), default=None)
    late = ""
    if gap is not None and data.update_every:
        late = " (longer than the cadence)" if gap > parse_duration(data.update_every) else " (within the cadence)"
    return [
        f"{len(updates)} stakeholder update(s); {cadence}. Longest gap from declaration through the updates to "
        f"{'resolution' if inc.resolved_at else 'now'}: {format_duration(gap)}{late}.",
        "",
        table([[format_utc(n.at), n.actor, n.text] for n in updates], ["UTC", "who", "update"]),
        "",
    ]
