"""`sevtool scan` through the real entry point, against a real PostgreSQL target."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pytest

from sevtool.scenario import SEEDED_PATHS, seed_access_paths

pytestmark = pytest.mark.postgres


def store_path(cli) -> Path:
    return Path(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///"))


@pytest.fixture
def seeded(pg_db):
    return pg_db, seed_access_paths(pg_db)


def declare(cli) -> str:
    return str(cli.json("declare", "--sev", "2", "--title", "Telemetry readable by all employees")["id"])


def test_scan_json_lists_every_finding_with_summary(cli, seeded):
    dsn, _info = seeded
    ident = declare(cli)
    out = cli.json("scan", ident, "--target", dsn, "--principal", "all_employees", "--principal", "contractors")
    assert out["version"] == 1 and out["scope"]["principals"] == ["all_employees", "contractors"]
    findings = out["findings"]
    assert len(findings) == out["summary"]["findings"] and sum(out["summary"]["by_path"].values()) == len(findings)
    bonus = [f for f in findings if f["object_name"] == "bonuses" and f["principal"] == "all_employees"]
    assert [(f["path"], f["grantor"], f["via"]) for f in bonus] == [
        ("grant_option", "bob", "granted by bob to all_employees")
    ]
    # The route is data beside the words: a list of roles, ending with the grantee; empty for a grant to the principal.
    mouse = [f for f in findings if f["object_name"] == "mouse_moves" and f["principal"] == "all_employees"]
    assert [(f["route"], f["via"]) for f in mouse] == [
        (["analytics_readers", "data_platform"], "via role data_platform (through analytics_readers)")
    ]
    assert bonus[0]["route"] == [] and bonus[0]["by_holder"] is True
    [future] = [f for f in findings if f["path"] == "default_privileges" and f["principal"] == "all_employees"]
    assert future["future_tables"] is True
    assert {f["path"] for f in findings} >= SEEDED_PATHS
    assert out["principal_members"]["all_employees"] >= 3 and out["objects_in_scope"] >= 15


def test_rescan_records_a_new_scope_version_not_duplicates(cli, seeded):
    dsn, _info = seeded
    ident = declare(cli)
    first = cli.json("scan", ident, "--target", dsn, "--principal", "all_employees")
    second = cli.json("scan", ident, "--target", dsn, "--principal", "all_employees", "--min-dss", "4")
    assert (first["version"], second["version"]) == (1, 2)
    with sqlite3.connect(store_path(cli)) as db:
        per_scope = db.execute(
            "SELECT s.version, s.min_dss, count(f.id), s.finding_count FROM scope s "
            "JOIN finding f ON f.scope_id = s.id GROUP BY s.id ORDER BY s.version"
        ).fetchall()
    assert per_scope == [
        (1, None, len(first["findings"]), len(first["findings"])),
        (2, 4, len(second["findings"]), len(second["findings"])),
    ]
    events = [e for e in cli.json("timeline", ident) if e["kind"] == "scan"]
    assert [e["data"]["version"] for e in events] == [1, 2]
    assert "Scan v2" in events[1]["summary"]


def test_stored_target_has_no_password(cli, seeded):
    dsn, _info = seeded
    ident = declare(cli)
    out = cli.json("scan", ident, "--target", f"{dsn} password=hunter2-secret", "--principal", "all_employees")
    assert "hunter2" not in out["scope"]["target"] and "dbname=" in out["scope"]["target"]
    cli.json("timeline", ident)
    for path in store_path(cli).parent.glob("cli.db*"):
        assert b"hunter2" not in path.read_bytes(), path


def test_named_target_from_team_config(cli, seeded, config_path):
    dsn, _info = seeded
    config_path.write_text(f'[targets.warehouse]\ndsn = "{dsn}"\n\n[[classification]]\npattern = "hr.*"\ndss = 1\n')
    ident = declare(cli)
    out = cli.json(
        "scan", ident, "--target", "warehouse", "--principal", "all_employees", "--schema", "hr", "--table", "org_*"
    )
    assert out["scope"]["target"] == "warehouse"
    assert [(f["object_name"], f["dss"]) for f in out["findings"]] == [("org_chart", 2)]


def test_human_output_is_tables_on_stdout_and_progress_on_stderr(cli, seeded):
    dsn, _info = seeded
    ident = declare(cli)
    result = cli("scan", ident, "--target", dsn, "--principal", "all_employees")
    assert result.returncode == 0, result.stderr
    for header in ("sensitivity", "access path", "principal", "via"):
        assert header in result.stdout
    assert "via role analytics_readers" in result.stdout and "DSS 4" in result.stdout
    assert "Scope v1 recorded on INC-" in result.stderr and "Scope v1" not in result.stdout
    assert "no member of all_employees has USAGE on vault" in result.stderr


def test_unreachable_target_is_one_line_error_and_records_nothing(cli):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ident = declare(cli)
    result = cli(
        "scan",
        ident,
        "--target",
        f"host=127.0.0.1 port={port} dbname=w connect_timeout=2",
        "--principal",
        "all_employees",
    )
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and f"port={port}" in result.stderr
    machine = cli(
        "scan",
        ident,
        "--target",
        f"host=127.0.0.1 port={port} dbname=w connect_timeout=2",
        "--principal",
        "x",
        "--json",
    )
    assert json.loads(machine.stderr)["error"] == "target_unreachable"
    assert [e["kind"] for e in cli.json("timeline", ident)] == ["declared"]


def test_bad_input_is_a_usage_or_not_found_error(cli, seeded):
    dsn, _info = seeded
    ident = declare(cli)
    assert cli("scan", ident, "--target", dsn, "--principal", "all_employees", "--min-dss", "5").returncode == 2
    missing_role = cli("scan", ident, "--target", dsn, "--principal", "nobody_here", "--json")
    assert missing_role.returncode == 1 and "nobody_here" in json.loads(missing_role.stderr)["message"]
    unknown_target = cli("scan", ident, "--target", "warehouse", "--principal", "all_employees")
    assert unknown_target.returncode == 1 and "no target named 'warehouse'" in unknown_target.stderr
    assert [e["kind"] for e in cli.json("timeline", ident)] == ["declared"]
