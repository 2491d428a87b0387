"""SQL text and quoting for revocation: the catalog queries, identifier quoting, and the REVOKE statements of a batch.

Everything that turns names into SQL lives here, so there is one place to check that names are data, never SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sevtool.core.exposure import PUBLIC
from sevtool.core.plan import Action
from sevtool.errors import TargetRejected
from sevtool.targets.postgres.plugin import ActionKind

if TYPE_CHECKING:
    import psycopg

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")
RELATION_KINDS = (
    ActionKind.REVOKE_TABLE,
    ActionKind.REVOKE_VIEW,
    ActionKind.REVOKE_AS_GRANTOR,
    ActionKind.REVOKE_GRANT_OPTION,
)

_RELATION_ACL = """
SELECT want.i, c.oid, c.relkind, c.relispartition, pg_get_userbyid(c.relowner), c.relacl::text,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END, pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable
FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json)) WITH ORDINALITY AS want(nsp, rel, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
LEFT JOIN LATERAL aclexplode(c.relacl) x ON x.grantee = ANY(%(grantees)s::oid[])
"""

# Role names -> oids as ACL items hold them; PUBLIC is 0. A role that no longer exists is left out.
_ROLE_OIDS = "SELECT rolname, oid FROM pg_roles WHERE rolname = ANY(%s)"

# Every column ACL of the database: one pass over pg_attribute is cheaper than an index lookup per exposed
# table when tens of thousands are exposed, and column grants are few.
_COLUMN_ACLS = """
SELECT attrelid, attname, attacl::text FROM pg_attribute WHERE attacl IS NOT NULL AND attnum > 0 AND NOT attisdropped
"""

# Read-back: which of these objects still hold an item (grantee, grantor) with one of the privileges.
# aclcontains() matches grantee and grantor exactly and checks the privilege bits, without exploding the ACL.
# Objects are looked up by schema and name, not to_regclass(quoted name): parsing every name costs the server
# more than the read-back itself, twice per batch.
_RELATION_STILL_GRANTED = """
SELECT want.i FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json)) WITH ORDINALITY AS want(nsp, rel, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
WHERE EXISTS (SELECT FROM unnest(%(privs)s::text[]) AS p WHERE aclcontains(c.relacl, makeaclitem(%(grantee)s, %(grantor)s, p, false)))
"""

_COLUMN_ACL = """
SELECT want.i, pg_get_userbyid(c.relowner), att.attacl::text,
       (SELECT json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                         pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable))
          FROM aclexplode(att.attacl) x)
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json), json_array_elements_text(%s::json)) WITH ORDINALITY AS want(nsp, rel, col, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
JOIN pg_attribute att ON att.attrelid = c.oid AND att.attname = want.col AND NOT att.attisdropped
"""

# Schema '' means the role's global default privileges (defaclnamespace 0).
_DEFAULT_ACL = """
SELECT want.i, d.defaclacl::text,
       (SELECT json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                         pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable))
          FROM aclexplode(d.defaclacl) x)
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) WITH ORDINALITY AS want(role, nsp, i)
JOIN pg_roles r ON r.rolname = want.role
JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r'
 AND d.defaclnamespace = CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END
"""

# Every pg_auth_members row of each (role, member): one per grantor from 16, each with its options (INHERIT and
# SET exist from 16 only: read through to_jsonb, they come back NULL before).
_MEMBERSHIP = """
SELECT want.i, pg_get_userbyid(m.grantor), m.admin_option, (to_jsonb(m) ->> 'inherit_option')::bool, (to_jsonb(m) ->> 'set_option')::bool
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) WITH ORDINALITY AS want(role, member, i)
JOIN pg_roles r ON r.rolname = want.role
JOIN pg_roles mem ON mem.rolname = want.member
JOIN pg_auth_members m ON m.roleid = r.oid AND m.member = mem.oid
"""

# The roles the principal belongs to directly that lead (transitively) to the role holding the grant.
_FIRST_HOPS = """
WITH RECURSIVE up(roleid, first_hop) AS (
    SELECT m.roleid, m.roleid FROM pg_auth_members m JOIN pg_roles p ON p.oid = m.member WHERE p.rolname = %(principal)s
  UNION
    SELECT m.roleid, up.first_hop FROM pg_auth_members m JOIN up ON m.member = up.roleid
)
SELECT DISTINCT pg_get_userbyid(first_hop) FROM up JOIN pg_roles g ON g.oid = up.roleid WHERE g.rolname = %(grantee)s ORDER BY 1
"""


def json_list(values: Iterable[object]) -> str:
    """A list parameter as JSON text, unpacked by json_array_elements_text in the query.

    psycopg dumps a text[] element by element in Python, which shows at a thousand names per batch; json.dumps
    does it in C, and the server parses JSON faster than array literals too.
    """
    return json.dumps(list(values))


def one_row(cursor: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (current_setting(), current_database(), current_user's role)."""
    row = cursor.fetchone()
    if row is None:
        raise TargetRejected("the server returned no row where one is always returned")
    return row


def _column_of(action: Action) -> str:
    """The column of a column action: the actions of a batch share `column is not None` (see core.plan.batch_key)."""
    if action.column is None:
        raise TargetRejected(f"a column revoke on {action.object_fqn} names no column")
    return action.column


def family_of(action: Action) -> str:
    if action.kind == ActionKind.REVOKE_MEMBERSHIP:
        return "membership"
    if action.kind == ActionKind.REVOKE_DEFAULT_PRIVILEGES:
        return "default"
    return "column" if action.column is not None else "relation"


