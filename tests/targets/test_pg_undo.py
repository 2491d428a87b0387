"""Undo that converges, on PostgreSQL 15 and 18, as a superuser and as a least-privilege responder.

Each test seeds a real server, scans, plans and applies as the acting role, then undoes and asks the server
(has_table_privilege, pg_auth_members) who can read what. Roles are cluster-wide, so every role name carries
the test database's name.
"""

from __future__ import annotations

import psycopg
import pytest
from acl_snapshot import acl_snapshot
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sevtool.core.exposure import Scope
from sevtool.core.plan import ActionStatus
from sevtool.targets.postgres import apply as postgres_apply
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.target import PostgresTarget


def unrated(schema, name, comment):
    return None


class Env:
    """A seeded database and the role that runs sevtool: the superuser, or a CREATEROLE responder (docs/responder-role.md)."""

    def __init__(self, dsn: str, acting: str):
        self.dsn, self.acting = dsn, acting
        self.p = conninfo_to_dict(dsn)["dbname"] + "_"
        with psycopg.connect(dsn) as conn:
            self.version = conn.info.server_version
        self.targets: list[PostgresTarget] = []

    def r(self, name: str) -> str:
        return self.p + name

    def sql(self, *statements: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for s in statements:
                conn.execute(s.replace("{p}", self.p))

    def roles(self, *names: str, login: bool = False) -> None:
        self.sql(*(f"CREATE ROLE {{p}}{n}{' LOGIN' if login else ''}" for n in names))

    def responder(self, owners: list[str], admin_of: list[str] = (), member_of: list[str] = ()) -> None:
        """The least-privilege responder: member of the owners, ADMIN on the roles whose memberships it may revoke."""
        self.roles("resp", login=True)
        self.sql(
            "ALTER ROLE {p}resp CREATEROLE",
            *(f"GRANT {{p}}{o} TO {{p}}resp" for o in [*owners, *member_of]),
            *(f"GRANT {{p}}{r} TO {{p}}resp WITH ADMIN OPTION" for r in admin_of),
        )

    def target(self) -> PostgresTarget:
        dsn = self.dsn
        if self.acting == "responder":
            dsn = make_conninfo(self.dsn, user=self.r("resp"))
        target = PostgresTarget(dsn)
        self.targets.append(target)
        return target

    def can_read(self, role: str, table: str) -> bool:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", [role, table]).fetchone()[0]

    def close(self):
        for t in self.targets:
            t.close()


@pytest.fixture(params=["superuser", "responder"])
def env(server_db, request):
    e = Env(server_db, request.param)
    yield e
    e.close()


def run(method, actions, **kw) -> dict:
    results = {}
    method(actions, lambda batch: results.update({r.seq: r for r in batch}), **kw)
    return results


def scan_plan_apply(env: Env, principals: list[str]):
    target = env.target()
    scope = Scope(target="t", principals=principals)
    findings = target.scan(scope, unrated).findings
    actions = target.plan(findings, scope)
    applied = run(target.apply, actions)
    return target, scope, findings, actions, applied


def _column_readable(env: Env, role: str, table: str, column: str) -> bool:
    with psycopg.connect(env.dsn) as conn:
        return conn.execute("SELECT has_column_privilege(%s, %s, %s, 'SELECT')", [role, table, column]).fetchone()[0]


def test_2_undo_gives_grant_option_holders_their_option_before_the_grants_they_made(env):
    """emp_all passed its grant option on; bob's grant (not in scope) is left alone; PUBLIC is a principal too."""
    env.roles("owner", "emp_all", "bob", "analysts", "later")
    env.sql(
        "CREATE SCHEMA hr AUTHORIZATION {p}owner",
        "GRANT USAGE ON SCHEMA hr TO {p}emp_all, {p}bob, {p}analysts, {p}later",
        "SET ROLE {p}owner",
        "CREATE TABLE hr.medical_leave (id int)",
        "CREATE TABLE hr.sick_notes (id int)",
        "GRANT SELECT ON hr.medical_leave TO {p}emp_all",
        "GRANT SELECT ON hr.medical_leave TO {p}bob WITH GRANT OPTION",
        "GRANT SELECT ON hr.sick_notes TO {p}emp_all WITH GRANT OPTION",
        "GRANT SELECT (id) ON hr.sick_notes TO {p}emp_all WITH GRANT OPTION",
        "RESET ROLE",
        "SET ROLE {p}bob",
        "GRANT SELECT ON hr.medical_leave TO {p}analysts",
        "RESET ROLE",
        "SET ROLE {p}emp_all",
        "GRANT SELECT ON hr.sick_notes TO {p}later",
        "GRANT SELECT (id) ON hr.sick_notes TO {p}analysts",
        "RESET ROLE",
    )
    if env.acting == "responder":
        env.responder(owners=["owner"])
    before = acl_snapshot(env.dsn)
    target, scope, findings, actions, applied = scan_plan_apply(env, [env.r("emp_all"), "PUBLIC"])
    column = next(a for a in actions if a.column == "id")
    assert (
        applied.pop(column.seq).status == ActionStatus.SKIPPED
    )  # the table-level REVOKE took the column grant with it
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}, applied
    actions = [a for a in actions if a.seq in applied]
    assert not env.can_read(env.r("later"), "hr.sick_notes"), "CASCADE took what emp_all passed on"
    assert not _column_readable(env, env.r("analysts"), "hr.sick_notes", "id"), "and its column grant"
    assert env.can_read(env.r("analysts"), "hr.medical_leave"), "bob's grant is not the principal's"

    undone = run(target.undo, actions)
    assert {r.status for r in undone.values()} == {ActionStatus.UNDONE}, undone
    assert env.can_read(env.r("emp_all"), "hr.medical_leave") and env.can_read(env.r("later"), "hr.sick_notes")
    assert _column_readable(env, env.r("analysts"), "hr.sick_notes", "id")
    if env.acting == "superuser":  # granted again as emp_all, after emp_all had its option back
        assert acl_snapshot(env.dsn) == before
        assert all("drift" not in r.message for r in undone.values()), undone
    else:  # the responder cannot SET ROLE emp_all: the owner grants it, and says so
        sick = next(undone[a.seq] for a in actions if a.object_name == "sick_notes")
        assert "drift" in sick.message and "cannot act as " + env.r("emp_all") in sick.message, sick
    assert {f.key for f in target.scan(scope, unrated).findings} == {f.key for f in findings}


