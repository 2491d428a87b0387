"""The oracle: who reads what, and what is exposed through a principal, answered by PostgreSQL alone.

Nothing here re-implements a privilege rule. Every answer is one of the server's:

- members of the principal: `pg_has_role(m, principal, 'MEMBER')`, superusers excluded (a superuser is
  "member" of every role). The principal itself is included: it is a reader too (a login principal, or the
  role members SET ROLE to), and without itself it reads nothing, so everything it reads is exposure through
  it. For the principal PUBLIC: every role of the world (PUBLIC is not a role that reads).
- identities of a member: itself, plus every role r it can SET ROLE to: `pg_has_role(m, r, 'MEMBER')` on 15
  (SET ROLE needs membership only), `pg_has_role(m, r, 'SET')` on 16+.
- identity i reads relation o: the catalog answer `(has_table_privilege(i, o, 'SELECT') OR
  has_any_column_privilege(i, o, 'SELECT')) AND has_schema_privilege(i, schema(o), 'USAGE')`, confirmed by a
  live zero-row read `SET ROLE i; SELECT FROM o LIMIT 0` in a savepoint that is rolled back (`SELECT FROM`
  names no column, so it succeeds on column-only privileges; `SELECT *` would not). The two must agree, with
  one exception the server itself explains: a view the catalog lets i select from can still fail because the
  view's *base* relation is checked at read time (as the view owner, or as i for security_invoker views). That
  is accepted only when the error names a relation other than o; the live read is then the answer (no data
  reaches i). Any other disagreement raises OracleDisagreement: a finding about the oracle, never hidden.
- member m reads o iff some identity of m reads o.
- exposed through the principal: (m, o) read now, and not in the counterfactual world (the principal itself reads
  nothing there), built inside one
  transaction that is rolled back: schema USAGE of every role is recorded, every SELECT grant to PUBLIC on
  relations and columns is revoked as its grantor, every membership in the principal is revoked (16+: per
  grantor), USAGE is re-granted to each role that lost it (USAGE from any source counts; the exposure is about
  who gives SELECT), and member reads are computed again. Each step is read back; a leftover raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

PUBLIC = "PUBLIC"
RELKINDS = ("r", "p", "v", "m", "f")
_NOT_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"


class OracleDisagreement(AssertionError):
    """The server's two answers (catalog functions, live read) disagree, or a counterfactual step did not take."""


@dataclass(frozen=True)
class Rel:
    schema: str
    name: str
    relkind: str

    @property
    def fqn(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))


@dataclass
class Exposure:
    """The oracle's answer for one principal, in one state of the database."""

    principal: str
    members: list[str]
    relations: list[str]  # every relation asked about (fqn)
    now: dict[str, set[str]]  # member -> fqns it reads now
    without: dict[str, set[str]]  # member -> fqns it reads in the counterfactual world

    @property
    def pairs(self) -> set[tuple[str, str]]:
        return {(m, o) for m in self.members for o in self.now[m] - self.without[m]}

    @property
    def objects(self) -> set[str]:
        return {o for _m, o in self.pairs}

    def by_member(self) -> dict[str, set[str]]:
        return {m: self.now[m] - self.without[m] for m in self.members if self.now[m] - self.without[m]}


def connect(dsn: str) -> psycopg.Connection:
    """The oracle's own superuser connection; autocommit, so every computation opens and rolls back its own transaction."""
    return psycopg.connect(dsn, autocommit=True)


def major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


def relations(conn: psycopg.Connection) -> list[Rel]:
    rows = conn.execute(
        f"""SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE c.relkind = ANY(%s) AND {_NOT_SYSTEM} ORDER BY 1, 2""",
        [list(RELKINDS)],
    ).fetchall()
    return [Rel(*row) for row in rows]


def members_of(conn: psycopg.Connection, principal: str, world_roles: list[str]) -> list[str]:
    if principal == PUBLIC:
        return sorted(world_roles)
    rows = conn.execute(
        """SELECT r.rolname FROM pg_roles r, pg_roles p
                           WHERE p.rolname = %s AND NOT r.rolsuper AND pg_has_role(r.oid, p.oid, 'MEMBER')
                           ORDER BY 1""",
        [principal],
    ).fetchall()
    return [r[0] for r in rows]


def identities_of(conn: psycopg.Connection, roles: list[str]) -> dict[str, set[str]]:
    """Each role and the roles it can SET ROLE to (itself included)."""
    how = "SET" if major(conn) >= 16 else "MEMBER"
    rows = conn.execute(
        """SELECT m.rolname, r.rolname FROM pg_roles m, pg_roles r
                           WHERE m.rolname = ANY(%s) AND pg_has_role(m.oid, r.oid, %s)""",
        [list(roles), how],
    ).fetchall()
    out: dict[str, set[str]] = {m: {m} for m in roles}
    for m, r in rows:
        out[m].add(r)
    return out


