"""Three real `sevtool guard --every` workers share 20 policies through a PostgreSQL store; one is SIGKILLed mid-run.

Every policy runs once per interval slot (no slot skipped, none run twice), and the slot the killed worker held
is run by another worker within one lease period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import psycopg
import pytest

from sevtool.scenario import seed_drill

pytestmark = pytest.mark.postgres

POLICIES = 20
EVERY = 8  # seconds between runs of one policy
LEASE = 4  # seconds a claim lasts without renewal
INTERVALS_AFTER_KILL = 3


def store_rows(url: str, query: str, *args) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


@pytest.fixture
def fleet_config(pg_db, config_path) -> None:
    seed_drill(pg_db, tables=120, employees=4)
    policies = "".join(
        f'\n[[policy]]\nname = "p{n:02d}"\ntarget = "warehouse"\nprincipals = ["etl_loader"]\nschemas = ["ml_features"]\n'
        for n in range(1, POLICIES + 1)
    )
    config_path.write_text(f'[targets.warehouse]\nkind = "postgresql"\ndsn = "{pg_db}"\n{policies}')


@pytest.mark.timeout(240)
def test_three_workers_run_each_policy_once_per_interval_and_take_over_a_killed_one(
    cli, fleet_config, pg_store_url, tmp_path
):
    env = {**cli.env, "SEVTOOL_DB": pg_store_url}
    assert cli("list", "--json", env=env).returncode == 0  # the store's schema exists before the workers race for it
    logs = [open(tmp_path / f"worker{n}.log", "w") for n in range(3)]  # noqa: SIM115 (closed below)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sevtool", "guard", "--every", f"{EVERY}s", "--lease", f"{LEASE}s", "--json"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    victim = workers[0]
    mark = f"%:{victim.pid}:%"
    try:
        deadline = time.monotonic() + 120
        held: list[tuple] = []
        while not held:
            assert time.monotonic() < deadline and victim.poll() is None, (tmp_path / "worker0.log").read_text()
            held = store_rows(pg_store_url, "SELECT key FROM work_lease WHERE kind = 'guard' AND holder LIKE %s", mark)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = datetime.now(UTC)
        victim.wait()
        # What the victim held when it died (it can no longer finish or renew anything).
        orphaned = store_rows(
            pg_store_url, "SELECT key, due_at FROM work_lease WHERE kind = 'guard' AND holder LIKE %s", mark
        )
        assert orphaned, "the victim finished its run before the kill landed: kill it sooner"
        time.sleep(EVERY * INTERVALS_AFTER_KILL)
        for worker in workers[1:]:
            assert worker.poll() is None, "a surviving worker stopped"
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
            worker.wait()
        for log in logs:
            log.close()
    stopped_at = datetime.now(UTC)

    runs = store_rows(pg_store_url, "SELECT key, slot, holder, ran_at FROM guard_run ORDER BY key, slot")
    slots: dict[str, list[datetime]] = defaultdict(list)
    for key, slot, _holder, _ran in runs:
        slots[key].append(slot)
    assert sorted(slots) == [f"p{n:02d}@warehouse" for n in range(1, POLICIES + 1)], "every policy ran"
    first = min(s[0] for s in slots.values())
    for key, served in slots.items():
        assert len(served) == len(set(served)), f"{key} ran twice in one interval: {served}"
        assert served[0] == first, f"{key} missed its first slot"
        gaps = {b - a for a, b in pairwise(served)}
        assert gaps <= {timedelta(seconds=EVERY)}, f"{key} skipped an interval: {served}"
        # Every slot that came due at least one interval before the workers stopped was served.
        assert served[-1] + timedelta(seconds=2 * EVERY) > stopped_at, (
            f"{key} stopped being run: last slot {served[-1]}"
        )

    by_slot = {(key, slot): (holder, ran_at) for key, slot, holder, ran_at in runs}
    for key, due_at in orphaned:
        holder, ran_at = by_slot[(key, due_at)]
        assert f":{victim.pid}:" not in holder, "the victim's run was recorded though it was killed mid-run"
        assert ran_at <= killed_at + timedelta(seconds=LEASE), (
            f"{key}'s orphaned slot ran {ran_at - killed_at} after the kill"
        )
    assert not any(
        f":{victim.pid}:" in holder for _k, slot, holder, _r in runs if slot >= max(d for _k2, d in orphaned)
    )
