"""Snapshots of the main screens (pytest-textual-snapshot). Deterministic: a fixed clock, fixed times, fresh ids.

Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sevtool.core.incident import Status
from sevtool.scenario import PRINCIPAL, seed_access_paths
from sevtool.tui.app import create_app
from sevtool.tui.widgets.findings_table import FindingsTable

SIZE = (160, 48)
FIXED_NOW = datetime(2026, 6, 18, 18, 0, tzinfo=UTC)  # the `fixed_clock` fixture's time


@pytest.fixture
def store_wb(sqlite_wb):
    """Snapshots need one store backend only: what is drawn does not depend on it."""
    return sqlite_wb


def _incidents(wb) -> int:
    first = wb.incidents.declare(
        "Employee telemetry readable by all_employees",
        2,
        commander="alice",
        playbook="data-exposure",
        at=FIXED_NOW - timedelta(hours=4),
    )
    wb.incidents.declare(
        "Chat exports shared with contractors", 1, commander="bob", at=FIXED_NOW - timedelta(minutes=35)
    )
    closed = wb.incidents.declare(
        "Test dashboard readable by an intern", 4, commander="carol", at=FIXED_NOW - timedelta(days=3)
    )
    wb.incidents.set_status(closed.id, Status.CONTAINED, at=FIXED_NOW - timedelta(days=3) + timedelta(hours=1))
    return first.id


def test_incident_list(snap_compare, store_wb, fixed_clock):
    _incidents(store_wb)
    assert snap_compare(create_app(store_wb, clock=fixed_clock), terminal_size=SIZE)


def test_declare_form_shows_the_rubric(snap_compare, store_wb, fixed_clock):
    assert snap_compare(create_app(store_wb, clock=fixed_clock), press=["n"], terminal_size=SIZE)


def test_help_screen(snap_compare, store_wb, fixed_clock):
    assert snap_compare(create_app(store_wb, clock=fixed_clock), press=["question_mark"], terminal_size=SIZE)


@pytest.fixture
def scanned(store_wb, pg_db, config_path):
    """An incident declared at a fixed time and scanned against the access-path scenario."""
    seed_access_paths(pg_db)
    config_path.write_text(f'[targets.drill]\ndsn = "{pg_db}"\n')
    incident_id = _incidents(store_wb)
    store_wb.scanning.scan(incident_id, "drill", [PRINCIPAL])
    return store_wb, incident_id, pg_db


async def _findings_loaded(pilot) -> None:
    app = pilot.app
    while not app.screen.query(FindingsTable) or not app.screen.query_one(FindingsTable).rows:
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)


@pytest.mark.postgres
def test_incident_scope_tab(snap_compare, scanned, fixed_clock):
    wb, incident_id, _ = scanned
    app = create_app(wb, clock=fixed_clock, open_incident=incident_id)
    assert snap_compare(app, terminal_size=SIZE, run_before=_findings_loaded)


@pytest.mark.postgres
def test_verify_tab_with_a_regression_banner(snap_compare, scanned, fixed_clock):
    wb, incident_id, dsn = scanned
    wb.revocation.plan(incident_id)
    wb.revocation.apply(incident_id, accept_collateral=True)
    wb.verification.verify(incident_id, now=lambda: FIXED_NOW - timedelta(minutes=2))
    with psycopg.connect(dsn, autocommit=True) as conn:  # the sync job puts one grant back
        conn.execute(f"GRANT SELECT ON hr.salaries TO {PRINCIPAL}")
    wb.verification.verify(incident_id, now=lambda: FIXED_NOW - timedelta(minutes=1))

    async def open_verify(pilot) -> None:
        await _findings_loaded(pilot)
        await pilot.press("3")  # returns with the tab mounted and its checks table focused
        assert pilot.app.focused is not None and pilot.app.focused.id == "checks"
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)

    app = create_app(wb, clock=fixed_clock, open_incident=incident_id)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_verify)
