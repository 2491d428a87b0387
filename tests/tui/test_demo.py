"""`sevtool demo --headless`: the drill end to end through the real entry point, on its own throwaway server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres


def test_headless_demo_catches_the_regrant_and_writes_the_postmortem(cli, tmp_path):
    output = tmp_path / "postmortem.md"
    result = cli("demo", "--headless", "--regrant-after", "3s", "--tables", "40", "-o", str(output), timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output.resolve())           # stdout: the file, for scripts
    progress = result.stderr
    assert "sync job: re-granted SELECT on" in progress
    assert "REGRESSION caught" in progress
    assert "resolved: the last scheduled re-checks were clean" in progress
    assert "demo server stopped and removed" in progress            # the server is cleaned up
    markdown = output.read_text()
    assert markdown.startswith("# Postmortem INC-1")
    assert "REGRESSION" in markdown and "resolved" in markdown
