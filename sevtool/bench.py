"""`python -m sevtool.bench`: the scale benchmark, every figure beside its naive baseline from the same run.

Builds the 45,000-table exposure in a throwaway PostgreSQL, then measures sevtool's scan, plan+apply,
verify and undo against what a responder without sevtool would script (one catalog query per table,
one REVOKE/GRANT per table in autocommit), plus a 10,000-event postmortem, `sevtool --help` start-up
and peak memory. Run it on a quiet machine: the figures are wall-clock.

The server commits durably, as PostgreSQL ships and as a warehouse runs (see pgtemp.DURABLE_COMMITS). The
REVOKE loop is also timed with `synchronous_commit = off`, commits not waited for, and that ratio is printed
too: it is the figure for a target that does not flush its WAL on commit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from tabulate import tabulate

from sevtool.pgtemp import DURABLE_COMMITS, TempPostgres
from sevtool.scenario import PRINCIPAL, seed_bulk


@dataclass
class Figure:
    measure: str
    sevtool_s: float | None
    baseline_s: float | None
    target: str
    ok: bool | None   # None: shown for reference, no target
    note: str = ""

    @property
    def ratio(self) -> str:
        if not self.sevtool_s or self.baseline_s is None:
            return "-"
        return f"{self.baseline_s / self.sevtool_s:.1f}x"


def timed(func):
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def settle(dsn: str) -> None:
    """Leave the server as a warehouse that was not built a minute ago: its catalog vacuumed and analysed, and
    the seeding's dirty pages on disk, so no measure pays for writing out 45,000 CREATE TABLEs."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def exposed_tables(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname LIKE 'telemetry_%' ORDER BY 1, 2").fetchall()


def naive_check(dsn: str, tables: list[tuple[str, str]]) -> int:
    """One catalog query per table: the loop a responder writes at 3 a.m."""
    readable = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema, name in tables:
            fqn = sql.Identifier(schema, name).as_string(conn)
            readable += conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (PRINCIPAL, fqn)).fetchone()[0]
    return readable


