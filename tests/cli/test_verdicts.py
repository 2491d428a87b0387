"""The verdicts a responder bets the incident on, through the real entry point, on PostgreSQL 15 and 18."""

from __future__ import annotations

import psycopg
import pytest
from pg_roles import USAGE_FROM_ANOTHER_ROLE, reads, roles_dropped_after

pytestmark = pytest.mark.postgres


def sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def world(server_db):
    """The issue's example: ana is an analyst and an employee; USAGE on hr comes from analysts only."""
    with roles_dropped_after(server_db), psycopg.connect(server_db, autocommit=True) as conn:
        conn.execute(USAGE_FROM_ANOTHER_ROLE)
        conn.execute("CREATE ROLE break_glass SUPERUSER NOLOGIN")
        yield server_db


def test_scan_apply_verify_on_a_member_with_usage_from_another_role(cli, world):
    ident = str(cli.json("declare", "--sev", "2", "--title", "hr readable by every employee")["id"])
    scanned = cli.json("scan", ident, "--target", world, "--principal", "emp_all")
    assert scanned["summary"]["objects"] == 1
    assert reads(world, "ana", "hr.salaries")
    assert cli("verify", ident).returncode == 3, "ana still reads hr.salaries"

    cli.json("revoke", ident, "--plan")
    cli.json("revoke", ident, "--apply", "--yes")
    assert not reads(world, "ana", "hr.salaries")
    assert cli.json("verify", ident)["clean"] is True

    sql(world, "GRANT break_glass TO emp_all")
    exposed = cli.json("verify", ident, expect=3)
    assert exposed["clean"] is False
    assert {(r["object"], r["path"], r["grantee"]) for r in exposed["remains"]} == {
        ("hr.salaries", "superuser", "break_glass")
    }
