"""Rendering a postmortem from a data bundle: durations, unknowns, escaping, redaction, key events, notes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sevtool.core.incident import Incident, SevChange, Status
from sevtool.core.markdown import table
from sevtool.core.postmortem import render
from sevtool.core.postmortem_facts import (
    DOCUMENT_NOTE_KINDS,
    ActionItemFacts,
    AuditFacts,
    CheckFacts,
    ExposureFacts,
    LedgerFacts,
    PathFacts,
    PostmortemData,
    PrincipalFacts,
    RegressionFacts,
    TimelineEntry,
    current_notes,
    durations,
    milestones,
)
from sevtool.core.timeline import Event

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def incident(**kw) -> Incident:
    base = {
        "id": 7,
        "title": "Telemetry tables readable by all employees",
        "sev": 2,
        "status": Status.RESOLVED,
        "commander": "alice",
        "declared_at": T0,
        "sev_history": [SevChange(from_sev=None, to_sev=2, reason="declared", at=T0)],
    }
    return Incident(**{**base, **kw})


def check(number: int, minutes: float, clean: bool, **kw) -> CheckFacts:
    return CheckFacts(number=number, ran_at=at(minutes), clean=clean, **kw)


def table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The cells of the GitHub table whose header row starts with `header_start`, split on unescaped pipes."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_start}"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def duration_of(markdown: str, metric: str) -> str:
    return next(row[3] for row in table_rows(markdown, "metric") if row[0] == metric)


def drill_bundle() -> PostmortemData:
    """declare -> apply -> clean -> regression -> re-apply -> clean, clean -> resolve."""
    inc = incident(
        exposure_started_at=at(-30 * 24 * 60),
        detected_at=at(-90),
        contained_at=at(60),
        verified_at=at(75),
        resolved_at=at(24 * 60),
        sev=1,
        sev_history=[
            SevChange(from_sev=None, to_sev=2, reason="declared", at=T0),
            SevChange(from_sev=2, to_sev=1, reason="DSS 4 keystrokes in scope", at=at(30)),
        ],
    )
    return PostmortemData(
        incident=inc,
        generated_at=at(25 * 60),
        zone="America/Los_Angeles",
        first_apply_at=at(60),
        checks=[
            check(1, 75, True),
            check(2, 135, False, exposed_objects=40, findings=40, regressions=40),
            check(3, 200, True),
            check(4, 260, True),
        ],
        regressions=[
            RegressionFacts(
                check_number=2,
                principal="all_employees",
                path="public",
                cause="GRANT re-added by etl_job",
                objects=40,
                examples=["telemetry.keys_001", "telemetry.keys_002"],
                first_seen_at=at(135),
                closed_at=at(200),
                closed_by="check 3",
            )
        ],
        exposure=ExposureFacts(
            targets=["warehouse"],
            scope_versions=1,
            objects=45000,
            findings=45012,
            by_dss={"DSS 4": 30000, "DSS 3": 15000},
            by_path=[
                PathFacts(path="public", objects=45000, findings=45000),
                PathFacts(path="column", objects=12, findings=12),
            ],
            principals=[PrincipalFacts(name="all_employees", objects=45000, members=12345)],
        ),
        ledger=LedgerFacts(plan_versions=2, actions=45040, objects=45000, by_status={"applied": 45040}),
        action_items=[
            ActionItemFacts(
                id=1, title="Alert on GRANT TO PUBLIC", owner="bob", type="detect", due="2026-07-01", status="open"
            )
        ],
        audit=AuditFacts(events=120, head_seq=120, head_hash="ab" * 32, ok=True),
    )


def test_durations_are_computed_from_the_timeline_inputs():
    md = render(drill_bundle())
    assert duration_of(md, "time to detect") == "29d 22h 30m"  # 30 days before T0 -> 90 min before T0
    assert duration_of(md, "time to declare") == "1h 30m"
    assert duration_of(md, "time to contain") == "1h"  # declared -> first apply
    assert (
        duration_of(md, "time to verified clean") == "3h 20m"
    )  # the clean check after the regression, not the first one
    assert duration_of(md, "time to resolve") == "1d"
    assert duration_of(md, "exposure window") == "30d 3h 20m"
    assert "**45,000 objects**" in md and "| DSS 4        | 30,000    |" in md
    assert ["all_employees", "12,345", "45,000"] in table_rows(md, "principal")
    assert "40 object(s) readable again after a fix, found by 1 check(s); 0 still open" in md


def test_verified_clean_is_the_first_check_of_the_final_clean_streak():
    bundle = drill_bundle()
    stones = {m.name: m for m in milestones(bundle)}
    assert stones["verified clean"].at == at(200)
    assert "check #3" in stones["verified clean"].source
    assert stones["first clean check"].at == at(75) and "access came back later" in stones["first clean check"].source
    still_exposed = bundle.model_copy(
        update={"checks": [*bundle.checks, check(5, 300, False, exposed_objects=1, findings=1)]}
    )
    ongoing = {m.name: m for m in milestones(still_exposed)}
    assert ongoing["verified clean"].at is None and "still found access" in ongoing["verified clean"].source
    assert "ongoing: latest check still found access" in render(still_exposed)


def test_missing_inputs_render_as_unknown_never_guessed():
    bare = PostmortemData(incident=incident(status=Status.DECLARED), generated_at=T0)
    md = render(bare)
    for metric in (
        "time to detect",
        "time to declare",
        "time to contain",
        "time to verified clean",
        "time to resolve",
        "exposure window",
    ):
        assert duration_of(md, metric) == "unknown", metric
    assert "_No scan recorded: objects exposed unknown._" in md
    assert "_No revocation plan recorded._" in md
    assert "_No check recorded: the fix is unverified._" in md
    assert "**Regressions:** unknown: no check recorded." in md
    assert "Audit not run: unknown." in md
    assert (
        md.count("_None recorded._") == 9
    )  # summary, detection, root cause, trigger, contributing, 3 lessons, action items
    # With only the detection time missing, just the two durations that need it are unknown.
    partial = render(
        drill_bundle().model_copy(update={"incident": drill_bundle().incident.model_copy(update={"detected_at": None})})
    )
    assert duration_of(partial, "time to detect") == "unknown" and duration_of(partial, "time to declare") == "unknown"
    assert duration_of(partial, "time to contain") == "1h"


def test_contained_falls_back_to_the_status_change_and_says_so():
    bundle = drill_bundle().model_copy(update={"first_apply_at": None})
    stones = {m.name: m for m in milestones(bundle)}
    assert stones["contained (first apply)"].at == at(60)
    assert "no apply in the ledger" in stones["contained (first apply)"].source
    assert {d.name: d.value for d in durations(list(stones.values()))}["time to contain"] == timedelta(hours=1)


def test_cells_are_escaped_so_every_row_keeps_its_columns():
    nasty = "a | b\nsecond line <script>x</script> \\ end"
    bundle = drill_bundle().model_copy(
        update={
            "events": [TimelineEntry(seq=1, at=T0, kind="note", actor="eve|x", summary=nasty)],
            "incident": drill_bundle().incident.model_copy(update={"title": "pipe | in\ntitle"}),
        }
    )
    md = render(bundle)
    rows = table_rows(md, "#")
    assert all(len(r) == 7 for r in rows), rows
    what = rows[2][6]
    assert what == "a \\| b<br>second line &lt;script>x&lt;/script> \\\\ end"
    assert rows[2][5] == "eve\\|x"
    assert md.splitlines()[0] == "# Postmortem INC-7: pipe | in title"
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line


def test_passwords_and_tokens_never_reach_the_document():
    summaries = [
        "scanned postgresql://scanner:hunter2@db.internal:5432/warehouse",
        "dsn host=db user=svc password=s3cret dbname=w",
        "PGPASSWORD=topsecret sevtool scan",
        "curl -H 'Authorization: Bearer eyJabc.def-ghi'",
    ]
    events = [TimelineEntry(seq=i, at=at(i), kind="note", actor="alice", summary=s) for i, s in enumerate(summaries, 1)]
    md = render(drill_bundle().model_copy(update={"events": events}))
    for secret in ("hunter2", "s3cret", "topsecret", "eyJabc"):
        assert secret not in md
    assert "postgresql://scanner:***@db.internal:5432/warehouse" in md and "password=***" in md


def test_key_events_are_highlighted():
    events = [
        TimelineEntry(seq=1, at=T0, kind="declared", actor="alice", summary="Declared SEV 2"),
        TimelineEntry(seq=2, at=at(5), kind="note", actor="bob", summary="found the ETL job", key=True),
    ]
    md = render(drill_bundle().model_copy(update={"events": events}))
    rows = {r[0]: r for r in table_rows(md, "#")[2:]}
    assert rows["2"][3] == "★" and rows["2"][6] == "**found the ETL job**"
    assert rows["1"][3] == "" and rows["1"][6] == "Declared SEV 2"
    assert rows["2"][2] == "2026-06-18 05:05:00 PDT"  # the responder's zone beside UTC
    assert "2 events; 1 marked key" in md


def test_note_edits_supersede_and_keep_history():
    def note(seq, text, kind="root-cause", **data):
        return Event(
            seq=seq,
            incident_id=7,
            at=at(seq),
            kind="note",
            actor="alice",
            summary=text,
            data={"note_kind": kind, **data},
        )

    events = [
        note(1, "bad grant"),
        note(2, "went well: fast", kind="went-well"),
        note(3, "a job re-grants nightly", supersedes=1),
        note(4, "etl_job re-grants nightly via IaC", supersedes=3),
    ]
    notes = current_notes(events)
    assert [(n.seq, n.latest_seq, n.text, n.revisions) for n in notes] == [
        (1, 4, "etl_job re-grants nightly via IaC", 2),
        (2, 2, "went well: fast", 0),
    ]
    bundle = drill_bundle().model_copy(
        update={
            "notes": notes,
            "events": [
                TimelineEntry(seq=e.seq, at=e.at, kind=e.kind, actor=e.actor, summary=e.summary) for e in events
            ],
        }
    )
    md = render(bundle)
    root = md.split("## Root cause")[1].split("###")[0]
    assert "etl_job re-grants nightly via IaC" in root and "bad grant" not in root and "edited 2x" in root
    assert "| bad grant" in md.split("## Timeline")[1]  # history stays in the timeline


def test_notes_kept_by_kind_are_chosen_after_edits():
    def note(seq, text, kind, **data):
        return Event(
            seq=seq,
            incident_id=7,
            at=at(seq),
            kind="note",
            actor="alice",
            summary=text,
            data={"note_kind": kind, **data},
        )

    events = [
        note(1, "plain", "note"),
        note(2, "bad grant", "root-cause"),
        note(3, "fast re-checks", "went-well", supersedes=1),
        note(4, "just a note", "note"),
        note(5, "a job re-grants", "note", supersedes=2),
    ]
    kept = current_notes(events, DOCUMENT_NOTE_KINDS)
    assert kept == [n for n in current_notes(events) if n.kind in DOCUMENT_NOTE_KINDS]
    assert [(n.seq, n.latest_seq, n.kind, n.text, n.revisions) for n in kept] == [
        (1, 3, "went-well", "fast re-checks", 1)
    ]


def test_the_unpadded_timeline_table_is_the_text_tabulate_writes():
    """The timeline table is written directly, not through tabulate, for speed; the document must not change."""
    from tabulate import tabulate

    headers = ["#", "UTC", "key", "kind", "who", "what"]
    rows = [
        ["1", "2026-06-18 12:00:00Z", "", "note", "eve\\|x", "a \\| b<br>c"],
        ["10000", "2026-06-18 12:00:01Z", "★", "True", "", "**found the ETL job**"],
        ["7", "", "", "k", "bob", "1.5"],
    ]
    expected = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True, stralign=None)
    assert table(rows, headers, escaped=True, pad=False) == expected
    assert table([], headers, escaped=True, pad=False) == tabulate(
        [], headers=headers, tablefmt="github", stralign=None
    )


def test_ten_thousand_events_render_every_row_once():
    events = [
        TimelineEntry(seq=i, at=T0 + timedelta(seconds=i), kind="note", actor="bot", summary=f"batch {i}")
        for i in range(1, 10_001)
    ]
    md = render(drill_bundle().model_copy(update={"events": events}))
    rows = table_rows(md, "#")[2:]
    assert len(rows) == 10_000 and rows[-1][0] == "10000" and rows[-1][6] == "batch 10000"


def test_regressions_show_cause_and_how_they_were_closed():
    md = render(drill_bundle())
    row = table_rows(md, "found by check")[2]
    assert row[:5] == [
        "#2",
        "GRANT re-added by etl_job",
        "all_employees",
        "public",
        "40: telemetry.keys_001, telemetry.keys_002 and 38 more",
    ]
    assert row[6] == "2026-06-18 15:20:00Z by check 3"
    still_open = drill_bundle().regressions[0].model_copy(update={"still_open": 3, "closed_at": None})
    assert "OPEN (3 not closed)" in render(drill_bundle().model_copy(update={"regressions": [still_open]}))


def test_stakeholder_updates_are_measured_against_the_cadence():
    from sevtool.core.postmortem_facts import NoteEntry

    def update(minutes: float, text: str) -> NoteEntry:
        return NoteEntry(
            seq=int(minutes), latest_seq=int(minutes), at=at(minutes), kind="update", actor="carol", text=text
        )

    bundle = drill_bundle().model_copy(
        update={"update_every": "30m", "notes": [update(10, "first | update"), update(40, "second")]}
    )
    md = render(bundle)
    section = md.split("## Communications")[1].split("## ")[0]
    # declared 0 -> 10 -> 40 -> resolved 24h: the last gap is the longest
    assert "2 stakeholder update(s); the SEV 1 policy asks for an update every 30m. " in section
    assert "to resolution: 23h 20m (longer than the cadence)." in section
    assert ["2026-06-18 12:10:00Z", "carol", "first \\| update"] in table_rows(md, "UTC  ")[2:]
    assert "_No stakeholder update recorded_ (no cadence known)" in render(
        PostmortemData(incident=incident(), generated_at=T0)
    )
