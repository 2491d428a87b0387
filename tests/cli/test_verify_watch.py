"""`sevtool verify` and `sevtool watch` through the real entry point, against a real PostgreSQL target."""

from __future__ import annotations

import json

import psycopg
import pytest
from tabulate import tabulate

from sevtool.scenario import ensure_role, grant_role

pytestmark = pytest.mark.postgres


@pytest.fixture
def target(pg_db) -> str:
    with psycopg.connect(pg_db, autocommit=True) as conn:
        ensure_role(conn, "all_employees")
        ensure_role(conn, "alice", login=True)
        grant_role(conn, "all_employees", "alice")
        conn.execute("CREATE SCHEMA telemetry")
        conn.execute("GRANT USAGE ON SCHEMA telemetry TO all_employees")
        for name in ("keystrokes", "chats"):
            conn.execute(f"CREATE TABLE telemetry.{name} (id bigint)")
            conn.execute(f"COMMENT ON TABLE telemetry.{name} IS 'dss=4'")
            conn.execute(f"GRANT SELECT ON telemetry.{name} TO all_employees")
    return pg_db


def sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def contained(cli, target, config_path) -> str:
    """A SEV 2 incident, scanned and fixed with sevtool, on a re-check schedule of 0s, 2s, 4s."""
    config_path.write_text('[sev.2]\nrecheck = ["0m", "2s", "4s"]\n')
    ident = str(cli.json("declare", "--sev", "2", "--title", "Telemetry readable by all employees")["id"])
    cli.json("scan", ident, "--target", target, "--principal", "all_employees", "--schema", "telemetry")
    cli.json("revoke", ident, "--apply", "--yes")
    return ident


def test_verify_exit_codes_json_and_regression(cli, target, contained):
    clean = cli.json("verify", contained)
    assert (
        clean["clean"] is True
        and clean["remains"] == []
        and clean["objects_in_scope"] == 2
        and clean["status"] == "verifying"
    )
    refused = cli("status", contained, "resolved")
    assert refused.returncode == 2 and "cannot be resolved yet: the re-check schedule has not started" in refused.stderr

    sql(target, "GRANT SELECT ON telemetry.chats TO PUBLIC")
    exposed = cli.json("verify", contained, expect=3)
    assert exposed["clean"] is False and exposed["status"] == "contained"
    [remains] = exposed["remains"]
    assert (remains["object"], remains["path"], remains["via"]) == ("telemetry.chats", "public", "granted to PUBLIC")
    [reg] = exposed["regressions"]
    assert (
        reg["object"] == "telemetry.chats"
        and reg["cause_kind"] == "public_grant"
        and "new PUBLIC grant" in reg["cause"]
    )

    human = cli("verify", contained)
    assert human.returncode == 3
    assert "telemetry.chats" in human.stdout and "ACCESS REMAINS" in human.stderr and "ACCESS" not in human.stdout
    # Laid out as every other command's tables (tabulate's "simple"), though written without tabulate. The
    # regression was reported by the check before: this one has access remaining and nothing new.
    remaining = tabulate(
        [("telemetry.chats", "all_employees", "public", "granted to PUBLIC", "DSS 4")],
        headers=["object", "principal", "path", "via", "dss"],
        tablefmt="simple",
    )
    assert human.stdout == f"{remaining}\n"

    timeline = cli.json("timeline", contained)
    regression = [e for e in timeline if e["kind"] == "regression"]
    assert len(regression) == 1 and "REGRESSION" in regression[0]["summary"] and regression[0]["data"]["count"] == 1


def test_watch_runs_the_schedule_and_then_allows_resolving(cli, target, contained):
    result = cli("watch", contained, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    checks = [line for line in lines if line["event"] == "check"]
    # However late the watcher starts on a busy machine, each slot is run or covered by a later check, exactly once.
    answered = [c["slot"]["idx"] for c in checks] + [s["idx"] for c in checks for s in c["slot"]["covered"]]
    assert sorted(answered) == [0, 1, 2] and checks[-1]["slot"]["idx"] == 2 and all(c["clean"] for c in checks)
    assert lines[-1] == {
        "event": "done",
        "checks": len(checks),
        "finished": True,
        "next_due": None,
        "resolution_gate": None,
        "exposed": False,
    }

    again = cli("watch", contained, "--once")
    assert again.returncode == 0 and again.stdout == "" and "nothing due now" in again.stderr
    assert cli.json("status", contained, "resolved")["status"] == "resolved"

    sql(target, "GRANT SELECT ON telemetry.keystrokes TO all_employees")
    reopened = cli.json("verify", contained, expect=3)
    assert reopened["status"] == "contained" and reopened["regressions"][0]["cause_kind"] == "grant_readded"


def test_verify_and_watch_refuse_with_what_to_do(cli):
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    result = cli("verify", ident)
    assert result.returncode == 2 and result.stdout == ""
    assert (
        len(result.stderr.strip().splitlines()) == 1 and "no scope" in result.stderr and "sevtool scan" in result.stderr
    )
    machine = cli("watch", ident, "--json")
    assert machine.returncode == 2 and json.loads(machine.stderr)["error"] == "usage"
    assert cli("verify", "INC-999").returncode == 1


def test_regression_and_finding_tables_keep_tabulates_layout(capsys):
    from sevtool.cli.output import emit_text_table

    headers = ["regressed object", "principal", "path", "cause"]
    rows = [
        ("telemetry.chats", "all_employees", "public", "new PUBLIC grant of SELECT by etl_owner"),
        ("t.a", "bob", "direct", ""),
    ]
    emit_text_table(rows, headers)
    assert capsys.readouterr().out == tabulate(rows, headers=headers, tablefmt="simple") + "\n"
