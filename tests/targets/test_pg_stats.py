"""Table statistics as evidence's second source, on PostgreSQL 15 and 18: snapshots after scan and apply count the
reads between them; a statistics reset between them is reported, never counted."""

from __future__ import annotations

import time

import psycopg
import pytest
from pg_roles import roles_dropped_after

from sevtool.targets.postgres.stats import table_stats
from sevtool.targets.postgres.target import PostgresTarget

pytestmark = pytest.mark.postgres

SETUP = """
CREATE ROLE emp_all NOLOGIN; CREATE ROLE ana LOGIN IN ROLE emp_all;
CREATE SCHEMA hr;
CREATE TABLE hr.salaries (id int PRIMARY KEY, amount int); CREATE TABLE hr.reviews (id int);
INSERT INTO hr.salaries VALUES (1, 10);
GRANT USAGE ON SCHEMA hr TO emp_all; GRANT SELECT ON hr.salaries, hr.reviews TO emp_all;
"""


@pytest.fixture
def db(server_db):
    with roles_dropped_after(server_db):
        with psycopg.connect(server_db, autocommit=True) as conn:
            conn.execute(SETUP)
        yield server_db


def read_as_member(dsn: str, *statements: str) -> None:
    """Reads as ana, then make the server publish them: statistics are flushed asynchronously (15+ can be forced)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE ana")
        for statement in statements:
            conn.execute(statement).fetchall()
        conn.execute("RESET ROLE")
        conn.execute("SELECT pg_stat_force_next_flush()")


def wait_for_scans(dsn: str, table: str, at_least: int) -> None:
    """The test waits for the server's statistics; sevtool itself is given no time limit."""
    deadline = time.monotonic() + 20
    while True:
        counters = table_stats(PostgresTarget(dsn), [table]).counters
        if table in counters and counters[table].scans >= at_least:
            return
        assert time.monotonic() < deadline, f"the server did not publish {at_least} scan(s) of {table}"
        time.sleep(0.05)


def scans_now(dsn: str, table: str) -> int:
    return table_stats(PostgresTarget(dsn), [table]).counters[table].scans


def test_the_target_reads_the_counters_of_the_named_tables_in_one_query(db):
    before = table_stats(PostgresTarget(db), ["hr.salaries", "hr.reviews", "hr.missing"])
    assert set(before.counters) == {"hr.salaries", "hr.reviews"}, "a name the server has no statistics for is left out"
    read_as_member(db, "SELECT * FROM hr.reviews", "SELECT amount FROM hr.salaries WHERE id = 1")
    start = before.counters["hr.reviews"].scans
    wait_for_scans(db, "hr.reviews", start + 1)
    after = table_stats(PostgresTarget(db), ["hr.reviews"])
    assert after.counters["hr.reviews"].seq_scan == before.counters["hr.reviews"].seq_scan + 1
    with psycopg.connect(db) as conn:
        version = conn.info.server_version
    if version >= 160000:
        assert after.counters["hr.reviews"].last_seq_scan is not None
    else:
        assert after.counters["hr.reviews"].last_seq_scan is None, "last_seq_scan exists from PostgreSQL 16"


def test_reads_between_scan_and_apply_are_counted_per_object(db, sqlite_wb):
    wb = sqlite_wb
    incident = wb.incidents.declare("salaries readable by every employee", 2).id
    wb.scanning.scan(incident, db, ["emp_all"])
    start = scans_now(db, "hr.salaries")
    read_as_member(db, "SELECT * FROM hr.salaries", "SELECT count(*) FROM hr.salaries")
    wait_for_scans(db, "hr.salaries", start + 2)
    assert wb.revocation.apply(incident).counts["applied"] >= 1

    taken = wb.table_stats.snapshots(incident)
    assert [s.phase for s in taken] == ["scan", "apply"]
    applied = {s.phase: s.taken_at for s in taken}
    counted = wb.table_stats.reads(incident, {"hr.salaries": applied["apply"], "hr.reviews": applied["apply"]})
    assert counted["hr.salaries"].reads == 2 and not counted["hr.salaries"].reset
    assert counted["hr.reviews"].reads == 0
    assert (counted["hr.salaries"].start, counted["hr.salaries"].end) == (applied["scan"], applied["apply"])

    wb.verification.verify(incident)
    assert [s.phase for s in wb.table_stats.snapshots(incident)] == ["scan", "apply", "check"]


