"""The PostgreSQL revocation engine on a real server: scan -> plan -> apply -> re-scan, and exact undo."""

from __future__ import annotations

from dataclasses import asdict

import psycopg
import pytest
from acl_snapshot import acl_snapshot
from psycopg import sql

from sevtool.core.exposure import Scope
from sevtool.core.plan import Action, ActionStatus
from sevtool.scenario import AWKWARD_ROLE, SEEDED_PATHS, seed_access_paths
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.target import PostgresTarget

PRINCIPALS = ["all_employees", "contractors"]


def unrated(schema, name, comment):
    return None


def run_apply(target, actions, batch_size=None) -> dict[int, object]:
    results = {}
    target.apply(actions, lambda batch: results.update({r.seq: r for r in batch}), batch_size=batch_size)
    return results


def run_undo(target, actions) -> dict[int, object]:
    results = {}
    target.undo(actions, lambda batch: results.update({r.seq: r for r in batch}))
    return results


def relacl(dsn: str, fqn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT relacl::text FROM pg_class WHERE oid = %s::regclass", [fqn]).fetchone()[0]


@pytest.fixture
def scenario(server_db):
    """The nine access paths, on each supported server (15 and 18)."""
    info = seed_access_paths(server_db)
    target = PostgresTarget(server_db)
    yield server_db, info, target
    target.close()


def test_apply_closes_all_nine_paths_and_undo_restores_every_acl(scenario):
    dsn, _info, target = scenario
    scope = Scope(target="drill", principals=PRINCIPALS)
    before = acl_snapshot(dsn)
    findings = target.scan(scope, unrated).findings
    assert {f.path.value for f in findings} >= SEEDED_PATHS

    actions = target.plan(findings, scope)
    kinds = {a.kind for a in actions}
    assert kinds >= {
        ActionKind.REVOKE_TABLE,
        ActionKind.REVOKE_VIEW,
        ActionKind.REVOKE_COLUMN,
        ActionKind.REVOKE_AS_GRANTOR,
        ActionKind.REVOKE_DEFAULT_PRIVILEGES,
        ActionKind.REVOKE_MEMBERSHIP,
    }
    assert [a.seq for a in actions] == list(range(1, len(actions) + 1))
    memberships = [a for a in actions if a.kind == ActionKind.REVOKE_MEMBERSHIP]
    assert all(a.review and "review" in a.reason for a in memberships)
    assert {(a.object_name, a.grantee) for a in memberships} >= {
        ("analytics_readers", "all_employees"),
        ("legacy_ops", "all_employees"),
        (AWKWARD_ROLE, "all_employees"),
        ("pg_read_all_data", "contractors"),
    }
    assert all(a.prior_state for a in actions), "every action journals its prior state"
    bonus = next(a for a in actions if a.object_fqn == "hr.bonuses" and a.grantee == "all_employees")
    assert (
        bonus.kind == ActionKind.REVOKE_AS_GRANTOR
        and bonus.grantor == "bob"
        and bonus.sql.startswith('SET LOCAL ROLE "bob"')
    )
    assert bonus.prior_state == relacl(dsn, "hr.bonuses")

    results = run_apply(target, actions, batch_size=2)
    assert {r.status for r in results.values()} == {ActionStatus.APPLIED}, [
        r for r in results.values() if r.status != "applied"
    ]
    assert target.scan(scope, unrated).findings == []
    with psycopg.connect(dsn) as conn:  # awkward names were data, never SQL
        assert conn.execute(
            "SELECT to_regclass('hr.salaries') IS NOT NULL AND to_regnamespace('hr') IS NOT NULL"
        ).fetchone()[0]

    assert {r.status for r in run_apply(target, actions).values()} == {ActionStatus.SKIPPED}, (
        "a second apply changes nothing"
    )

    undone = run_undo(target, actions)
    assert {r.status for r in undone.values()} == {ActionStatus.UNDONE}, [
        r for r in undone.values() if r.status != "undone"
    ]
    assert acl_snapshot(dsn) == before
    assert {f.key for f in target.scan(scope, unrated).findings} == {f.key for f in findings}


def _seed_ordered_acl(dsn: str) -> None:
    """hr.ledger: owner, a grant-option holder, grants made by it, and grants after the exposed one."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role in ("all_employees", "ann", "ben", "holder", "later"):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(
            "CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO PUBLIC; CREATE TABLE hr.ledger (id int, amount int)"
        )
        conn.execute("GRANT SELECT ON hr.ledger TO ann")
        conn.execute("GRANT SELECT, UPDATE ON hr.ledger TO holder WITH GRANT OPTION")
        conn.execute("GRANT INSERT ON hr.ledger TO holder")
        conn.execute("GRANT SELECT, INSERT ON hr.ledger TO all_employees")
        conn.execute("SET ROLE holder; GRANT SELECT ON hr.ledger TO all_employees WITH GRANT OPTION; RESET ROLE")
        conn.execute("SET ROLE all_employees; GRANT SELECT ON hr.ledger TO later; RESET ROLE")
        conn.execute("GRANT SELECT ON hr.ledger TO ben")
        conn.execute("GRANT SELECT (amount) ON hr.ledger TO ann, all_employees, ben")


def test_undo_keeps_acl_item_order_grant_options_and_grantors(pg_db):
    _seed_ordered_acl(pg_db)
    before, target = acl_snapshot(pg_db), PostgresTarget(pg_db)
    scope = Scope(target="t", principals=["all_employees"])
    findings = target.scan(scope, unrated).findings
    actions = target.plan(findings, scope)
    by_grantor = {(a.kind, a.grantor, a.column) for a in actions}
    assert (ActionKind.REVOKE_AS_GRANTOR, "holder", None) in by_grantor and (
        ActionKind.REVOKE_TABLE,
        "postgres",
        None,
    ) in by_grantor
    assert relacl(pg_db, "hr.ledger").index("all_employees=") < relacl(pg_db, "hr.ledger").index("ben=")

    results = run_apply(target, actions)
    column = next(a.seq for a in actions if a.column == "amount")
    assert results.pop(column).status == ActionStatus.SKIPPED  # the table-level REVOKE took the column grant with it
    assert all(r.status == ActionStatus.APPLIED for r in results.values())
    after = relacl(pg_db, "hr.ledger")
    assert "all_employees=a/postgres," in after, after  # INSERT was not exposure: only SELECT went
    assert "/holder" not in after and "later=" not in after, after  # CASCADE took what all_employees passed on
    assert target.scan(scope, unrated).findings == []

    applied = [a for a in actions if a.seq in results]
    assert all(r.status == ActionStatus.UNDONE for r in run_undo(target, applied).values())
    assert acl_snapshot(pg_db) == before  # same items, same grant options (*), same grantors (/holder)
    target.close()


def test_owner_revoke_of_a_holders_grant_is_detected_not_trusted(pg_db):
    """A superuser's REVOKE acts as the owner: the grant-option holder's grant stays, silently."""
    _seed_ordered_acl(pg_db)
    target = PostgresTarget(pg_db)
    naive = Action(
        kind=ActionKind.REVOKE_TABLE,
        schema_name="hr",
        object_name="ledger",
        grantee="all_employees",
        grantor="holder",
        sql="REVOKE SELECT ON TABLE hr.ledger FROM all_employees CASCADE",
        prior_state=relacl(pg_db, "hr.ledger"),
    )
    result = run_apply(target, [naive])[0]
    assert result.status == ActionStatus.FAILED
    assert "still there" in result.message and "holder" in result.message
    assert "all_employees=r*/holder" in relacl(pg_db, "hr.ledger")
    target.close()


def test_no_privileges_could_be_revoked_warning_is_a_failure(pg, pg_db):
    _seed_ordered_acl(pg_db)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'intern'").fetchone():
            conn.execute("CREATE ROLE intern LOGIN")
        conn.execute("GRANT USAGE ON SCHEMA hr TO intern; GRANT SELECT ON hr.ledger TO intern")
    as_intern = PostgresTarget(pg.dsn(pg_db.split("dbname=")[1].split()[0], user="intern"))
    action = Action(
        kind=ActionKind.REVOKE_TABLE,
        schema_name="hr",
        object_name="ledger",
        grantee="ann",
        grantor="postgres",
        sql="",
        prior_state=relacl(pg_db, "hr.ledger"),
    )
    result = run_apply(as_intern, [action])[0]
    assert result.status == ActionStatus.FAILED and "no privileges could be revoked" in result.message
    as_intern.close()


def test_owner_without_superuser_revokes_the_holders_grant_option_with_cascade(pg, pg_db):
    dbname = pg_db.split("dbname=")[1].split()[0]
    with psycopg.connect(pg_db, autocommit=True) as conn:
        for role, login in (("all_employees", False), ("holder", False), ("table_owner", True)):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} " + ("LOGIN" if login else "")).format(sql.Identifier(role)))
        conn.execute("CREATE SCHEMA hr AUTHORIZATION table_owner")
        conn.execute(
            "SET ROLE table_owner; CREATE TABLE hr.bonus (id int); GRANT USAGE ON SCHEMA hr TO PUBLIC;"
            "GRANT SELECT ON hr.bonus TO holder WITH GRANT OPTION; RESET ROLE"
        )
        conn.execute("SET ROLE holder; GRANT SELECT ON hr.bonus TO all_employees; RESET ROLE")
    before = acl_snapshot(pg_db)
    owner = PostgresTarget(pg.dsn(dbname, user="table_owner"))
    scope = Scope(target="t", principals=["all_employees"])
    actions = owner.plan(owner.scan(scope, unrated).findings, scope)
    assert [(a.kind, a.grantor) for a in actions] == [(ActionKind.REVOKE_GRANT_OPTION, "holder")]
    assert actions[0].sql == 'REVOKE GRANT OPTION FOR SELECT ON TABLE "hr"."bonus" FROM "holder" CASCADE'
    assert run_apply(owner, actions)[1].status == ActionStatus.APPLIED
    assert relacl(pg_db, "hr.bonus") == "{table_owner=arwdDxt/table_owner,holder=r/table_owner}"
    assert owner.scan(scope, unrated).findings == []

    superuser = PostgresTarget(pg_db)  # re-granting as `holder` needs SET ROLE holder: a superuser's job
    assert run_undo(superuser, actions)[1].status == ActionStatus.UNDONE
    assert acl_snapshot(pg_db) == before
    owner.close()
    superuser.close()


def test_a_refused_object_fails_alone_and_the_rest_of_its_batch_applies(pg, pg_db):
    """A multi-table REVOKE is all or nothing; the engine bisects to the object the server refused."""
    dbname = pg_db.split("dbname=")[1].split()[0]
    with psycopg.connect(pg_db, autocommit=True) as conn:
        for role, login in (("all_employees", False), ("etl", True)):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} " + ("LOGIN" if login else "")).format(sql.Identifier(role)))
        conn.execute("CREATE SCHEMA s AUTHORIZATION etl; GRANT USAGE ON SCHEMA s TO PUBLIC")
        for name in ("a", "b", "c", "d", "e"):
            conn.execute(sql.SQL("CREATE TABLE s.{} (id int)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("GRANT SELECT ON s.{} TO all_employees").format(sql.Identifier(name)))
            if name != "c":
                conn.execute(sql.SQL("ALTER TABLE s.{} OWNER TO etl").format(sql.Identifier(name)))
    superuser, as_etl = PostgresTarget(pg_db), PostgresTarget(pg.dsn(dbname, user="etl"))
    scope = Scope(target="t", principals=["all_employees"])
    actions = superuser.plan(superuser.scan(scope, unrated).findings, scope)
    assert len(actions) == 5 and {a.kind for a in actions} == {ActionKind.REVOKE_TABLE}
    results = run_apply(as_etl, actions, batch_size=5)
    status = {a.object_name: results[a.seq].status for a in actions}
    assert status == {"a": "applied", "b": "applied", "c": "failed", "d": "applied", "e": "applied"}
    assert "permission denied" in results[next(a.seq for a in actions if a.object_name == "c")].message
    assert [f.object_name for f in superuser.scan(scope, unrated).findings] == ["c"]
    superuser.close()
    as_etl.close()


def test_objects_dropped_after_planning_are_skipped(scenario):
    dsn, _info, target = scenario
    scope = Scope(target="drill", principals=["all_employees"])
    actions = [a for a in target.plan(target.scan(scope, unrated).findings, scope) if a.kind == ActionKind.REVOKE_TABLE]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE hr.salaries")
    results = run_apply(target, actions)
    dropped = next(a.seq for a in actions if a.object_fqn == "hr.salaries")
    assert results[dropped].status == ActionStatus.SKIPPED
    assert all(r.status == ActionStatus.APPLIED for seq, r in results.items() if seq != dropped)


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_the_plan_is_the_same_however_the_catalog_is_read_in_chunks(scenario, monkeypatch, chunk):
    """Tables' ACLs are read in chunks as findings arrive: each must land on its own table, whatever the chunking."""
    from sevtool.targets.postgres import plan as postgres_plan

    _dsn, _info, target = scenario
    scope = Scope(target="drill", principals=PRINCIPALS)
    findings = target.scan(scope, unrated).findings
    whole = target.plan(findings, scope)
    monkeypatch.setattr(postgres_plan, "PLAN_CHUNK", chunk)
    assert [asdict(a) for a in target.plan(findings, scope)] == [asdict(a) for a in whole]
    tables = {
        a.object_fqn
        for a in whole
        if a.kind in (ActionKind.REVOKE_TABLE, ActionKind.REVOKE_VIEW, ActionKind.REVOKE_AS_GRANTOR)
    }
    assert len(tables) > chunk  # more than one chunk was read


def test_findings_for_a_principal_the_scope_does_not_name_are_still_planned(scenario):
    """The catalog is read for the scope's principals up front; a finding for anyone else must not be dropped."""
    dsn, _info, target = scenario
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON hr.salaries TO contractors")
    scope = Scope(target="drill", principals=PRINCIPALS)
    findings = target.scan(scope, unrated).findings
    narrower = Scope(target="drill", principals=["all_employees"])
    planned = [asdict(a) for a in target.plan(findings, scope)]
    assert any(a["grantee"] == "contractors" and a["kind"] == ActionKind.REVOKE_TABLE for a in planned)
    # The same actions; only the blast radius differs: for the narrower scope, contractors' loss is collateral.
    without_blast = [{k: v for k, v in a.items() if k not in ("collateral", "review", "alternative")} for a in planned]
    assert [
        {k: v for k, v in asdict(a).items() if k not in ("collateral", "review", "alternative")}
        for a in target.plan(findings, narrower)
    ] == without_blast


def test_out_of_shared_memory_halves_the_batch_and_keeps_it_small(pg_db):
    """The server refuses batches of more than 8 tables with SQLSTATE 53200, as a small lock table would."""
    with psycopg.connect(pg_db, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'all_employees'").fetchone():
            conn.execute("CREATE ROLE all_employees")
        conn.execute("CREATE SCHEMA bulk; GRANT USAGE ON SCHEMA bulk TO PUBLIC")
        for i in range(40):
            conn.execute(
                sql.SQL("CREATE TABLE bulk.{} (id int); GRANT SELECT ON bulk.{} TO all_employees").format(
                    sql.Identifier(f"t{i:02d}"), sql.Identifier(f"t{i:02d}")
                )
            )
        conn.execute("""CREATE FUNCTION small_lock_table() RETURNS event_trigger LANGUAGE plpgsql AS $$
                        BEGIN
                          IF length(current_query()) - length(replace(current_query(), ',', '')) >= 8 THEN
                            RAISE EXCEPTION 'out of shared memory' USING ERRCODE = 'out_of_memory',
                              HINT = 'You might need to increase max_locks_per_transaction.';
                          END IF;
                        END $$""")
        conn.execute(
            "CREATE EVENT TRIGGER small_lock_table ON ddl_command_start WHEN TAG IN ('REVOKE') EXECUTE FUNCTION small_lock_table()"
        )
    target = PostgresTarget(pg_db)
    scope = Scope(target="t", principals=["all_employees"])
    actions = target.plan(target.scan(scope, unrated).findings, scope)
    assert len(actions) == 40
    batches: list[int] = []
    target.apply(actions, lambda results: batches.append(len(results)), batch_size=40)
    assert sum(batches) == 40 and max(batches) <= 8
    assert target._batch_limit == 5  # 40 -> 20 -> 10 -> 5, and later batches start at 5
    assert target.scan(scope, unrated).findings == []
    target.close()


def test_service_journals_reports_progress_and_contains_on_either_store(wb, pg_db):
    """The same ledger flow on a SQLite and a PostgreSQL store: planned rows first, batches recorded, contained."""
    seed_access_paths(pg_db)
    incident = wb.incidents.declare("drill", 2)
    wb.scanning.scan(incident.id, pg_db, PRINCIPALS)
    plan = wb.revocation.plan(incident.id)
    stored = wb.revocation.ledger(incident.id)
    assert [a.seq for _, a in stored] == [a.seq for a in plan.actions]
    assert all(a.status == ActionStatus.PLANNED and a.prior_state for _, a in stored)

    seen = []
    report = wb.revocation.apply(
        incident.id, accept_collateral=True, plan_version=plan.plan_version, batch_size=3, progress=seen.append
    )
    assert report.ok and report.counts["applied"] == len(plan.actions) and report.status == "contained"
    assert seen[-1].done == seen[-1].total == len(plan.actions) and all(len(p.results) <= 3 for p in seen)
    assert wb.incidents.get(incident.id).contained_at is not None
    assert {a.status for _, a in wb.revocation.ledger(incident.id)} == {ActionStatus.APPLIED}
    assert wb.scanning.scan(incident.id, pg_db, PRINCIPALS).result.findings == []

    undone = wb.revocation.undo(incident.id)
    assert undone.ok and undone.counts["undone"] == len(plan.actions) and undone.status == "declared"
    assert wb.incidents.audit().ok


def test_applying_again_after_undo_does_not_call_the_incident_contained(wb, pg_db):
    """Undo put the grants back; re-running --apply on the undone plan has nothing to do and must not claim containment."""
    seed_access_paths(pg_db)
    incident = wb.incidents.declare("drill", 2)
    wb.scanning.scan(incident.id, pg_db, PRINCIPALS)
    wb.revocation.plan(incident.id)
    assert wb.revocation.apply(incident.id, accept_collateral=True).status == "contained"
    assert wb.revocation.undo(incident.id).status == "declared"

    again = wb.revocation.apply(incident.id, accept_collateral=True)
    assert sum(again.counts.values()) == 0 and again.status == "declared"
    assert wb.incidents.get(incident.id).status == "declared"
    assert "were undone: plan again" in wb.incidents.timeline(incident.id)[-1].summary


def test_the_reported_totals_are_the_ledger_after_skips_and_after_a_rerun_on_an_undone_plan(wb, pg_db):
    """apply counts its totals from the actions it holds plus this run's outcomes: they must equal a count of the ledger."""
    from sevtool.store import ledger

    seed_access_paths(pg_db)
    incident = wb.incidents.declare("drill", 2)
    wb.scanning.scan(incident.id, pg_db, PRINCIPALS)
    plan = wb.revocation.plan(incident.id)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("DROP TABLE hr.salaries CASCADE")  # gone before apply: its actions are skipped, not applied
    first = wb.revocation.apply(incident.id, accept_collateral=True, plan_version=plan.plan_version, batch_size=2)
    assert first.counts["skipped"] >= 1
    assert first.totals == ledger.status_counts(wb.store, incident.id, plan.plan_version)

    wb.revocation.undo(incident.id)
    again = wb.revocation.apply(
        incident.id, accept_collateral=True
    )  # nothing left to do; the totals still come from the ledger's statuses
    assert again.totals == ledger.status_counts(wb.store, incident.id, plan.plan_version)
    assert again.totals["undone"] == first.counts["applied"]


def test_planning_again_lets_go_of_the_previous_plan_and_undo_still_reaches_every_plan(wb, pg_db):
    """A long session plans again and again: only the newest plan stays in memory, and undo decodes older ones from the ledger."""
    import gc

    def alive() -> int:
        gc.collect()
        return sum(type(o) is Action for o in gc.get_objects())

    seed_access_paths(pg_db)
    before = acl_snapshot(pg_db)
    incident = wb.incidents.declare("drill", 2)
    wb.scanning.scan(incident.id, pg_db, ["all_employees"])
    before_planning = alive()
    first = wb.revocation.plan(incident.id)
    assert wb.revocation.apply(incident.id, accept_collateral=True, plan_version=first.plan_version).ok
    wb.scanning.scan(incident.id, pg_db, PRINCIPALS)
    second = wb.revocation.plan(incident.id)
    del first
    assert alive() - before_planning == len(second.actions)

    assert wb.revocation.apply(incident.id, accept_collateral=True, plan_version=second.plan_version).ok
    undone = wb.revocation.undo(incident.id)
    assert undone.ok and undone.plan_versions == [1, 2]
    assert acl_snapshot(pg_db) == before


def test_a_plan_is_counted_then_made_a_chunk_at_a_time_in_plan_order(scenario, monkeypatch):
    """plan_in_chunks: the count first, then PLAN_CHUNK numbered actions at a time, the same actions as plan()."""
    from sevtool.targets.postgres import plan as postgres_plan

    _dsn, _info, target = scenario
    scope = Scope(target="drill", principals=PRINCIPALS)
    findings = target.scan(scope, unrated).findings
    whole = target.plan(findings, scope)
    monkeypatch.setattr(postgres_plan, "PLAN_CHUNK", 2)
    chunked = target.plan_in_chunks(findings, scope)
    chunks = list(chunked.chunks)
    assert chunked.count == len(whole) and len(chunks) == -(-len(whole) // 2) and all(len(c) <= 2 for c in chunks)
    assert [asdict(a) for chunk in chunks for a in chunk] == [asdict(a) for a in whole]
    assert [a.seq for chunk in chunks for a in chunk] == list(range(1, len(whole) + 1))


def test_a_plan_is_journaled_as_it_is_made_and_a_refused_one_not_at_all(wb, pg_db, monkeypatch):
    """The service journals each chunk as it comes, never holding the whole plan; over the size guard, nothing."""
    import gc

    from sevtool.errors import UsageError
    from sevtool.store import ledger
    from sevtool.targets.postgres import plan as postgres_plan

    seed_access_paths(pg_db)
    incident = wb.incidents.declare("drill", 2)
    wb.scanning.scan(incident.id, pg_db, ["all_employees"])
    with pytest.raises(UsageError, match="nothing was journaled"):
        wb.revocation.journal_plan(incident.id, max_actions=1)
    assert ledger.latest_plan(wb.store, incident.id) is None
    assert wb.incidents.timeline(incident.id)[-1].kind == "scan"

    monkeypatch.setattr(postgres_plan, "PLAN_CHUNK", 1)
    insert, alive = ledger.insert_plan, []

    def journaled(session, *args):
        gc.collect()
        alive.append(sum(type(o) is Action for o in gc.get_objects()))
        insert(session, *args)

    monkeypatch.setattr(ledger, "insert_plan", journaled)
    made = wb.revocation.journal_plan(incident.id)
    assert made.count == len(alive) > 2
    assert max(alive) < made.count  # never every action at once
    stored = [a for page in wb.revocation.plan_pages(made) for a in page]
    assert [a.seq for a in stored] == list(range(1, made.count + 1))
    assert [a for page in wb.revocation.plain_plan_pages(made) for a in page] == [
        Action.__pydantic_serializer__.to_python(a, mode="json") for a in stored
    ]
