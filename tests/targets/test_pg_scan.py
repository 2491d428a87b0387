"""The PostgreSQL scan against a real server: one scenario per access path, checked against PostgreSQL itself."""

from __future__ import annotations

import socket
import threading

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sevtool.core.classification import Classifier
from sevtool.core.exposure import FUTURE_TABLES, AccessPath, Scope
from sevtool.describe import via
from sevtool.errors import NotFound, TargetUnreachable
from sevtool.scenario import SEEDED_PATHS, seed_access_paths
from sevtool.targets.postgres.target import PostgresTarget, strip_secrets

pytestmark = pytest.mark.postgres


@pytest.fixture
def seeded(server_db):
    return server_db, seed_access_paths(server_db)


@pytest.fixture
def scan(seeded):
    dsn, info = seeded
    target = PostgresTarget(dsn)

    def run(classify=None, **scope):
        scope.setdefault("principals", [info["principal"]])
        return target.scan(Scope(target=target.display, **scope), classify or Classifier())

    yield run
    target.close()


def only(result, fqn, path, principal="all_employees", column=None):
    matches = [
        f
        for f in result.findings
        if f.object_fqn == fqn and f.path == path and f.principal == principal and f.column == column
    ]
    assert len(matches) == 1, (
        f"expected one {path} finding on {fqn} for {principal}, got {[(f.object_fqn, f.path.value) for f in result.findings]}"
    )
    return matches[0]


def test_direct_grant(scan):
    f = only(scan(), "hr.salaries", AccessPath.DIRECT)
    assert (f.grantee, f.grantor, f.dss, f.object_kind, via(f)) == (
        "all_employees",
        "postgres",
        4,
        "table",
        "granted to all_employees",
    )


def test_public_grant_counts_for_every_principal(scan):
    result = scan(principals=["all_employees", "public"])
    for principal in ("all_employees", "PUBLIC"):
        f = only(result, "chat.messages", AccessPath.PUBLIC, principal=principal)
        assert f.grantee == "PUBLIC" and via(f) == "granted to PUBLIC"
    # PUBLIC alone reaches nothing granted to a role.
    assert {f.object_fqn for f in result.findings if f.principal == "PUBLIC"} == {"chat.messages"}


def test_role_membership_direct_transitive_and_noinherit(scan):
    result = scan()
    assert via(only(result, "telemetry.keystrokes", AccessPath.ROLE)) == "via role analytics_readers"
    transitive = only(result, "telemetry.mouse_moves", AccessPath.ROLE)
    assert (
        transitive.grantee == "data_platform"
        and via(transitive) == "via role data_platform (through analytics_readers)"
    )
    assert transitive.route == ("analytics_readers", "data_platform")
    set_role = only(result, "hr.org_chart", AccessPath.ROLE)
    assert set_role.grantee == "legacy_readers" and "by SET ROLE (" in via(set_role) and "legacy_ops" in via(set_role)


def test_per_grant_inherit_and_set_options_decide_reach(seeded, scan):
    """PostgreSQL 16+ (the suite runs it on 18): options live on each grant."""
    dsn, info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.info.server_version < 160000:
            pytest.skip("INHERIT and SET options per membership grant arrived in PostgreSQL 16")
        roles = {
            "scan16_inherit_only": "INHERIT TRUE, SET FALSE",
            "scan16_set_only": "INHERIT FALSE, SET TRUE",
            "scan16_neither": "INHERIT FALSE, SET FALSE",
        }
        try:
            for role, options in roles.items():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier("hr", f"t_{role}")))
                conn.execute(
                    sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier("hr", f"t_{role}"), sql.Identifier(role))
                )
                conn.execute(sql.SQL("GRANT {} TO all_employees WITH " + options).format(sql.Identifier(role)))
            result = scan(table_glob="t_scan16_*")
            with psycopg.connect(make_conninfo(dsn, user=info["canary"]), autocommit=True) as member:
                member.execute("SELECT * FROM hr.t_scan16_inherit_only LIMIT 0")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    member.execute("SELECT * FROM hr.t_scan16_set_only LIMIT 0")
                member.execute("SET ROLE scan16_set_only")
                member.execute("SELECT * FROM hr.t_scan16_set_only LIMIT 0")
                member.execute("RESET ROLE")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    member.execute("SET ROLE scan16_neither")
        finally:
            for role in roles:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("hr", f"t_{role}")))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    assert via(only(result, "hr.t_scan16_inherit_only", AccessPath.ROLE)) == "via role scan16_inherit_only"
    assert via(only(result, "hr.t_scan16_set_only", AccessPath.ROLE)) == (
        "via role scan16_set_only, by SET ROLE (the grant of scan16_set_only to all_employees is WITH INHERIT FALSE)"
    )
    assert "hr.t_scan16_neither" in result.objects and not [
        f for f in result.findings if f.object_name == "t_scan16_neither"
    ]