def readable(conn: psycopg.Connection, identities: set[str], rels: list[Rel]) -> dict[str, set[str]]:
    """identity -> fqns it reads, each (identity, relation) answered by the catalog and by a live zero-row read."""
    catalog = {
        (i, Rel(s, n, k)): ok
        for i, s, n, k, ok in conn.execute(
            f"""
        SELECT r.rolname, n.nspname, c.relname, c.relkind::text,
               (has_table_privilege(r.oid, c.oid, 'SELECT') OR has_any_column_privilege(r.oid, c.oid, 'SELECT'))
               AND has_schema_privilege(r.oid, n.oid, 'USAGE')
          FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE r.rolname = ANY(%s) AND c.relkind = ANY(%s) AND {_NOT_SYSTEM}""",
            [sorted(identities), list(RELKINDS)],
        ).fetchall()
    }
    out: dict[str, set[str]] = {i: set() for i in identities}
    problems = []
    for i in sorted(identities):
        for rel in rels:
            says = catalog[(i, rel)]
            reads, error = live_read(conn, i, rel)
            if reads and not says:
                problems.append(f"{i} read {rel.fqn} live, but the catalog functions say it cannot")
            elif says and not reads and not (rel.relkind == "v" and _names_another_relation(error, rel)):
                problems.append(f"{i} cannot read {rel.fqn} live ({error}), but the catalog functions say it can")
            if reads:
                out[i].add(rel.fqn)
    _assert_superuser_again(conn)
    if problems:
        raise OracleDisagreement("the server's catalog functions and live reads disagree:\n  " + "\n  ".join(problems))
    return out


def live_read(conn: psycopg.Connection, role: str, rel: Rel) -> tuple[bool, str]:
    """`SELECT FROM o LIMIT 0` as `role`, in a savepoint that is always rolled back (so the SET ROLE is too)."""
    ok = False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("SELECT FROM {} LIMIT 0").format(rel.ident))
            ok = True
            raise psycopg.Rollback()
    except psycopg.errors.InsufficientPrivilege as exc:
        return False, exc.diag.message_primary or str(exc)
    return ok, ""


_DENIED = (
    "permission denied for materialized view ",
    "permission denied for table ",
    "permission denied for view ",
    "permission denied for relation ",
)


def _names_another_relation(error: str, rel: Rel) -> bool:
    """The refusal names a relation, and not this one: a base relation of the view was refused, not the view.
    (World relation names are unique across schemas, and the server's message names the relation without its schema.)"""
    for prefix in _DENIED:
        if error.startswith(prefix):
            return error.removeprefix(prefix) != rel.name
    return False


def _assert_superuser_again(conn: psycopg.Connection) -> None:
    user, is_super = conn.execute("SELECT current_user, current_setting('is_superuser')").fetchone()
    if is_super != "on":
        raise OracleDisagreement(f"a live read left the oracle's session as {user}")


def member_reads(conn: psycopg.Connection, members: list[str], rels: list[Rel]) -> dict[str, set[str]]:
    """member -> fqns some identity of it reads."""
    ids = identities_of(conn, members)
    reads = readable(conn, set().union(*ids.values()) if ids else set(), rels)
    return {m: set().union(*(reads[i] for i in ids[m])) for m in members}


def role_reads(dsn: str, roles: list[str]) -> dict[str, set[str]]:
    """role -> fqns it reads as itself (no SET ROLE), in the database as it is now."""
    with connect(dsn) as conn, conn.transaction(force_rollback=True):
        return readable(conn, set(roles), relations(conn))


def people_reads(dsn: str, roles: list[str]) -> dict[str, set[str]]:
    """role -> fqns it reads as itself or any role it can SET ROLE to, in the database as it is now."""
    with connect(dsn) as conn, conn.transaction(force_rollback=True):
        return member_reads(conn, roles, relations(conn))


def exposure(dsn: str, principal: str, world_roles: list[str], members: list[str] | None = None) -> Exposure:
    """What members of `principal` read now and could not read without it. `members` defaults to today's members;
    after a revocation pass the members from before it, so a removed membership is still asked about."""
    with connect(dsn) as conn:
        members = sorted(set(members or []) | set(members_of(conn, principal, world_roles)))
        with conn.transaction(force_rollback=True):
            rels = relations(conn)
            now = member_reads(conn, members, rels)
        with conn.transaction(force_rollback=True):
            _counterfactual(conn, principal)
            without = member_reads(conn, members, rels)
        if principal in without:
            without[principal] = set()  # the principal without itself
    return Exposure(principal, members, [r.fqn for r in rels], now, without)


