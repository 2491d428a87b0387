"""The guard's incident rule after resolution, its exceptions, and access broadening, against a real PostgreSQL target.

Rule: a violation while the policy's incident is resolved re-opens it as a regression (resolved -> declared);
closed is final, so a violation after that opens a new incident naming the one it follows.
"""

from __future__ import annotations

import psycopg
import pytest

from sevtool.core.incident import Status
from sevtool.scenario import ensure_role, grant_role
from sevtool.store import guard as guard_store

pytestmark = pytest.mark.postgres


def sql(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def warehouse(pg_db) -> str:
    with psycopg.connect(pg_db, autocommit=True) as conn:
        ensure_role(conn, "all_employees")
        ensure_role(conn, "alice", login=True)
        grant_role(conn, "all_employees", "alice")
        for role in ("finance_readers", "g_rules_readers"):
            ensure_role(conn, role)
    sql(
        pg_db,
        "CREATE SCHEMA telemetry",
        "GRANT USAGE ON SCHEMA telemetry TO all_employees",
        "CREATE SCHEMA ml",
        "GRANT USAGE ON SCHEMA ml TO all_employees",
    )
    for name, dss in [("keystrokes", 4), ("app_usage", 2), ("t1", 1), ("t2", 1), ("t3", 1), ("t4", 1), ("t5", 1)]:
        sql(pg_db, f"CREATE TABLE telemetry.{name} (id bigint)", f"COMMENT ON TABLE telemetry.{name} IS 'dss={dss}'")
    sql(
        pg_db,
        "CREATE TABLE ml.features (id bigint)",
        "COMMENT ON TABLE ml.features IS 'dss=4'",
        "GRANT SELECT ON ml.features TO all_employees",
        "GRANT SELECT ON telemetry.app_usage TO all_employees",
    )
    return pg_db


def configure(config_path, dsn: str, extra: str = "") -> None:
    config_path.write_text(f"""
[targets.warehouse]
kind = "postgresql"
dsn = "{dsn}"

[guard]
objects = 3
percent = 0
public_schemas = ["telemetry"]

[[policy]]
name = "no-broad-sensitive"
target = "warehouse"
principals = ["all_employees"]
min_dss = 3
{extra}
""")


def run(wb):
    [result] = wb.guard.run_once()
    return result


def force(wb, ident: int, *statuses: Status) -> None:
    for status in statuses:
        wb.incidents.set_status(ident, status, force=True, why="drill")


def test_a_resolved_incident_is_reopened_as_a_regression_and_a_closed_one_is_followed_by_a_new_one(
    sqlite_wb, warehouse, config_path
):
    configure(config_path, warehouse)
    wb = sqlite_wb
    first = run(wb)
    assert (first.state, first.action, first.objects) == ("violated", "opened", 1)  # ml.features; app_usage is DSS 2
    ident = first.incident_id
    force(wb, ident, Status.CONTAINED, Status.VERIFYING, Status.RESOLVED)

    reopened = run(wb)
    assert (reopened.action, reopened.incident_id) == ("reopened", ident)
    assert wb.incidents.get(ident).status == Status.DECLARED
    change = [e for e in wb.store.events(ident) if e.kind == "status_changed"][-1]
    assert (
        change.data["regression"] is True
        and change.data["cause"]["policy"] == "no-broad-sensitive"
        and change.actor == "guard"
    )
    assert [v.version for v in wb.scanning.versions(ident)] == [1, 2], (
        "re-opening re-scopes the incident with what the guard saw"
    )

    force(wb, ident, Status.CONTAINED, Status.VERIFYING, Status.RESOLVED, Status.CLOSED)
    followed = run(wb)
    assert followed.action == "opened" and followed.incident_id != ident
    declared = next(e for e in wb.store.events(followed.incident_id) if e.kind == "declared")
    assert declared.data["follows"] == ident
    assert len(wb.incidents.all()) == 2


def test_an_exception_exempts_until_it_expires(sqlite_wb, warehouse, config_path):
    exception = (
        '[[policy.exception]]\nobjects = ["ml.*"]\nowner = "ml-platform"\nreason = "pseudonymised"\nexpires = {}\n'
    )
    configure(config_path, warehouse, exception.format("2999-01-01"))
    held = run(sqlite_wb)
    assert (held.state, held.exempted, held.incident_id) == ("holds", 1, None)
    configure(config_path, warehouse, exception.format("2020-01-01"))
    sqlite_wb.settings.__dict__.pop("team", None)  # re-read the edited config
    lapsed = run(sqlite_wb)
    assert lapsed.state == "violated" and lapsed.exempted == 0 and [e.owner for e in lapsed.expired] == ["ml-platform"]
    seen = next(e for e in sqlite_wb.store.events(lapsed.incident_id) if e.kind == "guard_violation")
    assert seen.data["expired_exceptions"][0]["owner"] == "ml-platform" and "expired exception" in seen.summary


def test_broadening_is_recorded_before_any_policy_is_violated(sqlite_wb, warehouse, config_path):
    configure(config_path, warehouse, 'schemas = ["telemetry"]')  # ml.features is out of this policy's scope: it holds
    wb = sqlite_wb
    baseline = run(wb)
    assert baseline.state == "holds" and baseline.broadened == [], "the first run is the baseline"
    assert guard_store.digest_of(wb.store, "no-broad-sensitive@warehouse")["objects"] == {"all_employees": {"2": 1}}

    sql(warehouse, "GRANT SELECT ON telemetry.t1, telemetry.t2 TO all_employees")
    assert run(wb).broadened == [], "+2 objects is under the threshold of 3"

    sql(
        warehouse,
        "GRANT SELECT ON telemetry.t3, telemetry.t4, telemetry.t5 TO g_rules_readers",
        "GRANT g_rules_readers TO all_employees",
        "GRANT SELECT ON telemetry.t1 TO PUBLIC",
    )
    broadened = run(wb)
    assert broadened.state == "holds", "nothing DSS 3+ is readable: no violation, yet access broadened"
    by_kind = {c["kind"]: c for c in broadened.broadened}
    assert by_kind["objects"]["principal"] == "all_employees" and (
        by_kind["objects"]["before"],
        by_kind["objects"]["after"],
    ) == (3, 6)
    assert by_kind["objects"]["by_dss"] == {"1": [2, 5]}
    assert by_kind["roles"]["new_roles"] == ["g_rules_readers"]
    assert (by_kind["public"]["schema"], by_kind["public"]["before"], by_kind["public"]["after"]) == ("telemetry", 0, 1)
    [event] = [e for e in wb.store.events() if e.kind == "access_broadened"]
    assert (
        event.incident_id is None
        and event.data["changes"] == broadened.broadened
        and "g_rules_readers" in event.summary
    )
    assert run(wb).broadened == [], "the next run compares with the broadened digest"


def test_serve_on_a_sqlite_store_runs_each_policy_once_per_slot(sqlite_wb, warehouse, config_path):
    import threading
    from datetime import timedelta

    from sevtool.store import leases

    configure(config_path, warehouse)
    stop = threading.Event()
    seen = []

    def on_run(result) -> None:
        seen.append(result)
        stop.set()

    sqlite_wb.guard.serve(timedelta(hours=1), lease=timedelta(seconds=30), on_run=on_run, stop=stop, poll=0.05)
    [result] = seen
    assert result.state == "violated" and result.action == "opened"
    [run_row] = guard_store.runs(sqlite_wb.store)
    [lease] = leases.rows(sqlite_wb.store, "guard")
    assert lease.holder is None and lease.due_at == run_row.slot + timedelta(hours=1), (
        "the next run is one interval after the slot served"
    )
