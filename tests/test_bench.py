"""`python -m sevtool.bench` on a small exposure: every row is printed and the work behind it is right.

No timing is asserted (these machines are shared); a smoke run keeps the benchmark from rotting between
the long runs whose figures go in the README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

EXPECTED = [
    "scan --json",
    "scan (text summary)",
    "verify (exposed)",
    "plan",
    "apply",
    "plan+apply",
    "plan+apply (vs per-table loop)",
    "verify (after the fix)",
    "undo",
    "undo (vs per-table loop)",
    "postmortem",
    "evidence (csvlog)",
    "TUI first paint",
    "TUI filter",
    "sevtool --help",
    "CPU reference (not sevtool)",
]


def test_a_small_benchmark_run_prints_every_row_and_restores_what_it_revoked():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sevtool.bench",
            "--tables",
            "60",
            "--growth",
            "30",
            "--events",
            "200",
            "--rounds",
            "2",
            "--evidence-lines",
            "4000",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 3), run.stderr  # 3: a target missed, which 60 tables on a busy machine will do
    figures = json.loads(run.stdout)
    rows = {r["measure"]: r for r in figures["rows"]}
    assert list(rows) == EXPECTED
    assert rows["scan --json"]["detail"].startswith("60 objects exposed; the server's query: 60 readable")
    assert "clean=True; the server's query: 0 readable" in rows["verify (after the fix)"]["detail"]
    assert "applied 60, failed 0" in rows["apply"]["detail"] and "undone 60" in rows["undo"]["detail"]
    assert "200 timeline events" in rows["postmortem"]["detail"]
    # 4,000 lines: 20 blocks of 200, 140 AUDIT lines each, a tenth of all lines in another database (write_csvlog).
    evidence = rows["evidence (csvlog)"]
    assert evidence["alternative"] == "csv.reader pass" and evidence["target"] == "<= 2x, RSS <= 150 MB"
    assert evidence["detail"].startswith("4,000 csvlog lines") and "(expected 2,520)" in evidence["detail"]
    assert ": 2520 AUDIT records of wh" in evidence["detail"] and evidence["alternative_s"] > 0
    # Each sevtool command ran as its own process, with its own peak memory; the alternatives are named beside it.
    # (--help and the evidence reader are small processes: no store, no target driver loaded.)
    small = ("evidence (csvlog)", "sevtool --help")
    assert all(rows[m]["peak_rss_mb"] > 40 for m in EXPECTED[:-1] if m not in small)
    assert all(5 < rows[m]["peak_rss_mb"] < 40 for m in small)
    # ... so the launcher's memory, which every command's peak includes, stayed far below a command's own.
    assert (
        rows["apply"]["alternative"] == "per-schema REVOKE"
        and rows["scan --json"]["alternative"] == "readers query (exposed)"
        and rows["verify (exposed)"]["alternative"] == "readers query (exposed, for verify)"
    )
    # The TUI has no command to time from outside: its row says it was timed inside, through Pilot.
    assert "in-process through Textual's Pilot" in rows["TUI first paint"]["detail"]
    # Every round's figure is shown, sevtool's and the alternative's, not only the medians.
    assert re.search(r"; runs [\d.]+, [\d.]+ vs [\d.]+, [\d.]+ s$", rows["plan+apply"]["detail"])
    assert re.search(r"; runs [\d.]+, [\d.]+, [\d.]+ s$", rows["CPU reference (not sevtool)"]["detail"])
    growth = {g["measure"]: g for g in figures["growth"]}
    assert set(growth) == {"scan", "plan", "apply", "verify (exposed)", "verify (after the fix)", "undo"}
    assert set(growth["apply"]["per_table_us"]) == {"30", "60"}
