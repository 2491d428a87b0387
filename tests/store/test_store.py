"""The store on SQLite and on a real PostgreSQL: incidents, SEV history, the chain, concurrent writers."""

import multiprocessing
import os
import stat
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from sevtool.core.incident import Status
from sevtool.core.timeparse import utcnow
from sevtool.errors import IllegalTransition, NotFound, UsageError


def test_declare_records_incident_sev_history_and_event(wb):
    inc = wb.incidents.declare("Telemetry readable by all employees", 2, commander="alice")
    again = wb.incidents.get(inc.id)
    assert again.title == "Telemetry readable by all employees" and again.sev == 2 and again.status is Status.DECLARED
    assert again.commander == "alice" and again.declared_at is not None and again.declared_at.tzinfo is not None
    assert [(c.from_sev, c.to_sev) for c in again.sev_history] == [(None, 2)]
    events = wb.incidents.timeline(inc.id)
    assert [e.kind for e in events] == ["declared"]


def test_sev_changes_keep_every_reason(wb):
    inc = wb.incidents.declare("t", 3)
    wb.incidents.change_sev(inc.id, 1, "DSS 4 keystroke tables in scope")
    wb.incidents.change_sev(inc.id, 2, "external access ruled out")
    again = wb.incidents.get(inc.id)
    assert [c.to_sev for c in again.sev_history] == [3, 1, 2]
    assert again.first_sev == 3 and again.highest_sev == 1
    assert [e.kind for e in wb.incidents.timeline(inc.id)] == ["declared", "sev_changed", "sev_changed"]


def test_status_moves_stamp_times_and_illegal_moves_write_nothing(wb):
    inc = wb.incidents.declare("t", 2)
    at = utcnow() - timedelta(hours=1)
    wb.incidents.set_status(inc.id, Status.CONTAINED, at=at)
    before = len(wb.store.events())
    with pytest.raises(IllegalTransition):
        wb.incidents.set_status(inc.id, Status.CLOSED)
    assert len(wb.store.events()) == before
    got = wb.incidents.get(inc.id)
    assert got.status is Status.CONTAINED and abs((got.contained_at - at).total_seconds()) < 1e-3


def test_invalid_sev_and_unknown_incident_write_nothing(wb):
    with pytest.raises(UsageError):
        wb.incidents.declare("t", 7)
    with pytest.raises(NotFound):
        wb.incidents.note(42, "hello")
    assert wb.store.events() == [] and wb.incidents.all() == []


def test_chain_verifies_and_tampering_is_named(wb):
    inc = wb.incidents.declare("t", 2)
    for i in range(4):
        wb.incidents.note(inc.id, f"note {i}")
    assert wb.incidents.audit().ok
    with wb.store.engine.begin() as conn:
        conn.execute(text("UPDATE event SET summary = 'nothing to see' WHERE seq = 3"))
    report = wb.incidents.audit()
    assert not report.ok and report.broken_seq == 3


def test_times_round_trip_in_utc(wb):
    inc = wb.incidents.declare("t", 2)
    when = wb.incidents.parse_time("2026-06-18 14:05 PDT")
    wb.incidents.set_time(inc.id, "exposure-started", when)
    assert wb.incidents.get(inc.id).exposure_started_at == when


def _add_notes(url, incident_id, who, count):
    from sevtool.services import Workbench
    from sevtool.settings import Settings

    wb = Workbench(Settings(db=url, tz="UTC", actor=who, config="/nonexistent/config.toml"))
    for i in range(count):
        wb.incidents.note(incident_id, f"{who} note {i}")


def test_concurrent_writers_lose_nothing(wb, store_url):
    inc = wb.incidents.declare("t", 2)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_add_notes, args=(store_url, inc.id, f"writer{n}", 25)) for n in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    events = wb.incidents.timeline(inc.id)
    assert len([e for e in events if e.kind == "note"]) == 75
    assert [e.seq for e in wb.store.events()] == list(range(1, 77))
    assert wb.incidents.audit().ok


