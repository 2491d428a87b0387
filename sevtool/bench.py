"""`python -m sevtool.bench`: the scale benchmark, every figure beside its naive baseline from the same run.

Builds the 45,000-table exposure in a throwaway PostgreSQL, then measures sevtool's scan, plan+apply,
verify and undo against what a responder without sevtool would script (one catalog query per table,
one REVOKE/GRANT per table in autocommit), plus a 10,000-event postmortem, `sevtool --help` start-up
and peak memory. Run it on a quiet machine: the figures are wall-clock.

Every measure is taken `--rounds` times (default 3), sevtool's and the naive loops' alike, and the medians are compared:
these machines are shared, and one run of a few seconds can land on someone else's burst.

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
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from tabulate import tabulate

from sevtool.gcpause import bulk_run
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


def cpu_loop(steps: int = 10_000_000) -> int:
    """A plain Python loop: how fast this machine's CPU is at that moment. These machines are shared and their speed
    changes from hour to hour; the figure lets two runs of the benchmark be compared."""
    total = 0
    for step in range(steps):
        total += step
    return total


def help_startup(runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sevtool", "--help"], capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(tables: int, events: int, rounds: int, say) -> list[Figure]:
    """Each measure `rounds` times, sevtool's and the naive loop's alike; figures are the medians."""
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    taken: dict[str, list[float]] = defaultdict(list)   # measure -> seconds, one per round
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

        def sample(measure: str, func):
            seconds, value = timed(func)
            taken[measure].append(seconds)
            return value

        exposed, readable, left, clean, undo_failed = set(), set(), set(), True, 0
        sample("CPU reference", cpu_loop)   # before, between and after the measures
        for n in range(1, rounds + 1):
            # A responder's whole cycle: scan, confirm the exposure, revoke, confirm the fix, put it back.
            say(f"round {n} of {rounds}: scan, verify, plan + apply, verify, undo ...")
            exposed.add(sample("scan", lambda: wb.scanning.scan(incident.id, dsn, [PRINCIPAL]).summary.objects))
            # Only the figure is kept: holding the report (45,000 findings) would count the harness's memory as sevtool's.
            still = sample("verify (exposed)", lambda: wb.verification.verify(incident.id).outcome.exposed_objects)
            report = sample("plan+apply", lambda: (wb.revocation.plan(incident.id), wb.revocation.apply(incident.id))[1])
            clean = sample("verify (after the fix)", lambda: wb.verification.verify(incident.id)).clean and clean
            undone = sample("undo", lambda: wb.revocation.undo(incident.id))
            undo_failed += undone.counts["failed"]
        sample("CPU reference", cpu_loop)
        for n in range(1, rounds + 1):
            say(f"round {n} of {rounds}: the naive loops ...")
            readable.add(sample("naive check (exposed)", lambda: naive_check(dsn, names)))
            sample("naive REVOKE loop", lambda: naive_loop(dsn, names, "REVOKE SELECT ON {table} FROM {role}"))
            left.add(sample("naive check (after the fix)", lambda: naive_check(dsn, names)))
            sample("naive GRANT loop", lambda: naive_loop(dsn, names, "GRANT SELECT ON {table} TO {role}"))
            sample("naive REVOKE loop, no commit wait", lambda: naive_loop(dsn, names, "REVOKE SELECT ON {table} FROM {role}", wait_for_commit=False))
            if n < rounds:   # exposed again, for the next round
                naive_loop(dsn, names, "GRANT SELECT ON {table} TO {role}", wait_for_commit=False)

        say(f"postmortem with {events} timeline events ...")
        missing = events - len(wb.store.events(incident.id))
        with wb.store.write() as tx:
            for n in range(missing):
                tx.append(incident.id, "note", f"bench note {n}", {"note_kind": "note"})
        markdown = ""
        for _ in range(rounds):
            markdown = sample("postmortem", lambda: wb.postmortem.render(incident.id))
        rendered_events = len(wb.store.events(incident.id))
        sample("CPU reference", cpu_loop)

    def figure(measure: str, baseline: str | None, target: str, limit: float | None, note: str, ok: bool = True,
               label: str | None = None) -> Figure:
        """The medians of `measure` and its `baseline`, every round's figure in the note; within `limit` seconds, and `ok`."""
        mine, theirs = statistics.median(taken[measure]), statistics.median(taken[baseline]) if baseline else None
        runs = ", ".join(f"{s:.2f}" for s in taken[measure]) + (" vs " + ", ".join(f"{s:.2f}" for s in taken[baseline]) if baseline else "")
        return Figure(label or measure, mine, theirs, target, None if limit is None else ok and mine < limit, f"{note}; runs {runs} s")

    apply_figure = figure("plan+apply", "naive REVOKE loop", "< 5 s, >= 5x naive", 5, f"{report.counts}")
    apply_figure.ok = apply_figure.ok and apply_figure.baseline_s / apply_figure.sevtool_s >= 5
    figures = [
        figure("scan", "naive check (exposed)", "< 2 s", 2, f"{'/'.join(map(str, sorted(exposed)))} objects exposed; "
               f"naive loop saw {'/'.join(map(str, sorted(readable)))}"),
        figure("verify (exposed)", "naive check (exposed)", "< 2 s", 2, f"{still} objects still readable"),
        apply_figure,
        figure("plan+apply", "naive REVOKE loop, no commit wait", "-", None, "against the loop with synchronous_commit = off",
               label="plan+apply (naive: no commit wait)"),
        figure("verify (after the fix)", "naive check (after the fix)", "< 2 s", 2,
               f"clean={clean}; naive loop saw {'/'.join(map(str, sorted(left)))} readable", ok=clean),
        figure("undo", "naive GRANT loop", "< 5 s", 5, f"{undone.counts}", ok=undo_failed == 0),
        figure("postmortem", None, "< 1 s", 1, f"{rendered_events} events, {len(markdown) // 1024} KiB markdown"),
    ]
    help_s = help_startup()
    figures.append(Figure("sevtool --help", help_s, None, "< 0.5 s", help_s < 0.5, "median of 5 runs"))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.append(Figure("peak RSS (MB)", None, None, "< 300 MB", rss_mb < 300, f"{rss_mb:.0f} MB"))
    figures.append(figure("CPU reference", None, "-", None, "a 10-million-step Python loop, to compare runs by: the machine's speed in this one",
                          label="CPU reference (not sevtool)"))
    return figures


def render(figures: list[Figure]) -> str:
    rows = [(f.measure, "-" if f.sevtool_s is None else f"{f.sevtool_s:.2f} s", "-" if f.baseline_s is None else f"{f.baseline_s:.2f} s",
             f.ratio, f.target, {True: "ok", False: "MISSED", None: ""}[f.ok], f.note) for f in figures]
    return tabulate(rows, headers=["measure", "sevtool", "naive baseline", "ratio", "target", "", "detail"], tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sevtool.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=45_000)
    parser.add_argument("--events", type=int, default=10_000, help="timeline events in the postmortem")
    parser.add_argument("--rounds", type=int, default=3, help="times each measure is taken; the figures are medians (peak RSS then covers every round)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with bulk_run():   # sevtool's figures as its CLI commands run: the collector paused during bulk work
        figures = run(args.tables, args.events, args.rounds, lambda text: print(text, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps([{**asdict(f), "ratio": f.ratio} for f in figures], indent=2))
    else:
        print(render(figures))
    return 0 if all(f.ok is not False for f in figures) else 3


if __name__ == "__main__":
    sys.exit(main())
