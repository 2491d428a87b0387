"""The evidence row: sevtool's csvlog reader beside a bare `csv.reader` pass over the same pgaudit csvlog.

The log is written shaped as PostgreSQL 15 + pgaudit write it: AUDIT READ lines of 200 sessions, ROLE GRANT lines,
ERROR and connection lines, a tenth of all lines of another database. ROLE GRANTs are 1 line in 200: each is parsed
for its objects and grantees, which costs about 15 times a READ line. Each pass runs as its own process
(`python -c` for the bare pass, `python -m sevtool.evidence` for the reader), alternating, so each has its own wall
time and peak RSS; this layer imports neither the reader nor core.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

READER, BARE = "evidence (csvlog)", "csv.reader pass"
PHASES = {READER: "reader", BARE: "bare"}
RSS_LIMIT_MB = 150.0
RATIO_LIMIT = 2.0
DATABASE = "wh"


def write_csvlog(path: Path, lines: int) -> int:
    """Write `lines` csvlog lines; returns how many are AUDIT lines of DATABASE (what the reader must yield)."""
    start = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)
    tables = ["keystrokes", "screen_content", "perf_reviews", "salaries", "orders", "events"]
    users = ["alice", "bob", "carol", "dave", "erin", "svc_etl"]
    stmt: dict[int, int] = {}
    audit = 0
    with path.open("w") as out:
        for i in range(lines):
            when = (start + timedelta(milliseconds=i * 7)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
            session = i % 200
            stmt[session] = stmt.get(session, 0) + 1
            user, table, db = users[session % len(users)], tables[i % len(tables)], "other" if i % 10 == 9 else DATABASE
            kind = i % 200  # per 200 lines: 139 READ, 1 ROLE GRANT, 20 ERROR, 40 connection lines
            if kind < 139:
                message = f'AUDIT: SESSION,{stmt[session]},1,READ,SELECT,TABLE,public.{table},"select a, b from {table} where id = {i}",<not logged>'
                severity = "LOG"
            elif kind == 139:
                message = f"AUDIT: SESSION,{stmt[session]},1,ROLE,GRANT,,,grant select on {table} to all_employees,<not logged>"
                severity = "LOG"
            elif kind < 160:
                message = f"permission denied for table {table}"
                severity = "ERROR"
            else:
                message = f"connection authorized: user={user} database={db} application_name=psql"
                severity = "LOG"
            audit += kind < 140 and db == DATABASE
            quoted = message.replace('"', '""')
            out.write(
                f'{when},"{user}","{db}",{10000 + session},"127.0.0.1:{40000 + session}",6b13777b.{session:x},{stmt[session]},'
                f'"SELECT",2026-06-18 12:00:00 UTC,3/{i},0,{severity},00000,"{quoted}",,,,,,,,,"psql","client backend",,0\n'
            )
    return audit


# The bare pass: what any script reading the csvlog pays at least.
BARE_SCRIPT = """
import csv, json, resource, sys, time
started, count = time.perf_counter(), 0
with open(sys.argv[1], newline="") as f:
    for _row in csv.reader(f):
        count += 1
print(json.dumps({"items": count, "seconds": round(time.perf_counter() - started, 3),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""
TALLY_OBJECTS = "public.keystrokes,public.salaries,public.perf_reviews"


def phase_argv(name: str, path: Path) -> list[str]:
    """`bare`: csv.reader only; `reader`: sevtool's LogReader (python -m sevtool.evidence); `tally`: and a ReadTally."""
    if name == "bare":
        return [sys.executable, "-c", BARE_SCRIPT, str(path)]
    tally = ["--tally", TALLY_OBJECTS] if name == "tally" else []
    return [sys.executable, "-m", "sevtool.evidence", "--database", DATABASE, *tally, str(path)]


def measure(samples, key: int, lines: int, rounds: int, workdir: Path, say) -> dict:
    """Write the log, then time the two passes as processes, alternating; returns what the row reports as correct."""
    from sevtool.bench.measure import run_process

    path = workdir / "postgresql.csv"
    say(f"evidence: writing {lines:,} csvlog lines ...")
    expected = write_csvlog(path, lines)
    size_mb = path.stat().st_size / 1e6
    items: dict[str, set[int]] = {READER: set(), BARE: set()}
    for n in range(1, rounds + 1):
        say(f"evidence: round {n}: the reader and a bare csv.reader pass over {size_mb:.0f} MB ...")
        for measure_name in (BARE, READER):
            finished = run_process(phase_argv(PHASES[measure_name], path))
            samples.add(key, measure_name, finished.sample)
            items[measure_name].add(json.loads(finished.stdout)["items"])
    path.unlink()
    return {"lines": lines, "size_mb": size_mb, "expected": expected, "records": items[READER], "rows": items[BARE]}


def row(samples, key: int, seen: dict):
    from sevtool.bench import report

    correct = seen["records"] == {seen["expected"]} and seen["rows"] == {seen["lines"]}
    records = "/".join(str(n) for n in sorted(seen["records"]))
    detail = (
        f"{seen['lines']:,} csvlog lines ({seen['size_mb']:.0f} MB): {records} AUDIT records of {DATABASE} "
        f"(expected {seen['expected']:,}), each pass a process"
    )
    return report.comparison(
        samples, key, READER, BARE, RATIO_LIMIT, detail, correct=correct, rss_limit_mb=RSS_LIMIT_MB
    )
