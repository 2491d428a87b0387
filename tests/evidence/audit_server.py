"""A throwaway PostgreSQL 15 with pgaudit preloaded, logging csvlog and jsonlog through the logging collector."""

from __future__ import annotations

import time
from pathlib import Path

from sevtool.pgtemp import find_bindir

SECRET = "hunter2-SSN-078-05-1120"  # a value in a WHERE clause: must never reach output or the store

PGAUDIT_SETTINGS = {
    "shared_preload_libraries": "pgaudit",
    "logging_collector": "on",
    "log_destination": "csvlog,jsonlog",
    "log_directory": "log",
    "pgaudit.log": "read, role",
    "pgaudit.role": "auditor",
    "pgaudit.log_relation": "on",
    "log_line_prefix": "%m [%p] %q%u@%d ",
}


def pgaudit_missing() -> str | None:
    bindir = find_bindir()
    if bindir is None:
        return "no PostgreSQL server binaries on this machine"
    libdir = bindir.parent / "lib"
    if not (libdir / "pgaudit.so").exists():
        return f"pgaudit.so is not installed in {libdir} (apt-get install postgresql-15-pgaudit)"
    return None


def wait_for_log(log_dir: Path, text: str, count: int = 1, timeout: float = 20) -> None:
    """The logging collector writes asynchronously: wait until the csvlog holds `text` `count` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sum(p.read_text(errors="replace").count(text) for p in log_dir.glob("*.csv"))
        if found >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} did not reach the server log {count} time(s) within {timeout}s")