def test_3_memberships_come_back_first_and_a_refused_object_fails_alone(env):
    """emp_all has schema USAGE only through hr_readers; its re-grant of t2 needs that USAGE back first."""
    env.roles("owner", "emp_all", "hr_readers", "analysts")
    env.sql(
        "CREATE SCHEMA hr2 AUTHORIZATION {p}owner",
        "GRANT USAGE ON SCHEMA hr2 TO {p}hr_readers, {p}analysts",
        "GRANT {p}hr_readers TO {p}emp_all",
        "SET ROLE {p}owner",
        *(f"CREATE TABLE hr2.t{i} (id int)" for i in range(1, 7)),
        "GRANT SELECT ON hr2.t1 TO {p}hr_readers",
        "GRANT SELECT ON hr2.t2 TO {p}emp_all WITH GRANT OPTION",
        *(f"GRANT SELECT ON hr2.t{i} TO {{p}}emp_all" for i in range(3, 7)),
        "RESET ROLE",
        "SET ROLE {p}emp_all",
        "GRANT SELECT ON hr2.t2 TO {p}analysts",
        "RESET ROLE",
    )
    if env.acting == "responder":
        # 16+: only a role with the grantor's privileges may revoke a membership it granted: the admin grants it here.
        env.roles("hr_admin")
        env.sql(
            "GRANT {p}hr_readers TO {p}hr_admin WITH ADMIN OPTION",
            "REVOKE {p}hr_readers FROM {p}emp_all",
            "SET ROLE {p}hr_admin",
            "GRANT {p}hr_readers TO {p}emp_all",
            "RESET ROLE",
        )
        env.responder(owners=["owner"], admin_of=["hr_readers"], member_of=["hr_admin"])
    before = acl_snapshot(env.dsn)
    target, scope, _findings, actions, applied = scan_plan_apply(env, [env.r("emp_all")])
    assert any(a.kind == ActionKind.REVOKE_MEMBERSHIP for a in actions)
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}, applied
    assert target.scan(scope, unrated).findings == []

    # One object the server refuses to restore (an event trigger stands in for any per-object refusal).
    env.sql(
        """CREATE FUNCTION {p}refuse_t5() RETURNS event_trigger LANGUAGE plpgsql AS $$
               BEGIN IF current_query() LIKE '%"t5"%' THEN RAISE EXCEPTION 'hr2.t5 is frozen by change control'; END IF; END $$""",
        "CREATE EVENT TRIGGER {p}refuse_t5 ON ddl_command_start WHEN TAG IN ('GRANT') EXECUTE FUNCTION {p}refuse_t5()",
    )
    undone = run(target.undo, actions)
    t5 = next(a.seq for a in actions if a.object_name == "t5")
    assert (
        undone[t5].status == ActionStatus.FAILED and "hr2.t5" in undone[t5].message and "frozen" in undone[t5].message
    )
    assert {r.status for seq, r in undone.items() if seq != t5} == {ActionStatus.UNDONE}, undone
    assert all(env.can_read(env.r("emp_all"), f"hr2.t{i}") for i in (1, 2, 3, 4, 6)) and env.can_read(
        env.r("analysts"), "hr2.t2"
    )
    assert not env.can_read(env.r("emp_all"), "hr2.t5")

    env.sql("DROP EVENT TRIGGER {p}refuse_t5")
    assert run(target.undo, [a for a in actions if a.seq == t5])[t5].status == ActionStatus.UNDONE
    if env.acting == "superuser":
        assert acl_snapshot(env.dsn) == before
    restored = acl_snapshot(env.dsn)
    again = run(target.undo, actions)  # everything is back: a second undo changes nothing
    assert {r.status for r in again.values()} == {ActionStatus.UNDONE} and acl_snapshot(env.dsn) == restored
    assert all("already back" in r.message for r in again.values()), again


