"""One small scenario per access path, for the tests: every way a table can be readable by a principal's members."""

from __future__ import annotations

import psycopg
from psycopg import sql

from sevtool.core.exposure import FUTURE_TABLES
from sevtool.scenario.helpers import (
    AWKWARD_COLUMN,
    AWKWARD_COLUMN_TABLE,
    AWKWARD_ROLE,
    AWKWARD_SCHEMA,
    AWKWARD_TABLE,
    PRINCIPAL,
    create_table,
    ensure_role,
    entry,
    grant_role,
    grant_select,
    ident,
)

# The access paths the scenario's grants give the principal's members: a scan of it finds each, and only these.
SEEDED_PATHS = frozenset(
    {
        "direct",
        "public",
        "role",
        "column",
        "default_privileges",
        "view",
        "grant_option",
        "predefined_role",
        "partition",
    }
)


def seed_access_paths(dsn: str) -> dict:
    """One scenario per access path of DESIGN.md, all readable by members of `all_employees`.

    Returns {"principal", "members", "noinherit_member", "canary", "paths": {AccessPath value: [scenario, ...]},
    "unexposed": [fqn, ...], "latent": scenario, "awkward": {...}}.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role, login, inherit in [
            (PRINCIPAL, False, True),
            ("alice", True, True),
            ("carol", True, True),
            ("dave", True, False),
            ("analytics_readers", False, True),
            ("data_platform", False, True),
            ("legacy_ops", False, False),
            ("legacy_readers", False, True),
            ("bob", True, True),
            ("etl_owner", False, True),
            ("contractors", False, True),
            ("zoe", True, True),
            (AWKWARD_ROLE, False, True),
        ]:
            ensure_role(conn, role, login=login, inherit=inherit)
        for role, member in [
            (PRINCIPAL, "alice"),
            (PRINCIPAL, "carol"),
            (PRINCIPAL, "dave"),
            ("analytics_readers", PRINCIPAL),
            ("data_platform", "analytics_readers"),
            ("legacy_ops", PRINCIPAL),
            ("legacy_readers", "legacy_ops"),
            (AWKWARD_ROLE, PRINCIPAL),
            ("contractors", "zoe"),
            ("pg_read_all_data", "contractors"),
        ]:
            grant_role(conn, role, member)

        for schema in ("hr", "chat", "telemetry", "reporting", AWKWARD_SCHEMA, "vault"):
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(schema)))
            if schema != "vault":
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(ident(schema)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA telemetry TO etl_owner"))

        paths: dict[str, list[dict]] = {}

        def add(path: str, entry: dict) -> None:
            paths.setdefault(path, []).append(entry)

        create_table(conn, "hr", "salaries", 4)
        grant_select(conn, "hr", "salaries", PRINCIPAL)
        add("direct", entry("hr", "salaries", grantee=PRINCIPAL, dss=4))

        create_table(conn, "chat", "messages", 3)
        grant_select(conn, "chat", "messages", "PUBLIC")
        add("public", entry("chat", "messages", grantee="PUBLIC", dss=3))

        create_table(conn, "telemetry", "keystrokes", 4)
        grant_select(conn, "telemetry", "keystrokes", "analytics_readers")
        add(
            "role",
            entry("telemetry", "keystrokes", grantee="analytics_readers", via="via role analytics_readers", dss=4),
        )
        create_table(conn, "telemetry", "mouse_moves", 3)
        grant_select(conn, "telemetry", "mouse_moves", "data_platform")
        add(
            "role",
            entry(
                "telemetry",
                "mouse_moves",
                grantee="data_platform",
                via="via role data_platform (through analytics_readers)",
                dss=3,
            ),
        )
        create_table(conn, "hr", "org_chart", 2)
        grant_select(conn, "hr", "org_chart", "legacy_readers")
        add("role", entry("hr", "org_chart", grantee="legacy_readers", via="by SET ROLE", dss=2))

        create_table(conn, "telemetry", "screen_captures", 4)
        conn.execute(sql.SQL("GRANT SELECT (payload) ON telemetry.screen_captures TO {}").format(ident(PRINCIPAL)))
        add("column", entry("telemetry", "screen_captures", grantee=PRINCIPAL, column="payload", dss=4))

        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE etl_owner IN SCHEMA telemetry GRANT SELECT ON TABLES TO {}"
            ).format(ident(PRINCIPAL))
        )
        add(
            "default_privileges",
            entry(
                "telemetry",
                FUTURE_TABLES,
                grantee=PRINCIPAL,
                grantor="etl_owner",
                owner="etl_owner",
                future_tables=True,
            ),
        )

        create_table(conn, "hr", "performance_reviews", 4)
        conn.execute("CREATE VIEW reporting.review_summary AS SELECT id, captured_at FROM hr.performance_reviews")
        grant_select(conn, "reporting", "review_summary", PRINCIPAL)
        add(
            "view",
            entry("reporting", "review_summary", grantee=PRINCIPAL, base="hr.performance_reviews", kind="view", dss=4),
        )
        conn.execute(
            "CREATE MATERIALIZED VIEW reporting.review_counts AS SELECT count(*) AS n FROM hr.performance_reviews"
        )
        grant_select(conn, "reporting", "review_counts", PRINCIPAL)
        add(
            "view",
            entry(
                "reporting",
                "review_counts",
                grantee=PRINCIPAL,
                base="hr.performance_reviews",
                kind="materialized view",
                dss=4,
            ),
        )

        create_table(conn, "hr", "bonuses", 4)
        grant_select(conn, "hr", "bonuses", "bob", grant_option=True)
        conn.execute("SET ROLE bob")
        grant_select(conn, "hr", "bonuses", PRINCIPAL)
        conn.execute("RESET ROLE")
        add("grant_option", entry("hr", "bonuses", grantee=PRINCIPAL, grantor="bob", dss=4))

        add("predefined_role", {"principal": "contractors", "role": "pg_read_all_data", "member": "zoe"})

        create_table(
            conn,
            "telemetry",
            "events",
            3,
            columns="id bigint, captured_at timestamptz, payload text",
            suffix=" PARTITION BY RANGE (captured_at)",
        )
        for name, start, end in [
            ("events_2026_05", "2026-05-01", "2026-06-01"),
            ("events_2026_06", "2026-06-01", "2026-07-01"),
        ]:
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF telemetry.events FOR VALUES FROM ({}) TO ({})").format(
                    ident("telemetry", name), sql.Literal(start), sql.Literal(end)
                )
            )
        grant_select(conn, "telemetry", "events_2026_06", PRINCIPAL)
        add("partition", entry("telemetry", "events_2026_06", grantee=PRINCIPAL, base="telemetry.events", dss=3))

        create_table(conn, AWKWARD_SCHEMA, AWKWARD_TABLE, 3)
        grant_select(conn, AWKWARD_SCHEMA, AWKWARD_TABLE, AWKWARD_ROLE)
        add("role", entry(AWKWARD_SCHEMA, AWKWARD_TABLE, grantee=AWKWARD_ROLE, via=f"via role {AWKWARD_ROLE}", dss=3))
        create_table(
            conn,
            AWKWARD_SCHEMA,
            AWKWARD_COLUMN_TABLE,
            2,
            columns=f"id bigint, {sql.Identifier(AWKWARD_COLUMN).as_string(conn)} text",
        )
        conn.execute(
            sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                ident(AWKWARD_COLUMN), ident(AWKWARD_SCHEMA, AWKWARD_COLUMN_TABLE), ident(PRINCIPAL)
            )
        )
        add("column", entry(AWKWARD_SCHEMA, AWKWARD_COLUMN_TABLE, grantee=PRINCIPAL, column=AWKWARD_COLUMN, dss=2))

        create_table(conn, "hr", "audit_log", 2)
        create_table(conn, "vault", "master_keys", 4)
        grant_select(conn, "vault", "master_keys", PRINCIPAL)

    return {
        "principal": PRINCIPAL,
        "members": ["alice", "carol", "dave"],
        "noinherit_member": "dave",
        "canary": "alice",
        "paths": paths,
        "unexposed": [
            "hr.audit_log",
            "hr.performance_reviews",
            "telemetry.events",
            "telemetry.events_2026_05",
            "vault.master_keys",
        ],
        "latent": entry("vault", "master_keys", grantee=PRINCIPAL, missing="USAGE on schema vault"),
        "awkward": {
            "schema": AWKWARD_SCHEMA,
            "table": AWKWARD_TABLE,
            "role": AWKWARD_ROLE,
            "column_table": AWKWARD_COLUMN_TABLE,
            "column": AWKWARD_COLUMN,
        },
    }