def test_column_grant_is_found_where_table_privilege_is_not(scan):
    result = scan()
    f = only(result, "telemetry.screen_captures", AccessPath.COLUMN, column="payload")
    assert via(f).startswith("column payload") and f.dss == 4
    assert [x.path for x in result.findings if x.object_fqn == "telemetry.screen_captures"] == [AccessPath.COLUMN]


def test_default_privileges_name_the_schema_and_the_creating_role(scan):
    f = only(scan(), f"telemetry.{FUTURE_TABLES}", AccessPath.DEFAULT_PRIVILEGES)
    assert (f.object_kind, f.grantor, f.grantee) == ("schema", "etl_owner", "all_employees")
    assert "etl_owner" in via(f) and "telemetry" in via(f)


def test_database_wide_default_privileges_have_no_schema(seeded, scan):
    dsn, _info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER DEFAULT PRIVILEGES FOR ROLE etl_owner GRANT SELECT ON TABLES TO all_employees")
    result = scan(schemas=["hr"])
    f = only(result, f".{FUTURE_TABLES}", AccessPath.DEFAULT_PRIVILEGES)
    assert (f.schema_name, f.grantor) == ("", "etl_owner") and "in every schema" in via(f)
    assert not [x for x in result.findings if x.schema_name == "telemetry"], (
        "the telemetry-only default is out of scope"
    )


def test_views_and_materialized_views_over_a_sensitive_table(scan):
    result = scan()
    view = only(result, "reporting.review_summary", AccessPath.VIEW)
    matview = only(result, "reporting.review_counts", AccessPath.VIEW)
    assert (view.base_object, view.dss, view.object_kind) == ("hr.performance_reviews", 4, "view")
    assert (matview.base_object, matview.object_kind) == ("hr.performance_reviews", "materialized view")
    assert not [f for f in result.findings if f.object_fqn == "hr.performance_reviews"]
    assert result.objects["hr.performance_reviews"] == 4


def test_view_of_a_view_is_followed_and_security_invoker_views_are_not_reported(seeded, scan):
    dsn, _info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE VIEW reporting.review_digest AS SELECT id FROM reporting.review_summary")
        conn.execute("GRANT SELECT ON reporting.review_digest TO all_employees")
        conn.execute(
            "CREATE VIEW reporting.invoker_reviews WITH (security_invoker = true) AS SELECT id FROM hr.performance_reviews"
        )
        conn.execute("GRANT SELECT ON reporting.invoker_reviews TO all_employees")
    result = scan()
    assert only(result, "reporting.review_digest", AccessPath.VIEW).base_object == "hr.performance_reviews"
    assert not [f for f in result.findings if f.object_name == "invoker_reviews"], (
        "it checks the reader's access to the table"
    )


def test_grant_by_a_grant_option_holder_names_the_grantor(scan):
    f = only(scan(), "hr.bonuses", AccessPath.GRANT_OPTION)
    assert (f.grantor, f.grantee) == ("bob", "all_employees") and "granted by bob" in via(f)


def test_predefined_role_reads_every_table_in_scope_and_the_views_over_them(scan):
    result = scan(principals=["contractors"])
    predefined = {f.object_fqn for f in result.findings if f.path == AccessPath.PREDEFINED_ROLE}
    views = {f.object_fqn for f in scan(principals=["all_employees"]).findings if f.path == AccessPath.VIEW}
    assert views and predefined == set(result.objects) | views
    assert {via(f) for f in result.findings if f.path == AccessPath.PREDEFINED_ROLE} == {
        "via predefined role pg_read_all_data"
    }