def _members(env: Env, member: str) -> list[tuple]:
    with psycopg.connect(env.dsn) as conn:
        return conn.execute(
            """SELECT roleid::regrole::text, grantor::regrole::text, admin_option,
                                      to_jsonb(m) ->> 'inherit_option', to_jsonb(m) ->> 'set_option'
                               FROM pg_auth_members m WHERE member = %s::regrole ORDER BY 1, 2""",
            [member],
        ).fetchall()


def _seed_memberships(env: Env) -> None:
    """emp_all reaches r_set by SET ROLE only, and r_inh from two grantors (16+); before 16, one row each."""
    env.roles("owner", "emp_all", "r_set", "r_inh", "adm")
    env.sql(
        "CREATE SCHEMA m AUTHORIZATION {p}owner",
        "GRANT USAGE ON SCHEMA m TO PUBLIC",
        "SET ROLE {p}owner",
        "CREATE TABLE m.a (id int)",
        "CREATE TABLE m.b (id int)",
        "GRANT SELECT ON m.a TO {p}r_set",
        "GRANT SELECT ON m.b TO {p}r_inh",
        "RESET ROLE",
        "GRANT {p}r_set TO {p}adm WITH ADMIN OPTION",
        "GRANT {p}r_inh TO {p}adm WITH ADMIN OPTION",
    )
    if env.version >= 160000:
        env.sql(
            "GRANT {p}r_set TO {p}emp_all WITH INHERIT FALSE, SET TRUE GRANTED BY {p}adm",
            "GRANT {p}r_inh TO {p}emp_all WITH INHERIT TRUE, SET FALSE GRANTED BY {p}adm",
            "GRANT {p}r_inh TO {p}emp_all WITH ADMIN TRUE, INHERIT TRUE, SET TRUE",
        )
    else:
        env.sql("GRANT {p}r_set TO {p}emp_all GRANTED BY {p}adm", "GRANT {p}r_inh TO {p}emp_all WITH ADMIN OPTION")
    if env.acting == "responder":
        # From 16 the responder revokes adm's rows with adm's privileges, and the superuser's row not at all (below).
        env.responder(owners=["owner"], admin_of=["r_set", "r_inh"], member_of=["adm"])


def test_4_every_membership_row_comes_back_with_its_grantor_and_options(env):
    _seed_memberships(env)
    emp = env.r("emp_all")
    before, rows_before = acl_snapshot(env.dsn), _members(env, emp)
    target, scope, findings, actions, applied = scan_plan_apply(env, [emp])
    memberships = [a for a in actions if a.kind == ActionKind.REVOKE_MEMBERSHIP]
    expected_rows = 3 if env.version >= 160000 else 2
    assert len(memberships) == expected_rows and all(" GRANTED BY " in a.sql for a in memberships)
    superuser_row = [a for a in memberships if a.grantor not in (env.r("adm"),)]
    if env.acting == "responder" and env.version >= 160000:
        # Only the superuser can take away the superuser's row: the responder is told, with the server's words.
        for a in superuser_row:
            assert applied[a.seq].status == ActionStatus.FAILED and "permission denied" in applied[a.seq].message, (
                applied[a.seq]
            )
        assert [r[1] for r in _members(env, emp)] == ["postgres"]
    else:
        assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}, applied
        assert _members(env, emp) == [] and target.scan(scope, unrated).findings == []

    undone = run(target.undo, [a for a in actions if applied[a.seq].status == ActionStatus.APPLIED])
    assert {r.status for r in undone.values()} == {ActionStatus.UNDONE}, undone
    if env.acting == "responder" and env.version < 160000:
        # Before 16 only a superuser may name another grantor: the access comes back as the responder's, reported.
        rows = _members(env, emp)
        assert [(r[0], r[2]) for r in rows] == [(r[0], r[2]) for r in rows_before] and {r[1] for r in rows} == {
            env.r("resp")
        }
        assert all("instead of" in undone[a.seq].message for a in memberships), undone
    else:
        assert _members(env, emp) == rows_before and acl_snapshot(env.dsn) == before
    assert env.can_read(emp, "m.b") and {f.key for f in target.scan(scope, unrated).findings} == {
        f.key for f in findings
    }


