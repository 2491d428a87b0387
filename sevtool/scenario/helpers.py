"""The building blocks every seed uses: roles and memberships, tables with a DSS comment, grants, awkward names.

Roles are cluster-wide in PostgreSQL, so role creation is idempotent (create or alter to the wanted
attributes, re-grant memberships): several databases on one server can be seeded one after the other.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

PRINCIPAL = "all_employees"

# Names that break naive string-built SQL: quotes, spaces, semicolons, comment markers, non-ASCII.
AWKWARD_SCHEMA = 'Zoë\'s "Lab"; DROP SCHEMA hr CASCADE; --'
AWKWARD_TABLE = 'Chat "Logs"; DROP TABLE hr.salaries; --'
AWKWARD_ROLE = 'Ops "Crew"; --'
AWKWARD_COLUMN_TABLE = "données employés"
AWKWARD_COLUMN = 'note "x"; --'


def ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def ensure_role(conn: psycopg.Connection, name: str, *, login: bool = False, inherit: bool = True) -> None:
    """Create the role, or bring an existing one (from an earlier seed on this server) to these attributes."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(
        sql.SQL("{} {} {} {}").format(
            verb, ident(name), sql.SQL("LOGIN" if login else "NOLOGIN"), sql.SQL("INHERIT" if inherit else "NOINHERIT")
        )
    )


def grant_role(conn: psycopg.Connection, role: str, member: str) -> None:
    conn.execute(sql.SQL("GRANT {} TO {}").format(ident(role), ident(member)))


def create_table(
    conn: psycopg.Connection,
    schema: str,
    name: str,
    dss: int | None,
    *,
    columns: str = "id bigint, captured_at timestamptz, payload text",
    suffix: str = "",
) -> str:
    conn.execute(sql.SQL("CREATE TABLE {} (" + columns + ")" + suffix).format(ident(schema, name)))
    if dss is not None:
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(ident(schema, name), sql.Literal(f"employee data, dss={dss}"))
        )
    return f"{schema}.{name}"


def grant_select(conn: psycopg.Connection, schema: str, name: str, grantee: str, *, grant_option: bool = False) -> None:
    to = sql.SQL("PUBLIC") if grantee == "PUBLIC" else ident(grantee)
    conn.execute(
        sql.SQL("GRANT SELECT ON {} TO {}{}").format(
            ident(schema, name), to, sql.SQL(" WITH GRANT OPTION" if grant_option else "")
        )
    )


def entry(schema: str, name: str, **extra) -> dict:
    return {"schema": schema, "name": name, "fqn": f"{schema}.{name}", **extra}
