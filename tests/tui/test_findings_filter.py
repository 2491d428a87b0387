"""The findings table and its filter: pages come from the store, the filter takes keys only after `/`."""

from __future__ import annotations

from sevtool.core.exposure import AccessPath, Finding, Scope
from sevtool.store import scans
from sevtool.tui.app import create_app
from sevtool.tui.screens.incident import IncidentScreen
from sevtool.tui.widgets.finding_window import PAGE
from sevtool.tui.widgets.findings_table import FindingsTable

FINDINGS = 1000  # several pages


def _scanned(wb, count: int = FINDINGS) -> int:
    """An incident with a scope of `count` findings: DSS 1-4 and unrated, direct and through a role."""
    incident = wb.incidents.declare("many findings", 2)
    rows = [
        Finding(
            object_kind="table",
            schema_name=f"schema_{i % 3}",
            object_name=f"t_{i:04d}",
            principal="all_employees",
            path=AccessPath.ROLE if i % 2 else AccessPath.DIRECT,
            grantee="analytics_readers" if i % 2 else "all_employees",
            route=("analytics_readers",) if i % 2 else (),
            dss=[1, 2, 3, 4, None][i % 5],
        )
        for i in range(count)
    ]
    with wb.store.write() as tx:
        scope_id = scans.add_scope(
            tx.session,
            incident.id,
            1,
            Scope(target="drill", principals=["all_employees"]),
            finding_count=count,
            object_count=count,
        )
        scans.add_findings(tx.session, scope_id, rows)
    return incident.id


def _table(app) -> FindingsTable:
    return app.screen.query_one(FindingsTable)


async def _open(app, pilot, until) -> None:
    await until(pilot, lambda: isinstance(app.screen, IncidentScreen) and len(_table(app).rows) == FINDINGS)


async def test_keys_reach_the_screen_until_slash_and_after_enter_or_escape(wb, fixed_clock, screen_text, until):
    app = create_app(wb, clock=fixed_clock, open_incident=_scanned(wb))
    async with app.run_test(size=(160, 48)) as pilot:
        await _open(app, pilot, until)
        filter_box = app.screen.query_one("#findings-filter")
        await pilot.press("2")  # a screen binding, not a character in the filter
        assert app.screen.query_one("#tabs").active == "revoke"
        await pilot.press("1")
        assert app.focused is _table(app) and filter_box.value == ""

        await pilot.press("slash", *"t_001")  # typed faster than the store answers: the latest text wins
        assert app.focused is filter_box
        await until(pilot, lambda: "10 of 1,000 findings" in screen_text(app))
        table = _table(app)
        assert sorted(f.object_name for f in table.rows) == [f"t_{i:04d}" for i in range(10, 20)]
        worst = [5 if f.dss is None else f.dss for f in table.rows]
        assert worst == sorted(worst, reverse=True)  # unrated, then DSS 4 down to 1

        await pilot.press("enter")  # keeps the filter, gives the keyboard back
        assert app.focused is table and filter_box.value == "t_001"
        await pilot.press("2")
        assert app.screen.query_one("#tabs").active == "revoke"
        await pilot.press("1")

        await pilot.press("slash", "escape")  # clears the filter and leaves it
        assert app.focused is _table(app) and filter_box.value == ""
        await until(pilot, lambda: "1,000 findings, most sensitive first" in screen_text(app))
        assert len(_table(app).rows) == FINDINGS


async def test_focus_moving_on_its_own_never_lands_in_the_filter(wb, fixed_clock, until):
    app = create_app(wb, clock=fixed_clock, open_incident=_scanned(wb))
    async with app.run_test(size=(160, 48)) as pilot:
        await _open(app, pilot, until)
        for _ in range(8):  # round the whole focus chain
            await pilot.press("tab")
            assert app.focused is None or app.focused.id != "findings-filter"
        await pilot.press("question_mark")  # a screen over it, and back: focus is restored, not moved to the box
        await pilot.press("escape")
        assert app.focused is None or app.focused.id != "findings-filter"


async def test_the_table_reads_pages_as_it_scrolls_to_them_worst_first(wb, fixed_clock, screen_text, until):
    app = create_app(wb, clock=fixed_clock, open_incident=_scanned(wb))
    async with app.run_test(size=(160, 48)) as pilot:
        await _open(app, pilot, until)
        window = _table(app).rows
        assert window[0].dss is None and window[PAGE - 1].dss is None  # unrated first, as the summary lists them
        assert window[FINDINGS - 1] is None  # not read yet
        await pilot.press("end")
        await until(pilot, lambda: window[FINDINGS - 1] is not None and "t_0995" in screen_text(app))
        assert window[FINDINGS - 1].dss == 1  # least sensitive last


def test_a_filter_word_matches_what_the_table_shows_in_any_case_and_wildcards_as_themselves(wb):
    incident_id = _scanned(wb, 40)
    pages = wb.finding_pages
    assert pages.page(incident_id, ["DSS", "4"]).matching == 8  # the DSS column's words
    assert pages.page(incident_id, ["ANALYTICS_readers", "role"]).matching == 20  # the via column's role
    assert pages.page(incident_id, ["schema_1.t_000"]).matching == 3  # schema.object, as shown
    assert pages.page(incident_id, ["t%"]).matching == 0 and pages.page(incident_id, ["t_0_"]).matching == 0
    first = pages.page(incident_id, ["schema_2"], offset=10, limit=5)
    assert first.matching == 13 and len(first.findings) == 3 and first.total == 40
    assert pages.page(incident_id, ["schema_2"], offset=100).matching == 13  # past the end: counted apart
    assert wb.finding_pages.page(wb.incidents.declare("never scanned", 3).id) is None
