"""Helpers for tests that create roles on a real server (roles are cluster-wide, databases are not), and a world they share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

# Issue 20's example: ana is an analyst and an employee; USAGE on hr comes from analysts only, SELECT from emp_all.
USAGE_FROM_ANOTHER_ROLE = """
CREATE ROLE emp_all; CREATE ROLE analysts; CREATE ROLE ana LOGIN; CREATE ROLE owner1;
GRANT emp_all, analysts TO ana;
CREATE SCHEMA hr AUTHORIZATION owner1;
SET ROLE owner1;
GRANT USAGE ON SCHEMA hr TO analysts;
CREATE TABLE hr.salaries(id int);
GRANT SELECT ON hr.salaries TO emp_all;
RESET ROLE;
"""


@contextmanager
def roles_dropped_after(dsn: str) -> Iterator[None]:
    """Drop the roles created inside the block, with what they own and were granted, so the next test can reuse names."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
    yield
    with psycopg.connect(dsn, autocommit=True) as conn:
        created = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles") if r not in before]
        for role in created:  # quoted by psycopg: test roles may be named with quotes
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        for role in created:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def reads(dsn: str, role: str, table: str) -> bool:
    """The server's answer: a zero-row read as that role, in a transaction that is rolled back."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET ROLE {role}")
        try:
            conn.execute(f"SELECT FROM {table} LIMIT 0")
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False
        finally:
            conn.rollback()