def test_sqlite_store_file_is_private(tmp_path):
    from sevtool.store.repository import Store

    path = tmp_path / "deep" / "store.db"
    Store(f"sqlite:///{path}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_marking_an_event_key_highlights_that_event_only(wb):
    inc = wb.incidents.declare("t", 2)
    note = wb.incidents.note(inc.id, "the first fix did not stick")
    marker = wb.incidents.mark_key(inc.id, note.seq)
    events = wb.incidents.timeline(inc.id)
    assert wb.incidents.key_events(events) == {note.seq}
    wb.incidents.mark_key(inc.id, note.seq, key=False)
    assert wb.incidents.key_events(wb.incidents.timeline(inc.id)) == set()
    assert marker.seq not in wb.incidents.key_events(events)


def test_a_store_whose_ledger_rows_held_the_action_detail_is_upgraded_when_opened(wb, store_url):
    """Stores made before `action_detail` existed kept each action's detail in its ledger row: opening one moves
    the details out, and its plans read back as they were, beside plans made after."""
    from sevtool.core.plan import Action, ActionResult, ActionStatus
    from sevtool.store import ledger
    from sevtool.store.repository import Store
    from sevtool.targets.postgres.plugin import ActionKind

    inc = wb.incidents.declare("t", 2)
    actions = [
        Action(
            seq=n,
            kind=ActionKind.REVOKE_TABLE,
            schema_name="hr",
            object_name=f"t{n}",
            grantee="all_employees",
            grantor="owner",
            sql=f'REVOKE SELECT ON TABLE "hr"."t{n}" FROM "all_employees" CASCADE',
            prior_state="{owner=arwdDxt/owner,all_employees=r/owner}",
        )
        for n in (1, 2)
    ]
    with wb.store.write() as tx:
        ledger.insert_plan(tx.session, inc.id, 1, 1, "db", actions)
        ledger.record(tx.session, inc.id, 1, [ActionResult(seq=1, status=ActionStatus.APPLIED)])
    before = ledger.actions(wb.store, inc.id)
    with wb.store.engine.begin() as conn:  # back to the old layout
        conn.execute(text("ALTER TABLE action ADD COLUMN detail JSON NOT NULL DEFAULT '{}'"))
        conn.execute(
            text(
                "UPDATE action SET detail = (SELECT d.detail FROM action_detail d WHERE d.incident_id = action.incident_id "
                "AND d.plan_version = action.plan_version AND d.seq = action.seq)"
            )
        )
        conn.execute(text("DROP TABLE action_detail"))
    wb.store.engine.dispose()

    reopened = Store(store_url)
    assert ledger.actions(reopened, inc.id) == before
    with reopened.write() as tx:
        ledger.insert_plan(tx.session, inc.id, 2, 1, "db", actions)
    assert [(version, a.seq, a.status) for version, _, a in ledger.actions(reopened, inc.id)] == [
        (1, 1, ActionStatus.APPLIED),
        (1, 2, ActionStatus.PLANNED),
        (2, 1, ActionStatus.PLANNED),
        (2, 2, ActionStatus.PLANNED),
    ]
    with reopened.read() as s:
        assert "detail" not in {c["name"] for c in inspect(s.connection()).get_columns("action")}


def test_findings_keep_their_route_and_securable_as_data_and_an_older_store_is_upgraded_when_opened(wb, store_url):
    """A finding's route of roles and the securable its grant is on are stored as data, whatever the roles are named.
    Stores made when a finding said how access happens only in words (`via`) gain the column when opened; the findings
    scanned before read back without a route (their words are not parsed into one)."""
    from sevtool.core.exposure import (
        FUTURE_TABLES,
        AccessPath,
        Finding,
        Scope,
        Securable,
    )
    from sevtool.store import scans
    from sevtool.store.repository import Store

    route = ("a)b", "x -> y", 'say "hi" (please)')
    findings = [
        Finding(
            object_kind="table",
            schema_name="hr",
            object_name="pay",
            principal="emp_all",
            path=AccessPath.ROLE,
            grantee=route[-1],
            grantor="owner1",
            route=route,
            set_role="x -> y is NOINHERIT",
            usage_from=("analysts", "ana"),
            row_security=True,
        ),
        Finding(
            object_kind="table",
            schema_name="main.hr",
            object_name="pay",
            principal="emp_all",
            path=AccessPath.INHERITED,
            grantee="emp_all",
            granted_on=Securable("schema", "main.hr"),
        ),
        Finding(
            object_kind="schema",
            schema_name="hr",
            object_name=FUTURE_TABLES,
            principal="emp_all",
            path=AccessPath.DEFAULT_PRIVILEGES,
            grantee="emp_all",
            grantor="owner1",
            future_tables=True,
        ),
        Finding(
            object_kind="view",
            schema_name="hr",
            object_name="v",
            principal="emp_all",
            path=AccessPath.VIEW,
            grantee="emp_all",
            bases=("hr.pay", "hr.bonus"),
            base_object="hr.pay",
            views=("hr.v2",),
        ),
    ]
    scope = Scope(target="db", principals=["emp_all"])

    def scanned(store: Store, version: int) -> int:
        with store.write() as tx:
            scope_id = scans.add_scope(tx.session, inc.id, version, scope, finding_count=len(findings), object_count=3)
            scans.add_findings(tx.session, scope_id, findings)
        return scope_id

    inc = wb.incidents.declare("t", 2)
    first = scanned(wb.store, 1)
    with wb.store.read() as s:
        assert scans.findings_of(s, first) == findings
    with wb.store.engine.begin() as conn:  # back to the old layout: words, no structure
        conn.execute(text("ALTER TABLE finding DROP COLUMN detail"))
        conn.execute(text("ALTER TABLE finding ADD COLUMN via VARCHAR NOT NULL DEFAULT ''"))
        conn.execute(text("UPDATE finding SET via = 'via role x -> y (through a)b)'"))
    wb.store.engine.dispose()

    reopened = Store(store_url)
    with reopened.read() as s:
        columns = {c["name"] for c in inspect(s.connection()).get_columns("finding")}
        old = scans.findings_of(s, first)
    assert "detail" in columns and "via" not in columns
    assert [(f.object_fqn, f.path, f.grantee, f.route) for f in old] == [
        (f.object_fqn, f.path, f.grantee, ()) for f in findings
    ]
    second = scanned(reopened, 2)
    with reopened.read() as s:
        assert scans.findings_of(s, second) == findings


def test_a_fresh_store_has_no_note_table_and_an_old_store_opens_with_its_unused_one(wb, store_url):
    """Notes are timeline events. Early stores also made a `note` table that nothing ever wrote: a new store does not
    make it, and an old store that has it opens and works as it is (the empty table is left alone)."""
    from sevtool.store.repository import Store

    with wb.store.read() as s:
        assert "note" not in inspect(s.connection()).get_table_names()
    with wb.store.engine.begin() as conn:  # the old layout
        conn.execute(
            text(
                "CREATE TABLE note (id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incident (id), "
                "kind VARCHAR NOT NULL, text TEXT NOT NULL)"
            )
        )
    wb.store.engine.dispose()

    reopened = Store(store_url)
    with reopened.write() as tx:
        tx.append(None, "note", "written after the reopen", {})
    assert reopened.events()[-1].summary == "written after the reopen"
    with reopened.read() as s:
        assert "note" in inspect(s.connection()).get_table_names()


def test_a_store_made_before_statistics_snapshots_gains_their_table_when_opened(wb, store_url):
    """Snapshots of table statistics are one row each, the counters packed; an older store has no table for them."""
    from sevtool.core.table_stats import TableCounters, TableStats
    from sevtool.store import table_stats
    from sevtool.store.repository import Store

    inc = wb.incidents.declare("t", 2)
    with wb.store.engine.begin() as conn:  # the old layout
        conn.execute(text("DROP TABLE stats_snapshot"))
    wb.store.engine.dispose()

    reopened = Store(store_url)
    stats = TableStats(utcnow(), {f"hr.t{n}": TableCounters(n, 2 * n) for n in range(1000)})
    at = utcnow()
    with reopened.write() as tx:
        table_stats.add_snapshot(tx.session, inc.id, "check", at, stats)
    with reopened.read() as s:
        (taken,) = table_stats.snapshots(s, inc.id)
        assert s.connection().execute(text("SELECT count(*) FROM stats_snapshot")).scalar() == 1
    assert (taken.phase, taken.taken_at, taken.stats) == ("check", at, stats)
