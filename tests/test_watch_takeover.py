"""One watcher per slot, always: two real `sevtool watch` processes and a check slower than the lock's window.

The catalog answers slowly (the fake Unity Catalog server's `latency`), so one check outlasts the watch lock's
staleness window (SEVTOOL_WATCH_STALE_AFTER, shortened here). The watcher running it must keep the lock
through the check; a second watcher started meanwhile must be refused, and the catalog must see exactly one
check per slot.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from fakes.uc_server import FakeUnityCatalog, seed_drill

P = "account users"
WINDOW = 2.5  # seconds: the watch lock's staleness window for this test
LATENCY = 0.6  # seconds per catalog answer: a check takes several windows


def slot_states(cli, ident: str) -> list[tuple[int, str]]:
    with sqlite3.connect(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")) as conn:
        return conn.execute(
            "SELECT idx, status FROM schedule_slot WHERE incident_id = ? ORDER BY round, idx", (int(ident),)
        ).fetchall()


def listings(server: FakeUnityCatalog, since: int) -> int:
    """Checks the catalog saw: each check lists the catalogs once from the first page (no page token)."""
    return sum(
        1
        for method, path, query in server.requests[since:]
        if method == "GET" and path == "/catalogs" and "page_token" not in query
    )


@pytest.fixture
def slow_lake(config_path):
    server = FakeUnityCatalog(page_size=2, empty_pages=True).start()
    seed_drill(server, P)
    config_path.write_text(
        f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\n\n[sev.2]\nrecheck = ["0m", "1h"]\n'
    )
    yield server
    server.stop()
    assert server.violations == []


@pytest.mark.timeout(300)
def test_a_check_slower_than_the_lock_window_is_not_run_twice_by_a_second_watcher(cli, slow_lake):
    server = slow_lake
    env = {**cli.env, "SEVTOOL_WATCH_STALE_AFTER": str(WINDOW)}
    ident = str(cli.json("declare", "--sev", "2", "--title", "two watchers, one slow check")["id"])
    cli.json("scan", ident, "--target", "lake", "--principal", P)
    cli.json("revoke", ident, "--apply", "--yes")
    server.latency = LATENCY
    since = len(server.requests)
    first = subprocess.Popen(
        [sys.executable, "-m", "sevtool", "watch", ident, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (0, "running") not in slot_states(cli, ident):
            assert first.poll() is None and time.monotonic() < deadline, (
                first.stderr.read() if first.poll() is not None else "no slot claimed"
            )
            time.sleep(0.05)
        started = time.monotonic()
        time.sleep(
            2 * WINDOW
        )  # past the window: without heartbeats during the check, the lock would look abandoned now
        assert (0, "running") in slot_states(cli, ident), (
            "the check finished within the window: slow the catalog down more"
        )
        second = subprocess.run(
            [sys.executable, "-m", "sevtool", "watch", ident, "--once", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1 and json.loads(second.stderr)["error"] == "lock_held", (
            f"the second watcher was not refused (exit {second.returncode}): {second.stdout} {second.stderr}"
        )
        line = first.stdout.readline()  # the first watcher's check of slot 0; then it waits an hour
        assert line, f"the first watcher stopped (exit {first.wait()}): {first.stderr.read()}"
        ran = json.loads(line)
        assert time.monotonic() - started > WINDOW, "the check outlasted the window"
        assert ran["event"] == "check" and ran["slot"]["idx"] == 0, ran
        assert first.poll() is None, "the first watcher stopped: " + first.stderr.read()
    finally:
        first.kill()
        first.wait()
    assert listings(server, since) == 1, "the catalog saw one check for the one slot that was due"
    assert slot_states(cli, ident) == [(0, "done"), (1, "pending")]
    checks = [e for e in cli.json("timeline", ident) if e["kind"] == "check"]
    assert len(checks) == 1 and checks[0]["data"]["slot"]["idx"] == 0


def test_the_store_refuses_to_finish_a_slot_whose_lock_another_watcher_took(tmp_path, config_path, slow_lake):
    """A watcher that lost the lock mid-check anyway (frozen, cut off from the store) records nothing for the slot."""
    from datetime import timedelta

    from sevtool.core.timeparse import utcnow
    from sevtool.errors import LockHeld
    from sevtool.services import Workbench
    from sevtool.settings import Settings
    from sevtool.store import checks as q
    from sevtool.store import locks
    from sevtool.store import schedule as sched

    wb = Workbench(Settings(db=f"sqlite:///{tmp_path / 'inproc.db'}", config=config_path, tz="UTC", actor="tester"))
    incident = wb.incidents.declare("a watcher loses its lock mid-check", 2).id
    wb.scanning.scan(incident, "lake", [P])
    wb.revocation.apply(incident)
    successor = "other-host:4242:feedbeef"
    run = wb.scanning.run

    def check_during_which_another_watcher_takes_over(scope):
        result = run(scope)
        # What a second watcher does on a lock it judges abandoned: take it, give back running slots, claim them.
        locks.acquire(wb.store, incident, "watch", successor, stale_after=timedelta(0))
        with wb.store.write() as tx:
            sched.release_running(tx.session, incident)
            sched.claim(tx.session, [sched.slots(wb.store, incident)[0].id], successor, utcnow())
        return result

    wb.scanning.run = check_during_which_another_watcher_takes_over
    with pytest.raises(LockHeld) as lost:
        wb.verification.watch(incident, once=True)
    assert "lost the watch lock" in lost.value.message and successor in lost.value.message
    assert q.checks(wb.store, incident) == [], "the check of a watcher that lost the lock is not recorded"
    slots = sched.slots(wb.store, incident)
    assert next((s.idx, s.status, s.claimed_by) for s in slots) == (0, "running", successor), (
        "the slot stays the successor's to run"
    )
