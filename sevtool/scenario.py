"""Seed a PostgreSQL database with exposures, for tests, the demo and the benchmarks.

Run as a superuser on a fresh database. Roles are cluster-wide in PostgreSQL, so role creation is
idempotent (create or alter to the wanted attributes, re-grant memberships): several databases on one
server can be seeded one after the other. Every function returns what it built, so callers assert
against the returned names rather than repeating them.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from sevtool.core.exposure import FUTURE_TABLES

PRINCIPAL = "all_employees"

# Names that break naive string-built SQL: quotes, spaces, semicolons, comment markers, non-ASCII.
AWKWARD_SCHEMA = 'Zoë\'s "Lab"; DROP SCHEMA hr CASCADE; --'
AWKWARD_TABLE = 'Chat "Logs"; DROP TABLE hr.salaries; --'
AWKWARD_ROLE = 'Ops "Crew"; --'
AWKWARD_COLUMN_TABLE = "données employés"
AWKWARD_COLUMN = 'note "x"; --'


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def ensure_role(conn: psycopg.Connection, name: str, *, login: bool = False, inherit: bool = True) -> None:
    """Create the role, or bring an existing one (from an earlier seed on this server) to these attributes."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(
        sql.SQL("{} {} {} {}").format(
            verb, _ident(name), sql.SQL("LOGIN" if login else "NOLOGIN"), sql.SQL("INHERIT" if inherit else "NOINHERIT")
        )
    )


def grant_role(conn: psycopg.Connection, role: str, member: str) -> None:
    conn.execute(sql.SQL("GRANT {} TO {}").format(_ident(role), _ident(member)))


def _table(
    conn: psycopg.Connection,
    schema: str,
    name: str,
    dss: int | None,
    *,
    columns: str = "id bigint, captured_at timestamptz, payload text",
    suffix: str = "",
) -> str:
    conn.execute(sql.SQL("CREATE TABLE {} (" + columns + ")" + suffix).format(_ident(schema, name)))
    if dss is not None:
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(_ident(schema, name), sql.Literal(f"employee data, dss={dss}"))
        )
    return f"{schema}.{name}"


def _grant_select(
    conn: psycopg.Connection, schema: str, name: str, grantee: str, *, grant_option: bool = False
) -> None:
    to = sql.SQL("PUBLIC") if grantee == "PUBLIC" else _ident(grantee)
    conn.execute(
        sql.SQL("GRANT SELECT ON {} TO {}{}").format(
            _ident(schema, name), to, sql.SQL(" WITH GRANT OPTION" if grant_option else "")
        )
    )


