"""The TUI's rows: first paint of an incident's findings at the largest size against the main size, and a typed
filter to its result, each from `python -m sevtool.tui.first_paint` run on a cycle's store after its scans.

The TUI has no command to time from outside, so the clock runs inside that process (Textual's Pilot on a
headless screen); the process is the benchmark's as for every command, so its peak RSS is the TUI's own.
"""

from __future__ import annotations

import json
import sys

from sevtool.bench import report
from sevtool.bench.measure import Sample, Samples, run_process

PAINT = "TUI first paint"
FILTER = "TUI filter"
STALL = "TUI filter: longest UI stall"  # the longest the event loop went without running while the filter worked
TYPED = "t_0001"  # the bulk scenario's tables t_000100 to t_000199: the same hundred findings at every size
PAINT_GROWTH = 2.0  # first paint at the largest size / at the main size
RSS_LIMIT_MB = 250.0


def measure(samples: Samples, tables: int, env: dict[str, str], incident: str, rounds: int) -> None:
    """`rounds` runs against the store of the cycle at `tables`, whose latest scope holds its findings."""
    for _ in range(rounds):
        finished = run_process([sys.executable, "-m", "sevtool.tui.first_paint", incident, "--filter", TYPED], env=env)
        got = json.loads(finished.stdout)
        samples.add(tables, PAINT, Sample(got["first_paint_s"], finished.sample.peak_rss_mb))
        samples.add(tables, FILTER, Sample(got["filter_s"], None))
        samples.add(tables, STALL, Sample(got["longest_stall_s"], None))


def rows(samples: Samples, sizes: list[int], main: int) -> list[report.Row]:
    largest = max(size for size in sizes if samples.has(size, PAINT))
    at = f"{largest:,} findings" if largest != main else f"{main:,} findings"
    paint, base = samples.seconds(largest, PAINT), samples.seconds(main, PAINT)
    rss = samples.peak_rss_mb(largest, PAINT)
    compared = largest != main
    paint_row = report.Row(
        PAINT,
        paint,
        f"the same at {main:,} findings" if compared else "-",
        base if compared else None,
        f"<= {PAINT_GROWTH:g}x, RSS <= {RSS_LIMIT_MB:.0f} MB" if compared else "-",
        (paint <= PAINT_GROWTH * base and (rss is None or rss <= RSS_LIMIT_MB)) if compared else None,
        rss,
        f"start to the findings table painted, at {at}; in-process through Textual's Pilot (the TUI is no "
        f"command to time from outside); runs {_runs(samples, largest, PAINT)}"
        + (f" vs {_runs(samples, main, PAINT)}" if compared else "")
        + " s",
    )
    filter_row = report.Row(
        FILTER,
        samples.seconds(largest, FILTER),
        "-",
        None,
        "-",
        None,
        rss,  # the same process as the first paint's
        f"'{TYPED}' typed at {at}: last key to the filtered table shown, the query off the UI thread; "
        f"the longest the UI went without taking a key meanwhile {max(samples.rounds(largest, STALL)):.2f} s; "
        f"runs {_runs(samples, largest, FILTER)} s",
    )
    return [paint_row, filter_row]


def _runs(samples: Samples, tables: int, measure: str) -> str:
    return ", ".join(f"{s:.2f}" for s in samples.rounds(tables, measure))
