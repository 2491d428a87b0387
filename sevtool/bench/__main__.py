"""Run the benchmark: `python -m sevtool.bench [--tables N] [--growth N,N] [--rounds R] [--json]`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from sevtool.bench import evidence, report, tui_paint
from sevtool.bench.cycle import Cycle
from sevtool.bench.measure import Samples, cpu_loop, run_process, sevtool_argv
from sevtool.pgtemp import DURABLE_COMMITS, TempPostgres

CPU = "CPU reference"


def run(
    tables: int, growth: list[int], events: int, rounds: int, growth_rounds: int, say, evidence_lines: int = 0
) -> tuple[list[report.Row], list[report.GrowthRow], list[int]]:
    samples = Samples()
    evidence_seen = None
    sizes = sorted({tables, *growth})
    observed = None
    events_rendered = 0
    workdir = Path(tempfile.mkdtemp(prefix="sevtool-bench-"))
    try:
        with TempPostgres(settings=DURABLE_COMMITS) as pg:
            samples.add(tables, CPU, cpu_loop())
            for size in sizes:
                cycle = Cycle(pg.create_database(f"bench_{size}"), size, workdir / str(size), samples, say)
                main = size == tables
                for n in range(1, (rounds if main else growth_rounds) + 1):
                    say(
                        f"{size} tables, round {n}: scan, verify, plan, apply, verify, undo; the DBA's alternatives ..."
                    )
                    cycle.round(text_scan=main, per_table=main)
                say(f"{size} tables: the TUI's first paint and filter ...")
                tui_paint.measure(samples, size, cycle.env, cycle.incident, rounds if main else growth_rounds)
                if main:
                    say(f"{size} tables: postmortem with {events} timeline events ...")
                    events_rendered = cycle.postmortem(events, rounds)
                    observed = cycle.observed
                samples.add(tables, CPU, cpu_loop())
        for _ in range(5):
            samples.add(tables, "sevtool --help", run_process([*sevtool_argv(), "--help"]).sample)
        if evidence_lines:
            evidence_seen = evidence.measure(samples, tables, evidence_lines, rounds, workdir, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = rows(samples, tables, observed, events_rendered)
    if evidence_seen:
        table.insert(-2, evidence.row(samples, tables, evidence_seen))  # before `sevtool --help` and the CPU reference
    table[-2:-2] = tui_paint.rows(samples, sizes, tables)
    return table, report.growth(samples, sizes, tables), sizes


def rows(samples: Samples, tables: int, seen, events: int) -> list[report.Row]:
    exposed_ok = seen.exposed == {tables} and seen.readable_pairs == {tables}
    applied_ok = seen.applied and set(seen.applied) == {tables} and seen.failed == 0
    clean_ok = all(seen.clean_checks) and seen.left_readable == {0}
    undone_ok = set(seen.undone) == {tables} and seen.failed == 0
    c = report.comparison
    out = [
        c(
            samples,
            tables,
            "scan",
            "readers query (exposed)",
            4,
            f"{_join(seen.exposed)} objects exposed; the server's query: "
            f"{_join(seen.readable_pairs)} readable (member, table) pairs",
            correct=exposed_ok,
            label="scan --json",
        ),
    ]
    if samples.has(tables, "scan (text)"):
        out.append(
            c(
                samples,
                tables,
                "scan (text)",
                "scan",
                1.2,
                "the text summary against the same scan with --json",
                label="scan (text summary)",
            )
        )
    out += [
        c(
            samples,
            tables,
            "verify (exposed)",
            "readers query (exposed, for verify)",
            4,
            "still exposed: exit 3",
            correct=exposed_ok,
        ),
        report.absolute(samples, tables, "plan", None, "revoke --plan --json: actions journaled with prior ACLs"),
        c(
            samples,
            tables,
            "apply",
            "per-schema REVOKE",
            0.6,
            f"applied {_join(set(seen.applied))}, failed {seen.failed}; each batch read back",
            correct=applied_ok,
        ),
        c(samples, tables, "plan+apply", "per-schema REVOKE", 1, "plan and apply, two processes", correct=applied_ok),
        c(
            samples,
            tables,
            "plan+apply",
            "per-table REVOKE",
            None,
            "the per-table loop a responder scripts",
            label="plan+apply (vs per-table loop)",
        ),
        c(
            samples,
            tables,
            "verify (after the fix)",
            "readers query (after the fix)",
            4,
            f"clean={all(seen.clean_checks)}; the server's query: {_join(seen.left_readable)} readable",
            correct=clean_ok,
        ),
        c(
            samples,
            tables,
            "undo",
            "per-schema GRANT",
            1,
            f"undone {_join(set(seen.undone))}: each object's prior ACL, read back",
            correct=undone_ok,
        ),
        c(samples, tables, "undo", "per-table GRANT", None, "the per-table loop", label="undo (vs per-table loop)"),
        report.absolute(samples, tables, "postmortem", 1, f"{events} timeline events"),
        report.absolute(samples, tables, "sevtool --help", 0.5, "5 runs"),
        report.absolute(
            samples,
            tables,
            CPU,
            None,
            "a 10-million-step Python loop before, between and after the sizes: this machine's speed during the run",
            label="CPU reference (not sevtool)",
        ),
    ]
    return out


def _join(values) -> str:
    return "/".join(str(v) for v in sorted(values)) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sevtool.bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", type=int, default=45_000, help="the main size: every row of the table")
    parser.add_argument(
        "--growth", default="10000,200000", help="other sizes for the growth table, comma-separated ('' for none)"
    )
    parser.add_argument("--events", type=int, default=10_000, help="timeline events in the postmortem")
    parser.add_argument("--rounds", type=int, default=3, help="rounds at the main size; figures are medians")
    parser.add_argument("--growth-rounds", type=int, default=1, help="rounds at each growth size")
    parser.add_argument(
        "--evidence-lines",
        type=int,
        default=1_000_000,
        help="csvlog lines for the evidence row: sevtool's reader vs a bare csv.reader pass (0: no row)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.growth_rounds < 1:
        parser.error("--rounds and --growth-rounds must be at least 1")
    if args.evidence_lines < 0:
        parser.error("--evidence-lines must be 0 (no evidence row) or more")
    growth = [int(n) for n in args.growth.replace("_", "").split(",") if n.strip()]
    table, grown, sizes = run(
        args.tables,
        growth,
        args.events,
        args.rounds,
        args.growth_rounds,
        lambda text: print(text, file=sys.stderr, flush=True),
        evidence_lines=args.evidence_lines,
    )
    print(
        json.dumps(report.as_json(table, grown), indent=2)
        if args.json
        else report.render(table, grown, sizes, args.tables)
    )
    missed = any(r.ok is False for r in table) or any(g.ok is False for g in grown)
    return 3 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
