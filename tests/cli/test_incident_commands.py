"""The incident commands through the real entry point: JSON on stdout, errors on stderr, exit codes."""

import json
import sqlite3


def db_path(cli) -> str:
    return cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")


def test_declare_id_flows_through_show_note_timeline_and_audit(cli):
    inc = cli.json(
        "declare", "--sev", "2", "--title", "Telemetry tables readable by all employees", "--commander", "alice"
    )
    assert inc["sev"] == 2 and inc["status"] == "declared" and inc["policy"]["recheck"][0] == "0m"
    ident = str(inc["id"])
    shown = cli.json("show", ident)
    assert shown["title"] == "Telemetry tables readable by all employees" and shown["commander"] == "alice"
    assert cli.json("show", f"INC-{ident}")["id"] == inc["id"]
    note = cli.json("note", ident, "scoped: 45k tables", "--at", "-10m")
    assert note["kind"] == "note" and note["incident_id"] == inc["id"]
    events = cli.json("timeline", ident)
    assert [e["kind"] for e in events] == ["note", "declared"], "a back-dated note sorts before the declaration"
    assert all(e["at"].endswith("Z") for e in events)
    report = cli.json("audit", "verify")
    assert report["ok"] is True and report["events"] == 2 and len(report["head"]) == 64


def test_sev_status_and_list(cli):
    ident = str(cli.json("declare", "--sev", "3", "--title", "t")["id"])
    assert cli.json("sev", ident, "1", "--why", "DSS 4 in scope")["sev"] == 1
    assert cli.json("status", ident, "contained", "--at", "-5m")["status"] == "contained"
    listed = cli.json("list")
    assert listed[0]["id"] == int(ident) and listed[0]["status"] == "contained"
    human = cli("list")
    assert human.returncode == 0 and "INC-" in human.stdout and "SEV 1" in human.stdout


def test_hand_edited_store_row_fails_audit_naming_the_event(cli):
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    for i in range(3):
        cli.json("note", ident, f"note {i}")
    with sqlite3.connect(db_path(cli)) as conn:
        conn.execute("UPDATE event SET summary = 'all fine' WHERE seq = 3")
    result = cli("audit", "verify")
    assert result.returncode == 1
    assert "event 3" in result.stderr
    machine = cli("audit", "verify", "--json")
    assert machine.returncode == 1 and json.loads(machine.stdout)["broken_seq"] == 3


def test_deleted_row_fails_audit(cli):
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    cli.json("note", ident, "a")
    cli.json("note", ident, "b")
    with sqlite3.connect(db_path(cli)) as conn:
        conn.execute("DELETE FROM event WHERE seq = 2")
    result = cli("audit", "verify", "--json")
    assert result.returncode == 1 and json.loads(result.stdout)["broken_seq"] == 2


def test_invalid_sev_is_one_line_usage_error_and_writes_nothing(cli):
    result = cli("declare", "--sev", "7", "--title", "t")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "SEV" in result.stderr
    assert result.stdout == ""
    machine = cli("declare", "--sev", "7", "--title", "t", "--json")
    assert machine.returncode == 2 and json.loads(machine.stderr)["error"] == "usage"
    assert cli.json("list") == []


def test_unknown_incident_is_one_line_error_exit_1(cli):
    result = cli("note", "999", "hello")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "999" in result.stderr
    machine = cli("show", "999", "--json")
    assert machine.returncode == 1 and json.loads(machine.stderr)["error"] == "not_found"
    assert cli.json("audit", "verify")["events"] == 0


def test_illegal_transition_and_bad_time_are_usage_errors(cli):
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    result = cli("status", ident, "resolved")
    assert result.returncode == 2 and "declared" in result.stderr
    bad = cli("note", ident, "x", "--at", "banana o'clock")
    assert bad.returncode == 2 and "cannot read time" in bad.stderr
    assert len(cli.json("timeline", ident)) == 1


def test_declare_help_documents_the_rubric(cli):
    out = cli("declare", "--help").stdout
    assert "If unsure, pick the more severe level" in out
    assert "data sensitivity" in out and "breadth of access" in out and "still ongoing" in out
