"""Tens of thousands of DSS-rated tables granted to one principal, for the benchmarks and the large tests.

Committed in batches: one transaction over 45,000 tables would run out of lock slots.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from sevtool.scenario.helpers import PRINCIPAL, ensure_role, ident


def _create_batch_sql(schema: str, tables: list[tuple[str, int | None]], grantee: str | None) -> sql.Composed:
    """Create, comment and grant a batch of tables in one round trip."""
    statements = []
    for name, dss in tables:
        table = ident(schema, name)
        statements.append(sql.SQL("CREATE TABLE {} (id bigint, captured_at timestamptz, payload text);").format(table))
        if dss is not None:
            statements.append(sql.SQL("COMMENT ON TABLE {} IS {};").format(table, sql.Literal(f"dss={dss}")))
    if grantee:
        to = sql.SQL("PUBLIC") if grantee == "PUBLIC" else ident(grantee)
        names = sql.SQL(", ").join(ident(schema, name) for name, _dss in tables)
        statements.append(sql.SQL("GRANT SELECT ON {} TO {};").format(names, to))
    return sql.SQL("\n").join(statements)


def create_tables(
    conn: psycopg.Connection,
    schema: str,
    tables: list[tuple[str, int | None]],
    *,
    grantee: str | None,
    batch: int = 1000,
) -> None:
    """Tables (name, DSS or None for no comment), committed every `batch`: one transaction over
    tens of thousands of tables would run out of lock slots (max_locks_per_transaction)."""
    for start in range(0, len(tables), batch):
        with conn.transaction():
            conn.execute(_create_batch_sql(schema, tables[start : start + batch], grantee))


def seed_bulk(
    dsn: str,
    tables: int = 45000,
    *,
    principal: str = PRINCIPAL,
    schemas: list[str] | None = None,
    prefix: str = "t_",
    batch: int = 1000,
    dss_of=None,
) -> dict:
    """N tables granted SELECT to `principal`, each with a `dss=N` comment, spread over schemas.

    Committed every `batch` tables: one transaction over 45,000 tables would run out of lock slots.
    """
    schemas = schemas or [f"telemetry_{n:02d}" for n in range(max(1, -(-tables // 5000)))]
    dss_of = dss_of or (lambda i: i % 4 + 1)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_role(conn, principal)
        for schema in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(schema)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident(schema), ident(principal)))
        per_schema = -(-tables // len(schemas))
        created = 0
        for index, schema in enumerate(schemas):
            numbers = range(index * per_schema + 1, min(tables, (index + 1) * per_schema) + 1)
            create_tables(
                conn, schema, [(f"{prefix}{i:06d}", dss_of(i)) for i in numbers], grantee=principal, batch=batch
            )
            created += len(numbers)
    return {
        "tables": created,
        "schemas": schemas,
        "principal": principal,
        "prefix": prefix,
        "seconds": round(time.perf_counter() - started, 2),
    }
