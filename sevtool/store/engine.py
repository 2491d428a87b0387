"""Open the store: SQLite by default (file created 0600), any SQLAlchemy URL via SEVTOOL_DB."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlmodel import SQLModel

from sevtool.errors import StoreError
from sevtool.store.models import (  # importing models registers every table
    ActionDetailRow,
    ActionRow,
    FindingRow,
    GuardRunRow,
    GuardStateRow,
    StatsSnapshotRow,
    WorkLeaseRow,
)

# Tables added after stores were first made: created in an existing store when missing.
LATER_TABLES = (WorkLeaseRow.__table__, GuardStateRow.__table__, GuardRunRow.__table__)

SQLITE_BUSY_TIMEOUT_MS = 60_000
READ_ONLY = "sevtool_read_only"  # execution option Store.read() sets on its connections


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, not SQLAlchemy's default psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _create_private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def make_engine(url: str) -> Engine:
    try:
        engine = _create_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(
            f"SEVTOOL_DB is not a usable database URL: {exc}",
            hint="e.g. sqlite:////path/sevtool.db or postgresql://host/db",
        ) from None
    _create_schema(engine)
    return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            db_path = Path(parsed.database).expanduser()
            if not db_path.exists():
                _create_private_file(db_path)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @sa_event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # Let SQLAlchemy issue BEGIN itself so the first statement of a write takes the lock.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @sa_event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the lock up front (IMMEDIATE) so they queue instead of failing; readers
            # (Store.read) begin deferred and, under WAL, never wait for a writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")
    else:
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {},
        )
    return engine


def _create_schema(engine: Engine) -> None:
    try:
        tables = set(inspect(engine).get_table_names())
        if "chain_head" not in tables:
            SQLModel.metadata.create_all(engine)
        elif ActionDetailRow.__tablename__ not in tables:
            _move_action_details_out(engine)
        if "chain_head" in tables and not {t.name for t in LATER_TABLES} <= tables:
            SQLModel.metadata.create_all(
                engine, tables=list(LATER_TABLES)
            )  # checks first: two processes may both get here
        if "chain_head" in tables and "detail" not in {
            c["name"] for c in inspect(engine).get_columns(FindingRow.__tablename__)
        }:
            _structure_findings(engine)
        if "chain_head" in tables and StatsSnapshotRow.__tablename__ not in tables:
            # A store made before table statistics were snapshotted: the new table, nothing else changes.
            StatsSnapshotRow.__table__.create(engine, checkfirst=True)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO chain_head (id, seq, hash) SELECT 1, 0, :genesis WHERE NOT EXISTS (SELECT 1 FROM chain_head)"
                ),
                {"genesis": "0" * 64},
            )
    except (IntegrityError, ProgrammingError):
        # Another process created the schema at the same moment; what it made is what we wanted.
        SQLModel.metadata.create_all(engine)
    except OperationalError as exc:
        raise StoreError(
            f"cannot open the store at {engine.url.render_as_string(hide_password=True)}: {exc.orig}",
            hint="check SEVTOOL_DB and that the database is reachable",
        ) from None


def _move_action_details_out(engine: Engine) -> None:
    """Upgrade a store made when each ledger row also held its action's detail: the details move to their own
    table, so that recording a batch's status no longer rewrites them."""
    with engine.begin() as conn:  # on SQLite BEGIN IMMEDIATE: a second process opening the store waits here
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {ActionRow.__tablename__} IN ACCESS EXCLUSIVE MODE"))
        inspector = inspect(conn)
        if inspector.has_table(ActionDetailRow.__tablename__):
            return  # another process upgraded it meanwhile
        ActionDetailRow.__table__.create(conn)
        if "detail" in {column["name"] for column in inspector.get_columns(ActionRow.__tablename__)}:
            conn.execute(
                text(
                    "INSERT INTO action_detail (incident_id, plan_version, seq, detail) SELECT incident_id, plan_version, seq, detail FROM action"
                )
            )
            conn.execute(text("ALTER TABLE action DROP COLUMN detail"))


def _structure_findings(engine: Engine) -> None:
    """Upgrade a store made when a finding said how access happens only in words (`via`): the words give way to
    `detail`, the route and securable as data. Findings scanned before keep their object, path, grantee and grantor
    (all that comparisons read from a scan); the words are not parsed into routes."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"LOCK TABLE {FindingRow.__tablename__} IN ACCESS EXCLUSIVE MODE"))
        columns = {column["name"] for column in inspect(conn).get_columns(FindingRow.__tablename__)}
        if "detail" in columns:
            return  # another process upgraded it meanwhile
        conn.execute(text("ALTER TABLE finding ADD COLUMN detail JSON"))
        if "via" in columns:
            conn.execute(text("ALTER TABLE finding DROP COLUMN via"))
