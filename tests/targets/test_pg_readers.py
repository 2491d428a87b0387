"""Exposure is decided per reader, on PostgreSQL 15 and 18: each test runs on both (`server_db`)."""

from __future__ import annotations

import psycopg
import pytest
from pg_roles import USAGE_FROM_ANOTHER_ROLE, reads, roles_dropped_after

from sevtool.core.exposure import AccessPath, Scope
from sevtool.describe import via
from sevtool.targets.postgres.target import PostgresTarget

pytestmark = pytest.mark.postgres


def unrated(schema, name, comment):
    return None


@pytest.fixture
def db(server_db):
    with roles_dropped_after(server_db):
        yield server_db


def build(dsn: str, sql: str) -> PostgresTarget:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)
    return PostgresTarget(dsn)


def test_a_member_with_usage_from_another_role_reads_the_principals_table(db):
    target = build(db, USAGE_FROM_ANOTHER_ROLE)
    scope = Scope(target="t", principals=["emp_all"])
    assert reads(db, "ana", "hr.salaries")
    result = target.scan(scope, unrated)
    assert [(f.object_fqn, f.path, f.grantee) for f in result.findings] == [
        ("hr.salaries", AccessPath.DIRECT, "emp_all")
    ]
    assert via(result.findings[0]) == "granted to emp_all; USAGE on hr from analysts (e.g. member ana)"
    assert target.exposure_by_member(scope) == {"ana": {"hr.salaries"}}

    actions = target.plan(result.findings, scope)
    target.apply(actions, lambda results: None)
    assert not reads(db, "ana", "hr.salaries")
    assert target.scan(scope, unrated).findings == []


def test_select_and_usage_must_be_held_by_one_identity(db):
    # mallory can SET ROLE to emp_all (which has SELECT, no USAGE); USAGE comes from her own other role, which
    # emp_all does not inherit. No identity of hers holds both: she cannot read.
    target = build(
        db,
        """
CREATE ROLE emp_all NOINHERIT; CREATE ROLE readers; CREATE ROLE mallory LOGIN NOINHERIT; CREATE ROLE owner1;
GRANT emp_all TO mallory; GRANT readers TO mallory;
CREATE SCHEMA s AUTHORIZATION owner1;
SET ROLE owner1; GRANT USAGE ON SCHEMA s TO readers; CREATE TABLE s.t(id int); GRANT SELECT ON s.t TO emp_all; RESET ROLE;
""",
    )
    assert not reads(db, "mallory", "s.t")
    scope = Scope(target="t", principals=["emp_all"])
    assert target.scan(scope, unrated).findings == []
    assert target.exposure_by_member(scope) == {}


def test_a_public_grant_counts_for_every_reader_with_usage_from_anywhere(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE analysts; CREATE ROLE ana LOGIN; CREATE ROLE owner1;
GRANT emp_all, analysts TO ana;
CREATE SCHEMA hr AUTHORIZATION owner1;
SET ROLE owner1; GRANT USAGE ON SCHEMA hr TO analysts; CREATE TABLE hr.chats(id int); GRANT SELECT ON hr.chats TO PUBLIC; RESET ROLE;
""",
    )
    scope = Scope(target="t", principals=["PUBLIC"])
    result = target.scan(scope, unrated)
    assert [(f.object_fqn, f.path) for f in result.findings] == [("hr.chats", AccessPath.PUBLIC)]
    assert target.exposure_by_member(scope) == {"ana": {"hr.chats"}, "analysts": {"hr.chats"}}


def test_a_member_who_reads_through_another_role_anyway_is_not_exposed(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE hr_team; CREATE ROLE hana LOGIN; CREATE ROLE owner1;
GRANT emp_all, hr_team TO hana;
CREATE SCHEMA hr AUTHORIZATION owner1;
SET ROLE owner1; GRANT USAGE ON SCHEMA hr TO hr_team; CREATE TABLE hr.reviews(id int);
GRANT SELECT ON hr.reviews TO emp_all, hr_team; RESET ROLE;
""",
    )
    result = target.scan(Scope(target="t", principals=["emp_all"]), unrated)
    assert result.findings == []
    assert any("also reads them through other roles" in n for n in result.notices)