def test_4_a_revoke_answered_only_by_a_warning_fails_with_the_warning(server_db, monkeypatch):
    """A plain REVOKE of a membership another role granted: from 16 the server removes nothing and only warns."""
    env = Env(server_db, "superuser")
    if env.version < 160000:
        pytest.skip("before 16 a plain REVOKE removes the membership whoever granted it")
    _seed_memberships(env)
    plain = postgres_apply.statements

    def without_grantor(batch, q):
        return [s.split(" GRANTED BY ")[0] for s in plain(batch, q)]

    monkeypatch.setattr(postgres_apply, "statements", without_grantor)
    _target, _scope, _findings, actions, applied = scan_plan_apply(env, [env.r("emp_all")])
    by_adm = [a for a in actions if a.kind == ActionKind.REVOKE_MEMBERSHIP and a.grantor == env.r("adm")]
    assert by_adm
    for a in by_adm:
        assert applied[a.seq].status == ActionStatus.FAILED, applied[a.seq]
        assert (
            "server warning 01" in applied[a.seq].message
            and "has not been granted membership" in applied[a.seq].message
        )
    env.close()


def test_5_undo_is_a_three_way_merge_and_reports_drift(env):
    env.roles("owner", "emp_all", "ben", "auditors")
    env.sql(
        "CREATE SCHEMA d AUTHORIZATION {p}owner",
        "GRANT USAGE ON SCHEMA d TO PUBLIC",
        "SET ROLE {p}owner",
        *(
            f"CREATE TABLE d.{t} (id int); GRANT SELECT ON d.{t} TO {{p}}emp_all, {{p}}ben"
            for t in ("t", "u", "v", "w")
        ),
        "RESET ROLE",
    )
    if env.acting == "responder":
        env.responder(owners=["owner"])
    target, _scope, _findings, actions, applied = scan_plan_apply(env, [env.r("emp_all")])
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}
    env.sql(
        "SET ROLE {p}owner",
        "GRANT SELECT ON d.t TO {p}auditors",  # made after the apply: must stay
        "GRANT SELECT ON d.u TO {p}emp_all",  # someone already put it back
        "REVOKE SELECT ON d.v FROM {p}ben",
        "RESET ROLE",
    )  # someone else's later revoke: must stay

    undone = run(target.undo, actions)
    seq = {a.object_name: a.seq for a in actions}
    assert {r.status for r in undone.values()} == {ActionStatus.UNDONE}, undone
    assert all(env.can_read(env.r("emp_all"), f"d.{t}") for t in "tuvw"), "every removed item is present again"
    assert env.can_read(env.r("auditors"), "d.t") and not env.can_read(env.r("ben"), "d.v")
    assert "drift" in undone[seq["t"]].message and env.r("auditors") in undone[seq["t"]].message
    assert "already back" in undone[seq["u"]].message
    assert "drift" in undone[seq["v"]].message and "revoked by someone else" in undone[seq["v"]].message
    assert "drift" not in undone[seq["w"]].message


def test_5_drift_reaches_the_ledger_and_the_timeline(sqlite_wb, server_db):
    wb = sqlite_wb
    env = Env(server_db, "superuser")
    env.roles("emp_all", "auditors")
    env.sql(
        "CREATE SCHEMA d",
        "GRANT USAGE ON SCHEMA d TO PUBLIC",
        "CREATE TABLE d.t (id int)",
        "GRANT SELECT ON d.t TO {p}emp_all",
    )
    incident = wb.incidents.declare("drift", 2)
    wb.scanning.scan(incident.id, env.dsn, [env.r("emp_all")])
    wb.revocation.plan(incident.id)
    assert wb.revocation.apply(incident.id).ok
    env.sql("GRANT SELECT ON d.t TO {p}auditors")
    assert wb.revocation.undo(incident.id).ok
    ((_, action),) = wb.revocation.ledger(incident.id)
    assert action.status == ActionStatus.UNDONE and "drift" in action.message and env.r("auditors") in action.message
    event = next(e for e in reversed(wb.incidents.timeline(incident.id)) if e.kind == "undo")
    assert "drift" in event.summary and env.r("auditors") in str(event.data["drift"])


