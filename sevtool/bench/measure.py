"""Timing a command as a user runs it: a whole process, from start to exit, with its own peak memory."""

from __future__ import annotations

import functools
import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
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

    Started from the launcher, a small process of its own: a child's peak RSS counts the memory of the process that
    forked it, and the benchmark's own process grows (it reads a 200,000-finding JSON answer to check it).
    Output goes to files rather than pipes: the benchmark must not read a large table while the clock runs."""
    seconds, rss_kb, code, out_path, err_path = _launcher().submit(_timed, list(argv), env).result()
    try:
        finished = Finished(
            Sample(seconds, rss_kb / 1024),
            code,
            Path(out_path).read_text(errors="replace"),
            Path(err_path).read_text(errors="replace"),
        )
    finally:
        Path(out_path).unlink(missing_ok=True)
        Path(err_path).unlink(missing_ok=True)
    if finished.exit_code not in ok:
        raise CommandFailed(argv, finished)
    return finished


@functools.cache
def _launcher() -> ProcessPoolExecutor:
    """One spawned worker that only starts commands and waits for them, so it stays a few megabytes."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def _timed(argv: list[str], env: dict[str, str] | None) -> tuple[float, int, int, str, str]:
    """In the launcher: (seconds, peak RSS in KiB, exit code, stdout file, stderr file)."""
    with (
        tempfile.NamedTemporaryFile(prefix="bench-out-", delete=False) as out,
        tempfile.NamedTemporaryFile(prefix="bench-err-", delete=False) as err,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return seconds, usage.ru_maxrss, proc.returncode, out.name, err.name


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