# --- the counterfactual world ------------------------------------------------------------------


def _counterfactual(conn: psycopg.Connection, principal: str) -> None:
    """Inside the caller's transaction: take away what the principal gives, keep schema USAGE as it was."""
    usage_before = _usage(conn)
    _revoke_public_selects(conn)
    if principal != PUBLIC:
        _revoke_memberships(conn, principal)
    for role, schema in sorted(usage_before - _usage(conn)):
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role)))
    if (after := _usage(conn)) != usage_before:
        raise OracleDisagreement(
            f"schema USAGE was not restored: lost {sorted(usage_before - after)}, gained {sorted(after - usage_before)}"
        )


def _usage(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """(role, schema) pairs with USAGE, for every non-superuser role and every non-system schema."""
    rows = conn.execute(f"""SELECT r.rolname, n.nspname FROM pg_roles r, pg_namespace n
                            WHERE NOT r.rolsuper AND {_NOT_SYSTEM} AND has_schema_privilege(r.oid, n.oid, 'USAGE')""").fetchall()
    return set(rows)


_PUBLIC_SELECTS = f"""
SELECT n.nspname, c.relname, NULL::name, pg_get_userbyid(a.grantor)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a
 WHERE a.grantee = 0 AND a.privilege_type = 'SELECT' AND {_NOT_SYSTEM}
UNION ALL
SELECT n.nspname, c.relname, att.attname, pg_get_userbyid(a.grantor)
  FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL aclexplode(att.attacl) a
 WHERE a.grantee = 0 AND a.privilege_type = 'SELECT' AND NOT att.attisdropped AND {_NOT_SYSTEM}
 ORDER BY 1, 2, 3, 4
"""


def _revoke_public_selects(conn: psycopg.Connection) -> None:
    """Every SELECT grant to PUBLIC, revoked as the role that granted it (a superuser's REVOKE acts as the owner and
    would leave a grant-option holder's grant in place). The grantor must see the schema to name the table: when it
    cannot, it gets USAGE for the one statement and loses it right after."""
    items = conn.execute(_PUBLIC_SELECTS).fetchall()
    for schema, table, column, grantor in items:
        cols = sql.SQL(" ({})").format(sql.Identifier(column)) if column else sql.SQL("")
        revoke = sql.SQL("REVOKE SELECT{} ON TABLE {}.{} FROM PUBLIC").format(
            cols, sql.Identifier(schema), sql.Identifier(table)
        )
        lacks_usage = not conn.execute("SELECT has_schema_privilege(%s, %s, 'USAGE')", [grantor, schema]).fetchone()[0]
        if lacks_usage:
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(grantor))
            )
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(grantor)))
        conn.execute(revoke)
        conn.execute("RESET ROLE")
        if lacks_usage:
            conn.execute(
                sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(sql.Identifier(schema), sql.Identifier(grantor))
            )
    left = conn.execute(_PUBLIC_SELECTS).fetchall()
    if left:
        raise OracleDisagreement(
            f"SELECT grants to PUBLIC survived the counterfactual's REVOKEs (schema, relation, column, grantor): {left}"
        )


def _revoke_memberships(conn: psycopg.Connection, principal: str) -> None:
    """Every membership in the principal. 16+ keeps one row per grantor: each is revoked GRANTED BY its grantor, with
    CASCADE for the memberships granted on by a member holding ADMIN OPTION (they go too: all rows must go)."""
    sixteen = major(conn) >= 16
    rows_sql = """SELECT pg_get_userbyid(member), pg_get_userbyid(grantor) FROM pg_auth_members
                  WHERE roleid = (SELECT oid FROM pg_roles WHERE rolname = %s) ORDER BY 1, 2"""
    for _attempt in range(1000):
        rows = conn.execute(rows_sql, [principal]).fetchall()
        if not rows:
            return
        member, grantor = rows[0]
        stmt = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(principal), sql.Identifier(member))
        if sixteen:
            stmt += sql.SQL(" GRANTED BY {} CASCADE").format(sql.Identifier(grantor))
        conn.execute(stmt)
        if conn.execute(rows_sql, [principal]).fetchall() == rows:
            raise OracleDisagreement(f"REVOKE {principal} FROM {member} (granted by {grantor}) changed nothing")
    raise OracleDisagreement(f"memberships in {principal} kept coming back")