def quote_ident(name: str) -> str:
    """Always-quoted identifier, as libpq's PQescapeIdentifier (and so psycopg's sql.Identifier) writes it.

    Plain string work: calling into psycopg for 90,000 names (schema and table of 45,000 actions) takes
    longer than the REVOKEs themselves. A name cannot hold a NUL byte, so doubling quotes is the whole rule.
    """
    return '"' + name.replace('"', '""') + '"'


class Quoted:
    """Identifier quoting for statements composed by the thousand (see quote_ident)."""

    def __init__(self) -> None:
        self._schemas: dict[str, str] = {}  # 45,000 tables live in a handful of schemas: each is quoted once

    def __call__(self, *names: str) -> str:
        return ".".join(map(quote_ident, names))

    def role(self, name: str) -> str:
        return PUBLIC if name == PUBLIC else self(name)

    def qualified(self, schema: str, name: str) -> str:
        quoted = self._schemas.get(schema)
        if quoted is None:
            quoted = self._schemas[schema] = quote_ident(schema)
        return f"{quoted}.{quote_ident(name)}"

    def table(self, action: Action) -> str:
        return self.qualified(action.schema_name, action.object_name)

    def tables(self, actions: list[Action]) -> str:
        return ", ".join(self.qualified(a.schema_name, a.object_name) for a in actions)


def privilege_list(privs: Iterable[str]) -> str:
    """Privilege keywords are SQL, not identifiers: only the known ones ever reach a statement."""
    chosen = [p.upper() for p in privs]
    unknown = [p for p in chosen if p not in PRIVILEGES]
    if unknown or not chosen:
        raise TargetRejected(
            f"unknown privilege {', '.join(unknown) or '(none)'} in a revoke action",
            hint="privileges: " + ", ".join(PRIVILEGES),
        )
    return ", ".join(chosen)


def statements(batch: list[Action], q: Quoted) -> list[str]:
    """The statements for a batch of actions that share a batch key (one object each when planning)."""
    first = batch[0]
    if first.kind == ActionKind.REVOKE_MEMBERSHIP:  # one row per grantor from 16; before 16 GRANTED BY is ignored
        return [f"REVOKE {q(a.object_name)} FROM {q(a.grantee)} GRANTED BY {q(a.grantor)}" for a in batch]
    if first.kind == ActionKind.REVOKE_DEFAULT_PRIVILEGES:
        return [
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(a.grantor)}"
            + (f" IN SCHEMA {q(a.schema_name)}" if a.schema_name else "")
            + f" REVOKE {privilege_list(a.privileges)} ON TABLES FROM {q.role(a.grantee)} CASCADE"
            for a in batch
        ]
    before, after = revoke_shape(first.kind, first.privileges, first.grantee, first.grantor, q)
    if first.column is None:  # one multi-table REVOKE
        statements = [f"{before} ON TABLE {q.tables(batch)} {after}"]
    else:  # one statement per column: column lists differ per table
        statements = [f"{before} ({q(_column_of(a))}) ON TABLE {q.table(a)} {after}" for a in batch]
    if first.kind == ActionKind.REVOKE_AS_GRANTOR:
        statements = [f"SET LOCAL ROLE {q(first.grantor)}", *statements, "RESET ROLE"]
    return statements


def revoke_shape(kind: str, privileges: list[str], grantee: str, grantor: str, q: Quoted) -> tuple[str, str]:
    """`REVOKE <what>` and `FROM <grantee> CASCADE` of a relation action: the same for its whole batch."""
    privs = privilege_list(privileges)
    if kind == ActionKind.REVOKE_GRANT_OPTION:
        return f"REVOKE GRANT OPTION FOR {privs}", f"FROM {q(grantor)} CASCADE"
    return f"REVOKE {privs}", f"FROM {q.role(grantee)} CASCADE"


def table_statement(
    kind: ActionKind, column: str | None, privileges: list[str], grantee: str, grantor: str, q: Quoted
) -> tuple[str, str] | None:
    """(text before, text after) the table name in a one-table statement, for table-level relation actions."""
    if kind not in RELATION_KINDS or column is not None:
        return None
    before, after = revoke_shape(kind, privileges, grantee, grantor, q)
    if kind == ActionKind.REVOKE_AS_GRANTOR:
        return f"SET LOCAL ROLE {q(grantor)}; {before} ON TABLE ", f" {after}; RESET ROLE"
    return f"{before} ON TABLE ", f" {after}"


# Schemas among these where the role, as itself, cannot even name a table (names are raw, not quoted identifiers).
_LACKS_USAGE = "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT has_schema_privilege(%s, s, 'USAGE')"


@contextmanager
def usage_while_acting_as(conn: psycopg.Connection, role: str, schemas: Iterable[str], q: Quoted) -> Iterator[None]:
    """Acting as a grant-option holder needs USAGE on a table's schema just to name the table. A holder without it
    gets it for the length of the statements, in the same transaction, and loses it again: the schema's ACL is
    left with the items it had."""
    lacking = [s for (s,) in conn.execute(_LACKS_USAGE, (sorted(set(schemas)), role)).fetchall()]
    for schema in lacking:
        conn.execute(f"GRANT USAGE ON SCHEMA {q(schema)} TO {q.role(role)}")
    yield
    for schema in lacking:
        conn.execute(f"REVOKE USAGE ON SCHEMA {q(schema)} FROM {q.role(role)}")
