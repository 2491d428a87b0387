"""The whole response driven from the keyboard against a real PostgreSQL, reading the screen after each step."""

from __future__ import annotations

import psycopg
import pytest

from sevtool.core.incident import Status
from sevtool.scenario import PRINCIPAL, seed_access_paths
from sevtool.tui.app import create_app
from sevtool.tui.screens.confirm import CollateralConfirmScreen, ConfirmScreen
from sevtool.tui.screens.help import HelpScreen
from sevtool.tui.screens.incident import IncidentScreen
from sevtool.tui.screens.prompt import PromptScreen
from sevtool.tui.widgets.findings_table import FindingsTable

pytestmark = pytest.mark.postgres


@pytest.fixture
def drill_wb(wb, pg_db, config_path):
    """The access-path scenario as target `drill`, and a schedule a second long so a test can sit through it."""
    seeded = seed_access_paths(pg_db)
    config_path.write_text(f'[targets.drill]\ndsn = "{pg_db}"\n\n[sev.2]\nrecheck = ["0s", "1s"]\n')
    return wb, seeded, pg_db


async def settle(app, pilot) -> None:
    """Let every worker (scan, apply, check, render) finish and the screen catch up."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)


async def test_declare_scan_revoke_regress_verify_resolve_postmortem(drill_wb, tmp_path, screen_text, until):
    wb, _seeded, dsn = drill_wb
    app = create_app(wb)
    async with app.run_test(size=(160, 48)) as pilot:
        # declare: the form preselects the data-exposure playbook, whose checklist then says what to do next
        await pilot.press("n")
        await pilot.press(*"telemetry readable by all_employees", "ctrl+s")
        await until(
            pilot, lambda: isinstance(app.screen, IncidentScreen) and "Playbook: data-exposure" in screen_text(app)
        )
        incident_id = app.screen.incident_id
        text = screen_text(app)
        assert "Playbook: data-exposure" in text and "▶ Scope the exposure" in text
        assert "target ▊  drill" in text  # the configured target is prefilled

        # scan
        await pilot.press("s")
        await until(pilot, lambda: "Scope v1:" in screen_text(app))
        await settle(app, pilot)
        exposed = len({f.object_fqn for f in wb.scanning.findings(incident_id)})
        text = screen_text(app)
        assert f"Scope v1: {exposed} of" in text and "readable" in text
        assert "hr.salaries" in text and "by path" in text
        assert "▶ Send the first stakeholder" in text  # the checklist moved on

        # filter the findings
        await pilot.press("slash", *"column")
        await until(
            pilot,
            lambda: "telemetry.screen_captures.payload" in screen_text(app) and "hr.salaries" not in screen_text(app),
        )
        table = app.screen.query_one(FindingsTable)
        assert table.rows and all(f.path.value == "column" for f in table.rows)
        await pilot.press("escape")  # leaves the filter box, not the screen
        assert isinstance(app.screen, IncidentScreen)

        # plan: the revoke tab says what p will plan from, then shows the exact SQL of the highlighted action
        await pilot.press("2")
        await until(
            pilot, lambda: "No plan yet. Press p to plan the revocation from scope v1 (drill)." in screen_text(app)
        )
        await pilot.press("p")
        await until(pilot, lambda: "Plan 1 (from" in screen_text(app))
        plan = wb.revocation.current_plan(incident_id)
        text = screen_text(app)
        assert f"Plan 1 (from scope v1, target drill): {len(plan.actions)} actions" in text
        assert "SQL #1:" in text and "REVOKE" in text

        # apply, after confirming
        await pilot.press("a")
        await until(
            pilot, lambda: isinstance(app.screen, CollateralConfirmScreen) and "REVOKE action(s)" in screen_text(app)
        )
        assert f"run {len(plan.pending)} REVOKE action(s)" in screen_text(app)
        assert "PUBLIC" in screen_text(app), (
            "the drill's PUBLIC revoke takes chat.messages from login roles outside the scope"
        )
        await pilot.press("c")
        await until(pilot, lambda: "apply done" in screen_text(app))
        await settle(app, pilot)
        assert app.screen.query_one("#tabs").active == "revoke"  # the dialog closed onto the progress, not elsewhere
        assert wb.incidents.get(incident_id).status == Status.CONTAINED
        text = screen_text(app)
        assert "apply done" in text and f"{len(plan.actions)} applied" in text
        assert "need review before applying" not in text and "applying asks" not in text, "nothing is left to weigh"
        assert "contained" in text.splitlines()[1]

        # verify: clean
        await pilot.press("v")
        await until(pilot, lambda: "clean" in screen_text(app) and "Checking now" not in screen_text(app))
        await settle(app, pilot)
        text = screen_text(app)
        assert "clean" in text and "REGRESSION" not in text
        assert wb.incidents.get(incident_id).status == Status.VERIFYING

        # the fix does not stick: a job re-grants; the next check says so, in red, naming the cause
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"GRANT SELECT ON hr.salaries TO {PRINCIPAL}")
        await pilot.press("v")
        await until(pilot, lambda: "REGRESSION" in screen_text(app))
        await settle(app, pilot)
        text = screen_text(app)
        assert "REGRESSION: the fix did not stick. 1 object(s) readable again." in text
        assert f"grant of SELECT to {PRINCIPAL} re-added" in text
        assert "EXPOSED" in text and "↺ regressed" in text.splitlines()[1]
        assert wb.incidents.get(incident_id).status == Status.CONTAINED
        await pilot.press("escape")  # the list flags it too
        await until(pilot, lambda: "↺ regressed" in screen_text(app) and "INC-1" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, IncidentScreen))

        # re-scan, re-plan, re-apply, re-check: the banner goes away
        await pilot.press("s")
        await until(pilot, lambda: "Scope v2: 1 of" in screen_text(app))
        await pilot.press("p")
        await until(pilot, lambda: (wb.revocation.current_plan(incident_id) or plan).plan_version == 2)
        await pilot.press("2")
        await until(pilot, lambda: "Plan 2 (from" in screen_text(app))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, (ConfirmScreen, CollateralConfirmScreen)))
        await pilot.press("c" if isinstance(app.screen, CollateralConfirmScreen) else "y")
        await until(pilot, lambda: "nothing pending" in screen_text(app))
        await pilot.press("v")
        await until(pilot, lambda: len(wb.verification.history(incident_id)) == 3)
        await settle(app, pilot)
        text = screen_text(app)
        assert "REGRESSION" not in text and "↺ regressed" not in text

        # the scheduled re-checks (a second apart in this config) run here with auto re-check on; then resolving is allowed
        await pilot.press("w")
        await until(pilot, lambda: "Re-check schedule complete and clean" in screen_text(app), timeout=60)

        # a root-cause note, marked as key
        await pilot.press("n", *"root-cause: a grant-sync job re-applied the grant", "enter")
        await until(pilot, lambda: "a grant-sync job re-applied the grant" in screen_text(app))
        await pilot.press("k")
        await until(pilot, lambda: "★" in screen_text(app))
        events = wb.incidents.timeline(incident_id)
        note = next(e for e in events if e.kind == "note")
        assert note.data["note_kind"] == "root-cause"
        assert note.seq in wb.incidents.key_events(events)

        # resolve: the forward move is offered first
        await pilot.press("t")
        await until(pilot, lambda: "Move it to" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: "resolved" in screen_text(app).splitlines()[1])
        assert wb.incidents.get(incident_id).status == Status.RESOLVED

        # postmortem: rendered, then exported where the responder says
        await pilot.press("5")
        await until(pilot, lambda: f"Postmortem INC-{incident_id}" in screen_text(app))
        await pilot.press("4")  # export from another tab: e brings the preview back
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        target = tmp_path / "pm.md"
        app.screen.query_one("#answer").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists())
        await settle(app, pilot)
        assert target.exists() and f"# Postmortem INC-{incident_id}" in target.read_text()
        assert any(e.kind == "postmortem_exported" for e in wb.incidents.timeline(incident_id))
        assert app.screen.query_one("#tabs").active == "postmortem"
        await until(pilot, lambda: "✔ Write the postmortem" in screen_text(app))

        # help lists the keys of this screen
        await pilot.press("question_mark")
        await until(
            pilot,
            lambda: isinstance(app.screen, HelpScreen) and "Apply" in screen_text(app) and "ctrl+p" in screen_text(app),
        )


async def test_after_an_undo_the_revoke_tab_points_to_planning_again(drill_wb, screen_text, until):
    wb, _, _dsn = drill_wb
    incident = wb.incidents.declare("undo, then what", 2)
    wb.scanning.scan(incident.id, "drill", [PRINCIPAL])
    wb.revocation.plan(incident.id)
    applied = wb.revocation.apply(incident.id, accept_collateral=True).counts["applied"]
    app = create_app(wb, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await until(pilot, lambda: "nothing pending: verify (tab 3), or u to undo" in screen_text(app))
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: "undo done" in screen_text(app))
        await settle(app, pilot)
        text = screen_text(app)
        assert f"its {applied} action(s) were undone, so the access is back; press p to plan again" in text
        assert "u to undo" not in text
        await pilot.press("a")  # applying the undone plan is refused with the same advice
        await until(pilot, lambda: any("press p to plan again" in n.message for n in app._notifications))


async def test_errors_become_notifications_that_say_what_to_do(drill_wb, screen_text, until):
    wb, _, _ = drill_wb
    incident = wb.incidents.declare("nothing scanned yet", 2)
    app = create_app(wb, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")  # planning before any scan
        await until(
            pilot,
            lambda: any("has no scan yet" in n.message and "sevtool scan" in n.message for n in app._notifications),
        )
        await until(pilot, lambda: "Planning failed" in screen_text(app))
        assert isinstance(app.screen, IncidentScreen)  # still running, no traceback


async def test_command_palette_offers_every_incident_action(drill_wb, until):
    from sevtool.tui.commands import ScreenActions

    wb, _, _ = drill_wb
    incident = wb.incidents.declare("palette", 3)
    app = create_app(wb, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        provider = ScreenActions(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        for wanted in (
            "Scan the target",
            "Plan the revocation",
            "Apply the plan",
            "Undo the revocation",
            "Verify now",
            "Export the postmortem",
            "Add a note to the timeline",
            "Move the incident to another status",
        ):
            assert wanted in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        await pilot.press(*"timeline tab")
        await pilot.pause(1.0)
        await pilot.press("enter")
        await until(
            pilot, lambda: isinstance(app.screen, IncidentScreen) and app.screen.query_one("#tabs").active == "timeline"
        )
