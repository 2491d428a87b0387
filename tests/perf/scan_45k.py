"""Benchmark (not collected by pytest): scan 45,000 tables granted to all_employees.

    python tests/perf/scan_45k.py [--tables N] [--runs N]

Seeds a throwaway PostgreSQL server, then times `PostgresTarget.scan` (cold: first connection;
warm: the reused connection a watch loop would use) and the full `ScanService.scan` that also
stores the scope and every finding in a SQLite store. Target: scan under 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sevtool.core.classification import Classifier
from sevtool.core.exposure import Scope
from sevtool.pgtemp import TempPostgres
from sevtool.scenario import seed_bulk
from sevtool.services import Workbench
from sevtool.settings import Settings
from sevtool.targets.postgres import PostgresTarget


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=45000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with TempPostgres() as pg, tempfile.TemporaryDirectory() as tmp:
        dsn = pg.create_database("bulk")
        seeded = seed_bulk(dsn, args.tables)
        print(f"seeded {seeded['tables']} tables in {len(seeded['schemas'])} schemas in {seeded['seconds']:.1f} s")

        target = PostgresTarget(dsn)
        scope = Scope(target=target.display, principals=["all_employees"])
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = target.scan(scope, Classifier())
            times.append(time.perf_counter() - started)
        target.close()
        assert len(result.findings) == args.tables and result.objects_in_scope == args.tables
        print(f"target.scan: first {times[0]:.2f} s, median {statistics.median(times):.2f} s, "
              f"min {min(times):.2f} s over {args.runs} runs ({len(result.findings)} findings)")

        wb = Workbench(Settings(db=f"sqlite:///{Path(tmp) / 'perf.db'}", config=Path(tmp) / "none.toml", tz="UTC", actor="perf"))
        incident = wb.incidents.declare("perf", 2)
        service_times = []
        for _ in range(max(1, args.runs // 2)):
            started = time.perf_counter()
            outcome = wb.scanning.scan(incident.id, dsn, ["all_employees"])
            service_times.append(time.perf_counter() - started)
        wb.scanning.close()
        print(f"ScanService.scan (scan + store scope v{outcome.version} and {outcome.summary.findings} findings, SQLite): "
              f"median {statistics.median(service_times):.2f} s, min {min(service_times):.2f} s")


if __name__ == "__main__":
    main()