def naive_loop(dsn: str, tables: list[tuple[str, str]], statement: str, *, wait_for_commit: bool = True) -> None:
    """One REVOKE (or GRANT) per table in autocommit; `wait_for_commit=False`: not waiting for each WAL flush."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not wait_for_commit:
            conn.execute("SET synchronous_commit = off")
        for schema, name in tables:
            conn.execute(sql.SQL(statement).format(table=sql.Identifier(schema, name), role=sql.Identifier(PRINCIPAL)))


def help_startup(runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sevtool", "--help"], capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(tables: int, events: int, say) -> list[Figure]:
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    figures: list[Figure] = []
    with TempPostgres(settings=DURABLE_COMMITS) as pg, tempfile.TemporaryDirectory(prefix="sevtool-bench-") as tmp:
        dsn = pg.create_database("bench")
        say(f"seeding {tables} tables ...")
        # In a child process, so the peak RSS below is sevtool's (and the naive loops'), not the seeding's.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as seeder:
            seeded = seeder.submit(seed_bulk, dsn, tables=tables).result()
        say(f"seeded in {seeded['seconds']} s; settling ...")
        settle(dsn)
        names = exposed_tables(dsn)
        wb = Workbench(Settings(db=f"sqlite:///{Path(tmp) / 'bench.db'}", config=Path(tmp) / "none.toml", tz="UTC", actor="bench"))
        incident = wb.incidents.declare(f"bench: {tables} tables readable by {PRINCIPAL}", 2)

        say("scan ...")
        scan_s, exposed = timed(lambda: wb.scanning.scan(incident.id, dsn, [PRINCIPAL]).summary.objects)
        naive_scan_s, readable = timed(lambda: naive_check(dsn, names))
        figures.append(Figure("scan", scan_s, naive_scan_s, "< 2 s", scan_s < 2,
                              f"{exposed} objects exposed; naive loop saw {readable}"))

        say("verify before the fix ...")
        # Only the figure is kept: holding the report (45,000 findings) would count the harness's memory as sevtool's.
        verify_exposed_s, still_exposed = timed(lambda: wb.verification.verify(incident.id).outcome.exposed_objects)
        figures.append(Figure("verify (exposed)", verify_exposed_s, naive_scan_s, "< 2 s", verify_exposed_s < 2,
                              f"{still_exposed} objects still readable"))

        say("plan + apply ...")
        apply_s, report = timed(lambda: (wb.revocation.plan(incident.id), wb.revocation.apply(incident.id))[1])
        figures.append(Figure("plan+apply", apply_s, None, "< 5 s, >= 5x naive", apply_s < 5,
                              f"{report.counts}"))

        say("verify ...")
        verify_s, check = timed(lambda: wb.verification.verify(incident.id))
        naive_verify_s, still = timed(lambda: naive_check(dsn, names))
        figures.append(Figure("verify (after the fix)", verify_s, naive_verify_s, "< 2 s", verify_s < 2 and check.clean,
                              f"clean={check.clean}; naive loop saw {still} readable"))

        say("undo ...")
        undo_s, undone = timed(lambda: wb.revocation.undo(incident.id))
        say("naive REVOKE loop ...")
        naive_apply_s, _ = timed(lambda: naive_loop(dsn, names, "REVOKE SELECT ON {table} FROM {role}"))
        naive_undo_s, _ = timed(lambda: naive_loop(dsn, names, "GRANT SELECT ON {table} TO {role}"))
        say("naive REVOKE loop, commits not waited for ...")
        naive_unflushed_s, _ = timed(lambda: naive_loop(dsn, names, "REVOKE SELECT ON {table} FROM {role}", wait_for_commit=False))
        at = next(i for i, f in enumerate(figures) if f.measure == "plan+apply")
        figures[at].baseline_s = naive_apply_s
        figures[at].ok = apply_s < 5 and naive_apply_s / apply_s >= 5
        figures.insert(at + 1, Figure("plan+apply (naive: no commit wait)", apply_s, naive_unflushed_s, "-", None,
                                      "the same run against the loop with synchronous_commit = off"))
        figures.append(Figure("undo", undo_s, naive_undo_s, "< 5 s", undo_s < 5 and not undone.failures, f"{undone.counts}"))

        say(f"postmortem with {events} timeline events ...")
        missing = events - len(wb.store.events(incident.id))
        with wb.store.write() as tx:
            for n in range(missing):
                tx.append(incident.id, "note", f"bench note {n}", {"note_kind": "note"})
        pm_s, markdown = timed(lambda: wb.postmortem.render(incident.id))
        figures.append(Figure("postmortem", pm_s, None, "< 1 s", pm_s < 1,
                              f"{len(wb.store.events(incident.id))} events, {len(markdown) // 1024} KiB markdown"))

    help_s = help_startup()
    figures.append(Figure("sevtool --help", help_s, None, "< 0.5 s", help_s < 0.5, "median of 5 runs"))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.append(Figure("peak RSS (MB)", None, None, "< 300 MB", rss_mb < 300, f"{rss_mb:.0f} MB"))
    return figures


def render(figures: list[Figure]) -> str:
    rows = [(f.measure, "-" if f.sevtool_s is None else f"{f.sevtool_s:.2f} s", "-" if f.baseline_s is None else f"{f.baseline_s:.2f} s",
             f.ratio, f.target, {True: "ok", False: "MISSED", None: ""}[f.ok], f.note) for f in figures]
    return tabulate(rows, headers=["measure", "sevtool", "naive baseline", "ratio", "target", "", "detail"], tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sevtool.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=45_000)
    parser.add_argument("--events", type=int, default=10_000, help="timeline events in the postmortem")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.tables, args.events, lambda text: print(text, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps([{**asdict(f), "ratio": f.ratio} for f in figures], indent=2))
    else:
        print(render(figures))
    return 0 if all(f.ok is not False for f in figures) else 3


if __name__ == "__main__":
    sys.exit(main())
