"""`sevtool revoke` through the real entry point against a real PostgreSQL target: plan, apply, resume, undo."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest
from acl_snapshot import acl_snapshot

from sevtool.scenario import seed_access_paths, seed_bulk
from sevtool.store import locks
from sevtool.store.repository import Store

pytestmark = pytest.mark.postgres

PRINCIPALS = ("--principal", "all_employees", "--principal", "contractors")


def ledger(cli) -> dict[str, int]:
    with sqlite3.connect(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM action GROUP BY status").fetchall())


@pytest.fixture
def drill(cli, pg_db):
    """An incident scanned over a database where all nine access paths exist."""
    seed_access_paths(pg_db)
    ident = str(cli.json("declare", "--sev", "2", "--title", "Telemetry readable by every employee")["id"])
    assert cli.json("scan", ident, "--target", pg_db, *PRINCIPALS)["findings"]
    return ident, pg_db


def test_plan_apply_rescan_undo_end_to_end(cli, drill):
    ident, dsn = drill
    before = acl_snapshot(dsn)
    plan = cli.json("revoke", ident, "--plan")
    assert plan["plan_version"] == 1 and plan["counts"]["planned"] == len(plan["actions"]) > 10
    assert all(a["sql"] and a["prior_state"] for a in plan["actions"])
    assert {a["kind"] for a in plan["actions"] if a["review"]} == {"revoke_membership", "revoke_table"}
    assert {(a["object_name"], c["role"], c["cause"]) for a in plan["actions"] for c in a["collateral"]} >= {
        ("messages", "PUBLIC", "public_revoke")
    }, "a login role outside the scope reads chat.messages only through PUBLIC"
    assert acl_snapshot(dsn) == before, "planning changes nothing on the target"

    refused = cli("revoke", ident, "--apply", "--json")
    assert refused.returncode == 2 and json.loads(refused.stderr)["error"] == "usage" and "--yes" in refused.stderr

    report = cli.json("revoke", ident, "--apply", "--yes", "--accept-collateral")
    assert report["counts"] == {"applied": len(plan["actions"]), "skipped": 0, "failed": 0}
    assert report["status"] == "contained" and report["failures"] == []
    rescan = cli.json("scan", ident, "--target", dsn, *PRINCIPALS)
    assert rescan["findings"] == []

    again = cli.json(
        "revoke", ident, "--apply", "--yes", "--accept-collateral"
    )  # the plan covers an older scan: a new, empty plan
    assert again["counts"] == {"applied": 0, "skipped": 0, "failed": 0} and again["status"] == "contained"
    assert acl_snapshot(dsn) != before

    kinds = [e["kind"] for e in cli.json("timeline", ident)]
    assert kinds.count("apply") == 2 and "apply_started" in kinds and "revoke_planned" in kinds
    assert kinds.index("apply_started") < kinds.index("apply") < kinds.index("status_changed"), (
        "the apply, then what it caused"
    )
    apply_event = next(e for e in cli.json("timeline", ident) if e["kind"] == "apply")
    assert apply_event["data"]["counts"]["applied"] == len(plan["actions"])

    undone = cli.json("revoke", ident, "--undo", "--yes")
    assert undone["counts"] == {"undone": len(plan["actions"]), "failed": 0} and undone["status"] == "declared"
    assert acl_snapshot(dsn) == before, "undo restores every ACL byte for byte"
    assert ledger(cli) == {"undone": len(plan["actions"])}
    assert cli.json("audit", "verify")["ok"] is True


def test_page_by_page_apply_and_undo_restore_every_acl(cli, pg_db, config_path):
    """Batches of one: apply and undo read the plan a few actions at a time, and an object's actions in different
    statement shapes (far apart in plan order) are still restored together."""
    dsn = pg_db
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE paged_reader; CREATE ROLE paged_holder; CREATE SCHEMA paged")
        conn.execute("GRANT USAGE ON SCHEMA paged TO paged_reader, paged_holder")
        for n in range(12):
            conn.execute(f"CREATE TABLE paged.t{n} (a int, b int); GRANT SELECT ON paged.t{n} TO paged_reader")
        conn.execute("GRANT SELECT (b) ON paged.t3 TO paged_reader")  # a column grant beside the table's
        conn.execute("GRANT SELECT ON paged.t7 TO paged_holder WITH GRANT OPTION")
        conn.execute("SET ROLE paged_holder; GRANT SELECT ON paged.t7 TO paged_reader; RESET ROLE")
    ident = str(cli.json("declare", "--sev", "2", "--title", "paged")["id"])
    assert cli.json("scan", ident, "--target", dsn, "--principal", "paged_reader")["findings"]
    config_path.write_text("revoke_batch_size = 1\n")
    before = acl_snapshot(dsn)
    plan = cli.json("revoke", ident, "--plan")
    named = [(a["schema_name"], a["object_name"]) for a in plan["actions"]]
    assert len(named) > len(set(named)) and len(named) > 8, "some object has several actions, over several pages"
    report = cli.json("revoke", ident, "--apply", "--yes", "--accept-collateral")
    applied = report["counts"]["applied"]
    assert report["failures"] == [] and applied + report["counts"]["skipped"] == len(plan["actions"])
    assert not cli.json("scan", ident, "--target", dsn, "--principal", "paged_reader")["findings"]
    undone = cli.json("revoke", ident, "--undo", "--yes")
    assert undone["counts"] == {"undone": applied, "failed": 0}
    assert acl_snapshot(dsn) == before, "undo restores every ACL byte for byte"


def test_confirmation_shows_the_plan_and_no_means_nothing_happens(cli, drill):
    ident, dsn = drill
    before = acl_snapshot(dsn)
    declined = cli("revoke", ident, "--apply", input="n\n")
    assert declined.returncode == 1 and "nothing applied" in declined.stderr
    assert "REVIEW" in declined.stderr and 'REVOKE "analytics_readers" FROM "all_employees"' in declined.stderr
    assert declined.stdout == "" and acl_snapshot(dsn) == before and ledger(cli) == {"planned": ledger(cli)["planned"]}

    closed_stdin = cli("revoke", ident, "--apply", input="")
    assert closed_stdin.returncode == 2 and "--yes" in closed_stdin.stderr

    accepted = cli("revoke", ident, "--apply", input="y\ny\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "applied" in accepted.stderr and acl_snapshot(dsn) != before
    progress = [
        line.split(":")[0].strip()
        for line in accepted.stderr.splitlines()
        if line.startswith("  ") and "/" in line.split(":")[0]
    ]
    assert progress and len(progress) == len(set(progress)), f"each progress line says something new: {progress}"
    assert set(ledger(cli)) == {"applied"}, "the plan that was confirmed is the plan that ran (no second plan)"


def test_exactly_one_mode_and_a_scan_first(cli, pg_db):
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    both = cli("revoke", ident, "--plan", "--apply")
    assert both.returncode == 2 and "exactly one" in both.stderr
    unscanned = cli("revoke", ident, "--plan", "--json")
    assert unscanned.returncode == 2 and "scan" in json.loads(unscanned.stderr)["hint"]
    assert cli("revoke", "999", "--plan").returncode == 1


def test_a_second_apply_on_the_same_incident_is_refused_while_one_runs(cli, drill):
    ident, _dsn = drill
    store = Store(cli.env["SEVTOOL_DB"])
    locks.acquire(store, int(ident), "apply", "another-host:4242:abcd")  # a responder on another machine is applying
    busy = cli("revoke", ident, "--apply", "--yes", "--accept-collateral", "--json")
    assert busy.returncode == 1 and json.loads(busy.stderr)["error"] == "lock_held"
    assert "already running" in json.loads(busy.stderr)["message"]
    locks.release(store, int(ident), "apply", "another-host:4242:abcd")
    assert cli.json("revoke", ident, "--apply", "--yes", "--accept-collateral")["failures"] == []


def test_failed_actions_exit_1_and_say_why(cli, pg, pg_db):
    """Connected as a role that may read but not revoke: the server's warning makes each action fail."""
    seed_access_paths(pg_db)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute(
            "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'auditor') THEN CREATE ROLE auditor LOGIN; END IF; END$$"
        )
        conn.execute("GRANT SELECT ON hr.salaries TO auditor")
    as_auditor = pg.dsn(pg_db.split("dbname=")[1].split()[0], user="auditor")
    ident = str(cli.json("declare", "--sev", "2", "--title", "t")["id"])
    cli.json("scan", ident, "--target", as_auditor, "--principal", "all_employees", "--schema", "hr")
    report = cli("revoke", ident, "--apply", "--yes", "--accept-collateral", "--json")
    assert report.returncode == 1
    body = json.loads(report.stdout)
    assert body["counts"]["failed"] > 0 and body["status"] == "declared"
    salaries = next(f for f in body["failures"] if f["object"] == "hr.salaries")
    assert "no privileges could be revoked" in salaries["message"]
    human = cli("revoke", ident, "--apply", "--yes", "--accept-collateral")
    assert human.returncode == 1 and "hr.salaries" in human.stdout and "run the same command again" in human.stderr


