"""Time the TUI as a responder meets it: start to the first paint of an incident's findings, and a typed filter
to the filtered findings shown. `python -m sevtool.tui.first_paint INCIDENT [--filter TEXT]`, store from the
environment as for `sevtool`; prints JSON.

The benchmark runs it as a process of its own, so the peak RSS it records is the TUI's. The TUI has no command
to time from outside, so the clock runs inside, through Textual's Pilot on a headless screen the size of a
laptop terminal: keys go through the same bindings and workers as a person's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from sevtool.services import Workbench
from sevtool.tui.app import create_app
from sevtool.tui.widgets.finding_window import FindingWindow
from sevtool.tui.widgets.findings_table import FindingsTable

SCREEN = (170, 48)
FRAME_S = 1 / 60
TIMEOUT_S = 300  # a benchmark that never ends tells nobody anything: fail instead


def _shown(app, words: tuple[str, ...]) -> FindingWindow | None:
    """The findings for `words` once their first page is in the table, else None."""
    tables = app.screen.query(FindingsTable)
    window = tables.first().rows if tables else None
    if isinstance(window, FindingWindow) and window.words == words and (not window or window[0] is not None):
        return window
    return None


async def _painted(pilot, words: tuple[str, ...]) -> FindingWindow:
    """Wait for the findings, then a frame's time for the screen to draw them. Not `pilot.pause()`: it waits
    for the whole process to go idle, and the summary counted in a worker thread then would count as paint."""
    while (window := _shown(pilot.app, words)) is None:
        await pilot.pause(0.005)
    await pilot.pause(FRAME_S)
    return window


class _LongestStall:
    """The longest the event loop went without running, while in use: a key pressed then waits that long.

    Pilot's own key presses wait for the whole process to go idle, worker threads included, so timing them
    would count the filter's query in its thread as if it held the keyboard."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.002)
            self.seconds = max(self.seconds, time.perf_counter() - before - 0.002)

    def __enter__(self) -> _LongestStall:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *_) -> None:
        if self._task is not None:
            self._task.cancel()


async def measure(wb: Workbench, incident_id: int, text: str) -> dict:
    started = time.perf_counter()
    app = create_app(wb, open_incident=incident_id)
    async with app.run_test(size=SCREEN) as pilot:
        everything = await _painted(pilot, ())
        first_paint = time.perf_counter() - started
        await pilot.press("slash")
        with _LongestStall() as stall:
            for key in text:
                pressed = time.perf_counter()
                await pilot.press(key)
            matching = await _painted(pilot, tuple(text.split()))
            filtered = time.perf_counter() - pressed  # from the last key: what a person waits once they stop typing
    return {
        "findings": len(everything),
        "first_paint_s": round(first_paint, 3),
        "filter": text,
        "matching": len(matching),
        "filter_s": round(filtered, 3),
        "longest_stall_s": round(stall.seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sevtool.tui.first_paint", description=__doc__.splitlines()[0])
    parser.add_argument("incident", type=int)
    parser.add_argument("--filter", default="t_0001", help="what to type into the findings filter")
    args = parser.parse_args(argv)
    measured = asyncio.run(asyncio.wait_for(measure(Workbench(), args.incident, args.filter), TIMEOUT_S))
    print(json.dumps(measured))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