def test_6_a_responder_restores_access_it_cannot_restore_as_the_superuser_grantor(server_db):
    """Before 16 a CREATEROLE responder revokes a superuser's membership grant but cannot name the superuser as grantor."""
    env = Env(server_db, "responder")
    env.roles("owner", "emp_all", "r1")
    env.sql(
        "CREATE SCHEMA s6 AUTHORIZATION {p}owner",
        "GRANT USAGE ON SCHEMA s6 TO PUBLIC",
        "SET ROLE {p}owner",
        "CREATE TABLE s6.x (id int)",
        "GRANT SELECT ON s6.x TO {p}r1",
        "RESET ROLE",
        "GRANT {p}r1 TO {p}emp_all",
    )
    env.responder(owners=["owner"], admin_of=["r1"])
    target, _scope, _findings, actions, applied = scan_plan_apply(env, [env.r("emp_all")])
    (a,) = actions
    if (
        env.version >= 160000
    ):  # from 16 only the superuser may revoke the superuser's grant: said, with what the server said
        assert applied[a.seq].status == ActionStatus.FAILED and "granted by role" in applied[a.seq].message
        assert env.can_read(env.r("emp_all"), "s6.x")
        return
    assert applied[a.seq].status == ActionStatus.APPLIED and not env.can_read(env.r("emp_all"), "s6.x")
    result = run(target.undo, actions)[a.seq]
    assert (
        result.status == ActionStatus.UNDONE
        and "instead of postgres" in result.message
        and "superuser" in result.message
    )
    assert env.can_read(env.r("emp_all"), "s6.x"), "never leave access missing"
    assert _members(env, env.r("emp_all")) == [(env.r("r1"), env.r("resp"), False, None, None)]


def test_5_the_merge_replays_the_apply_as_the_server_ran_it(server_db):
    """A column grant made from a table-level grant option survives the table-level REVOKE ... CASCADE (the server
    only cascades from an item that loses grant options): undo must not call it drift, nor touch it."""
    env = Env(server_db, "superuser")
    env.roles("emp_all", "analysts")
    env.sql(
        "CREATE SCHEMA c",
        "GRANT USAGE ON SCHEMA c TO PUBLIC",
        "CREATE TABLE c.t (id int)",
        "GRANT SELECT ON c.t TO {p}emp_all WITH GRANT OPTION",
        "SET ROLE {p}emp_all",
        "GRANT SELECT (id) ON c.t TO {p}analysts",
        "RESET ROLE",
    )
    before = acl_snapshot(env.dsn)
    target, _scope, _findings, actions, applied = scan_plan_apply(env, [env.r("emp_all")])
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}
    assert _column_readable(env, env.r("analysts"), "c.t", "id"), "the server left the column grant in place"
    undone = run(target.undo, actions)
    assert [r.message for r in undone.values()] == ["restored what the apply removed"]
    assert acl_snapshot(env.dsn) == before
    env.close()


def test_6_a_grant_the_server_only_warns_about_fails_with_the_warning(server_db):
    """After the apply the table changed owner; the responder holds a grant option, but not SELECT's: the server
    answers its GRANT SELECT with a WARNING and grants nothing. Undo says so for that table; the others are restored."""
    env = Env(server_db, "responder")
    env.roles("owner", "other_owner", "emp_all")
    env.sql(
        "CREATE SCHEMA w AUTHORIZATION {p}owner",
        "GRANT USAGE ON SCHEMA w TO PUBLIC",
        "SET ROLE {p}owner",
        "CREATE TABLE w.a (id int)",
        "CREATE TABLE w.b (id int)",
        "GRANT SELECT ON w.a, w.b TO {p}emp_all",
        "RESET ROLE",
    )
    env.responder(owners=["owner"])
    target, _scope, _findings, actions, applied = scan_plan_apply(env, [env.r("emp_all")])
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}
    env.sql("ALTER TABLE w.b OWNER TO {p}other_owner", "GRANT INSERT ON w.b TO {p}resp WITH GRANT OPTION")
    undone = run(target.undo, actions)
    seq = {a.object_name: a.seq for a in actions}
    assert undone[seq["a"]].status == ActionStatus.UNDONE and env.can_read(env.r("emp_all"), "w.a")
    b = undone[seq["b"]]
    assert b.status == ActionStatus.FAILED and "w.b" in b.message and "server warning 01007" in b.message, b
    assert f"owner changed from {env.r('owner')} to {env.r('other_owner')}" in b.message
    assert not env.can_read(env.r("emp_all"), "w.b")
