"""The Guard screen: reached from the incident list, it shows each policy's state and exceptions, and opens the
incident a violation opened. Against a real PostgreSQL target; a snapshot of the screen before any run."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from textual.widgets import DataTable

from sevtool.scenario import ensure_role
from sevtool.tui.app import create_app

SIZE = (160, 40)
FIXED_NOW = datetime(2026, 6, 18, 18, 0, tzinfo=UTC)  # the `fixed_clock` fixture's time

POLICIES = """
[[policy]]
name = "no-broad-sensitive"
target = "warehouse"
principals = ["all_employees", "PUBLIC"]
min_dss = 3
sev = 2
playbook = "data-exposure"

[[policy.exception]]
objects = ["ml.*"]
owner = "ml-platform"
reason = "pseudonymised features"
expires = 2026-07-01

[[policy.exception]]
objects = ["tmp.scratch"]
owner = "data-eng"
reason = "migration"
expires = 2026-06-01

[[policy]]
name = "nobody-reads-anything"
target = "warehouse"
principals = ["guard_screen_nobody"]   # a role of its own: roles are cluster-wide, other tests grant theirs
min_dss = 1
sev = 3
"""


def configure(config_path, dsn: str) -> None:
    config_path.write_text(f'[targets.warehouse]\nkind = "postgresql"\ndsn = "{dsn}"\n{POLICIES}')


def test_guard_screen_before_any_run(snap_compare, sqlite_wb, config_path, fixed_clock):
    configure(config_path, "host=127.0.0.1 port=1 dbname=never-connected")
    assert snap_compare(create_app(sqlite_wb, clock=fixed_clock), press=["g"], terminal_size=SIZE)


@pytest.mark.postgres
async def test_guard_screen_shows_a_violation_and_opens_its_incident(sqlite_wb, pg_db, config_path, fixed_clock, until):
    with psycopg.connect(pg_db, autocommit=True) as conn:
        ensure_role(conn, "all_employees")
        ensure_role(conn, "guard_screen_nobody")
        conn.execute("CREATE SCHEMA hr")
        conn.execute("GRANT USAGE ON SCHEMA hr TO all_employees")
        conn.execute("CREATE TABLE hr.salaries (id bigint)")
        conn.execute("COMMENT ON TABLE hr.salaries IS 'dss=4'")
        conn.execute("GRANT SELECT ON hr.salaries TO all_employees")
    configure(config_path, pg_db)
    app = create_app(sqlite_wb, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        await until(pilot, lambda: type(app.screen).__name__ == "GuardScreen", what="the Guard screen")
        table = app.screen.query_one("#policies", DataTable)
        assert [table.get_row_at(i)[5] for i in range(table.row_count)] == ["not run yet", "not run yet"]
        exceptions = app.screen.query_one("#exceptions", DataTable)
        states = [exceptions.get_row_at(i)[6] for i in range(exceptions.row_count)]
        assert states[0].startswith("live, ends in 12") and states[1] == "EXPIRED: a violation again"

        await pilot.press("c")  # check now, as `sevtool guard --once`
        await until(
            pilot, lambda: table.row_count and table.get_row_at(0)[5] != "not run yet", what="the check to finish"
        )
        violated, holding = table.get_row_at(0), table.get_row_at(1)
        assert (violated[5], violated[6]) == ("VIOLATED", "1") and violated[8].startswith("INC-")
        assert holding[5] == "holds" and holding[8] == ""
        [incident] = sqlite_wb.incidents.all()
        assert violated[8] == f"INC-{incident.id}"

        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "GuardScreen", "a policy that holds has no incident to open"
        table.move_cursor(row=0)
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "IncidentScreen", what="the policy's incident")
        assert app.screen.incident_id == incident.id
