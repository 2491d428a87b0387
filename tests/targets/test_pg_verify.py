"""Did the fix stick? Checks against a real PostgreSQL server: re-grants, default privileges on new tables,
grant-option holders, the live probe, and the re-check schedule surviving a restart."""

from __future__ import annotations

import socket
from datetime import timedelta

import psycopg
import pytest
from fakes.uc_server import FakeUnityCatalog, seed_drill
from pg_roles import roles_dropped_after
from psycopg import sql

from sevtool.core.causes import Cause
from sevtool.core.exposure import FUTURE_TABLES, AccessPath
from sevtool.core.incident import Status
from sevtool.core.postmortem_facts import milestones
from sevtool.core.timeparse import utcnow
from sevtool.describe import via
from sevtool.errors import LockHeld, TargetRejected, UsageError
from sevtool.scenario import ensure_role, grant_role
from sevtool.services import Workbench
from sevtool.settings import Settings
from sevtool.store import checks as q
from sevtool.store import locks
from sevtool.store import schedule as sched
from sevtool.store.ledger import actions as ledger_actions

pytestmark = pytest.mark.postgres

PRINCIPAL = "all_employees"


@pytest.fixture
def target(server_db) -> str:
    """telemetry.keystrokes (DSS 4) and telemetry.mouse (DSS 3), owned by etl_owner, readable by all_employees;
    on each supported server (15 and 18)."""
    with psycopg.connect(server_db, autocommit=True) as conn:
        for role, login in [
            (PRINCIPAL, False),
            ("alice", True),
            ("etl_owner", False),
            ("deploy_bot", True),
            ("bob", True),
        ]:
            ensure_role(conn, role, login=login)
        grant_role(conn, PRINCIPAL, "alice")
        grant_role(conn, "etl_owner", "deploy_bot")
        conn.execute("CREATE SCHEMA telemetry AUTHORIZATION etl_owner")
        conn.execute("GRANT USAGE ON SCHEMA telemetry TO all_employees, bob")
        conn.execute("SET ROLE etl_owner")
        for name, dss in [("keystrokes", 4), ("mouse", 3)]:
            conn.execute(sql.SQL("CREATE TABLE telemetry.{} (id bigint, payload text)").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("COMMENT ON TABLE telemetry.{} IS {}").format(sql.Identifier(name), sql.Literal(f"dss={dss}"))
            )
            conn.execute(sql.SQL("GRANT SELECT ON telemetry.{} TO all_employees").format(sql.Identifier(name)))
        conn.execute("RESET ROLE")
    return server_db


@pytest.fixture
def bench(tmp_path, config_path) -> Workbench:
    return Workbench(Settings(db=f"sqlite:///{tmp_path / 'verify.db'}", config=config_path, tz="UTC", actor="tester"))


