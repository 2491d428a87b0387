"""Benchmark: plan+apply, then undo, on 45,000 exposed tables vs a loop of one autocommit REVOKE per table.

Not collected by pytest (no test_ prefix). Run: python tests/perf/revoke_45k.py [--tables N] [--batch-size N]

Both sides start from identical copies of one seeded database (CREATE DATABASE ... TEMPLATE), on the
same throwaway server, committing durably as PostgreSQL ships, in the same run. The engine is timed
through the service, as `sevtool revoke --plan` then `--apply --yes` run it (SQLite ledger, read-back of every batch, timeline events), after a
scan that is not part of the figure. It also tries the whole revoke in ONE transaction, and reports
whether the server accepts it, and a re-scan proves nothing is left.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from sevtool.gcpause import bulk_run
from sevtool.pgtemp import DURABLE_COMMITS, TempPostgres
from sevtool.scenario import seed_bulk
from sevtool.services import Workbench
from sevtool.settings import Settings

PRINCIPAL = "all_employees"


def tables_of(dsn: str, prefix: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE tablename LIKE %s ORDER BY 1, 2",
            [prefix.replace("_", r"\_") + "%"],
        ).fetchall()


def still_granted(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
                               WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s)""",
            [PRINCIPAL],
        ).fetchone()[0]


def naive_loop(dsn: str, tables: list[tuple[str, str]]) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema, name in tables:
            conn.execute(
                sql.SQL("REVOKE SELECT ON TABLE {} FROM {}").format(
                    sql.Identifier(schema, name), sql.Identifier(PRINCIPAL)
                )
            )
    return time.perf_counter() - started


def one_transaction(dsn: str, tables: list[tuple[str, str]]) -> str:
    started = time.perf_counter()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
            conn.execute(
                sql.SQL("REVOKE SELECT ON TABLE {} FROM {}").format(
                    sql.SQL(", ").join(sql.Identifier(s, n) for s, n in tables), sql.Identifier(PRINCIPAL)
                )
            )
    except psycopg.Error as exc:
        return f"failed after {time.perf_counter() - started:.2f} s: {exc.sqlstate} {str(exc).strip()}"
    return f"succeeded in {time.perf_counter() - started:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=45000)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    with TempPostgres(settings=DURABLE_COMMITS) as pg, tempfile.TemporaryDirectory() as tmp:
        seeded = seed_bulk(pg.create_database("bench_seed"), tables=args.tables)
        print(f"seeded {seeded['tables']} tables in {seeded['seconds']} s", file=sys.stderr)
        engine_dsn = pg.create_database("bench_engine", template="bench_seed")
        naive_dsn = pg.create_database("bench_naive", template="bench_seed")
        single_dsn = pg.create_database("bench_single", template="bench_seed")
        tables = tables_of(naive_dsn, seeded["prefix"])

        wb = Workbench(
            Settings(db=f"sqlite:///{Path(tmp) / 'bench.db'}", config=Path(tmp) / "none.toml", tz="UTC", actor="bench")
        )
        incident = wb.incidents.declare("bench: 45k tables readable by all employees", 2)
        started = time.perf_counter()
        wb.scanning.scan(incident.id, engine_dsn, [PRINCIPAL])
        scan_s = time.perf_counter() - started

        print(f"tables:                 {len(tables)}")
        print(f"scan (not counted):     {scan_s:.2f} s")
        started = time.perf_counter()
        plan = wb.revocation.plan(incident.id)
        plan_s = time.perf_counter() - started
        print(f"engine plan:            {plan_s:.2f} s ({len(plan.actions)} actions journaled)", flush=True)
        started = time.perf_counter()
        report = wb.revocation.apply(incident.id, plan_version=plan.plan_version, batch_size=args.batch_size)
        apply_s = time.perf_counter() - started
        engine_s = plan_s + apply_s
        print(
            f"engine apply:           {apply_s:.2f} s ({report.counts}, batch size {args.batch_size or wb.settings.team.revoke_batch_size})"
        )
        print(f"engine plan+apply:      {engine_s:.2f} s", flush=True)
        rescan = wb.scanning.scan(incident.id, engine_dsn, [PRINCIPAL])
        print(
            f"re-scan findings:       {len(rescan.result.findings)}; incident status after apply: {report.status}",
            flush=True,
        )

        naive_s = naive_loop(naive_dsn, tables)
        print(f"naive autocommit loop:  {naive_s:.2f} s")
        print(f"ratio naive/engine:     {naive_s / engine_s:.1f}x", flush=True)
        print(f"grants left: engine {still_granted(engine_dsn)}, naive {still_granted(naive_dsn)}")
        print(f"whole revoke in one transaction: {one_transaction(single_dsn, tables)}")
        revoked = report.ok and still_granted(engine_dsn) == 0
        started = time.perf_counter()
        undone = wb.revocation.undo(incident.id)
        back = still_granted(engine_dsn)
        print(
            f"engine undo:            {time.perf_counter() - started:.2f} s ({undone.counts}); grants back: {back} of {len(tables)}"
        )
        return 0 if revoked and undone.ok and back == len(tables) else 1


if __name__ == "__main__":
    with bulk_run():  # as the CLI runs its bulk commands
        sys.exit(main())