def test_views_readable_through_pg_read_all_data_are_reported(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; GRANT pg_read_all_data TO emp_all;
CREATE SCHEMA hr; CREATE TABLE hr.salaries(id int); CREATE VIEW hr.salary_view AS SELECT * FROM hr.salaries;
""",
    )
    result = target.scan(Scope(target="t", principals=["emp_all"]), unrated)
    assert {f.object_fqn for f in result.findings if f.path == AccessPath.PREDEFINED_ROLE} == {
        "hr.salaries",
        "hr.salary_view",
    }


def test_a_grant_without_inherit_or_set_gives_the_member_nothing(db):
    with psycopg.connect(db) as conn:
        if conn.info.server_version < 160000:
            pytest.skip("per-grant INHERIT and SET options are PostgreSQL 16+")
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE nora LOGIN; CREATE ROLE sam LOGIN;
GRANT emp_all TO nora WITH INHERIT FALSE, SET FALSE;
GRANT emp_all TO sam WITH INHERIT FALSE, SET TRUE;
CREATE TABLE public.t(id int); GRANT SELECT ON public.t TO emp_all;
""",
    )
    assert not reads(db, "nora", "public.t")
    by_member = target.exposure_by_member(Scope(target="t", principals=["emp_all"]))
    assert "nora" not in by_member
    assert by_member["sam"] == {"public.t"}, "sam reads it after SET ROLE emp_all"


def paths(target: PostgresTarget, principal: str = "emp_all") -> set[tuple[str, str, str]]:
    return {
        (f.object_fqn, f.path.value, f.grantee)
        for f in target.scan(Scope(target="t", principals=[principal]), unrated).findings
    }


def test_ownership_by_a_role_the_principal_acts_as_is_named(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE logs_owner; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; GRANT logs_owner TO emp_all;
CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO emp_all; CREATE TABLE hr.logs(id int); ALTER TABLE hr.logs OWNER TO logs_owner;
""",
    )
    found = paths(target)
    assert ("hr.logs", "owner", "logs_owner") in found


def test_server_file_roles_and_security_definer_functions_are_named(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; CREATE ROLE hr_owner;
CREATE SCHEMA hr AUTHORIZATION hr_owner; CREATE TABLE hr.salaries(id int); ALTER TABLE hr.salaries OWNER TO hr_owner;
CREATE FUNCTION public.salary_of(i int) RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM hr.salaries WHERE id = i';
ALTER FUNCTION public.salary_of(int) OWNER TO hr_owner;
GRANT pg_read_server_files TO emp_all;
""",
    )
    found = paths(target)
    assert ("hr.salaries", "server_files", "pg_read_server_files") in found
    assert ("public.salary_of(i integer)", "security_definer", "PUBLIC") in found


def test_rows_of_an_inherits_child_are_read_through_its_parent(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana;
CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO emp_all;
CREATE TABLE hr.events(id int); CREATE TABLE hr.events_private(note text) INHERITS (hr.events);
GRANT SELECT ON hr.events TO emp_all;
""",
    )
    found = paths(target)
    assert {("hr.events", "direct", "emp_all"), ("hr.events_private", "inherits_parent", "emp_all")} <= found


def test_row_level_security_is_said_never_called_unreadable(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana;
CREATE TABLE public.chats(id int); ALTER TABLE public.chats ENABLE ROW LEVEL SECURITY; GRANT SELECT ON public.chats TO emp_all;
""",
    )
    [f] = target.scan(Scope(target="t", principals=["emp_all"]), unrated).findings
    assert f.path == AccessPath.DIRECT and "row-level security on" in via(f)


def test_createrole_before_16_reads_what_any_role_reads(db):
    with psycopg.connect(db) as conn:
        if conn.info.server_version >= 160000:
            pytest.skip("since 16 CREATEROLE needs ADMIN OPTION on a role to grant it")
    target = build(
        db,
        """
CREATE ROLE emp_all CREATEROLE; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; CREATE TABLE public.t(id int);
""",
    )
    assert ("public.t", "createrole", "emp_all") in paths(target)


