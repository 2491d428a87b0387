"""Benchmark (not collected by pytest): scan 45,000 tables granted to all_employees.

    python tests/perf/scan_45k.py [--tables N] [--runs N] [--dsn DSN]

Seeds a throwaway PostgreSQL server (or uses --dsn, already seeded with seed_bulk), then times `PostgresTarget.scan` (cold: first connection;
warm: the reused connection a watch loop would use) and the full `ScanService.scan` that also
stores the scope and every finding in a SQLite store. Target: scan under 2 s.
The machine is shared, so it also prints the CPU the scan cost (client and server backend) and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from sevtool.core.classification import Classifier
from sevtool.core.exposure import Scope
from sevtool.gcpause import bulk_run
from sevtool.pgtemp import TempPostgres
from sevtool.scenario import seed_bulk
from sevtool.services import Workbench
from sevtool.settings import Settings
from sevtool.targets.postgres.target import PostgresTarget


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=45000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dsn", help="a database already seeded with seed_bulk(tables=N)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        if args.dsn:
            dsn = args.dsn
        else:
            pg = stack.enter_context(TempPostgres())
            dsn = pg.create_database("bulk")
            seeded = seed_bulk(dsn, args.tables)
            print(f"seeded {seeded['tables']} tables in {len(seeded['schemas'])} schemas in {seeded['seconds']:.1f} s")
        measure(dsn, args, Path(tmp))


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU used so far by a local server backend (Linux /proc), or None if not visible."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(dsn: str, args, tmp: Path) -> None:
    target = PostgresTarget(dsn)
    scope = Scope(target=target.display, principals=["all_employees"])
    times, cpu = [], []
    for _ in range(args.runs):
        started, client_before = time.perf_counter(), time.process_time()
        result = target.scan(scope, Classifier())
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - client_before)
    backend = target._scan_conn.info.backend_pid
    server_before = backend_cpu_seconds(backend)
    target.scan(scope, Classifier())
    server_after = backend_cpu_seconds(backend)
    target.close()
    assert len(result.findings) == args.tables and result.objects_in_scope == args.tables
    print(
        f"target.scan: first {times[0]:.2f} s, median {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s over {args.runs} runs ({len(result.findings)} findings)"
    )
    server = (
        f"{server_after - server_before:.2f} s" if server_before is not None and server_after is not None else "n/a"
    )
    print(
        f"  CPU per scan: client median {statistics.median(cpu):.2f} s, server backend {server}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    wb = Workbench(Settings(db=f"sqlite:///{tmp / 'perf.db'}", config=tmp / "none.toml", tz="UTC", actor="perf"))
    incident = wb.incidents.declare("perf", 2)
    service_times = []
    for _ in range(max(1, args.runs // 2)):
        started = time.perf_counter()
        outcome = wb.scanning.scan(incident.id, dsn, ["all_employees"])
        service_times.append(time.perf_counter() - started)
    wb.scanning.close()
    print(
        f"ScanService.scan (scan + store scope v{outcome.version} and {outcome.summary.findings} findings, SQLite): "
        f"median {statistics.median(service_times):.2f} s, min {min(service_times):.2f} s"
    )


if __name__ == "__main__":
    with bulk_run():  # as the CLI runs its bulk commands
        main()
