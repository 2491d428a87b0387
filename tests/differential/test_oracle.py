"""The oracle on small hand-written worlds whose answers a reader can check in their head.

The differential test judges sevtool by the oracle; these tests judge the oracle, on each server version.
"""

from __future__ import annotations

import psycopg
import pytest

from differential import oracle

ROLES = ["emp_all", "dw_a", "dw_b", "dw_side", "dw_holder", "dw_owner"]


@pytest.fixture
def db(server_db):
    """A database with the roles above (none in any other), dropped again after the test: roles are cluster-wide."""
    conn = psycopg.connect(server_db, autocommit=True)
    for role in ROLES:
        conn.execute(f'CREATE ROLE "{role}"')
    conn.execute("CREATE SCHEMA s; CREATE TABLE s.t (id int, secret text); CREATE TABLE s.u (id int)")
    yield conn, server_db
    conn.execute("RESET ROLE")
    for role in ROLES:
        conn.execute(f'DROP OWNED BY "{role}" CASCADE')
    conn.execute("DROP ROLE " + ", ".join(f'"{r}"' for r in ROLES))
    conn.close()


def test_select_from_without_columns_is_the_live_read_that_sees_column_grants(db):
    conn, _dsn = db
    conn.execute("GRANT USAGE ON SCHEMA s TO dw_a; GRANT SELECT (secret) ON s.t TO dw_a")
    assert oracle.live_read(conn, "dw_a", oracle.Rel("s", "t", "r")) == (True, "")
    reads, error = oracle.live_read(conn, "dw_a", oracle.Rel("s", "u", "r"))
    assert not reads and error == "permission denied for table u"
    assert conn.execute("SELECT current_user").fetchone()[0] == "postgres", "the savepoint took the SET ROLE with it"
    assert oracle.readable(conn, {"dw_a", "dw_b"}, oracle.relations(conn)) == {"dw_a": {"s.t"}, "dw_b": set()}


def test_usage_from_another_role_and_select_from_the_principal_is_exposure(db):
    conn, dsn = db
    conn.execute("GRANT emp_all TO dw_a; GRANT emp_all TO dw_b; GRANT dw_side TO dw_a")
    conn.execute("GRANT USAGE ON SCHEMA s TO dw_side; GRANT SELECT ON s.t TO emp_all")
    got = oracle.exposure(dsn, "emp_all", ROLES)
    assert got.members == ["dw_a", "dw_b", "emp_all"]  # the principal is a reader too
    assert got.pairs == {
        ("dw_a", "s.t")
    }  # dw_b and emp_all have no USAGE from anywhere; dw_a keeps dw_side's in the counterfactual


def test_public_grants_go_in_the_counterfactual_even_when_a_grant_option_holder_made_them(db):
    conn, dsn = db
    conn.execute("GRANT emp_all TO dw_a; GRANT emp_all TO dw_b; GRANT USAGE ON SCHEMA s TO PUBLIC")
    conn.execute("GRANT SELECT ON s.t TO dw_holder WITH GRANT OPTION")
    conn.execute("SET ROLE dw_holder; GRANT SELECT ON s.t TO PUBLIC; RESET ROLE")
    conn.execute("GRANT SELECT ON s.u TO PUBLIC; GRANT SELECT ON s.u TO dw_b")
    got = oracle.exposure(dsn, "emp_all", ROLES)
    assert got.pairs == {
        ("dw_a", "s.t"),
        ("dw_b", "s.t"),
        ("dw_a", "s.u"),
        ("emp_all", "s.t"),
        ("emp_all", "s.u"),
    }  # dw_b reads s.u on its own grant
    assert (
        "dw_holder=r*/postgres,=r/dw_holder}"
        in conn.execute("SELECT relacl::text FROM pg_class WHERE oid = 's.t'::regclass").fetchone()[0]
    )  # rolled back
    public = oracle.exposure(dsn, "PUBLIC", ROLES)  # every role is a member of PUBLIC; only the PUBLIC grants go
    assert public.pairs == {(r, "s.t") for r in ROLES if r != "dw_holder"} | {(r, "s.u") for r in ROLES if r != "dw_b"}


def test_set_role_counts_and_a_membership_without_inherit_or_set_does_not(db):
    conn, dsn = db
    conn.execute(
        "ALTER ROLE dw_a NOINHERIT; GRANT emp_all TO dw_a; GRANT USAGE ON SCHEMA s TO emp_all; GRANT SELECT ON s.t TO emp_all"
    )
    if oracle.major(conn) >= 16:
        conn.execute("GRANT emp_all TO dw_b WITH INHERIT FALSE, SET FALSE")
        expected = {
            ("dw_a", "s.t"),
            ("emp_all", "s.t"),
        }  # dw_a: no inheritance, but SET ROLE emp_all; dw_b: a member that can use nothing
    else:
        conn.execute("GRANT emp_all TO dw_b")
        expected = {("dw_a", "s.t"), ("dw_b", "s.t"), ("emp_all", "s.t")}
    got = oracle.exposure(dsn, "emp_all", ROLES)
    assert got.members == ["dw_a", "dw_b", "emp_all"] and got.pairs == expected


def test_every_membership_row_goes_in_the_counterfactual_whoever_granted_it(db):
    conn, dsn = db
    conn.execute(
        "GRANT emp_all TO dw_a WITH ADMIN OPTION; GRANT USAGE ON SCHEMA s TO PUBLIC; GRANT SELECT ON s.t TO emp_all"
    )
    conn.execute("SET ROLE dw_a; GRANT emp_all TO dw_b; RESET ROLE; GRANT emp_all TO dw_b")  # 16+: two rows for dw_b
    assert oracle.exposure(dsn, "emp_all", ROLES).pairs == {("dw_a", "s.t"), ("dw_b", "s.t"), ("emp_all", "s.t")}
    assert conn.execute("SELECT count(*) FROM pg_auth_members WHERE roleid = 'emp_all'::regrole").fetchone()[0] >= 2, (
        "rolled back"
    )


def test_a_view_refused_on_its_base_is_not_read_and_not_a_disagreement(db):
    conn, _dsn = db
    conn.execute(
        "GRANT USAGE ON SCHEMA s TO dw_a; CREATE VIEW s.v AS SELECT id FROM s.t; ALTER VIEW s.v OWNER TO dw_owner"
    )
    conn.execute("GRANT SELECT ON s.v TO dw_a")  # the owner cannot read s.t: the read fails on s.t, not on s.v
    assert oracle.live_read(conn, "dw_a", oracle.Rel("s", "v", "v")) == (False, "permission denied for table t")
    assert oracle.readable(conn, {"dw_a"}, [oracle.Rel("s", "v", "v")]) == {"dw_a": set()}
