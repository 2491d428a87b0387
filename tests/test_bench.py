"""`python -m sevtool.bench` on a small exposure: every row is printed and the work behind it is right.

No timing is asserted (these machines are shared); a smoke run keeps the benchmark from rotting between
the long runs whose figures go in the README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

EXPECTED = ["scan --json", "scan (text summary)", "verify (exposed)", "plan", "apply", "plan+apply", "plan+apply (vs per-table loop)",
            "verify (after the fix)", "undo", "undo (vs per-table loop)", "postmortem", "sevtool --help", "CPU reference (not sevtool)"]


def test_a_small_benchmark_run_prints_every_row_and_restores_what_it_revoked():
    run = subprocess.run([sys.executable, "-m", "sevtool.bench", "--tables", "60", "--growth", "30", "--events", "200",
                          "--rounds", "2", "--json"], capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 3), run.stderr   # 3: a target missed, which 60 tables on a busy machine will do
    figures = json.loads(run.stdout)
    rows = {r["measure"]: r for r in figures["rows"]}
    assert list(rows) == EXPECTED
    assert rows["scan --json"]["detail"].startswith("60 objects exposed; the server's query: 60 readable")
    assert "clean=True; the server's query: 0 readable" in rows["verify (after the fix)"]["detail"]
    assert "applied 60, failed 0" in rows["apply"]["detail"] and "undone 60" in rows["undo"]["detail"]
    assert "200 timeline events" in rows["postmortem"]["detail"]
    # Each sevtool command ran as its own process, with its own peak memory; the alternatives are named beside it.
    assert all(rows[m]["peak_rss_mb"] > 20 for m in EXPECTED[:-1])
    # ... and not the benchmark's: a forked child's peak counts its parent's memory, which must stay below sevtool's.
    assert rows["sevtool --help"]["peak_rss_mb"] < 60
    assert rows["apply"]["alternative"] == "per-schema REVOKE" and rows["scan --json"]["alternative"] == "readers query (exposed)"
    # Every round's figure is shown, sevtool's and the alternative's, not only the medians.
    assert re.search(r"; runs [\d.]+, [\d.]+ vs [\d.]+, [\d.]+ s$", rows["plan+apply"]["detail"])
    assert re.search(r"; runs [\d.]+, [\d.]+, [\d.]+ s$", rows["CPU reference (not sevtool)"]["detail"])
    growth = {g["measure"]: g for g in figures["growth"]}
    assert set(growth) == {"scan", "plan", "apply", "verify (exposed)", "verify (after the fix)", "undo"}
    assert set(growth["apply"]["per_table_us"]) == {"30", "60"}