def _entry(schema: str, name: str, **extra) -> dict:
    return {"schema": schema, "name": name, "fqn": f"{schema}.{name}", **extra}


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
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(_ident(schema)))
            if schema != "vault":
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(_ident(schema)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA telemetry TO etl_owner"))

        paths: dict[str, list[dict]] = {}

        def add(path: str, entry: dict) -> None:
            paths.setdefault(path, []).append(entry)

        _table(conn, "hr", "salaries", 4)
        _grant_select(conn, "hr", "salaries", PRINCIPAL)
        add("direct", _entry("hr", "salaries", grantee=PRINCIPAL, dss=4))

        _table(conn, "chat", "messages", 3)
        _grant_select(conn, "chat", "messages", "PUBLIC")
        add("public", _entry("chat", "messages", grantee="PUBLIC", dss=3))

        _table(conn, "telemetry", "keystrokes", 4)
        _grant_select(conn, "telemetry", "keystrokes", "analytics_readers")
        add(
            "role",
            _entry("telemetry", "keystrokes", grantee="analytics_readers", via="via role analytics_readers", dss=4),
        )
        _table(conn, "telemetry", "mouse_moves", 3)
        _grant_select(conn, "telemetry", "mouse_moves", "data_platform")
        add(
            "role",
            _entry(
                "telemetry",
                "mouse_moves",
                grantee="data_platform",
                via="via role data_platform (through analytics_readers)",
                dss=3,
            ),
        )
        _table(conn, "hr", "org_chart", 2)
        _grant_select(conn, "hr", "org_chart", "legacy_readers")
        add("role", _entry("hr", "org_chart", grantee="legacy_readers", via="by SET ROLE", dss=2))

        _table(conn, "telemetry", "screen_captures", 4)
        conn.execute(sql.SQL("GRANT SELECT (payload) ON telemetry.screen_captures TO {}").format(_ident(PRINCIPAL)))
        add("column", _entry("telemetry", "screen_captures", grantee=PRINCIPAL, column="payload", dss=4))

        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE etl_owner IN SCHEMA telemetry GRANT SELECT ON TABLES TO {}"
            ).format(_ident(PRINCIPAL))
        )
        add(
            "default_privileges",
            _entry(
                "telemetry",
                FUTURE_TABLES,
                grantee=PRINCIPAL,
                grantor="etl_owner",
                owner="etl_owner",
                future_tables=True,
            ),
        )

        _table(conn, "hr", "performance_reviews", 4)
        conn.execute("CREATE VIEW reporting.review_summary AS SELECT id, captured_at FROM hr.performance_reviews")
        _grant_select(conn, "reporting", "review_summary", PRINCIPAL)
        add(
            "view",
            _entry("reporting", "review_summary", grantee=PRINCIPAL, base="hr.performance_reviews", kind="view", dss=4),
        )
        conn.execute(
            "CREATE MATERIALIZED VIEW reporting.review_counts AS SELECT count(*) AS n FROM hr.performance_reviews"
        )
        _grant_select(conn, "reporting", "review_counts", PRINCIPAL)
        add(
            "view",
            _entry(
                "reporting",
                "review_counts",
                grantee=PRINCIPAL,
                base="hr.performance_reviews",
                kind="materialized view",
                dss=4,
            ),
        )

        _table(conn, "hr", "bonuses", 4)
        _grant_select(conn, "hr", "bonuses", "bob", grant_option=True)
        conn.execute("SET ROLE bob")
        _grant_select(conn, "hr", "bonuses", PRINCIPAL)
        conn.execute("RESET ROLE")
        add("grant_option", _entry("hr", "bonuses", grantee=PRINCIPAL, grantor="bob", dss=4))

        add("predefined_role", {"principal": "contractors", "role": "pg_read_all_data", "member": "zoe"})

        _table(
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
                    _ident("telemetry", name), sql.Literal(start), sql.Literal(end)
                )
            )
        _grant_select(conn, "telemetry", "events_2026_06", PRINCIPAL)
        add("partition", _entry("telemetry", "events_2026_06", grantee=PRINCIPAL, base="telemetry.events", dss=3))

        _table(conn, AWKWARD_SCHEMA, AWKWARD_TABLE, 3)
        _grant_select(conn, AWKWARD_SCHEMA, AWKWARD_TABLE, AWKWARD_ROLE)
        add("role", _entry(AWKWARD_SCHEMA, AWKWARD_TABLE, grantee=AWKWARD_ROLE, via=f"via role {AWKWARD_ROLE}", dss=3))
        _table(
            conn,
            AWKWARD_SCHEMA,
            AWKWARD_COLUMN_TABLE,
            2,
            columns=f"id bigint, {sql.Identifier(AWKWARD_COLUMN).as_string(conn)} text",
        )
        conn.execute(
            sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                _ident(AWKWARD_COLUMN), _ident(AWKWARD_SCHEMA, AWKWARD_COLUMN_TABLE), _ident(PRINCIPAL)
            )
        )
        add("column", _entry(AWKWARD_SCHEMA, AWKWARD_COLUMN_TABLE, grantee=PRINCIPAL, column=AWKWARD_COLUMN, dss=2))

        _table(conn, "hr", "audit_log", 2)
        _table(conn, "vault", "master_keys", 4)
        _grant_select(conn, "vault", "master_keys", PRINCIPAL)

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
        "latent": _entry("vault", "master_keys", grantee=PRINCIPAL, missing="USAGE on schema vault"),
        "awkward": {
            "schema": AWKWARD_SCHEMA,
            "table": AWKWARD_TABLE,
            "role": AWKWARD_ROLE,
            "column_table": AWKWARD_COLUMN_TABLE,
            "column": AWKWARD_COLUMN,
        },
    }


