"""Timing a command as a user runs it: a whole process, from start to exit, with its own peak memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_rss_mb: float | None  # None for work done inside the benchmark's own process


@dataclass(frozen=True)
class Finished:
    sample: Sample
    exit_code: int
    stdout: str
    stderr: str


class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], finished: Finished):
        super().__init__(f"{' '.join(argv[:4])} ... exited {finished.exit_code}: {finished.stderr.strip()[-1500:]}")


def run_process(argv: Sequence[str], *, env: dict[str, str] | None = None, ok: Sequence[int] = (0,)) -> Finished:
    """Run `argv` to completion; wall time and the process's maximum RSS (from wait4, so only this child's).

    Output goes to files rather than pipes: the benchmark must not read a 45,000-line table while the clock runs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        finished = Finished(
            Sample(seconds, usage.ru_maxrss / 1024),
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if finished.exit_code not in ok:
        raise CommandFailed(argv, finished)
    return finished


def cpu_loop(steps: int = 10_000_000) -> Sample:
    """A plain Python loop: how fast this machine's CPU is at that moment. These machines are shared and their speed
    changes from hour to hour; the figure lets two runs of the benchmark be compared."""
    started = time.perf_counter()
    total = 0
    for step in range(steps):
        total += step
    return Sample(time.perf_counter() - started, None)


@dataclass
class Samples:
    """Every round's sample per (size, measure); figures are medians, every round is shown."""

    taken: dict[tuple[int, str], list[Sample]] = field(default_factory=lambda: defaultdict(list))

    def add(self, tables: int, measure: str, sample: Sample) -> Sample:
        self.taken[(tables, measure)].append(sample)
        return sample

    def has(self, tables: int, measure: str) -> bool:
        return bool(self.taken.get((tables, measure)))

    def seconds(self, tables: int, measure: str) -> float:
        return statistics.median(s.seconds for s in self.taken[(tables, measure)])

    def rounds(self, tables: int, measure: str) -> list[float]:
        return [s.seconds for s in self.taken[(tables, measure)]]

    def peak_rss_mb(self, tables: int, measure: str) -> float | None:
        peaks = [s.peak_rss_mb for s in self.taken[(tables, measure)] if s.peak_rss_mb is not None]
        return max(peaks) if peaks else None


def sevtool_argv() -> list[str]:
    """The `sevtool` console script beside this interpreter, as a user runs it; `python -m sevtool` otherwise."""
    import sys

    script = Path(sys.executable).with_name("sevtool")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sevtool"]