def test_kill_9_midway_then_resume_reaches_the_same_end_state(cli, pg_db):
    seeded = seed_bulk(pg_db, tables=1500, batch=500)
    before = acl_snapshot(pg_db)
    ident = str(cli.json("declare", "--sev", "2", "--title", "1500 tables readable by all employees")["id"])
    cli.json("scan", ident, "--target", pg_db, "--principal", "all_employees")
    total = len(cli.json("revoke", ident, "--plan")["actions"])
    assert total == seeded["tables"]

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sevtool",
            "revoke",
            ident,
            "--apply",
            "--yes",
            "--accept-collateral",
            "--batch-size",
            "25",
        ],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while ledger(cli).get("applied", 0) < 200 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    midway = ledger(cli)
    assert 0 < midway.get("applied", 0) < total, f"the kill landed midway: {midway}"

    resumed = cli.json("revoke", ident, "--apply", "--yes", "--accept-collateral")
    assert resumed["failures"] == [] and resumed["totals"]["applied"] == total and resumed["totals"]["skipped"] == 0
    assert ledger(cli) == {"applied": total}, "actions in flight at the kill are recorded as applied, not skipped"
    assert cli.json("scan", ident, "--target", pg_db, "--principal", "all_employees")["findings"] == []
    events = [e["kind"] for e in cli.json("timeline", ident)]
    assert events.count("apply_started") == 2 and events.count("apply") == 1

    cli.json("revoke", ident, "--undo", "--yes")
    assert acl_snapshot(pg_db) == before, "the resumed run journaled everything it did, so undo restores all of it"