def _create_batch_sql(schema: str, tables: list[tuple[str, int | None]], grantee: str | None) -> sql.Composed:
    """Create, comment and grant a batch of tables in one round trip."""
    statements = []
    for name, dss in tables:
        table = _ident(schema, name)
        statements.append(sql.SQL("CREATE TABLE {} (id bigint, captured_at timestamptz, payload text);").format(table))
        if dss is not None:
            statements.append(sql.SQL("COMMENT ON TABLE {} IS {};").format(table, sql.Literal(f"dss={dss}")))
    if grantee:
        to = sql.SQL("PUBLIC") if grantee == "PUBLIC" else _ident(grantee)
        names = sql.SQL(", ").join(_ident(schema, name) for name, _dss in tables)
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
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(schema)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(schema), _ident(principal)))
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


def seed_drill(dsn: str, tables: int = 3000, *, employees: int = 40) -> dict:
    """A realistic drill for `sevtool demo`: employee telemetry readable by every employee, several ways.

    - telemetry: keystrokes / screen captures (DSS 4), mouse movements (DSS 3), app usage (DSS 2),
      granted straight to all_employees; keystrokes also through the `telemetry_readers` role;
      default privileges make every table `etl_loader` creates there readable too
    - chat: private messages granted to PUBLIC (DSS 3-4)
    - hr: performance reviews through the `hr_analysts` role, a salary table re-shared by a
      grant-option holder (`dana`), a column grant on employees.email, a reporting view over salaries
    - ml_features: unrated tables (no comment, no pattern) granted to all_employees
    - a few archive tables nobody else can read: in scope, not exposed
    all_employees has `employees` login members, one of them NOINHERIT (reads after SET ROLE).
    """
    started = time.perf_counter()
    counts = {"telemetry": int(tables * 0.8), "chat": int(tables * 0.1), "hr": int(tables * 0.05)}
    counts["ml_features"] = max(1, tables - sum(counts.values()))
    members = [f"emp_{n:03d}" for n in range(1, employees + 1)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_role(conn, PRINCIPAL)
        for index, member in enumerate(members):
            ensure_role(conn, member, login=True, inherit=index != 1)
            grant_role(conn, PRINCIPAL, member)
        for role in ("telemetry_readers", "hr_analysts", "etl_loader"):
            ensure_role(conn, role)
        ensure_role(conn, "dana", login=True)
        grant_role(conn, "telemetry_readers", PRINCIPAL)
        grant_role(conn, "hr_analysts", PRINCIPAL)
        for schema in ("telemetry", "chat", "hr", "ml_features", "reporting"):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(schema)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(_ident(schema)))
        conn.execute("GRANT CREATE ON SCHEMA telemetry TO etl_loader")

        kinds = [("keystrokes", 4), ("screen_captures", 4), ("mouse_moves", 3), ("app_usage", 2)]
        telemetry = [(f"{kinds[i % 4][0]}_{i // 4 + 1:05d}", kinds[i % 4][1]) for i in range(counts["telemetry"])]
        create_tables(conn, "telemetry", telemetry, grantee=PRINCIPAL)
        keystrokes = [name for name, _dss in telemetry if name.startswith("keystrokes_")][:200]
        with conn.transaction():
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO telemetry_readers").format(
                    sql.SQL(", ").join(_ident("telemetry", name) for name in keystrokes)
                )
            )
        create_tables(conn, "telemetry", [("keystrokes_archive", 4), ("screen_archive", 4)], grantee=None)
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE etl_loader IN SCHEMA telemetry GRANT SELECT ON TABLES TO {}"
            ).format(_ident(PRINCIPAL))
        )

        chat = [
            (f"{'direct_messages' if i % 3 == 0 else 'channel_messages'}_{i + 1:04d}", 4 if i % 3 == 0 else 3)
            for i in range(counts["chat"])
        ]
        create_tables(conn, "chat", chat, grantee="PUBLIC")

        hr = [(f"performance_reviews_{i + 1:04d}", 4) for i in range(max(1, counts["hr"] - 2))]
        create_tables(conn, "hr", hr, grantee="hr_analysts")
        create_tables(conn, "hr", [("salaries", 4), ("org_chart", 1)], grantee=None)
        conn.execute("CREATE TABLE hr.employees (id bigint, name text, email text, home_address text)")
        conn.execute("COMMENT ON TABLE hr.employees IS 'employee directory, dss=3'")
        conn.execute(sql.SQL("GRANT SELECT (email) ON hr.employees TO {}").format(_ident(PRINCIPAL)))
        conn.execute("GRANT SELECT ON hr.salaries TO dana WITH GRANT OPTION")
        conn.execute("SET ROLE dana")
        conn.execute(sql.SQL("GRANT SELECT ON hr.salaries TO {}").format(_ident(PRINCIPAL)))
        conn.execute("RESET ROLE")
        conn.execute("CREATE VIEW reporting.salary_bands AS SELECT id FROM hr.salaries")
        conn.execute(sql.SQL("GRANT SELECT ON reporting.salary_bands TO {}").format(_ident(PRINCIPAL)))

        ml = [(f"embedding_batch_{i + 1:04d}", None) for i in range(counts["ml_features"])]
        create_tables(conn, "ml_features", ml, grantee=PRINCIPAL)

    return {
        "principal": PRINCIPAL,
        "members": members,
        "noinherit_member": members[1] if len(members) > 1 else None,
        "canary": members[0],
        "tables": len(telemetry) + 2 + len(chat) + len(hr) + 3 + len(ml),
        "schemas": ["telemetry", "chat", "hr", "ml_features", "reporting"],
        "paths": {
            "direct": "telemetry.* and ml_features.* granted to all_employees",
            "role": "telemetry.keystrokes_* via telemetry_readers; hr.performance_reviews_* via hr_analysts",
            "public": "chat.* granted to PUBLIC",
            "default_privileges": "telemetry: tables etl_loader creates are granted to all_employees",
            "grant_option": "hr.salaries granted by dana",
            "column": "hr.employees.email",
            "view": "reporting.salary_bands over hr.salaries",
        },
        "default_privileges_owner": "etl_loader",
        "grant_option_holder": "dana",
        "seconds": round(time.perf_counter() - started, 2),
    }


