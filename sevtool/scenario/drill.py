"""The drill `sevtool demo` runs: employee telemetry readable by every employee, several ways, and what they read."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from sevtool.scenario.bulk import create_tables
from sevtool.scenario.helpers import PRINCIPAL, ensure_role, grant_role, ident

INVESTIGATOR = "privacy_investigator"


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
        ensure_role(conn, INVESTIGATOR, login=True)  # reads nothing: the demo grants it just-in-time access
        grant_role(conn, "telemetry_readers", PRINCIPAL)
        grant_role(conn, "hr_analysts", PRINCIPAL)
        for schema in ("telemetry", "chat", "hr", "ml_features", "reporting"):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(schema)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(ident(schema)))
        conn.execute("GRANT CREATE ON SCHEMA telemetry TO etl_loader")

        kinds = [("keystrokes", 4), ("screen_captures", 4), ("mouse_moves", 3), ("app_usage", 2)]
        telemetry = [(f"{kinds[i % 4][0]}_{i // 4 + 1:05d}", kinds[i % 4][1]) for i in range(counts["telemetry"])]
        create_tables(conn, "telemetry", telemetry, grantee=PRINCIPAL)
        keystrokes = [name for name, _dss in telemetry if name.startswith("keystrokes_")][:200]
        with conn.transaction():
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO telemetry_readers").format(
                    sql.SQL(", ").join(ident("telemetry", name) for name in keystrokes)
                )
            )
        create_tables(conn, "telemetry", [("keystrokes_archive", 4), ("screen_archive", 4)], grantee=None)
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE etl_loader IN SCHEMA telemetry GRANT SELECT ON TABLES TO {}"
            ).format(ident(PRINCIPAL))
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
        conn.execute(sql.SQL("GRANT SELECT (email) ON hr.employees TO {}").format(ident(PRINCIPAL)))
        conn.execute("GRANT SELECT ON hr.salaries TO dana WITH GRANT OPTION")
        conn.execute("SET ROLE dana")
        conn.execute(sql.SQL("GRANT SELECT ON hr.salaries TO {}").format(ident(PRINCIPAL)))
        conn.execute("RESET ROLE")
        conn.execute("CREATE VIEW reporting.salary_bands AS SELECT id FROM hr.salaries")
        conn.execute(sql.SQL("GRANT SELECT ON reporting.salary_bands TO {}").format(ident(PRINCIPAL)))

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
        "investigator": INVESTIGATOR,
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
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident(*table.split(".")))).fetchone()
                done.setdefault(table, {}).setdefault(role, 0)
                done[table][role] += 1
    return done
