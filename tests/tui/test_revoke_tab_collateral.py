"""The Revoke tab shows each action's blast radius and applies collateral only when the responder accepts it.

Against the contract-following Unity Catalog server: a schema-wide SELECT whose revoke also takes a table
outside the incident's scope.
"""

from __future__ import annotations

import pytest
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.core.plan import ActionStatus
from sevtool.tui.app import create_app
from sevtool.tui.screens.confirm import CollateralConfirmScreen

P = "account users"


@pytest.fixture
def lake_wb(sqlite_wb, config_path):
    server = FakeUnityCatalog(page_size=2).start()
    seed_drill(server, P)
    config_path.write_text(f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\n')
    yield sqlite_wb, server
    server.stop()
    assert server.violations == []


async def settle(app, pilot) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)


async def test_apply_holds_the_collateral_unless_accepted_in_the_dialog(lake_wb, screen_text, until):
    wb, server = lake_wb
    incident = wb.incidents.declare("chats readable by all employees", 2).id
    wb.scanning.scan(incident, "lake", [P], table_glob="[kp]*")  # channel_index is out of scope, inside main.chats
    app = create_app(wb, open_incident=incident)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("2", "p")
        await until(pilot, lambda: "Plan 1 (from" in screen_text(app))
        text = screen_text(app)
        assert "blast radius" in text and "1 role, 1 obj, 0 login" in text
        assert (
            f"Blast radius: 1 action(s) also take access beyond the incident's scope: 1 role(s) ({P}) lose 1 object(s)"
            in text
        )

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, CollateralConfirmScreen))
        text = screen_text(app)
        assert "main.chats.channel_index" in text and "c: accept the collateral" in text, text
        await pilot.press("y")  # apply the rest, hold the harmful one back
        await until(pilot, lambda: "apply done" in screen_text(app))
        await settle(app, pilot)
        assert "1 action(s) held back" in screen_text(app)
        assert server.can_read(P, "main.chats.channel_index") and not server.can_read(P, "main.telemetry.keystrokes")
        schema_action = next(a for a in wb.revocation.current_plan(incident).actions if a.object_kind == "schema")
        assert schema_action.status == ActionStatus.PLANNED and schema_action.message.startswith("held:")

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, CollateralConfirmScreen))
        await pilot.press("c")  # accept the collateral explicitly
        await until(
            pilot, lambda: "collateral accepted" in screen_text(app) and screen_text(app).count("apply done") >= 2
        )
        await settle(app, pilot)
        assert not server.can_read(P, "main.chats.channel_index") and not server.can_read(
            P, "main.chats.private_messages"
        )
        assert {a.status for a in wb.revocation.current_plan(incident).actions} == {ActionStatus.APPLIED}
