"""Pilot tests: a responder drives the app with the keyboard, and we read what is on screen."""

from __future__ import annotations

import gc

from textual.widgets import DataTable

from sevtool.core.exposure import AccessPath, Finding, Scope
from sevtool.core.incident import Status
from sevtool.store import scans
from sevtool.tui.app import create_app
from sevtool.tui.screens.declare import DeclareScreen
from sevtool.tui.screens.incident import IncidentScreen
from sevtool.tui.screens.incident_list import IncidentListScreen


async def test_declare_from_the_list_opens_the_incident(wb, fixed_clock, screen_text, until):
    app = create_app(wb, clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "No incidents yet" in screen_text(app))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, DeclareScreen) and "Choosing a SEV" in screen_text(app))
        text = screen_text(app)
        assert "Choosing a SEV" in text and "every employee -> SEV 2 or worse" in text  # the rubric is beside the form
        assert "Sensitive data readable far beyond need-to-know" in text  # meaning of the preselected SEV 2
        await pilot.press(*"telemetry readable by all_employees", "enter")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and "INC-1" in screen_text(app))
        await pilot.press("4")
        assert app.focused.id == "events"  # the tab mounted on the key, with the keyboard on its events
        await until(pilot, lambda: "Declared SEV 2: telemetry" in screen_text(app))
        text = screen_text(app)
        assert "INC-1" in text and "SEV 2" in text and "declared" in text
        assert "Declared SEV 2: telemetry readable by all_employees" in text  # the timeline's first event
        await pilot.press("escape")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, IncidentListScreen) and "telemetry readable by all_employees" in screen_text(app)
            ),
        )


async def test_declare_without_a_title_is_a_notification_not_a_crash(wb, fixed_clock, until):
    app = create_app(wb, clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, DeclareScreen))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("an incident needs a title" in n.message for n in app._notifications))
        assert isinstance(app.screen, DeclareScreen)
        assert wb.incidents.all() == []


async def test_notes_key_events_and_status_from_the_incident_screen(wb, fixed_clock, screen_text, until):
    incident = wb.incidents.declare("telemetry exposed", 2)
    app = create_app(wb, clock=fixed_clock, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen))
        await pilot.press("n")
        await pilot.press(*"-20m on-call saw the alert", "enter")
        await until(pilot, lambda: "on-call saw the alert" in screen_text(app))
        events = wb.incidents.timeline(incident.id)
        note = next(e for e in events if e.kind == "note")
        assert note.summary == "on-call saw the alert"
        assert events.index(note) == 0  # back-dated before the declaration

        assert app.focused.id == "events"  # saving a note returns to the events
        await pilot.press("ctrl+home", "k")
        await until(pilot, lambda: "★" in screen_text(app))
        assert note.seq in wb.incidents.key_events(wb.incidents.timeline(incident.id))

        await pilot.press("t")
        await until(pilot, lambda: "Move it to" in screen_text(app))
        await pilot.press("enter")  # the only move from declared: contained
        await until(pilot, lambda: "contained" in screen_text(app).split("\n")[1])  # the header line says it
        assert wb.incidents.get(incident.id).status == Status.CONTAINED


async def test_an_incident_opened_directly_builds_its_hidden_tabs_and_the_list_when_asked(
    wb, fixed_clock, screen_text, until
):
    incident = wb.incidents.declare("telemetry exposed", 2)
    wb.incidents.declare("chat exports shared", 1)  # hotter: listed first
    app = create_app(wb, clock=fixed_clock, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and "INC-1" in screen_text(app))
        assert app.focused.id == "findings"
        assert not app.screen.query(
            "RevokePane, VerifyPane, TimelinePane, PostmortemPane"
        )  # nothing hidden is built yet
        assert not any(isinstance(screen, IncidentListScreen) for screen in app.screen_stack)

        await pilot.press("2")
        assert app.screen.query_one("#tabs").active == "revoke" and app.focused.id == "actions"
        await pilot.press("n")  # a tab opened by an action gets the keyboard too
        assert app.focused.id == "note"
        await pilot.press("escape")  # out of the note box, onto the events
        assert app.focused.id == "events"

        await pilot.press("escape")  # the list, built now
        await until(
            pilot, lambda: isinstance(app.screen, IncidentListScreen) and "telemetry exposed" in screen_text(app)
        )
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and "telemetry exposed" in screen_text(app))
        await pilot.press("escape")  # back to the same list, not a second one
        await until(pilot, lambda: isinstance(app.screen, IncidentListScreen))
        assert sum(isinstance(screen, IncidentListScreen) for screen in app.screen_stack) == 1
        assert app.screen.query_one(DataTable).cursor_row == 1  # still on the incident just left


async def test_opening_a_missing_incident_shows_the_list_and_says_why(wb, fixed_clock, until):
    app = create_app(wb, clock=fixed_clock, open_incident=404)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, IncidentListScreen))
        await until(pilot, lambda: any(n.title == "opening the incident failed" for n in app._notifications))


async def test_leaving_an_incident_lets_its_findings_go(wb, fixed_clock, until):
    """45,000 findings and their filter text hold about 90 MB: they must not outlive the screen."""
    incident = wb.incidents.declare("big scope", 2)
    rows = [
        Finding(
            object_kind="table",
            schema_name="leak_check",
            object_name=f"t{i}",
            principal="all_employees",
            path=AccessPath.DIRECT,
        )
        for i in range(50)
    ]
    with wb.store.write() as tx:
        scope_id = scans.add_scope(
            tx.session,
            incident.id,
            1,
            Scope(target="drill", principals=["all_employees"]),
            finding_count=50,
            object_count=50,
        )
        scans.add_findings(tx.session, scope_id, rows)
    del rows

    def alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Finding) and o.schema_name == "leak_check")

    app = create_app(wb, clock=fixed_clock, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(
            pilot, lambda: isinstance(app.screen, IncidentScreen) and len(app.screen.query_one("#findings").rows) == 50
        )
        assert alive() == 50
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, IncidentListScreen))
        await pilot.pause(0.2)
        assert alive() == 0


async def test_a_failed_plan_on_a_scanned_incident_says_so(wb, fixed_clock, screen_text, until):
    incident = wb.incidents.declare("scanned, target since removed from the config", 2)
    with wb.store.write() as tx:
        scans.add_scope(
            tx.session,
            incident.id,
            1,
            Scope(target="nowhere", principals=["all_employees"]),
            finding_count=0,
            object_count=0,
        )
    app = create_app(wb, clock=fixed_clock, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen))
        await pilot.press("2")
        await until(
            pilot, lambda: "No plan yet. Press p to plan the revocation from scope v1 (nowhere)." in screen_text(app)
        )
        await pilot.press("p")
        await until(pilot, lambda: any("no target named 'nowhere'" in n.message for n in app._notifications))
        await until(pilot, lambda: "Planning failed (the notification says why)" in screen_text(app))
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert "Planning failed (the notification says why)" in screen_text(app)