def test_partition_readable_while_its_parent_is_not(scan):
    result = scan()
    f = only(result, "telemetry.events_2026_06", AccessPath.PARTITION)
    assert (f.base_object, f.object_kind, f.dss) == ("telemetry.events", "partition", 3)
    assert not [x for x in result.findings if x.object_fqn in ("telemetry.events", "telemetry.events_2026_05")]
    assert result.objects["telemetry.events_2026_05"] == 3, "a partition without its own rating takes its parent's"


def test_grant_in_a_schema_without_usage_is_a_notice_not_a_finding(scan):
    result = scan()
    assert not [f for f in result.findings if f.schema_name == "vault"]
    assert "vault.master_keys" in result.objects
    assert any("not readable yet: no member of all_employees has USAGE on vault" in n for n in result.notices)


def test_members_counted_and_noinherit_members_noted(scan):
    result = scan(principals=["all_employees", "PUBLIC"])
    assert result.principal_members["all_employees"] >= 3
    assert result.principal_members["PUBLIC"] >= result.principal_members["all_employees"]
    assert any("NOINHERIT" in n and "SET ROLE all_employees" in n for n in result.notices)


def test_every_seeded_scenario_is_found(seeded, scan):
    _dsn, info = seeded
    result = scan(principals=["all_employees", "contractors"])
    found = {(f.path.value, f.schema_name, f.object_name, f.column) for f in result.findings}
    for path, scenarios in info["paths"].items():
        for s in scenarios:
            if path == "predefined_role":
                assert any(
                    f.principal == s["principal"] and f.path == AccessPath.PREDEFINED_ROLE for f in result.findings
                )
            else:
                assert (path, s["schema"], s["name"], s.get("column")) in found, (path, s)
    assert {f.path.value for f in result.findings} == SEEDED_PATHS


def test_scan_agrees_with_postgresql_privilege_checks(seeded, scan):
    """Ground truth from has_*_privilege as each member, with every role they may SET ROLE to."""
    dsn, info = seeded
    result = scan()
    scanned = {f.object_fqn for f in result.findings if f.path != AccessPath.DEFAULT_PRIVILEGES}
    truth_sql = """
        SELECT DISTINCT n.nspname || '.' || c.relname
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_roles r ON pg_has_role(%(member)s, r.oid, 'MEMBER')
         WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname !~ '^pg_toast'
           AND has_schema_privilege(r.oid, n.oid, 'USAGE')
           AND (has_table_privilege(r.oid, c.oid, 'SELECT') OR has_any_column_privilege(r.oid, c.oid, 'SELECT'))
    """
    truth = set()
    with psycopg.connect(dsn) as conn:
        for member in info["members"]:
            truth |= {row[0] for row in conn.execute(truth_sql, {"member": member})}
    assert scanned == truth


def test_noinherit_member_reads_only_after_set_role(seeded):
    dsn, info = seeded
    member = info["noinherit_member"]
    with psycopg.connect(make_conninfo(dsn, user=member), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM hr.salaries LIMIT 0")
        conn.execute("SET ROLE all_employees")
        conn.execute("SELECT * FROM hr.salaries LIMIT 0")


def test_awkward_identifiers_appear_verbatim_and_nothing_runs_from_them(seeded, scan):
    dsn, info = seeded
    awkward = info["awkward"]
    result = scan()
    role_finding = only(result, f"{awkward['schema']}.{awkward['table']}", AccessPath.ROLE)
    assert role_finding.grantee == awkward["role"] and via(role_finding) == f"via role {awkward['role']}"
    column_finding = only(
        result, f"{awkward['schema']}.{awkward['column_table']}", AccessPath.COLUMN, column=awkward["column"]
    )
    assert via(column_finding).startswith(f"column {awkward['column']}")
    filtered = scan(schemas=[awkward["schema"]], table_glob="Chat*")
    assert {f.object_name for f in filtered.findings} == {awkward["table"]}
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT to_regclass('hr.salaries') IS NOT NULL, to_regnamespace('hr') IS NOT NULL"
        ).fetchone() == (True, True)


