"""The Evidence tab: paths prefilled from the team config, the use case in a worker, answers per object on screen.

A Unity Catalog incident on the loopback catalog with a generated audit export at fixed times, so the snapshot is
stable: the window runs from the recorded exposure start to the app's fixed clock (nothing applied yet).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.uc_audit_export import heartbeats, row, write
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.tui.app import create_app
from sevtool.tui.widgets.evidence_pane import EvidencePane

SIZE = (160, 48)
FIXED_NOW = datetime(2026, 6, 18, 18, 0, tzinfo=UTC)  # the `fixed_clock` fixture's time
EXPORT = "audit.jsonl"  # relative to the test's working directory: the snapshot shows the path


@pytest.fixture
def uc_incident(sqlite_wb, config_path, tmp_path, monkeypatch):
    """Exposure from FIXED_NOW-3h; the export is silent from 15:50 to 17:30 (unknown); alice and bob read keystrokes."""
    server = FakeUnityCatalog(page_size=5).start()
    seed_drill(server, "analysts")
    monkeypatch.chdir(tmp_path)
    config_path.write_text(
        f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\n\n[evidence]\nlogs = ["{EXPORT}"]\n'
    )
    wb = sqlite_wb
    incident = wb.incidents.declare(
        "Lake tables readable by analysts", 2, commander="alice", at=FIXED_NOW - timedelta(hours=4)
    )
    wb.incidents.set_time(incident.id, "exposure_started_at", FIXED_NOW - timedelta(hours=3))
    wb.scanning.scan(incident.id, "lake", ["analysts", "bob@corp.com"])
    rows = [
        *heartbeats(FIXED_NOW - timedelta(hours=3, minutes=30), FIXED_NOW - timedelta(hours=2)),
        *heartbeats(FIXED_NOW - timedelta(minutes=30), FIXED_NOW + timedelta(minutes=10)),
        row(FIXED_NOW - timedelta(hours=2, minutes=30), "alice@corp.com", table="main.telemetry.keystrokes"),
        row(FIXED_NOW - timedelta(minutes=10), "bob@corp.com", table="main.telemetry.keystrokes"),
        row(FIXED_NOW - timedelta(minutes=9), "bob@corp.com", table="main.chats.private_messages"),
    ]
    write(tmp_path / EXPORT, sorted(rows, key=lambda r: r["event_time"]))
    yield wb, incident.id
    server.stop()
    assert server.violations == []


async def _evidence_shown(pilot) -> None:
    await pilot.pause(0.2)
    await pilot.press("6")
    await pilot.press("g")
    pane = pilot.app.screen.query_one(EvidencePane)
    while pane.running or pane.report is None:
        await pilot.pause(0.05)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)


async def test_the_tab_reads_the_configured_export_and_shows_answers_and_readers(
    uc_incident, fixed_clock, until, screen_text
):
    wb, incident_id = uc_incident
    app = create_app(wb, clock=fixed_clock, open_incident=incident_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("6")
        await until(pilot, lambda: app.screen.query(EvidencePane), what="the evidence pane")
        pane = app.screen.query_one(EvidencePane)
        assert pane.paths() == [EXPORT]  # prefilled from [evidence] logs
        await pilot.press("g")
        await until(pilot, lambda: pane.report is not None and not pane.running, what="the evidence report")
        answers = {o.object_fqn: o.answer for o in pane.report.objects}
        assert answers == {
            "main.telemetry.keystrokes": "reads",
            "main.chats.private_messages": "reads",
            "main.chats.channel_index": "unknown",
        }
        keystrokes = next(o for o in pane.report.objects if o.object_fqn == "main.telemetry.keystrokes")
        assert [(r.role, r.member) for r in keystrokes.readers] == [("bob@corp.com", True), ("alice@corp.com", False)]
        text = screen_text(app)
        assert "2 of 3 object(s) read" in text and "1 unknown" in text
        assert "bob@corp.com (1)" in text and "alice@corp.com (1)" in text and "UNKNOWN" in text
        assert "06-18 15:50→17:30" in text  # the export's silence: unknown, on every object's row
        assert [(a.isoformat(), b.isoformat()) for a, b in keystrokes.uncovered] == [
            ("2026-06-18T15:50:00+00:00", "2026-06-18T17:30:00+00:00")
        ]
    assert [e.kind for e in wb.incidents.timeline(incident_id)][-1] == "evidence"


async def test_a_bad_path_is_reported_not_raised(uc_incident, fixed_clock, until, screen_text):
    wb, incident_id = uc_incident
    app = create_app(wb, clock=fixed_clock, open_incident=incident_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("6")
        await until(pilot, lambda: app.screen.query(EvidencePane), what="the evidence pane")
        pane = app.screen.query_one(EvidencePane)
        pane.query_one("#evidence-logs").value = "no-such-export.jsonl"
        pane.run_evidence()
        await until(pilot, lambda: not pane.running, what="the worker to finish")
        assert pane.report is None
        await until(pilot, lambda: "could not be read" in screen_text(app), what="the failure on screen")


def test_evidence_tab_snapshot(snap_compare, uc_incident, fixed_clock):
    wb, incident_id = uc_incident
    assert snap_compare(
        create_app(wb, clock=fixed_clock, open_incident=incident_id), terminal_size=SIZE, run_before=_evidence_shown
    )