def test_a_statistics_reset_between_snapshots_is_reported_not_counted(db, sqlite_wb):
    wb = sqlite_wb
    incident = wb.incidents.declare("reset statistics", 2).id
    wb.scanning.scan(incident, db, ["emp_all"])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    wb.revocation.apply(incident)
    taken = wb.table_stats.snapshots(incident)
    assert taken[0].stats.stats_reset != taken[1].stats.stats_reset
    counted = wb.table_stats.reads(incident, {"hr.salaries": taken[1].taken_at})
    assert counted["hr.salaries"].reset and counted["hr.salaries"].reads is None


def test_statistics_that_cannot_be_read_never_fail_the_scan(db, sqlite_wb, monkeypatch):
    import sevtool.targets.postgres.stats as stats

    def refused(target, objects):
        raise psycopg.OperationalError("statistics unavailable")

    monkeypatch.setattr(stats, "table_stats", refused)
    wb = sqlite_wb
    incident = wb.incidents.declare("no statistics", 2).id
    assert wb.scanning.scan(incident, db, ["emp_all"]).result.findings
    assert wb.table_stats.snapshots(incident) == []


SHAPES = """
CREATE SCHEMA "a.b"; CREATE TABLE "a.b".c (id int); CREATE SCHEMA a; CREATE TABLE a."b.c" (id int PRIMARY KEY);
CREATE TABLE hr."dot.ted" (id int); CREATE VIEW hr.v AS SELECT 1 AS one; CREATE MATERIALIZED VIEW hr.m AS SELECT 1 AS one;
CREATE TABLE hr.parted (id int) PARTITION BY RANGE (id); CREATE TABLE hr.parted_1 PARTITION OF hr.parted FOR VALUES FROM (0) TO (10);
CREATE INDEX ON hr.reviews (id); DROP INDEX hr.reviews_id_idx;
"""


def test_the_counters_are_those_pg_stat_user_tables_shows_for_every_kind_of_name(db, monkeypatch):
    """Asked by name, chunk by chunk on several connections: the same rows as the view, dotted names, views (no
    statistics), materialized views, partitions, tables with and without (dropped) indexes, and names not there."""
    import sevtool.targets.postgres.stats as stats

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(SHAPES)
        conn.execute("SET enable_seqscan = off")
        conn.execute('SELECT * FROM a."b.c" WHERE id = 1').fetchall()
        conn.execute("SELECT * FROM hr.salaries WHERE id = 1").fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")
        version = conn.info.server_version
    wait_for_scans(db, "hr.salaries", 1)
    names = ["a.b.c", "hr.salaries", "hr.reviews", "hr.dot.ted", "hr.v", "hr.m", "hr.parted", "hr.parted_1", "no.such"]
    monkeypatch.setattr(stats, "_CHUNK", 2)
    got = table_stats(PostgresTarget(db), names)
    last = "s.last_seq_scan, s.last_idx_scan" if version >= 160000 else "NULL::timestamptz, NULL::timestamptz"
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT s.schemaname || '.' || s.relname, s.seq_scan, coalesce(s.idx_scan, 0), {last} "
            "FROM pg_stat_user_tables s WHERE s.schemaname || '.' || s.relname = ANY(%s)",
            [names],
        ).fetchall()
        reset = conn.execute("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()").fetchone()
    by_view: dict[str, list] = {}
    for name, *counters in rows:
        by_view.setdefault(name, []).append(stats.TableCounters(*counters))
    assert set(got.counters) == set(by_view)
    assert all(got.counters[name] in counters for name, counters in by_view.items())
    assert len(by_view["a.b.c"]) == 2, "a dotted name reads two ways, as in the view"
    assert got.counters["hr.salaries"].idx_scan >= 1 and got.stats_reset == reset[0]