def test_scope_filters_schema_glob_and_min_dss(seeded, scan):
    dsn, _info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE hr.unrated_notes (id int)")
        conn.execute("GRANT SELECT ON hr.unrated_notes TO all_employees")
    hr = scan(schemas=["hr"])
    assert all(k.startswith("hr.") for k in hr.objects)
    assert {f.schema_name for f in hr.findings if f.path != AccessPath.VIEW} == {"hr"}
    # A view elsewhere that reads an in-scope table is still an exposure of that table.
    assert {(f.object_fqn, f.base_object) for f in hr.findings if f.path == AccessPath.VIEW} == {
        ("reporting.review_summary", "hr.performance_reviews"),
        ("reporting.review_counts", "hr.performance_reviews"),
    }
    keys = scan(table_glob="key*")
    assert set(keys.objects) == {"telemetry.keystrokes"}
    events = scan(table_glob="telemetry.events")
    assert set(events.objects) == {"telemetry.events", "telemetry.events_2026_05", "telemetry.events_2026_06"}
    high = scan(min_dss=4)
    assert high.objects["hr.unrated_notes"] is None, "unrated is never filtered out"
    assert all(dss in (4, None) for dss in high.objects.values())
    assert "hr.org_chart" not in high.objects


def test_team_patterns_rate_uncommented_tables(seeded, scan):
    dsn, _info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE hr.unrated_notes (id int)")
        conn.execute("GRANT SELECT ON hr.unrated_notes TO all_employees")
    result = scan(classify=Classifier([("hr.unrated_*", 3), ("hr.*", 1)]))
    assert only(result, "hr.unrated_notes", AccessPath.DIRECT).dss == 3
    assert result.objects["hr.salaries"] == 4, "the comment tag wins over patterns"


def test_a_principal_that_can_become_superuser_reads_everything_by_that_path(seeded, scan):
    dsn, _info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE scan_break_glass SUPERUSER NOLOGIN")
        conn.execute("CREATE ROLE scan_oncall NOLOGIN")
        conn.execute("GRANT scan_break_glass TO scan_oncall")
        try:
            result = scan(principals=["scan_oncall"])
        finally:
            conn.execute("DROP ROLE scan_oncall")
            conn.execute("DROP ROLE scan_break_glass")
    superuser = {f.object_fqn for f in result.findings if f.path == AccessPath.SUPERUSER}
    assert set(result.objects) <= superuser
    assert {(f.grantee, via(f)) for f in result.findings if f.path == AccessPath.SUPERUSER} == {
        ("scan_break_glass", "via superuser role scan_break_glass: a superuser reads every table")
    }


def test_unknown_principal_is_named(scan):
    with pytest.raises(NotFound, match="nobody_here"):
        scan(principals=["nobody_here"])


