"""The minimal worlds of tests/differential/repros.py, on PostgreSQL 15 and 18, judged exactly like a random seed."""

from __future__ import annotations

import psycopg
import pytest

from differential import oracle
from differential.harness import run_world
from differential.repros import REPROS


@pytest.mark.parametrize("repro", REPROS, ids=[r.name for r in REPROS])
def test_minimal_world(server_db, repro):
    with psycopg.connect(server_db, autocommit=True) as conn:
        major = oracle.major(conn)
    if major < repro.min_major:
        pytest.skip(f"needs PostgreSQL {repro.min_major}+ ({repro.why})")
    outcome = run_world(server_db, repro.world(major))
    assert outcome.disagreements == 0, f"{repro.why}\n{outcome.report()}"
