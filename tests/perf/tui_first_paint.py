"""Benchmark (not collected by pytest): first paint of an incident whose scope has 45,000 findings.

    python tests/perf/tui_first_paint.py [--findings N] [--runs N]

Writes one scan with N findings straight into a throwaway SQLite store (the scan itself is measured
by scan_45k.py), then opens the app on the incident and times, from the moment the app starts:
  first paint   the incident screen is on the terminal with its header, playbook and scope summary
                (also as CPU time of this process, which a loaded machine does not inflate)
  findings      all N findings are loaded into the virtual table, in a worker (the screen stays live)
  filter        narrowing the N findings by a word, once loaded
Target: first paint under 2 s. The machine is shared, so the load average is printed alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from sevtool.core.exposure import AccessPath, Finding, Scope
from sevtool.services import Workbench
from sevtool.settings import Settings
from sevtool.store import scans
from sevtool.tui.app import create_app
from sevtool.tui.widgets.findings_table import FindingsTable
from sevtool.tui.widgets.scope_pane import ScopePane


def seed_store(wb: Workbench, findings: int) -> int:
    incident = wb.incidents.declare("45,000 telemetry tables readable by all_employees", 2, playbook="data-exposure")
    rows = [Finding(object_kind="table", schema_name=f"telemetry_{i // 5000:02d}", object_name=f"t_{i:06d}", principal="all_employees",
                    path=AccessPath.DIRECT, via="granted to all_employees", grantee="all_employees", grantor="etl_owner", dss=i % 4 + 1)
            for i in range(findings)]
    scope = Scope(target="warehouse", principals=["all_employees"])
    with wb.store.write() as tx:
        scope_id = scans.add_scope(tx.session, incident.id, 1, scope, finding_count=findings, object_count=findings)
        scans.add_findings(tx.session, scope_id, rows)
        tx.append(incident.id, "scan", f"Scan v1 of warehouse: {findings} objects readable", {"version": 1})
    return incident.id


async def measure(wb: Workbench, incident_id: int, expected: int) -> tuple[float, float, float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    app = create_app(wb, open_incident=incident_id)
    async with app.run_test(size=(160, 48)) as pilot:
        first_paint = None
        while True:
            pane = app.screen.query(ScopePane)
            if pane and "Scope v1" in str(app.screen.query_one("#scope-summary").render()):
                await pilot.pause()          # the frame with it is written
                first_paint = time.perf_counter() - started
                first_paint_cpu = time.process_time() - cpu_started
                break
            await asyncio.sleep(0.005)
        table = app.screen.query_one(FindingsTable)
        while len(table.rows) < expected:
            await asyncio.sleep(0.01)
        loaded = time.perf_counter() - started
        pane = app.screen.query_one(ScopePane)
        t0 = time.perf_counter()
        pane.apply_filter("t_0449")
        filtered = time.perf_counter() - t0
        assert 0 < len(table.rows) < expected
    return first_paint, first_paint_cpu, loaded, filtered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=45000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wb = Workbench(Settings(db=f"sqlite:///{tmp}/store.db", config=f"{tmp}/config.toml", tz="UTC", actor="bench"))
        t0 = time.perf_counter()
        incident_id = seed_store(wb, args.findings)
        print(f"store seeded with {args.findings:,} findings in {time.perf_counter() - t0:.1f} s")
        results = [asyncio.run(measure(wb, incident_id, args.findings)) for _ in range(args.runs)]
    for name, values in zip(("first paint", "first paint (CPU)", "all findings loaded", "filter"), zip(*results)):
        print(f"{name:>20}: median {statistics.median(values):.3f} s  (runs: {', '.join(f'{v:.3f}' for v in values)})")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
