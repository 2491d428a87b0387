"""Benchmark (not collected by pytest): `sevtool verify` over 45,000 tables.

    python tests/perf/verify_45k.py [--tables N] [--runs N] [--dsn DSN]

(--dsn: use a database already seeded with `seed_bulk`, which the run modifies, instead of seeding one)

Seeds a throwaway PostgreSQL server with N tables granted to all_employees, scans, and times
`VerificationService.verify` as `sevtool verify ID` runs it: a fresh Workbench each time (no findings
cached from the previous check, a new target connection), catalog scan of the whole scope, comparison
with the previous check, check + findings + timeline written to a SQLite store:

1. before the fix: every table exposed (baseline: the scan), then once more unchanged;
2. after the fix (plan + apply through the revocation engine): nothing readable, first against the exposed
   check, then the steady state of a watch;
3. after a job re-grants every table to PUBLIC: 45,000 regressions attributed and recorded, then once more.

Each line gives wall time and this process's CPU time (the server's share is in wall time only):
on a shared machine the CPU figure is the steadier one. Target: under 2 s for a verify.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from sevtool.gcpause import bulk_run
from sevtool.pgtemp import TempPostgres
from sevtool.scenario import seed_bulk
from sevtool.services import Workbench
from sevtool.settings import Settings


def timed_verify(settings: Settings, incident_id: int, runs: int) -> tuple[list[float], list[float], object]:
    walls, cpus, report = [], [], None
    for _ in range(runs):
        wb = Workbench(settings)  # as a new `sevtool verify` process would
        started, cpu = time.perf_counter(), time.process_time()
        report = wb.verification.verify(incident_id)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        wb.scanning.close()
    return walls, cpus, report


def line(label: str, walls: list[float], cpus: list[float], report) -> None:
    out = report.outcome
    print(
        f"{label}: median {statistics.median(walls):.2f} s wall ({statistics.median(cpus):.2f} s CPU), min {min(walls):.2f} s "
        f"over {len(walls)} run(s) - {report.objects_in_scope} objects in scope, {out.exposed_objects} exposed, "
        f"{len(out.findings)} findings, {len(out.regressions)} regressions, clean={out.clean}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=45000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dsn", help="an already seeded database (it is modified)")
    args = parser.parse_args()
    if args.dsn:
        with tempfile.TemporaryDirectory() as tmp:
            run(args.dsn, Path(tmp), args.runs)
        return
    with TempPostgres() as pg, tempfile.TemporaryDirectory() as tmp:
        dsn = pg.create_database("verify_perf")
        seeded = seed_bulk(dsn, args.tables)
        print(f"seeded {seeded['tables']} tables in {seeded['seconds']} s")
        run(dsn, Path(tmp), args.runs)


def run(dsn: str, tmp: Path, runs: int) -> None:
    """The verify figures on one seeded database."""
    print(f"load average before: {' '.join(f'{n:.2f}' for n in os.getloadavg())} on {os.cpu_count()} CPU(s)")
    settings = Settings(db=f"sqlite:///{tmp / 'perf.db'}", config=tmp / "none.toml", tz="UTC", actor="perf")
    wb = Workbench(settings)
    incident = wb.incidents.declare("perf: telemetry readable by all employees", 2)
    wb.scanning.scan(incident.id, dsn, ["all_employees"])

    line("verify, all exposed (before the fix)", *timed_verify(settings, incident.id, 1))
    line("verify, still all exposed, unchanged", *timed_verify(settings, incident.id, 1))

    started = time.perf_counter()
    wb.revocation.plan(incident.id)
    wb.revocation.apply(incident.id)
    print(f"(fix: plan + apply {time.perf_counter() - started:.2f} s, not part of the figures)")
    line(
        "verify, first after the fix (nothing readable; the previous check saw everything exposed)",
        *timed_verify(settings, incident.id, 1),
    )
    line("verify, after the fix, next checks (the steady state of a watch)", *timed_verify(settings, incident.id, runs))

    with psycopg.connect(dsn, autocommit=True) as conn:
        schemas = [
            r[0]
            for r in conn.execute("SELECT DISTINCT schemaname FROM pg_tables WHERE tablename LIKE 't\\_%'").fetchall()
        ]
        for schema in schemas:
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO PUBLIC").format(sql.Identifier(schema)))
    line("verify, a job re-granted every table to PUBLIC (all regressions)", *timed_verify(settings, incident.id, 1))
    line("verify, next check (still exposed, no new regression)", *timed_verify(settings, incident.id, 1))
    print(f"load average after: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    wb.scanning.close()


if __name__ == "__main__":
    with bulk_run():  # as the CLI runs its bulk commands
        main()
