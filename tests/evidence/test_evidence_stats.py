"""`sevtool evidence` with table statistics as a second source, on PostgreSQL 15 with pgaudit: the counters
snapshotted at the scan and at the apply say how often each object was read between them, beside the logs' answer."""

from __future__ import annotations

import time

import psycopg
import pytest

from sevtool.targets.postgres.stats import table_stats
from sevtool.targets.postgres.target import PostgresTarget

pytestmark = pytest.mark.postgres

SETUP = """
CREATE ROLE all_employees NOLOGIN;
CREATE ROLE alice LOGIN IN ROLE all_employees;
CREATE TABLE keystrokes (id int, secret text);
CREATE TABLE salaries (id int, amount int);
GRANT SELECT ON keystrokes, salaries TO all_employees;
"""


def scans(dsn: str, table: str) -> int:
    return table_stats(PostgresTarget(dsn), [table]).counters[table].scans


def read_twice_as_alice(audit_pg, dsn: str) -> None:
    start = scans(dsn, "public.keystrokes")
    with psycopg.connect(audit_pg.dsn("wh", user="alice"), autocommit=True) as conn:
        conn.execute("SELECT * FROM keystrokes").fetchall()
        conn.execute("SELECT count(*) FROM keystrokes").fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")  # statistics are published asynchronously otherwise
    deadline = time.monotonic() + 20  # the test waits for the server; sevtool is given no time limit
    while scans(dsn, "public.keystrokes") < start + 2:
        assert time.monotonic() < deadline, "the server did not publish alice's reads"
        time.sleep(0.05)


@pytest.fixture
def scanned(cli, audit_pg):
    audit_pg.create_database("wh")
    dsn = audit_pg.dsn("wh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP)
    ident = str(cli.json("declare", "--sev", "1", "--title", "Keystrokes readable by every employee")["id"])
    cli.json("scan", ident, "--target", dsn, "--principal", "all_employees")
    return ident, dsn


def by_object(report: dict) -> dict:
    return {o["object"]: o for o in report["objects"]}


def test_evidence_counts_reads_between_the_scan_and_the_containment(cli, audit_pg, scanned):
    ident, dsn = scanned
    read_twice_as_alice(audit_pg, dsn)
    assert cli.json("revoke", ident, "--apply", "--yes")["counts"]["applied"] >= 2

    report = cli.json("evidence", ident, "--log", str(audit_pg.log_dir))
    objects = by_object(report)
    keystrokes, salaries = objects["public.keystrokes"], objects["public.salaries"]
    assert keystrokes["stats_reads"] == 2 and keystrokes["stats_reset"] is False
    assert salaries["stats_reads"] == 0
    assert keystrokes["stats_from"] < keystrokes["stats_to"]
    # The logs decide the answer; the statistics stand beside it.
    assert keystrokes["answer"] == "reads" and salaries["answer"] == "no_reads"

    text = cli("evidence", ident, "--log", str(audit_pg.log_dir))
    assert text.returncode == 0, text.stderr
    assert "table statistics: read 2 time(s) between" in text.stdout


def test_a_statistics_reset_between_the_snapshots_is_reported_without_a_count(cli, audit_pg, scanned):
    ident, dsn = scanned
    read_twice_as_alice(audit_pg, dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    cli.json("revoke", ident, "--apply", "--yes")

    keystrokes = by_object(cli.json("evidence", ident, "--log", str(audit_pg.log_dir)))["public.keystrokes"]
    assert keystrokes["stats_reset"] is True and keystrokes["stats_reads"] is None
    assert keystrokes["answer"] == "reads", "alice's reads are still in the logs"
    text = cli("evidence", ident, "--log", str(audit_pg.log_dir)).stdout
    assert "table statistics: reset between" in text
