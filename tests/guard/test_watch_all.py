"""`sevtool watch --all`: two real workers on a PostgreSQL store serve every contained incident's re-check schedule,
each slot run once; when one worker is SIGKILLed, the other finishes every schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from sevtool.scenario import ensure_role, grant_role

pytestmark = pytest.mark.postgres

SLOTS = ["0m", "2s", "4s"]


def store_rows(url: str, query: str, *args) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


@pytest.fixture
def contained(cli, pg_db, pg_store_url, config_path) -> tuple[dict, list[int]]:
    with psycopg.connect(pg_db, autocommit=True) as conn:
        ensure_role(conn, "all_employees")
        ensure_role(conn, "alice", login=True)
        grant_role(conn, "all_employees", "alice")
        for schema in ("telemetry", "chat"):
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO all_employees")
            conn.execute(f"CREATE TABLE {schema}.t (id bigint)")
            conn.execute(f"GRANT SELECT ON {schema}.t TO all_employees")
    config_path.write_text(f"[sev.2]\nrecheck = {SLOTS!r}\n".replace("'", '"'))
    env = {**cli.env, "SEVTOOL_DB": pg_store_url}
    idents = []
    for schema in ("telemetry", "chat"):
        ident = str(cli.json("declare", "--sev", "2", "--title", f"{schema} readable", env=env)["id"])
        cli.json("scan", ident, "--target", pg_db, "--principal", "all_employees", "--schema", schema, env=env)
        cli.json("revoke", ident, "--apply", "--yes", env=env)
        idents.append(int(ident))
    return env, idents


@pytest.mark.timeout(240)
def test_watch_all_workers_share_every_open_incident_and_survive_a_killed_worker(contained, pg_store_url, tmp_path):
    env, idents = contained
    logs = [open(tmp_path / f"watch{n}.log", "w") for n in range(2)]  # noqa: SIM115 (closed below)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sevtool", "watch", "--all", "--lease", "3s", "--json"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]

    def done() -> list[tuple]:
        return store_rows(
            pg_store_url,
            "SELECT incident_id, count(*) FROM schedule_slot WHERE status IN ('done', 'covered') GROUP BY incident_id",
        )

    try:
        deadline = time.monotonic() + 120
        while sum(n for _i, n in done()) < len(idents):  # the first re-check of each incident (due at once)
            assert time.monotonic() < deadline, [p.read_text() for p in tmp_path.glob("watch*.log")]
            time.sleep(0.1)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait()
        while sorted(done()) != [(i, len(SLOTS)) for i in idents]:
            assert time.monotonic() < deadline, (
                done(),
                store_rows(pg_store_url, "SELECT * FROM work_lease"),
                store_rows(pg_store_url, "SELECT incident_id, idx, status, claimed_by, due_at FROM schedule_slot"),
                store_rows(pg_store_url, "SELECT * FROM incident_lock"),
                (tmp_path / "watch1.log").read_text()[-1500:],
            )
            assert workers[1].poll() is None, (tmp_path / "watch1.log").read_text()
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
            worker.wait()
        for log in logs:
            log.close()
    for ident in idents:
        # A late watcher covers overdue slots with one check (status covered); every check served one slot that it ran.
        checks = store_rows(pg_store_url, "SELECT count(*) FROM check_run WHERE incident_id = %s", ident)[0][0]
        ran = store_rows(
            pg_store_url,
            "SELECT count(*), count(DISTINCT check_id) FROM schedule_slot WHERE incident_id = %s AND status = 'done'",
            ident,
        )[0]
        assert ran == (checks, checks) and checks >= 1, (
            f"INC-{ident}: {checks} checks for {ran[0]} slots run: a slot ran twice or a check served none"
        )