def run_sql(dsn: str, *statements: str, user: str | None = None) -> None:
    """Another session on the target: a job, a colleague, an IaC run."""
    with psycopg.connect(dsn + (f" user={user}" if user else ""), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def scanned_incident(wb: Workbench, dsn: str) -> int:
    incident = wb.incidents.declare("Telemetry readable by every employee", 2)
    wb.scanning.scan(incident.id, dsn, [PRINCIPAL], schemas=["telemetry"])
    return incident.id


def apply_fix(wb: Workbench, incident_id: int, now=utcnow) -> None:
    wb.revocation.plan(incident_id)
    report = wb.revocation.apply(incident_id, now=now)
    assert report.ok, report


def test_regrant_by_another_session_after_the_fix_is_caught_and_attributed(bench, target):
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    first = bench.verification.verify(ident, probe_role="alice")
    assert first.clean and first.outcome.regressions == []
    assert first.probe["probed"] == 2 and first.probe["readable_but_closed"] == []
    incident = bench.incidents.get(ident)
    assert incident.status == Status.VERIFYING and incident.verified_at is not None

    # A deploy job, logged in as itself, re-applies the old grant.
    run_sql(target, "GRANT SELECT ON telemetry.keystrokes TO all_employees", user="deploy_bot")
    second = bench.verification.verify(ident)
    assert not second.clean
    [reg] = second.outcome.regressions
    assert (reg.object_fqn, reg.principal, reg.cause_kind) == ("telemetry.keystrokes", PRINCIPAL, Cause.GRANT_READDED)
    assert (
        reg.grantor == "etl_owner" and "re-added by etl_owner" in reg.cause
    )  # a member of the owner role grants as the owner
    assert bench.incidents.get(ident).status == Status.CONTAINED
    kinds = [e.kind for e in bench.incidents.timeline(ident)]
    assert kinds.count("check") == 2 and "regression" in kinds
    status_events = [
        e for e in bench.incidents.timeline(ident) if e.kind == "status_changed" and e.data.get("to") == "contained"
    ]
    assert status_events[-1].data["regression"] and status_events[-1].data["cause"]["cause_kind"] == "grant_readded"
    [row] = q.regressions(bench.store, ident)
    assert row.closed_at is None and row.first_seen_at is not None

    assert bench.incidents.get(ident).verified_at is None  # no longer verified

    # Fixed again: the next check closes the regression and the incident is verifying once more.
    run_sql(target, "REVOKE SELECT ON telemetry.keystrokes FROM all_employees")
    third = bench.verification.verify(ident)
    assert third.clean and bench.incidents.get(ident).status == Status.VERIFYING
    [row] = q.regressions(bench.store, ident)
    assert row.closed_by == f"check {third.number}"
    assert bench.incidents.audit().ok
    # Verified from the start of the final clean streak, on the incident and in the postmortem alike.
    assert bench.incidents.get(ident).verified_at == third.ran_at
    stones = {m.name: m for m in milestones(bench.postmortem.bundle(ident))}
    assert stones["verified clean"].at == third.ran_at and stones["first clean check"].at == first.ran_at


# Each hop a name that broke the words `via` used to carry: "(through a)b -> x -> y)" cut the route at the `)`.
AWKWARD_ROUTE = ("a)b", "x -> y", 'say "hi" (please)')


def test_a_route_of_awkwardly_named_roles_is_planned_revoked_and_attributed_as_roles(bench, target):
    """all_employees reaches telemetry.chats through three roles named with `)`, ` -> `, quotes and spaces. The route
    is a list of roles from the scan to the plan to the regression: a membership put back by undo is the fix undone,
    because the first hop the plan revoked is on the route, whole (a parse of "(through a)b -> x -> y)" saw "a")."""
    with roles_dropped_after(target):
        with psycopg.connect(target, autocommit=True) as conn:
            member = PRINCIPAL
            for role in AWKWARD_ROUTE:
                ensure_role(conn, role)
                grant_role(conn, role, member)
                member = role
            conn.execute("SET ROLE etl_owner")
            conn.execute("CREATE TABLE telemetry.chats (id bigint)")
            conn.execute(sql.SQL("GRANT SELECT ON telemetry.chats TO {}").format(sql.Identifier(AWKWARD_ROUTE[-1])))
            conn.execute("RESET ROLE")
        ident = scanned_incident(bench, target)
        [found] = [f for f in bench.scanning.findings(ident) if f.object_name == "chats"]  # read back from the store
        assert (found.path, found.grantee, found.route) == (AccessPath.ROLE, AWKWARD_ROUTE[-1], AWKWARD_ROUTE)
        assert via(found) == f"via role {AWKWARD_ROUTE[-1]} (through a)b -> x -> y)"  # words for people only

        plan = bench.revocation.plan(ident)
        assert plan.review
        report = bench.revocation.apply(ident, accept_collateral=True)
        assert report.ok, report
        memberships = [a for _version, _target, a in ledger_actions(bench.store, ident) if a.object_kind == "role"]
        assert [(a.object_name, a.grantee) for a in memberships] == [("a)b", PRINCIPAL)]  # the first hop, whole
        assert bench.verification.verify(ident).clean

        run_sql(target, sql.SQL("GRANT {} TO all_employees").format(sql.Identifier("a)b")).as_string())
        back = bench.verification.verify(ident)
        assert [r.object_fqn for r in back.outcome.regressions] == ["telemetry.chats"]
        assert back.as_dict()["regressions"][0]["route"] == list(AWKWARD_ROUTE)
        assert [r["route"] for r in back.as_dict()["remains"] if r["object"] == "telemetry.chats"] == [
            list(AWKWARD_ROUTE)
        ]

        run_sql(target, sql.SQL("REVOKE {} FROM all_employees").format(sql.Identifier("a)b")).as_string())
        assert bench.verification.verify(ident).clean
        assert bench.revocation.undo(ident).ok
        undone = bench.verification.verify(ident)
        [reg] = [r for r in undone.outcome.regressions if r.object_fqn == "telemetry.chats"]
        assert reg.cause_kind == Cause.FIX_UNDONE, reg.cause
        assert f"{PRINCIPAL} -> a)b -> x -> y -> {AWKWARD_ROUTE[-1]}" in reg.cause


def test_table_created_after_a_partial_fix_is_attributed_to_default_privileges(bench, target):
    run_sql(
        target,
        "ALTER DEFAULT PRIVILEGES FOR ROLE etl_owner IN SCHEMA telemetry GRANT SELECT ON TABLES TO all_employees",
    )
    ident = scanned_incident(bench, target)
    # The first fix of the story: the tables are revoked by hand, the default privileges are forgotten.
    run_sql(target, "REVOKE SELECT ON telemetry.keystrokes, telemetry.mouse FROM all_employees")
    first = bench.verification.verify(ident)
    assert not first.clean and first.outcome.regressions == []
    assert {f.path.value for f in first.outcome.findings} == {"default_privileges"}

    run_sql(
        target,
        "SET ROLE etl_owner",
        "CREATE TABLE telemetry.keystrokes_v2 (id bigint, payload text)",
        "COMMENT ON TABLE telemetry.keystrokes_v2 IS 'dss=4'",
    )
    second = bench.verification.verify(ident)
    assert second.outcome.new_objects == ["telemetry.keystrokes_v2"]
    [reg] = second.outcome.regressions
    assert reg.object_fqn == "telemetry.keystrokes_v2" and reg.cause_kind == Cause.DEFAULT_PRIVILEGES_NEW_TABLE
    assert "default privileges of etl_owner in schema telemetry" in reg.cause and reg.dss == 4


def test_default_privileges_put_back_after_a_full_fix_are_caught_with_the_new_table(bench, target):
    run_sql(
        target,
        "ALTER DEFAULT PRIVILEGES FOR ROLE etl_owner IN SCHEMA telemetry GRANT SELECT ON TABLES TO all_employees",
    )
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    assert bench.verification.verify(ident).clean
    run_sql(
        target,
        "ALTER DEFAULT PRIVILEGES FOR ROLE etl_owner IN SCHEMA telemetry GRANT SELECT ON TABLES TO all_employees",
        "SET ROLE etl_owner",
        "CREATE TABLE telemetry.screens (id bigint)",
    )
    causes = {(r.object_fqn, r.cause_kind) for r in bench.verification.verify(ident).outcome.regressions}
    assert causes == {
        (f"telemetry.{FUTURE_TABLES}", Cause.DEFAULT_PRIVILEGES_READDED),
        ("telemetry.screens", Cause.DEFAULT_PRIVILEGES_NEW_TABLE),
    }


def test_grant_option_holders_grant_survives_a_superuser_revoke_and_its_regrant_is_attributed(bench, target):
    run_sql(target, "SET ROLE etl_owner", "GRANT SELECT ON telemetry.mouse TO bob WITH GRANT OPTION")
    run_sql(target, "GRANT SELECT ON telemetry.mouse TO all_employees", user="bob")
    ident = scanned_incident(bench, target)
    # A superuser's REVOKE acts as the owner: bob's grant stays, silently.
    run_sql(target, "REVOKE SELECT ON telemetry.keystrokes, telemetry.mouse FROM all_employees")
    first = bench.verification.verify(ident)
    assert not first.clean
    [left] = first.outcome.findings
    assert (left.object_fqn, left.path.value, left.grantor) == ("telemetry.mouse", "grant_option", "bob")

    run_sql(target, "REVOKE SELECT ON telemetry.mouse FROM all_employees", user="bob")
    assert bench.verification.verify(ident).clean
    run_sql(target, "GRANT SELECT ON telemetry.mouse TO all_employees", user="bob")
    [reg] = bench.verification.verify(ident).outcome.regressions
    assert reg.cause_kind == Cause.GRANT_OPTION_REGRANT and "grant-option holder bob" in reg.cause


def test_probe_reads_no_rows_and_sees_column_grants(bench, target):
    run_sql(
        target,
        "INSERT INTO telemetry.keystrokes VALUES (1, 'secret')",
        "REVOKE SELECT ON telemetry.keystrokes FROM all_employees",
        "REVOKE SELECT ON telemetry.mouse FROM all_employees",
        "SET ROLE etl_owner",
        "GRANT SELECT (id) ON telemetry.keystrokes TO all_employees",
    )
    ident = scanned_incident(bench, target)
    report = bench.verification.verify(ident, probe_role="alice")
    assert not report.clean and report.outcome.exposed_objects == 1
    assert report.probe["denied_but_exposed"] == []  # the probe agrees: the column grant makes it readable
    answers = {
        a.object_fqn: a for a in _probe(bench, target, ["telemetry.keystrokes", "telemetry.mouse", "telemetry.gone"])
    }
    assert answers["telemetry.keystrokes"].readable and not answers["telemetry.mouse"].readable
    assert "permission denied" in answers["telemetry.mouse"].message and answers["telemetry.gone"].message.startswith(
        "inconclusive"
    )
    with pytest.raises(TargetRejected, match="superuser"):
        _probe(bench, target, ["telemetry.mouse"], role="postgres")


def test_probe_quotes_awkward_names_and_executes_nothing_from_them(bench, target):
    awkward = 'Chat "Logs"; DROP TABLE telemetry.mouse; --'
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE telemetry.{} (id bigint)").format(sql.Identifier(awkward)))
        conn.execute(sql.SQL("GRANT SELECT ON telemetry.{} TO all_employees").format(sql.Identifier(awkward)))
    [answer] = _probe(bench, target, [f"telemetry.{awkward}"])
    assert answer.readable
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT to_regclass('telemetry.mouse') IS NOT NULL").fetchone()[0]


def _probe(wb, dsn, objects, role="alice"):
    from sevtool.services.targets import open_target

    target = open_target(dsn, wb.settings)
    try:
        return target.probe(role, objects)
    finally:
        target.close()


def test_a_unity_catalog_schema_regranted_after_its_revoke_regresses_every_table_under_it(bench):
    """Not PostgreSQL, but the same verify: the fix revoked SELECT on schema main.chats, whose tables inherit it."""
    uc = FakeUnityCatalog().start()
    try:
        seed_drill(uc, "account users")
        incident = bench.incidents.declare("Chats readable by every account user", 2)
        bench.scanning.scan(incident.id, f"uc+{uc.url}", ["account users"])
        apply_fix(bench, incident.id)
        uc.grant("schema", "main.chats", "account users", "SELECT")  # an IaC run puts the schema grant back
        # No check ran since the scan: only the ledger's revoke on the schema says these tables were closed.
        report = bench.verification.verify(incident.id)
        assert report.baseline == "scan v1"
        assert sorted(r.object_fqn for r in report.outcome.regressions) == [
            "main.chats.channel_index",
            "main.chats.private_messages",
        ]
        assert {r.cause_kind for r in report.outcome.regressions} == {Cause.GRANT_READDED}
    finally:
        bench.scanning.close()
        uc.stop()


def test_verify_without_a_scan_says_what_to_do(bench):
    incident = bench.incidents.declare("t", 2)
    with pytest.raises(UsageError, match="no scope") as err:
        bench.verification.verify(incident.id)
    assert "sevtool scan" in err.value.hint


# --- the schedule -----------------------------------------------------------------------------------


class Clock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_restarted_watch_runs_the_overdue_check_once_and_records_the_delay(wb, target):
    ident = scanned_incident(wb, target)
    apply_fix(wb, ident)
    contained = wb.incidents.get(ident).contained_at
    clock = Clock(contained + timedelta(hours=2))  # the watcher was down for two hours

    report = wb.verification.watch(ident, once=True, now=clock)
    assert len(report.checks) == 1 and report.checks[0].clean
    slots = sched.slots(wb.store, ident)
    assert [(s.idx, s.status) for s in slots] == [
        (0, "covered"),
        (1, "covered"),
        (2, "done"),
        (3, "pending"),
        (4, "pending"),
    ]
    assert {s.check_id for s in slots[:3]} == {report.checks[0].check_id}
    assert slots[0].delay_seconds == 7200 and slots[2].delay_seconds == 3600
    assert report.checks[0].slot["covered"][0]["delay_seconds"] == 7200

    again = wb.verification.watch(ident, once=True, now=clock)  # restarted at the same moment: nothing is run twice
    assert again.checks == [] and again.next_due == contained + timedelta(hours=4)
    assert len(q.checks(wb.store, ident)) == 1

    # A watcher killed mid-check left the 4h slot `running` and its lock behind; the next one takes over and runs it once.
    dead = f"{socket.gethostname()}:999999:x"  # no such pid on this host
    locks.acquire(wb.store, ident, "watch", dead)
    with wb.store.write() as tx:
        assert sched.claim(tx.session, [slots[3].id], dead, clock()) == [slots[3].id]
    clock.now = contained + timedelta(hours=5)
    resumed = wb.verification.watch(ident, once=True, now=clock)
    assert len(resumed.checks) == 1 and resumed.checks[0].slot["idx"] == 3
    assert [s.status for s in sched.slots(wb.store, ident)] == ["covered", "covered", "done", "done", "pending"]
    assert "schedule" in [e.kind for e in wb.incidents.timeline(ident)]


def test_second_watcher_is_refused_and_a_claimed_slot_is_not_run_twice(wb, target):
    ident = scanned_incident(wb, target)
    apply_fix(wb, ident)
    clock = Clock(wb.incidents.get(ident).contained_at)
    locks.acquire(wb.store, ident, "watch", "otherhost:1:alive")
    with pytest.raises(LockHeld, match="watch is already running"):
        wb.verification.watch(ident, once=True, now=clock)
    locks.release(wb.store, ident, "watch", "otherhost:1:alive")
    wb.verification.watch(ident, once=True, now=clock)
    first = sched.slots(wb.store, ident)[0]
    with wb.store.write() as tx:
        assert (
            sched.claim(tx.session, [first.id], "otherhost:2:late", clock()) == []
        )  # already done: the conditional UPDATE refuses


def test_watch_runs_the_whole_schedule_then_resolving_is_allowed(bench, target, config_path):
    config_path.write_text('[sev.2]\nrecheck = ["0m", "15m", "1h"]\n')
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    clock = Clock(bench.incidents.get(ident).contained_at)
    regranted = []

    def on_check(report):
        if report.number == 2 and not regranted:  # a job re-grants between the +15m and +1h checks
            run_sql(target, "GRANT SELECT ON telemetry.mouse TO all_employees", user="deploy_bot")
            regranted.append(clock())

    bench.verification.watch(ident, once=True, now=clock)  # the "now" re-check: clean, so verifying
    with pytest.raises(UsageError, match=r"cannot be resolved yet.*2 scheduled re-check"):
        bench.incidents.set_status(ident, Status.RESOLVED)

    def fix_when_regressed(report):
        on_check(report)
        if report.outcome.regressions:
            run_sql(target, "REVOKE SELECT ON telemetry.mouse FROM all_employees")

    report = bench.verification.watch(ident, now=clock, sleep=clock.sleep, on_check=fix_when_regressed)
    assert report.finished and report.gate is None
    numbers = [(r.number, r.clean, len(r.outcome.regressions)) for r in report.checks]
    assert (3, False, 1) in numbers  # the +1h check caught the re-grant
    rounds = {s.round for s in sched.slots(bench.store, ident)}
    assert rounds == {1, 2}  # ... and restarted the schedule
    assert numbers[-1][1] is True
    assert bench.incidents.set_status(ident, Status.RESOLVED).status == Status.RESOLVED


def test_a_single_recheck_policy_can_be_resolved_again_after_a_regression(bench, target, config_path):
    config_path.write_text('[sev.2]\nrecheck = ["0m"]\nupdate_every = "1h"\n')
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    clock = Clock(bench.incidents.get(ident).contained_at)
    assert bench.verification.watch(ident, now=clock, sleep=clock.sleep).gate is None

    run_sql(target, "GRANT SELECT ON telemetry.mouse TO all_employees", user="deploy_bot")
    clock.now += timedelta(minutes=10)
    assert bench.verification.verify(ident, now=clock).outcome.regressions
    round_two = [(s.idx, s.offset, s.status) for s in sched.slots(bench.store, ident) if s.round == 2]
    assert round_two == [(0, "0m", "done"), (1, "1h", "pending")]  # the regressing check cannot end the round
    assert "1 scheduled re-check(s) still to run" in bench.verification.resolution_gate(ident)

    run_sql(target, "REVOKE SELECT ON telemetry.mouse FROM all_employees")
    report = bench.verification.watch(ident, now=clock, sleep=clock.sleep)
    assert [c.clean for c in report.checks] == [True] and report.finished and report.gate is None
    assert bench.incidents.set_status(ident, Status.RESOLVED).status == Status.RESOLVED


def test_access_left_at_the_last_recheck_starts_a_new_round_so_the_incident_can_still_be_resolved(
    bench, target, config_path
):
    config_path.write_text('[sev.2]\nrecheck = ["0m", "15m"]\n')
    ident = scanned_incident(bench, target)
    bench.incidents.set_status(ident, Status.CONTAINED)  # believed contained, nothing revoked: every check finds access
    clock = Clock(bench.incidents.get(ident).contained_at)
    bench.verification.watch(ident, once=True, now=clock)
    clock.now += timedelta(minutes=15)
    last = bench.verification.watch(ident, once=True, now=clock).checks
    assert [c.clean for c in last] == [False] and not last[0].outcome.regressions
    round_two = [(s.idx, s.offset, s.status, s.check_id) for s in sched.slots(bench.store, ident) if s.round == 2]
    assert round_two == [(0, "0m", "done", last[0].check_id), (1, "15m", "pending", None)]
    assert "1 scheduled re-check(s) still to run" in bench.verification.resolution_gate(ident)

    apply_fix(bench, ident, now=clock)  # the fix restarts the schedule from itself: both re-checks run after it
    report = bench.verification.watch(ident, now=clock, sleep=clock.sleep)
    assert [c.clean for c in report.checks] == [True, True] and report.finished and report.gate is None
    assert [(s.round, s.idx, s.status) for s in sched.slots(bench.store, ident) if s.round > 1] == [
        (2, 0, "done"),
        (2, 1, "superseded"),
        (3, 0, "done"),
        (3, 1, "done"),
    ]
    assert bench.incidents.set_status(ident, Status.RESOLVED).status == Status.RESOLVED
    summaries = [e.summary for e in bench.incidents.timeline(ident)]
    assert any(s.startswith("Access remaining at the schedule's last re-check restarts") for s in summaries)
    assert any(s.startswith("Revocation plan 1 applied restarts the re-check schedule (round 3)") for s in summaries)


def test_a_fix_reapplied_after_a_regression_is_verified_by_a_whole_round_after_it(bench, target, config_path):
    config_path.write_text('[sev.2]\nrecheck = ["0m", "1h", "2h"]\n')
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    clock = Clock(bench.incidents.get(ident).contained_at)
    bench.verification.watch(ident, once=True, now=clock)
    run_sql(target, "GRANT SELECT ON telemetry.mouse TO all_employees", user="deploy_bot")
    clock.now += timedelta(hours=1)
    assert (
        bench.verification.watch(ident, once=True, now=clock).checks[0].outcome.regressions
    )  # round 2 from this check
    clock.now += timedelta(hours=1, minutes=59)
    bench.scanning.scan(ident, target, [PRINCIPAL], schemas=["telemetry"])
    bench.revocation.apply(ident, now=clock)  # re-fixed a minute before round 2's last re-check
    clock.now += timedelta(minutes=1)
    assert [c.clean for c in bench.verification.watch(ident, once=True, now=clock).checks] == [True]
    gate = bench.verification.resolution_gate(ident)
    assert gate is not None and "scheduled re-check(s) still to run" in gate, (
        "one check a minute after the re-fix proves nothing"
    )


def test_open_regressions_count_until_a_check_finds_them_closed(bench, target):
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    bench.verification.verify(ident)
    assert not bench.verification.open_regressions(ident)
    run_sql(target, "GRANT SELECT ON telemetry.keystrokes, telemetry.mouse TO PUBLIC")
    report = bench.verification.verify(ident)
    assert sum(e.data["count"] for e in bench.verification.open_regressions(ident)) == 2
    [event] = [e for e in bench.incidents.timeline(ident) if e.kind == "regression"]
    assert event.data["count"] == 2 and event.data["cause_kind"] == "public_grant"  # one cause, one event
    assert report.as_dict()["regressions"][0]["cause"].startswith("new PUBLIC grant of SELECT by etl_owner")
    run_sql(target, "REVOKE SELECT ON telemetry.keystrokes, telemetry.mouse FROM PUBLIC")
    bench.verification.verify(ident)
    assert not bench.verification.open_regressions(ident)
    history = bench.verification.history(ident)
    assert [(h["check"], h["clean"], h["regressions"]) for h in history] == [(1, True, 0), (2, False, 2), (3, True, 0)]


def test_a_wider_rescan_compares_with_its_scan_not_with_the_older_check(bench, target):
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA chat")
        conn.execute("CREATE TABLE chat.messages (id bigint)")
        conn.execute("GRANT USAGE ON SCHEMA chat TO all_employees")
        conn.execute("GRANT SELECT ON chat.messages TO all_employees")
    ident = scanned_incident(bench, target)  # telemetry only
    apply_fix(bench, ident)
    assert bench.verification.verify(ident).clean
    bench.scanning.scan(ident, target, [PRINCIPAL])  # every schema: chat.messages is in scope now
    report = bench.verification.verify(ident)
    assert report.baseline == "scan v2" and report.outcome.regressions == []
    assert [f.object_fqn for f in report.outcome.findings] == ["chat.messages"]


def test_unchanged_findings_are_stored_once_and_still_compared(bench, target):
    ident = scanned_incident(bench, target)
    first = bench.verification.verify(ident)
    second = bench.verification.verify(ident)
    assert not second.clean and second.outcome.remaining == 2 and second.outcome.regressions == []
    rows = {c.number: c for c in q.checks(bench.store, ident)}
    assert q.findings_check_id(rows[second.number]) == first.check_id  # same findings: not written again
    run_sql(target, "REVOKE SELECT ON telemetry.mouse FROM all_employees")
    third = bench.verification.verify(ident)
    assert third.outcome.closed_since == 1 and q.findings_check_id(q.latest_check(bench.store, ident)) == third.check_id
    assert [f.object_fqn for f in q.check_findings(bench.store, third.check_id)] == ["telemetry.keystrokes"]


def test_a_new_process_reads_the_previous_check_and_the_ledger_back_from_either_store(wb, target):
    """What `sevtool verify` pays for in a new process: the baseline's grants and the ledger are read from the
    store (SQLite or PostgreSQL), and the findings and regressions it writes come back the same."""

    def verify_in_new_process():
        fresh = Workbench(wb.settings)
        try:
            return fresh.verification.verify(ident)
        finally:
            fresh.scanning.close()

    ident = scanned_incident(wb, target)
    first = verify_in_new_process()
    assert not first.clean and first.outcome.remaining == 2
    run_sql(target, "REVOKE SELECT ON telemetry.mouse FROM all_employees")
    second = verify_in_new_process()
    assert (second.outcome.remaining, second.outcome.closed_since, second.outcome.regressions) == (1, 1, [])
    assert [f.object_fqn for f in q.check_findings(wb.store, second.check_id)] == ["telemetry.keystrokes"]

    apply_fix(wb, ident)  # the ledger closes keystrokes after check 2 ...
    run_sql(
        target, "GRANT SELECT ON telemetry.keystrokes TO all_employees", user="deploy_bot"
    )  # ... and a job re-grants it
    third = verify_in_new_process()
    [reg] = third.outcome.regressions
    assert (reg.object_fqn, reg.cause_kind) == ("telemetry.keystrokes", Cause.GRANT_READDED)
    assert [(r.object_fqn, r.closed_at) for r in q.regressions(wb.store, ident)] == [("telemetry.keystrokes", None)]


def test_a_probe_that_cannot_answer_keeps_the_check_unclean(bench, target):
    ident = scanned_incident(bench, target)
    apply_fix(bench, ident)
    assert bench.verification.verify(ident, probe_role="alice").clean
    with psycopg.connect(target) as locker:
        locker.execute("LOCK TABLE telemetry.keystrokes IN ACCESS EXCLUSIVE MODE")  # the probe's lock_timeout runs out
        report = bench.verification.verify(ident, probe_role="alice")
    assert not report.clean and report.outcome.findings == []
    assert report.outcome.probe_inconclusive == ["telemetry.keystrokes"]
