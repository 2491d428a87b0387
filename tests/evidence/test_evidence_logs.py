"""The log readers on lines shaped exactly as PostgreSQL 15 + pgaudit write them (copied from a real server's
csvlog, jsonlog and stderr): corrupt, truncated, mixed-format and other-database lines, rotation and .gz."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from sevtool.core.evidence import coverage, source_pieces
from sevtool.evidence.audit import csv_fields, grant_targets, parse_audit
from sevtool.evidence.logs import LogReader

SECRET = "hunter2-SSN-078-05-1120"
START = datetime(2026, 6, 18, 14, 0, tzinfo=UTC)


def ts(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def csv_line(
    minutes: float, user: str, db: str, message: str, session: str = "6b13777b.3241", severity: str = "LOG"
) -> str:
    quoted = '"' + message.replace('"', '""') + '"'
    return (
        f'{ts(minutes)},"{user}","{db}",12865,"127.0.0.1:43674",{session},1,"SELECT",2026-12-05 02:31:23 UTC,3/11,0,'
        f'{severity},00000,{quoted},,,,,,,,,"","client backend",,0\n'
    )


def read_line(
    minutes: float,
    user: str,
    table: str,
    stmt: int,
    db: str = "wh",
    kind: str = "SESSION",
    session: str = "6b13777b.3241",
) -> str:
    return csv_line(
        minutes,
        user,
        db,
        f"AUDIT: {kind},{stmt},1,READ,SELECT,TABLE,public.{table},"
        f"select * from {table} where x = '{SECRET}',<not logged>",
        session,
    )


def json_line(minutes: float, user: str, db: str, message: str) -> str:
    return (
        json.dumps(
            {
                "timestamp": ts(minutes),
                "user": user,
                "dbname": db,
                "pid": 12865,
                "session_id": "6b13777b.3241",
                "error_severity": "LOG",
                "message": message,
                "backend_type": "client backend",
            }
        )
        + "\n"
    )


def read_all(paths, **kw):
    reader = LogReader(paths, database="wh", **kw)
    return reader, list(reader.records())


def test_csvlog_records_carry_no_statement_text(tmp_path):
    path = tmp_path / "postgresql-1.csv"
    path.write_text(read_line(0, "alice", "keystrokes", 1) + read_line(1, "bob", "perf_reviews", 1, kind="OBJECT"))
    reader, records = read_all([path])
    assert [(r.user, r.audit_type, r.audit_class, r.command, r.object_name) for r in records] == [
        ("alice", "SESSION", "READ", "SELECT", "public.keystrokes"),
        ("bob", "OBJECT", "READ", "SELECT", "public.perf_reviews"),
    ]
    assert records[0].time == START and records[0].session == "6b13777b.3241"
    assert SECRET not in repr(records), "the record keeps no statement text"
    assert reader.totals()["audit"] == 2


def test_corrupt_truncated_mixed_and_other_database_lines_are_counted_and_leave_holes(tmp_path):
    path = tmp_path / "postgresql-1.csv"
    lines = [
        read_line(0, "alice", "keystrokes", 1),
        csv_line(1, "x", "other", "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.keystrokes,select 1,<not logged>"),
        "garbage,that is,not a log line\n",  # corrupt
        json_line(3, "alice", "wh", "AUDIT: SESSION,2,1,READ,SELECT,TABLE,public.keystrokes,x,<not logged>"),  # mixed
        read_line(4, "alice", "keystrokes", 3),
        csv_line(5, "alice", "wh", "AUDIT: nonsense"),  # a bad AUDIT payload
        read_line(6, "alice", "keystrokes", 4),
        read_line(7, "alice", "keystrokes", 5)[:60],
    ]  # truncated last line
    path.write_text("".join(lines))
    reader, records = read_all([path])
    assert [r.statement_id for r in records] == [1, 3, 4]
    totals = reader.totals()
    assert (totals["other_database"], totals["corrupt"], totals["other_format"]) == (1, 3, 1)
    stats = reader.sources[0]
    hole = [(datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)) for a, b in stats.holes]
    assert hole == [(START + timedelta(minutes=1), START + timedelta(minutes=4))] and stats.broken_at_end
    pieces = source_pieces(START, START + timedelta(minutes=6), [], hole, broken_at_end=stats.broken_at_end)
    assert coverage(pieces, timedelta(hours=1)) == [
        (START, START + timedelta(minutes=1)),
        (START + timedelta(minutes=4), START + timedelta(minutes=6)),
    ], "the time around unreadable lines is not covered, even under the gap threshold"


def test_jsonlog_and_stderr_give_the_same_records(tmp_path):
    message = 'AUDIT: SESSION,7,1,READ,SELECT,TABLE,public.keystrokes,"select 1, 2 from keystrokes",<not logged>'
    (tmp_path / "a.json").write_text(
        json_line(0, "alice", "wh", message) + "not json\n" + json_line(1, "bob", "other", message)
    )
    (tmp_path / "b.log").write_text(
        f"{ts(0)} [12865] alice@wh LOG:  {message}\n\tand a continuation of it\n"
        f"{ts(1)} [12865] alice@wh ERROR:  permission denied for table keystrokes\n"
        f"{ts(1)} [12865] alice@wh STATEMENT:  select * from keystrokes\n"
        f"{ts(2)} [12800] LOG:  checkpoint starting: time\n"
    )
    reader_j, from_json = read_all([tmp_path / "a.json"])
    reader_s, from_stderr = read_all([tmp_path / "b.log"], line_prefix="%m [%p] %q%u@%d ")
    assert [(r.user, r.statement_id, r.object_name) for r in from_json] == [("alice", 7, "public.keystrokes")]
    assert [(r.user, r.statement_id, r.object_name, r.session) for r in from_stderr] == [
        ("alice", 7, "public.keystrokes", "12865")
    ]
    assert reader_j.totals()["other_format"] == 1 and reader_j.totals()["other_database"] == 1
    assert reader_s.sources[0].entries == 4 and reader_s.sources[0].continuation == 1, (
        "ERROR and STATEMENT lines are not reads"
    )
    without_prefix, _ = read_all([tmp_path / "b.log"])
    assert without_prefix.unreadable and "--line-prefix" in without_prefix.unreadable[0]


def test_directory_with_rotated_and_gz_files_reads_each_once(tmp_path):
    (tmp_path / "postgresql-1.csv").write_text(read_line(0, "alice", "keystrokes", 1))
    with gzip.open(tmp_path / "postgresql-0.csv.gz", "wt") as gz:
        gz.write(read_line(-30, "bob", "keystrokes", 1, session="6b13777b.9999"))
    (tmp_path / "postgresql-1.json").write_text(
        json_line(0, "alice", "wh", "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.keystrokes,x,y")
    )
    (tmp_path / "postgresql.csv.1").write_text(read_line(-60, "carol", "keystrokes", 1, session="6b13777b.8888"))
    reader, records = read_all([tmp_path])
    assert sorted(r.user for r in records) == ["alice", "bob", "carol"]
    assert reader.skipped == [str(tmp_path / "postgresql-1.json")], "the jsonlog twin of a csvlog is not read again"
    assert reader.totals()["files"] == 3


def test_audit_payload_quoting_and_grants():
    assert csv_fields('a,"b,""c""",d', 3) == ["a", 'b,"c"', "d"]
    assert csv_fields('a,"unterminated', 2) is None
    fields = parse_audit('SESSION,3,1,READ,SELECT,TABLE,"public.""Odd,Name""",select 1,<none>')
    assert fields[6] == 'public."Odd,Name"'
    assert parse_audit("not,a,payload") is None
    assert grant_targets('GRANT SELECT ON keystrokes, s."Screen" TO all_employees, GROUP "Ops"; revoke x from y') == (
        ("keystrokes", "s.Screen"),
        ("all_employees", "Ops"),
    )
    assert grant_targets("grant select on all tables in schema hr to all_employees") == (("hr.*",), ("all_employees",))
    assert grant_targets("GRANT USAGE ON SCHEMA hr TO all_employees") == ((), ())
    assert grant_targets("GRANT all_employees TO alice") == ((), ())


@pytest.mark.parametrize("zone,offset", [("UTC", 0), ("PDT", -7), ("+0530", 5.5), ("-03", -3)])
def test_log_time_zones(tmp_path, zone, offset):
    line = read_line(0, "alice", "keystrokes", 1).replace(" UTC,", f" {zone},", 1)
    (tmp_path / "z.csv").write_text(line)
    _, records = read_all([tmp_path / "z.csv"])
    assert records[0].time == START - timedelta(hours=offset)
