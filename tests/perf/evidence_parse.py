"""Benchmark: sevtool's csvlog reader vs a bare `csv.reader` pass over the same 1,000,000-line pgaudit csvlog.

Not collected by pytest (no test_ prefix). Run: python tests/perf/evidence_parse.py [--lines N] [--rounds N]

Writes one csvlog shaped as PostgreSQL 15 + pgaudit write it (AUDIT READ lines of several sessions, ROLE lines,
ERROR and connection lines, a tenth of all lines of another database; ROLE GRANTs are 1 line in 200: each is
parsed for its objects and grantees, which costs about 15 times a READ line), then times, in the same run and alternating, each in a
fresh child process so each gets its own peak RSS:
  bare    for row in csv.reader(f): pass
  reader  every AuditRecord of LogReader(...).records(), with coverage bookkeeping
  tally   the reader feeding ReadTally, as `sevtool evidence` runs it
The issue's target: reader within 2x the bare pass, peak RSS flat (< 150 MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def write_log(path: Path, lines: int) -> None:
    start = datetime(2026, 6, 18, 12, 0, tzinfo=timezone.utc)
    tables = ["keystrokes", "screen_content", "perf_reviews", "salaries", "orders", "events"]
    users = ["alice", "bob", "carol", "dave", "erin", "svc_etl"]
    stmt: dict[int, int] = {}
    with path.open("w") as out:
        for i in range(lines):
            when = (start + timedelta(milliseconds=i * 7)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
            session = i % 200
            stmt[session] = stmt.get(session, 0) + 1
            user, table, db = users[session % len(users)], tables[i % len(tables)], "other" if i % 10 == 9 else "wh"
            kind = i % 200      # per 200 lines: 139 READ, 1 ROLE GRANT, 20 ERROR, 40 connection lines
            if kind < 139:
                message = f"AUDIT: SESSION,{stmt[session]},1,READ,SELECT,TABLE,public.{table},\"select a, b from {table} where id = {i}\",<not logged>"
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
            quoted = message.replace('"', '""')
            out.write(f'{when},"{user}","{db}",{10000 + session},"127.0.0.1:{40000 + session}",6b13777b.{session:x},{stmt[session]},'
                      f'"SELECT",2026-06-18 12:00:00 UTC,3/{i},0,{severity},00000,"{quoted}",,,,,,,,,"psql","client backend",,0\n')


def phase(name: str, path: str) -> dict:
    started = time.perf_counter()
    count = 0
    if name == "bare":
        import csv

        with open(path, newline="") as f:
            for _row in csv.reader(f):
                count += 1
    else:
        from sevtool.evidence.logs import LogReader

        reader = LogReader([path], database="wh")
        if name == "reader":
            for _record in reader.records():
                count += 1
        else:
            from sevtool.core.evidence import ReadTally

            tally = ReadTally(objects={"public.keystrokes", "public.salaries", "public.perf_reviews"}, principals={"all_employees"})
            for record in reader.records():
                tally.add(record)
                count += 1
    seconds = time.perf_counter() - started
    return {"phase": name, "seconds": round(seconds, 3), "items": count,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postgresql.csv"
        write_log(path, args.lines)
        print(f"{args.lines:,} csvlog lines, {path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for name in ("bare", "reader", "tally"):
                out = subprocess.run([sys.executable, __file__, "--phase", name, "--path", str(path)], capture_output=True, text=True, check=True)
                result = json.loads(out.stdout)
                if name not in best or result["seconds"] < best[name]["seconds"]:
                    best[name] = result
        for name, result in best.items():
            ratio = result["seconds"] / best["bare"]["seconds"]
            print(f"{name:7} {result['seconds']:7.2f} s  {ratio:4.2f}x bare  {result['items']:>9,} rows/records  peak RSS {result['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
