"""Just-in-time access exceptions on PostgreSQL: grant one role SELECT on named tables, and take exactly that back.

A table is read with SELECT on it and USAGE on its schema. When the role lacks USAGE, the exception grants that
too, but USAGE opens every table of the schema the role (or PUBLIC) holds SELECT on: a lock-down that revoked
USAGE from PUBLIC and left the table grants in place would be undone for this role. The plan names those tables
(`collateral`) so the service can refuse before anything changes.

Access is judged by the server's own functions (has_table_privilege, has_schema_privilege,
has_any_column_privilege), which follow inherited memberships the way a session of the role does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from sevtool.core.access_exceptions import READ, ExceptionGrant, GrantPlan, RoleAccess
from sevtool.core.exposure import Securable
from sevtool.errors import TargetRejected
from sevtool.targets.postgres.sql import PRIVILEGES, quote_ident

# Objects named as findings name them (schema.name), resolved in the catalog so names holding dots are not split.
_ROLE_ACCESS = """
SELECT want.fqn, c.oid IS NOT NULL, n.nspname, c.relname,
       coalesce(has_schema_privilege(r.oid, n.oid, 'USAGE'), false),
       coalesce(has_any_column_privilege(r.oid, c.oid, 'SELECT'), false),
       array(SELECT p FROM unnest(%(privs)s::text[]) AS p WHERE c.oid IS NOT NULL AND has_table_privilege(r.oid, c.oid, p)),
       coalesce(has_table_privilege(r.oid, c.oid, 'SELECT WITH GRANT OPTION'), false)
FROM unnest(%(objects)s::text[]) AS want(fqn)
CROSS JOIN (SELECT oid FROM pg_roles WHERE rolname = %(role)s) r
LEFT JOIN (pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace)
       ON n.nspname || '.' || c.relname = want.fqn AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

# Tables of these schemas the role holds SELECT on (or on a column of), other than the requested ones: what USAGE
# on the schema would open to it.
_OPENED_BY_USAGE = """
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT oid FROM pg_roles WHERE rolname = %(role)s) r
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT (n.nspname || '.' || c.relname = ANY(%(objects)s))
  AND has_any_column_privilege(r.oid, c.oid, 'SELECT')
ORDER BY 1
"""

# Is this very grant (not access from elsewhere) still in the ACL?
_TABLE_GRANT_HELD = """
SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) x
               JOIN pg_roles r ON r.oid = x.grantee
               WHERE n.nspname || '.' || c.relname = %(name)s AND r.rolname = %(role)s AND x.privilege_type = 'SELECT')
"""
_TABLE_IDENT = """
SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname || '.' || c.relname = %s
"""
_SCHEMA_GRANT_HELD = """
SELECT EXISTS (SELECT FROM pg_namespace n, aclexplode(n.nspacl) x JOIN pg_roles r ON r.oid = x.grantee
               WHERE n.nspname = %(name)s AND r.rolname = %(role)s AND x.privilege_type = 'USAGE')
"""


class _Connects:
    """What these need of a PostgresTarget (mixed into it)."""

    if TYPE_CHECKING:
        display: str

        def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection: ...


def _privileges(conn: psycopg.Connection) -> list[str]:
    """MAINTAIN exists from PostgreSQL 17; has_table_privilege rejects it before."""
    return [p for p in PRIVILEGES if p != "MAINTAIN" or conn.info.server_version >= 170000]