# What the drill's employees read while the tables are exposed: (role, table). emp_001 and emp_003 are members of
# all_employees (emp_002 is the NOINHERIT one); dana is not, and reads the chat table PUBLIC can read.
DRILL_READS = [
    ("emp_001", "telemetry.keystrokes_00001"),
    ("emp_001", "telemetry.keystrokes_00001"),
    ("emp_001", "chat.direct_messages_0001"),
    ("emp_003", "telemetry.screen_captures_00001"),
    ("emp_003", "hr.performance_reviews_0001"),
    ("dana", "chat.direct_messages_0001"),
]


def drill_reads(dsn: str, reads: list[tuple[str, str]] = DRILL_READS) -> dict[str, dict[str, int]]:
    """Employees browsing exposed tables during the window, each logged in as themselves (the server logs the session
    user, so SET ROLE from a superuser would not show who read). Needs a server that trusts local logins, as the
    throwaway one does. Returns table -> role -> reads."""
    done: dict[str, dict[str, int]] = {}
    by_role: dict[str, list[str]] = {}
    for role, table in reads:
        by_role.setdefault(role, []).append(table)
    for role, tables in by_role.items():
        with psycopg.connect(dsn, user=role, autocommit=True) as conn:
            for table in tables:
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(*table.split(".")))).fetchone()
                done.setdefault(table, {}).setdefault(role, 0)
                done[table][role] += 1
    return done
