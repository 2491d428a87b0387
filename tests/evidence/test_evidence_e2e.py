"""`sevtool evidence` end to end on a real PostgreSQL 15 with pgaudit: declare, scan, revoke --apply, evidence."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import psycopg
import pytest
from audit_server import SECRET, wait_for_log

pytestmark = pytest.mark.postgres

SETUP = """
CREATE ROLE all_employees NOLOGIN;
CREATE ROLE auditor NOLOGIN;
CREATE ROLE alice LOGIN IN ROLE all_employees;
CREATE ROLE bob LOGIN IN ROLE all_employees;
CREATE ROLE carol LOGIN;          -- an analyst, not a member: reads perf_reviews through her own grant
CREATE ROLE mallory LOGIN;        -- not a member, no grant: denied
CREATE TABLE keystrokes (id int, secret text);
CREATE TABLE screen_content (id int, body text);
CREATE TABLE perf_reviews (id int, rating int);
CREATE TABLE salaries (id int, amount int);
INSERT INTO keystrokes VALUES (1, '{secret}');
"""
GRANTS = """
GRANT SELECT ON keystrokes, screen_content, perf_reviews, salaries TO all_employees;
GRANT SELECT ON perf_reviews TO carol;
"""


def read_as(audit_pg, db: str, user: str, *statements: str) -> None:
    with psycopg.connect(audit_pg.dsn(db, user=user), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement).fetchall()


def denied(audit_pg, db: str, user: str, statement: str) -> None:
    with (
        psycopg.connect(audit_pg.dsn(db, user=user), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


@pytest.fixture
def exposed(cli, audit_pg):
    """The issue's scenario up to the apply: who read what while all_employees could read it."""
    audit_pg.create_database("wh")
    dsn = audit_pg.dsn("wh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP.format(secret=SECRET))
        conn.execute(GRANTS)
    ident = str(cli.json("declare", "--sev", "1", "--title", "Keystrokes readable by every employee")["id"])
    scan = cli.json("scan", ident, "--target", dsn, "--principal", "all_employees")
    assert {f["object_name"] for f in scan["findings"]} == {"keystrokes", "screen_content", "perf_reviews", "salaries"}

    read_as(
        audit_pg,
        "wh",
        "alice",
        f"SELECT * FROM keystrokes WHERE secret = '{SECRET}'",
        "SELECT count(*) FROM keystrokes k JOIN keystrokes k2 USING (id)",
        "SELECT * FROM screen_content",
    )
    read_as(audit_pg, "wh", "bob", "SELECT id FROM keystrokes")
    read_as(audit_pg, "wh", "carol", "SELECT * FROM perf_reviews")
    denied(audit_pg, "wh", "mallory", "SELECT * FROM keystrokes")  # during the window, but refused: not a read
    audit_pg.create_database("other")
    with psycopg.connect(audit_pg.dsn("other"), autocommit=True) as conn:
        conn.execute("CREATE TABLE keystrokes (id int); SELECT * FROM keystrokes")  # same name, another database

    applied = cli.json("revoke", ident, "--apply", "--yes")
    assert applied["counts"]["failed"] == 0 and applied["counts"]["applied"] >= 4
    denied(audit_pg, "wh", "alice", "SELECT * FROM keystrokes")  # after the apply: denied
    wait_for_log(audit_pg.log_dir, "permission denied for table keystrokes", 2)
    return ident


def by_object(report: dict) -> dict:
    return {o["object"]: o for o in report["objects"]}


def test_the_report_gives_exactly_the_reads_during_the_window(cli, audit_pg, exposed):
    result = cli("evidence", exposed, "--log", str(audit_pg.log_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and SECRET not in result.stderr, "statement text must never be shown"
    import json

    report = json.loads(result.stdout)
    objects = by_object(report)
    keystrokes = objects["public.keystrokes"]
    assert keystrokes["answer"] == "reads"
    assert {r["role"]: r["reads"] for r in keystrokes["members"]} == {"alice": 2, "bob": 1}, "a self-join is one read"
    assert keystrokes["non_members"] == [], "mallory was denied, and alice's attempt after the apply was denied too"
    assert {r["role"]: r["reads"] for r in objects["public.screen_content"]["members"]} == {"alice": 1}
    perf = objects["public.perf_reviews"]
    assert perf["members"] == [] and [(r["role"], r["reads"]) for r in perf["non_members"]] == [("carol", 1)]
    salaries = objects["public.salaries"]
    assert salaries["answer"] == "no_reads" and salaries["uncovered"] == [] and salaries["read_logged"] == "session"
    assert keystrokes["window_start"].startswith("earliest GRANT"), (
        "no start was recorded: the GRANT in the logs opens the window"
    )
    assert report["member_readers"] == {"alice": 3, "bob": 1} and report["non_member_readers"] == {"carol": 1}
    assert report["logs"]["other_database"] >= 1 and report["logs"]["skipped_duplicate_format"] >= 1  # the .json twin
    assert report["logs"]["corrupt"] == 0

    reader_first = datetime.fromisoformat(keystrokes["members"][0]["first"])
    window_end = datetime.fromisoformat(keystrokes["windows"][0]["end"])
    assert reader_first < window_end

    with sqlite3.connect(cli.env["SEVTOOL_DB"].removeprefix("sqlite:///")) as conn:
        events = conn.execute("SELECT kind, summary, data FROM event WHERE kind = 'evidence'").fetchall()
    assert len(events) == 1 and "3 of 4 object(s) read" in events[0][1]
    assert SECRET not in events[0][2] and '"alice": 2' in events[0][2]


def test_half_covered_window_is_unknown_for_the_uncovered_half(cli, audit_pg, exposed):
    report = cli.json("evidence", exposed, "--log", str(audit_pg.log_dir))
    window = by_object(report)["public.salaries"]["windows"][0]
    end = datetime.fromisoformat(window["end"])
    log_start = datetime.fromisoformat(report["logs"]["sources"][0]["first"])
    # Exposure started as long before the logs begin as the logs run until the apply: they cover about half.
    earlier = log_start - (end - log_start)
    assert cli("time", exposed, "exposure-started", "--at", earlier.isoformat()).returncode == 0

    report = cli.json("evidence", exposed, "--log", str(audit_pg.log_dir))
    salaries, keystrokes = by_object(report)["public.salaries"], by_object(report)["public.keystrokes"]
    assert salaries["answer"] == "unknown" and salaries["window_start"] == "recorded on the incident"
    assert [datetime.fromisoformat(x) for x in salaries["uncovered"][0]] == [earlier, log_start]
    assert keystrokes["answer"] == "reads" and keystrokes["uncovered"], (
        "reads found, and the uncovered half is still unknown"
    )

    text = cli("evidence", exposed, "--log", str(audit_pg.log_dir))
    assert text.returncode == 0, text.stderr
    block = text.stdout.split("public.salaries:")[1].split("\npublic.")[0]
    assert "UNKNOWN" in block and "unknown: " in block and "not covered by the logs" in block
    assert SECRET not in text.stdout