class ExceptionGrants(_Connects):
    """Mixin for PostgresTarget: the `GrantsExceptions` side of the target interface."""

    def role_access(self, role: str, objects: list[str]) -> list[RoleAccess]:
        with self.connect(autocommit=True) as conn:
            seen = self._read(conn, role, objects)
        # A role that no longer exists reads nothing: an ended exception's role may well be dropped.
        return [seen[fqn][0] if fqn in seen else RoleAccess(fqn, False) for fqn in objects]

    def plan_exception(self, role: str, objects: list[str]) -> GrantPlan:
        with self.connect(autocommit=True) as conn:
            seen = self._read(conn, role, objects)
            if not seen and objects:
                raise TargetRejected(
                    f"no role named {role!r} on {self.display}",
                    hint="role names are case-sensitive: check the spelling",
                )
            missing = tuple(fqn for fqn, (_, where) in seen.items() if where is None)
            already = tuple(fqn for fqn, (access, _) in seen.items() if access.readable)
            grants: list[ExceptionGrant] = []
            need_usage: list[str] = []
            for fqn, (access, where) in seen.items():
                if where is None or access.readable:
                    continue
                schema, _name, has_usage = where
                if not has_usage and schema not in need_usage:
                    need_usage.append(schema)
                if READ not in access.privileges:
                    grants.append(ExceptionGrant(Securable("table", fqn), READ))
            collateral: tuple[str, ...] = ()
            if need_usage:
                rows = conn.execute(
                    _OPENED_BY_USAGE, {"role": role, "schemas": need_usage, "objects": list(objects)}
                ).fetchall()
                collateral = tuple(r[0] for r in rows)
            usage = [ExceptionGrant(Securable("schema", s), "USAGE") for s in need_usage]
        return GrantPlan(
            grants=tuple(usage + grants),
            held_before={fqn: access.privileges for fqn, (access, _) in seen.items()},
            already=already,
            missing=missing,
            collateral=collateral,
        )

    def grant_exception(self, role: str, grants: list[ExceptionGrant]) -> None:
        """One transaction: every grant or none."""
        with self.connect() as conn:
            try:
                with conn.transaction():
                    for grant in grants:
                        statement = self._statement(conn, "GRANT", "TO", role, grant)
                        if statement is None:
                            raise TargetRejected(f"{grant.securable.name} no longer exists on {self.display}")
                        conn.execute(statement)
            except psycopg.Error as exc:
                raise TargetRejected(
                    f"{self.display} refused to grant {role} read access: {str(exc).strip()}",
                    hint="sevtool's role needs to own the tables or hold SELECT WITH GRANT OPTION on them",
                ) from None

    def revoke_exception(self, role: str, grants: list[ExceptionGrant]) -> list[ExceptionGrant]:
        """Revoke every grant (one that is already gone is no error: a re-run after a crash), then read them back."""
        with self.connect() as conn:
            try:
                with conn.transaction():
                    for grant in grants:
                        statement = self._statement(conn, "REVOKE", "FROM", role, grant)
                        if statement is not None:  # a dropped table took its grants with it
                            conn.execute(statement)
            except psycopg.errors.UndefinedObject:
                return []  # the role is gone: nothing of the exception can remain
            except psycopg.Error as exc:
                raise TargetRejected(
                    f"{self.display} refused to revoke {role}'s exception grants: {str(exc).strip()}",
                    hint="revoke them by hand (see `sevtool access list`), then run `sevtool access expire` again",
                ) from None
            return [g for g in grants if self._held(conn, role, g)]

    @staticmethod
    def _statement(
        conn: psycopg.Connection, verb: str, preposition: str, role: str, grant: ExceptionGrant
    ) -> str | None:
        """The statement, or None when the table no longer exists."""
        kind = grant.securable.kind
        if kind == "table":
            row = conn.execute(_TABLE_IDENT, (grant.securable.name,)).fetchone()
            if row is None:
                return None
            on = f"TABLE {row[0]}"
        elif kind == "schema":
            on = f"SCHEMA {quote_ident(grant.securable.name)}"
        else:
            raise TargetRejected(f"a PostgreSQL exception cannot hold a grant on a {kind}")
        privilege = {"SELECT": "SELECT", "USAGE": "USAGE"}[grant.privilege]  # keywords: only known ones reach SQL
        return f"{verb} {privilege} ON {on} {preposition} {quote_ident(role)}"

    @staticmethod
    def _held(conn: psycopg.Connection, role: str, grant: ExceptionGrant) -> bool:
        held = _TABLE_GRANT_HELD if grant.securable.kind == "table" else _SCHEMA_GRANT_HELD
        row = conn.execute(held, {"name": grant.securable.name, "role": role}).fetchone()
        return bool(row and row[0])

    @staticmethod
    def _read(
        conn: psycopg.Connection, role: str, objects: list[str]
    ) -> dict[str, tuple[RoleAccess, tuple[str, str, bool] | None]]:
        """object -> (the role's access, (schema, name, has USAGE) or None when there is no such object)."""
        rows = conn.execute(
            _ROLE_ACCESS, {"role": role, "objects": list(objects), "privs": _privileges(conn)}
        ).fetchall()
        seen: dict[str, tuple[RoleAccess, tuple[str, str, bool] | None]] = {}
        for fqn, exists, schema, name, usage, select, privileges, grant_option in rows:
            if fqn in seen:
                continue
            access = RoleAccess(fqn, bool(exists and usage and select), tuple(privileges), bool(grant_option))
            seen[fqn] = (access, (schema, name, bool(usage)) if exists else None)
        return seen
