"""Bulk inserts through the driver: COPY on PostgreSQL, one executemany on SQLite.

At 45,000 rows (findings, journaled actions, a check's findings) SQLAlchemy's per-row parameter and
type processing costs more than the work itself. Rows arrive as the columns bind them: JSON as text,
times through `stamp`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Session


def insert_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert `rows` (tuples in `columns` order; a generator is fine) into `table` in the session's transaction."""
    names = ", ".join(columns)
    driver = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        with driver.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        driver.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


def stamp(session: Session, column: Column, at: datetime):
    """`at` as this dialect stores it in `column`: on SQLite the text SQLAlchemy writes (and compares with).

    The generic DateTime has no SQLite bind processor; the dialect's implementation does.
    """
    dialect = session.get_bind().dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(at) if process else at
