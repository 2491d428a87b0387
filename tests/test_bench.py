"""`python -m sevtool.bench` on a small exposure: every figure is printed and the work behind them is right.

No timing is asserted (these machines are shared); a smoke run keeps the benchmark from rotting between
the long runs whose figures go in the README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

EXPECTED = ["scan", "verify (exposed)", "plan+apply", "plan+apply (naive: no commit wait)", "verify (after the fix)", "undo",
            "postmortem", "sevtool --help", "peak RSS (MB)", "CPU reference (not sevtool)"]


def test_a_small_benchmark_run_prints_every_figure_and_restores_what_it_revoked():
    run = subprocess.run([sys.executable, "-m", "sevtool.bench", "--tables", "60", "--events", "200", "--rounds", "2", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 3), run.stderr   # 3: a target missed, which 60 tables on a busy machine may do
    figures = {f["measure"]: f for f in json.loads(run.stdout)}
    assert list(figures) == EXPECTED
    assert "60 objects exposed" in figures["scan"]["note"]
    assert figures["verify (after the fix)"]["note"].startswith("clean=True")
    assert "'applied': 60" in figures["plan+apply"]["note"] and "'undone': 60, 'failed': 0" in figures["undo"]["note"]
    assert "200 events" in figures["postmortem"]["note"]
    # Every round's figure is shown, sevtool's and the naive loop's, not only the medians.
    assert re.search(r"; runs [\d.]+, [\d.]+ vs [\d.]+, [\d.]+ s$", figures["plan+apply"]["note"])
    assert "round 2 of 2" in run.stderr
    # The machine's speed, taken before, between and after the measures, so that two runs can be compared.
    assert re.search(r"; runs [\d.]+, [\d.]+, [\d.]+ s$", figures["CPU reference (not sevtool)"]["note"])