def test_the_plan_names_what_a_grant_option_cascade_takes_from_others(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; CREATE ROLE contractor LOGIN;
CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO emp_all, contractor;
CREATE TABLE hr.complaints(id int); CREATE TABLE hr.other(id int);
GRANT SELECT ON hr.complaints, hr.other TO emp_all WITH GRANT OPTION;
SET ROLE emp_all; GRANT SELECT ON hr.complaints TO contractor; RESET ROLE;
""",
    )
    scope = Scope(target="t", principals=["emp_all"])
    actions = target.plan(target.scan(scope, unrated).findings, scope)
    by_object = {a.object_fqn: a for a in actions}
    complaints = by_object["hr.complaints"]
    assert complaints.review and [(c.role, c.objects, c.login_members, c.cause) for c in complaints.collateral] == [
        ("contractor", ["hr.complaints"], 1, "grant_option_cascade")
    ]
    assert "GRANT SELECT ON hr.complaints TO contractor" in complaints.alternative
    assert by_object["hr.other"].collateral == [] and not by_object["hr.other"].review


def test_the_plan_names_who_reads_only_through_a_public_grant(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; CREATE ROLE chat_vendor LOGIN; CREATE ROLE chat_auditor LOGIN;
CREATE SCHEMA hr; GRANT USAGE ON SCHEMA hr TO PUBLIC;
CREATE TABLE hr.chats(id int); GRANT SELECT ON hr.chats TO PUBLIC; GRANT SELECT ON hr.chats TO chat_auditor;
""",
    )
    scope = Scope(target="t", principals=["emp_all"])
    [action] = target.plan(target.scan(scope, unrated).findings, scope)
    [collateral] = action.collateral
    assert (action.grantee, collateral.role, collateral.objects, collateral.cause) == (
        "PUBLIC",
        "PUBLIC",
        ["hr.chats"],
        "public_revoke",
    )
    with psycopg.connect(db) as conn:  # login roles are cluster-wide: other tests' roles read through PUBLIC too
        [[others]] = conn.execute(
            "SELECT count(*) FROM pg_roles r WHERE rolcanlogin AND NOT rolsuper AND rolname NOT IN ('ana', 'chat_auditor')"
            " AND NOT pg_has_role(r.oid, 'pg_read_all_data', 'USAGE')"
        ).fetchall()
    assert others >= 1
    assert collateral.login_members == others, (
        "chat_vendor loses it; chat_auditor keeps its own grant; ana's loss is the exposure"
    )


def test_the_plan_names_what_a_membership_removal_takes_outside_the_scope(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; CREATE ROLE wiki_readers; GRANT wiki_readers TO emp_all;
CREATE SCHEMA hr; CREATE SCHEMA wiki; GRANT USAGE ON SCHEMA hr, wiki TO wiki_readers;
CREATE TABLE hr.salaries(id int); CREATE TABLE wiki.pages(id int); GRANT SELECT ON hr.salaries, wiki.pages TO wiki_readers;
""",
    )
    scope = Scope(target="t", principals=["emp_all"], schemas=["hr"])
    [action] = target.plan(target.scan(scope, unrated).findings, scope)
    assert action.kind == "revoke_membership"
    assert {(c.role, tuple(c.objects), c.cause) for c in action.collateral} == {
        ("ana", ("wiki.pages",), "membership"),
        ("emp_all", ("wiki.pages",), "membership"),
    }


def test_paths_no_revoke_closes_are_planned_as_manual_steps_and_keep_the_check_unclean(db):
    target = build(
        db,
        """
CREATE ROLE emp_all; CREATE ROLE ana LOGIN; GRANT emp_all TO ana; CREATE ROLE hr_owner;
CREATE SCHEMA hr AUTHORIZATION hr_owner; CREATE TABLE hr.salaries(id int); ALTER TABLE hr.salaries OWNER TO hr_owner;
CREATE FUNCTION public.salary_of(i int) RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM hr.salaries WHERE id = i';
ALTER FUNCTION public.salary_of(int) OWNER TO hr_owner;
CREATE TABLE public.own(id int); ALTER TABLE public.own OWNER TO emp_all;
""",
    )
    scope = Scope(target="t", principals=["emp_all"])
    actions = target.plan(target.scan(scope, unrated).findings, scope)
    manual = {(a.object_fqn, a.kind) for a in actions if a.kind == "manual"}
    assert manual == {("public.salary_of(i integer)", "manual"), ("public.own", "manual")}
    assert all(a.review and a.sql.startswith("-- by hand:") for a in actions if a.kind == "manual")
    results = []
    target.apply(actions, results.extend)
    assert {r.status.value for r in results if r.seq in {a.seq for a in actions if a.kind == "manual"}} == {"manual"}
    assert {f.path.value for f in target.scan(scope, unrated).findings} == {"security_definer", "owner"}, (
        "still not clean"
    )
