"""Benchmark (not collected by pytest): first paint of an incident whose scope has 45,000 findings.

    python tests/perf/tui_first_paint.py [--findings N] [--runs N]

Writes one scan with N findings straight into a throwaway SQLite store (the scan itself is measured
by scan_45k.py), then opens the app on the incident and times, from the moment the app is created:
  first paint   the first frame written to the terminal that shows the incident's header, playbook,
                scope line and footer keys (also as CPU time of this process, which a loaded machine
                does not inflate; it includes the findings worker's thread once that has started)
  summary       the exposure by DSS, path and principal is on screen (counted by the store)
  findings      all N findings are in the virtual table, loaded by a worker (the screen stays live)
  filter        narrowing the N findings by a word, once loaded
  from the list the same first paint, timed from enter on the incident list (how responders open it)
--findings 0 opens an incident that was never scanned: the screen's fixed cost alone.
Imports are done before the clock starts (Python, Textual, pydantic, SQLAlchemy: about a second cold).
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
    if not findings:
        return incident.id
    rows = [
        Finding(
            object_kind="table",
            schema_name=f"telemetry_{i // 5000:02d}",
            object_name=f"t_{i:06d}",
            principal="all_employees",
            path=AccessPath.DIRECT,
            grantee="all_employees",
            grantor="etl_owner",
            dss=i % 4 + 1,
        )
        for i in range(findings)
    ]
    scope = Scope(target="warehouse", principals=["all_employees"])
    with wb.store.write() as tx:
        scope_id = scans.add_scope(tx.session, incident.id, 1, scope, finding_count=findings, object_count=findings)
        scans.add_findings(tx.session, scope_id, rows)
        tx.append(incident.id, "scan", f"Scan v1 of warehouse: {findings} objects readable", {"version": 1})
    return incident.id


def screen_text(screen) -> str:
    return "\n".join(strip.text for strip in screen._compositor.render_strips())


def watch_frames(app, expected: tuple[str, ...]) -> dict[str, float]:
    """Stamp the first frame of the incident screen that shows every expected text.

    `App._display` is where Textual hands each frame to the terminal (headless: where it would). Reading a
    frame's text takes time too, so the clocks are read on the way in and what the checks took is taken off.
    """
    stamps: dict[str, float] = {}
    spent = {"wall": 0.0, "cpu": 0.0}
    display = app._display

    def stamped(screen, renderable):
        wall, cpu = time.perf_counter(), time.process_time()
        if renderable is not None and "wall" not in stamps and type(screen).__name__ == "IncidentScreen":
            if all(part in screen_text(screen) for part in expected):
                stamps.update(wall=wall - spent["wall"], cpu=cpu - spent["cpu"])
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.process_time() - cpu
        return display(screen, renderable)

    app._display = stamped
    return stamps


async def measure(wb: Workbench, incident_id: int, expected: int) -> dict[str, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    app = create_app(wb, open_incident=incident_id)
    scope_line = "Scope v1" if expected else "Not scanned yet"
    first_frame = watch_frames(app, ("INC-", "Playbook: data-exposure", scope_line, "/ Filter"))
    times: dict[str, float] = {}
    async with app.run_test(size=(160, 48)):
        while "wall" not in first_frame:
            await asyncio.sleep(0.005)
        times["first paint"] = first_frame["wall"] - started
        times["first paint (CPU)"] = first_frame["cpu"] - cpu_started
        if not expected:
            return times
        summary = app.screen.query_one("#scope-summary")
        while "by DSS" not in str(summary.render()):
            await asyncio.sleep(0.005)
        times["summary"] = time.perf_counter() - started
        table = app.screen.query_one(FindingsTable)
        while len(table.rows) < expected:
            await asyncio.sleep(0.01)
        times["all findings loaded"] = time.perf_counter() - started
        pane = app.screen.query_one(ScopePane)
        t0 = time.perf_counter()
        pane.apply_filter("t_0449")
        times["filter"] = time.perf_counter() - t0
        assert 0 < len(table.rows) < expected
    return times


async def measure_from_list(wb: Workbench, expected: int) -> tuple[float, float]:
    """The way responders open an incident: the list is up, enter on the (only) incident, until its first paint."""
    from textual.widgets import DataTable

    app = create_app(wb)
    first_frame = watch_frames(
        app, ("INC-", "Playbook: data-exposure", "Scope v1" if expected else "Not scanned yet", "/ Filter")
    )
    async with app.run_test(size=(160, 48)) as pilot:
        while not (app.screen.query(DataTable) and app.screen.query_one(DataTable).row_count):
            await asyncio.sleep(0.005)
        await pilot.pause()
        pressed, cpu_pressed = time.perf_counter(), time.process_time()
        await pilot.press("enter")
        while "wall" not in first_frame:
            await asyncio.sleep(0.005)
    return first_frame["wall"] - pressed, first_frame["cpu"] - cpu_pressed


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
        for result in results:
            result["from the list (enter)"], result["from the list (CPU)"] = asyncio.run(
                measure_from_list(wb, args.findings)
            )
    for name in results[0]:
        values = [r[name] for r in results]
        print(f"{name:>20}: median {statistics.median(values):.3f} s  (runs: {', '.join(f'{v:.3f}' for v in values)})")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
