"""Revocation that harms no one it shouldn't, on PostgreSQL: the issue's case through the real entry point.

`contractor` (a login outside the principal) reads hr.complaints through a grant that `emp_all` made with the
GRANT OPTION it holds. Closing emp_all's access needs `REVOKE ... CASCADE`, which also takes contractor's.
The plan must name that, and `--apply --yes` must hold it until the responder accepts it.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from pg_roles import roles_dropped_after

from sevtool.scenario import ensure_role

pytestmark = pytest.mark.postgres


def can_read(dsn: str, role: str, table: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)).fetchone()[0]


@pytest.fixture
def cascade(pg_db):
    """Roles are cluster-wide: they are dropped after the test, so another file can create its own emp_all."""
    with roles_dropped_after(pg_db):
        with psycopg.connect(pg_db, autocommit=True) as conn:
            ensure_role(conn, "emp_all")
            ensure_role(conn, "contractor", login=True)
            conn.execute("CREATE SCHEMA hr")
            conn.execute("GRANT USAGE ON SCHEMA hr TO emp_all, contractor")
            conn.execute("CREATE TABLE hr.complaints (id bigint, body text)")
            conn.execute("COMMENT ON TABLE hr.complaints IS 'employee complaints, dss=4'")
            conn.execute("GRANT SELECT ON hr.complaints TO emp_all WITH GRANT OPTION")
            conn.execute("SET ROLE emp_all")
            conn.execute("GRANT SELECT ON hr.complaints TO contractor")
            conn.execute("RESET ROLE")
        assert can_read(pg_db, "contractor", "hr.complaints")
        yield pg_db


def test_a_cascade_that_takes_a_contractors_access_is_shown_held_and_runs_only_when_accepted(cli, cascade):
    dsn = cascade
    ident = str(cli.json("declare", "--sev", "2", "--title", "complaints readable by every employee")["id"])
    cli.json("scan", ident, "--target", dsn, "--principal", "emp_all", "--schema", "hr")
    plan = cli.json("revoke", ident, "--plan")
    harmful = [a for a in plan["actions"] if a["collateral"]]
    assert harmful and all(a["review"] for a in harmful)
    assert {(c["role"], tuple(c["objects"]), c["cause"]) for a in harmful for c in a["collateral"]} == {
        ("contractor", ("hr.complaints",), "grant_option_cascade")
    }
    assert plan["blast"]["roles"] == ["contractor"] and plan["blast"]["login_members"] == 1

    held = cli("revoke", ident, "--apply", "--yes", "--json")
    assert held.returncode == 3, held.stderr
    report = json.loads(held.stdout)
    assert report["held_roles"] == ["contractor"] and "--accept-collateral" in report["hint"]
    assert can_read(dsn, "contractor", "hr.complaints")

    accepted = cli.json("revoke", ident, "--apply", "--yes", "--accept-collateral")
    assert accepted["held"] == 0 and accepted["failures"] == []
    assert not can_read(dsn, "contractor", "hr.complaints") and not can_read(dsn, "emp_all", "hr.complaints")
