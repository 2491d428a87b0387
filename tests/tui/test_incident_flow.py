"""Pilot tests: a responder drives the app with the keyboard, and we read what is on screen."""

from __future__ import annotations

from sevtool.core.incident import Status
from sevtool.tui.app import create_app
from sevtool.tui.screens.declare import DeclareScreen
from sevtool.tui.screens.incident import IncidentScreen
from sevtool.tui.screens.incident_list import IncidentListScreen


async def test_declare_from_the_list_opens_the_incident(wb, fixed_clock, screen_text):
    app = create_app(wb, clock=fixed_clock)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause()
        assert "No incidents yet" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, DeclareScreen)
        text = screen_text(app)
        assert "Choosing a SEV" in text and "every employee -> SEV 2 or worse" in text   # the rubric is beside the form
        assert "Sensitive data readable far beyond need-to-know" in text                 # meaning of the preselected SEV 2
        await pilot.press(*"telemetry readable by all_employees", "enter")
        await pilot.pause()
        assert isinstance(app.screen, IncidentScreen)
        text = screen_text(app)
        assert "INC-1" in text and "SEV 2" in text and "declared" in text
        assert "Declared SEV 2: telemetry readable by all_employees" in text             # the timeline's first event
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, IncidentListScreen)
        assert "telemetry readable by all_employees" in screen_text(app)


async def test_declare_without_a_title_is_a_notification_not_a_crash(wb, fixed_clock):
    app = create_app(wb, clock=fixed_clock)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, DeclareScreen)
        messages = [n.message for n in app._notifications]
        assert any("an incident needs a title" in m for m in messages), messages
        assert wb.incidents.all() == []


async def test_notes_key_events_and_status_from_the_incident_screen(wb, fixed_clock, screen_text):
    incident = wb.incidents.declare("telemetry exposed", 2)
    app = create_app(wb, clock=fixed_clock, open_incident=incident.id)
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.press(*"-20m on-call saw the alert", "enter")
        await pilot.pause()
        events = wb.incidents.timeline(incident.id)
        note = next(e for e in events if e.kind == "note")
        assert note.summary == "on-call saw the alert"
        assert events.index(note) == 0                                   # back-dated before the declaration
        assert "on-call saw the alert" in screen_text(app)

        assert app.focused.id == "events"                              # saving a note returns to the events
        await pilot.press("ctrl+home", "k")
        await pilot.pause()
        assert note.seq in wb.incidents.key_events(wb.incidents.timeline(incident.id))
        assert "★" in screen_text(app)

        await pilot.press("t")
        await pilot.pause()
        assert "Move it to" in screen_text(app)
        await pilot.press("enter")                                     # the only move from declared: contained
        await pilot.pause()
        assert wb.incidents.get(incident.id).status == Status.CONTAINED
        assert "contained" in screen_text(app).split("\n")[1]          # the header line says it