def test_scan_only_reads_catalogs(seeded, scan):
    """Statistics show no scan of any user table: the catalogs are all we read."""
    dsn, _info = seeded
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset()")
    scan(principals=["all_employees", "contractors", "PUBLIC"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        touched = conn.execute("SELECT relname FROM pg_stat_user_tables WHERE seq_scan > 0 OR idx_scan > 0").fetchall()
    assert touched == []


def test_dsn_passwords_never_leave_the_target():
    assert "hunter2" not in strip_secrets("host=db1 dbname=w user=u password=hunter2")
    assert "hunter2" not in strip_secrets("postgresql://u:hunter2@db1:5433/w?sslmode=require")
    assert strip_secrets("postgresql://u:hunter2@db1:5433/w") == "host=db1 port=5433 dbname=w user=u"
    assert "hunter2" not in PostgresTarget("host=db1 dbname=w password=hunter2").display


@pytest.mark.timeout(60)
def test_unreachable_target_fails_clearly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = PostgresTarget(f"host=127.0.0.1 port={port} dbname=w password=hunter2", connect_timeout=2)
    with pytest.raises(TargetUnreachable) as err:
        target.scan(Scope(target=target.display, principals=["all_employees"]), Classifier())
    assert f"port={port}" in err.value.message and "hunter2" not in str(err.value)


@pytest.mark.timeout(60)
def test_silent_server_times_out_within_the_connect_timeout():
    """A port that accepts connections but never answers: the connect timeout bounds the wait."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def hold():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        target = PostgresTarget(f"host=127.0.0.1 port={listener.getsockname()[1]} dbname=w", connect_timeout=2)
        with pytest.raises(TargetUnreachable, match="cannot connect"):
            target.connect()
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


# --- ScanService: scope versions and findings in the store (SQLite and PostgreSQL stores) ------------------


def test_service_records_scope_versions_findings_and_a_scan_event(wb, seeded):
    dsn, _info = seeded
    incident = wb.incidents.declare("telemetry readable by all employees", 2)
    first = wb.scanning.scan(incident.id, dsn, ["all_employees", "public"], min_dss=2)
    second = wb.scanning.scan(incident.id, dsn, ["all_employees"], schemas=["hr"])
    wb.scanning.close()
    assert (first.version, second.version) == (1, 2)
    assert first.scope.principals == ["all_employees", "PUBLIC"] and first.scope.min_dss == 2

    version, latest = wb.scanning.latest_scope(incident.id)
    assert version == 2 and latest.schemas == ["hr"] and latest.target == first.scope.target
    assert wb.scanning.findings(incident.id, 1) == first.result.findings
    assert wb.scanning.findings(incident.id) == second.result.findings
    assert wb.scanning.summary(incident.id, 1) == first.summary
    assert [(v.version, v.findings, v.objects) for v in wb.scanning.versions(incident.id)] == [
        (1, len(first.result.findings), first.result.objects_in_scope),
        (2, len(second.result.findings), second.result.objects_in_scope),
    ]

    scans = [e for e in wb.incidents.timeline(incident.id) if e.kind == "scan"]
    assert [e.data["version"] for e in scans] == [1, 2]
    data = scans[0].data
    assert data["findings"] == len(first.result.findings) and data["by_path"]["public"] == 2
    assert data["by_principal"]["PUBLIC"] == 1 and data["scope"]["principals"] == ["all_employees", "PUBLIC"]
    assert wb.incidents.audit().ok


def test_service_rescans_a_stored_scope_without_recording(wb, seeded):
    dsn, _info = seeded
    incident = wb.incidents.declare("t", 2)
    outcome = wb.scanning.scan(incident.id, dsn, ["all_employees"])
    _version, scope = wb.scanning.latest_scope(incident.id)
    again = wb.scanning.run(scope)
    wb.scanning.close()
    assert {f.key for f in again.findings} == {f.key for f in outcome.result.findings}
    assert [v.version for v in wb.scanning.versions(incident.id)] == [1]


def test_service_records_nothing_when_the_target_is_unreachable(wb):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    incident = wb.incidents.declare("t", 2)
    with pytest.raises(TargetUnreachable):
        wb.scanning.scan(incident.id, f"host=127.0.0.1 port={port} dbname=w connect_timeout=2", ["all_employees"])
    assert wb.scanning.latest_scope(incident.id) is None and wb.scanning.findings(incident.id) == []
    assert [e.kind for e in wb.incidents.timeline(incident.id)] == ["declared"]


def test_unknown_incident_fails_before_the_target_is_touched(wb):
    with pytest.raises(NotFound, match="no incident 99"):
        wb.scanning.scan(99, "host=127.0.0.1 port=1 dbname=w", ["all_employees"])


def test_scan_survives_a_server_restart_between_scans():
    """Watch keeps the scan connection; a restarted server must not turn the next check into an error."""
    from sevtool.pgtemp import TempPostgres

    with TempPostgres() as server:
        dsn = server.create_database("restart")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE ROLE restart_readers NOLOGIN")  # this throwaway server's own roles
            conn.execute("CREATE TABLE t (id int)")
            conn.execute("GRANT SELECT ON t TO restart_readers")
        target = PostgresTarget(dsn)
        scope = Scope(target=target.display, principals=["restart_readers"])
        assert len(target.scan(scope, Classifier()).findings) == 1
        server.restart()
        assert len(target.scan(scope, Classifier()).findings) == 1
        server.pause()
        with pytest.raises(TargetUnreachable):
            target.scan(scope, Classifier())
        target.close()
