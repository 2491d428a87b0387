"""Faults: kill -9 at random points, the target going away mid-apply, concurrent CLI writers on a shared store."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from acl_snapshot import acl_snapshot

from sevtool.pgtemp import TempPostgres
from sevtool.scenario import seed_access_paths, seed_bulk

pytestmark = pytest.mark.postgres

PRINCIPALS = ("--principal", "all_employees", "--principal", "contractors")


def ledger_counts(cli, ident: str) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")) as conn:
        return dict(
            conn.execute(
                "SELECT status, count(*) FROM action WHERE incident_id = ? GROUP BY status", (int(ident),)
            ).fetchall()
        )


def start_apply(cli, ident: str, batch: int) -> subprocess.Popen:
    # The drill's PUBLIC revoke takes a table from login roles outside the scope: accepted, to run the whole plan.
    return subprocess.Popen(
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
            str(batch),
            "--json",
        ],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def in_process(cli):
    """The same store the CLI uses, driven in-process: only the apply that gets killed needs its own process."""
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    return Workbench(Settings(db=cli.env["SEVTOOL_DB"], config=cli.env["SEVTOOL_CONFIG"], tz="UTC", actor="tester"))


@pytest.mark.timeout(900)
def test_kill_9_at_random_points_always_resumes_to_the_same_end_state(cli, pg_db):
    seed_access_paths(pg_db)
    seed_bulk(pg_db, tables=400, batch=400)
    before = acl_snapshot(pg_db)
    wb = in_process(cli)
    principals = ["all_employees", "contractors"]
    rng = random.Random(20261123)
    # One uninterrupted run tells how many actions an apply has, so kill points spread over the whole run.
    ident = str(wb.incidents.declare("calibration", 2).id)
    wb.scanning.scan(int(ident), pg_db, principals)
    proc = start_apply(cli, ident, batch=10)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    total = sum(ledger_counts(cli, ident).values())
    assert not wb.revocation.undo(int(ident)).failures
    assert acl_snapshot(pg_db) == before
    outcomes = []
    for run in range(20):
        incident = wb.incidents.declare(f"kill run {run}", 2)
        wb.scanning.scan(incident.id, pg_db, principals)
        # Killed once the ledger shows `at` actions moved on (0: as soon as the plan is journaled). Points chosen by
        # progress, not by time: a timed kill on a busy machine landed before the plan or after the end in 19 of 20 runs.
        at = rng.randrange(0, total)
        proc = start_apply(cli, str(incident.id), batch=10)
        while proc.poll() is None:
            counts = ledger_counts(cli, str(incident.id))
            if counts and sum(counts.values()) - counts.get("planned", 0) >= at:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes.append(ledger_counts(cli, str(incident.id)).get("applied", 0))
        resumed = wb.revocation.apply(incident.id, accept_collateral=True)
        assert resumed.failures == [], f"run {run}: {resumed.failures[:2]}"
        assert set(ledger_counts(cli, str(incident.id))) <= {"applied", "skipped"}
        assert wb.scanning.run(wb.scanning.scope(incident.id)).findings == [], f"run {run} left access behind"
        assert wb.revocation.undo(incident.id).failures == []
        assert acl_snapshot(pg_db) == before, f"run {run}: undo did not restore the snapshot"
    assert len(set(outcomes)) > 10, f"kills did not land at varied points: {outcomes}"


@pytest.mark.timeout(900)
def test_target_going_away_mid_apply_is_a_clear_error_and_resumes_after_restart(cli):
    # synchronous_commit on: the server is stopped like a crash, and an acknowledged commit must survive it.
    with TempPostgres(settings={"synchronous_commit": "on"}) as server:
        dsn = server.create_database("fragile")
        seed_bulk(dsn, tables=3000, batch=1000)
        before = acl_snapshot(dsn)
        ident = str(cli.json("declare", "--sev", "2", "--title", "target goes away")["id"])
        cli.json("scan", ident, "--target", dsn, "--principal", "all_employees")
        proc = start_apply(cli, ident, batch=20)
        deadline = time.monotonic() + 120
        while ledger_counts(cli, ident).get("applied", 0) < 300 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        server.pause()
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        error = json.loads(stderr.strip().splitlines()[-1])
        assert "Traceback" not in stderr and error["message"]
        midway = ledger_counts(cli, ident)
        assert 0 < midway.get("applied", 0) < 3000

        server.resume()
        with psycopg.connect(dsn) as conn:
            still_granted = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relacl::text LIKE '%all_employees=r%'"
            ).fetchone()[0]
        assert still_granted <= 3000 - midway["applied"], "the ledger says applied only for what is really gone"
        resumed = cli.json("revoke", ident, "--apply", "--yes")
        assert resumed["failures"] == [] and set(ledger_counts(cli, ident)) <= {"applied", "skipped"}
        assert cli.json("scan", ident, "--target", dsn, "--principal", "all_employees")["findings"] == []
        cli.json("revoke", ident, "--undo", "--yes")
        assert acl_snapshot(dsn) == before


@pytest.mark.timeout(900)
def test_three_cli_processes_share_a_postgresql_store_without_losing_a_note(cli, pg_store_url):
    env = {"SEVTOOL_DB": pg_store_url}
    ident = str(cli.json("declare", "--sev", "2", "--title", "shared store", env=env)["id"])
    script = (
        "import subprocess, sys\n"
        "for i in range(15):\n"
        "    subprocess.run([sys.executable, '-m', 'sevtool', 'note', sys.argv[1], f'{sys.argv[2]} note {i}'], check=True)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, ident, f"responder{n}"], env={**cli.env, **env})
        for n in range(3)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    notes = [e["summary"] for e in cli.json("timeline", ident, env=env) if e["kind"] == "note"]
    assert sorted(notes) == sorted(f"responder{n} note {i}" for n in range(3) for i in range(15))
    report = cli.json("audit", "verify", env=env)
    assert report["ok"] and report["events"] == 46


def store_is_free(cli) -> bool:
    """Nobody holds the SQLite store's write lock (a stopped process may have been stopped inside a write)."""
    import sqlite3

    conn = sqlite3.connect(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///"), timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def freeze(proc: subprocess.Popen) -> None:
    """SIGSTOP, and wait until every thread has really stopped: the signal lands a moment after kill() returns,
    and a process still running in that moment can enter a store write and be frozen inside it."""
    proc.send_signal(signal.SIGSTOP)

    def state(task: Path) -> str:
        try:
            return (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:  # a thread that ended meanwhile
            return "T"

    while any(state(task) != "T" for task in Path(f"/proc/{proc.pid}/task").iterdir()):
        time.sleep(0.001)


@pytest.mark.timeout(600)
def test_two_apply_processes_on_one_incident_never_both_run(cli, pg_db):
    seed_bulk(pg_db, tables=1000, batch=1000)
    ident = str(cli.json("declare", "--sev", "2", "--title", "two responders apply at once")["id"])
    cli.json("scan", ident, "--target", pg_db, "--principal", "all_employees")
    first = start_apply(cli, ident, batch=10)
    # Frozen (SIGSTOP) once it is revoking, outside a store write: it holds the apply lock and is alive, as a
    # responder's apply on a slow target is. Frozen by progress, not by time, for the same reason as the kills above.
    while first.poll() is None and not set(ledger_counts(cli, ident)) - {"planned"}:
        time.sleep(0.002)
    freeze(first)
    while not store_is_free(cli):
        first.send_signal(signal.SIGCONT)
        time.sleep(0.005)
        freeze(first)
    try:
        assert first.poll() is None, "the first apply finished before the second could start: give it more tables"
        second = cli("revoke", ident, "--apply", "--yes", "--json")
        assert second.returncode == 1, second.stdout
        error = json.loads(second.stderr)
        assert error["error"] == "lock_held" and "already running" in error["message"], second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads(out)["counts"] == {"applied": 1000, "skipped": 0, "failed": 0}
    again = cli.json("revoke", ident, "--apply", "--yes")
    assert again["counts"] == {"applied": 0, "skipped": 0, "failed": 0}
    applied = [e["data"]["counts"]["applied"] for e in cli.json("timeline", ident) if e["kind"] == "apply"]
    assert sum(applied) == 1000, f"every table revoked by exactly one run: {applied}"
    assert cli.json("scan", ident, "--target", pg_db, "--principal", "all_employees")["findings"] == []


@pytest.mark.timeout(600)
def test_two_watch_processes_on_one_incident_never_run_a_check_twice(cli, pg_db, config_path):
    from sevtool.store import checks as q
    from sevtool.store import schedule as sched
    from sevtool.store.repository import Store

    seed_bulk(pg_db, tables=20, batch=20)
    config_path.write_text('[sev.2]\nrecheck = ["0m", "1h", "2h"]\n')
    ident = str(cli.json("declare", "--sev", "2", "--title", "two watchers")["id"])
    cli.json("scan", ident, "--target", pg_db, "--principal", "all_employees")
    cli.json("revoke", ident, "--apply", "--yes")
    first = subprocess.Popen(
        [sys.executable, "-m", "sevtool", "watch", ident, "--json"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ran = json.loads(first.stdout.readline())  # the check due at containment; then it waits an hour for the next
        assert ran["event"] == "check" and ran["clean"] and ran["slot"]["idx"] == 0
        second = cli("watch", ident, "--once", "--json")
        assert second.returncode == 1 and json.loads(second.stderr)["error"] == "lock_held", second.stderr
        assert first.poll() is None, "the first watcher stopped: " + first.stderr.read()
    finally:
        first.send_signal(signal.SIGKILL)  # a watcher that dies, lock held: the next one on this host takes over
        first.wait()
    third = cli("watch", ident, "--once", "--json")
    assert third.returncode == 0, third.stderr
    assert [json.loads(line)["event"] for line in third.stdout.splitlines()] == [
        "done"
    ]  # the 0m check is not run again
    store = Store(cli.env["SEVTOOL_DB"])
    assert [(s.idx, s.status) for s in sched.slots(store, int(ident))] == [(0, "done"), (1, "pending"), (2, "pending")]
    assert [c.number for c in q.checks(store, int(ident))] == [1]
