"""Fixtures for the evidence tests: a pgaudit server per test (see audit_server)."""

from __future__ import annotations

import pytest
from audit_server import PGAUDIT_SETTINGS, pgaudit_missing

from sevtool.pgtemp import TempPostgres


@pytest.fixture
def audit_pg():
    """One pgaudit server per test: its log directory holds only that test's statements."""
    reason = pgaudit_missing()
    if reason:
        pytest.skip(reason)
    server = TempPostgres(settings=PGAUDIT_SETTINGS).start()
    assert server.log_dir == server.data / "log"  # TempPostgres.log_dir: log_directory under the data directory
    yield server
    server.stop()
