"""The Verify tab lists the incident's access exceptions with the time each has left, counting down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sevtool.scenario import PRINCIPAL, ensure_role, seed_access_paths
from sevtool.tui.app import create_app

pytestmark = pytest.mark.postgres

GRANTED = datetime(2026, 6, 18, 17, 50, tzinfo=UTC)


async def test_exceptions_table_counts_down_and_shows_how_they_ended(sqlite_wb, pg_db, config_path, until, screen_text):
    seed_access_paths(pg_db)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        ensure_role(conn, "investigator", login=True)
    config_path.write_text(f'[targets.drill]\ndsn = "{pg_db}"\n')
    wb = sqlite_wb
    incident_id = wb.incidents.declare("Telemetry readable by all employees", 2).id
    wb.scanning.scan(incident_id, "drill", [PRINCIPAL], schemas=["telemetry"])
    wb.revocation.plan(incident_id)
    wb.revocation.apply(incident_id, accept_collateral=True)
    first = wb.access.grant(
        incident_id, "investigator", ["telemetry.keystrokes"], timedelta(hours=1), "scope the leak", "ic",
        now=lambda: GRANTED,
    )  # fmt: skip
    second = wb.access.grant(
        incident_id, "investigator", ["telemetry.mouse_moves"], timedelta(hours=1), "pipeline fix", "ic",
        now=lambda: GRANTED,
    )  # fmt: skip
    wb.access.end(incident_id, second.number, now=lambda: GRANTED + timedelta(minutes=5))

    clock = {"now": GRANTED + timedelta(minutes=10)}
    app = create_app(wb, clock=lambda: clock["now"], open_incident=incident_id)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: "access exceptions" in screen_text(app), what="the exceptions table")
        text = screen_text(app)
        assert f"{first.number}  " in text and "scope the leak" in text and "50m left" in text
        assert "ended early" in text
        clock["now"] = GRANTED + timedelta(minutes=59)
        await until(pilot, lambda: "1m left" in screen_text(app), what="the countdown to move")
        clock["now"] = GRANTED + timedelta(hours=1, minutes=1)
        await until(pilot, lambda: "EXPIRED, not revoked" in screen_text(app), what="the lapse to show")
