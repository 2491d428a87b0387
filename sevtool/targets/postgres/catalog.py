"""The PostgreSQL catalog as a scan reads it: the queries, and the rows they become.

Every query runs in one REPEATABLE READ read-only transaction (see scan.py); all are set-based, so a
45,000-table database costs a handful of statements, never one per table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

from sevtool.core.exposure import Finding
from sevtool.targets.postgres.access import NOT_SYSTEM

READ_ALL_ROLES = ("pg_read_all_data",)

# Builds a Finding from a dict without the keyword-argument wrapper, once per finding of a large scan. (pydantic
# sets `__pydantic_validator__` on its dataclasses, but its mypy plugin does not declare it.)
_finding: Callable[[Mapping[str, object]], Finding] = getattr(Finding, "__pydantic_validator__").validate_python  # noqa: B009

_KINDS = {"r": "table", "p": "partitioned table", "f": "foreign table", "v": "view", "m": "materialized view"}
_SCOPED_KINDS = ("r", "p", "f")  # the objects a scope is about; views are reached through them


# Membership: can members use a role's privileges automatically (INHERIT), and can they SET ROLE to it?
# A role is usable when the route is some SET-able steps followed by inheriting ones. PostgreSQL 15 keeps
# INHERIT on the member role (rolinherit) and always allows SET ROLE; 16+ keeps both options on each grant.
_MEMBERSHIP_OPTIONS = {
    15: {"inherits": "member.rolinherit", "can_set": "true", "why_not": "member.rolname::text || ' is NOINHERIT'"},
    16: {
        "inherits": "m.inherit_option",
        "can_set": "m.set_option",
        "why_not": "'the grant of ' || g.rolname::text || ' to ' || member.rolname::text || ' is WITH INHERIT FALSE'",
    },
}

_REACH_SQL = """
WITH RECURSIVE reach AS (
    SELECT w.principal, r.oid AS roleid, ARRAY[]::text[] AS route, true AS inherited, true AS all_set, true AS usable,
           NULL::text AS blocked_by, 0 AS depth
      FROM unnest(%(principals)s::text[]) AS w(principal) JOIN pg_roles r ON r.rolname = w.principal
    UNION ALL
    SELECT reach.principal, m.roleid, reach.route || (g.rolname::text COLLATE "default"),
           reach.inherited AND {inherits}, reach.all_set AND {can_set},
           (reach.usable AND {inherits}) OR (reach.all_set AND {can_set}),
           coalesce(reach.blocked_by, CASE WHEN NOT {inherits} THEN ({why_not}) COLLATE "default" END), reach.depth + 1
      FROM reach
      JOIN pg_auth_members m ON m.member = reach.roleid
      JOIN pg_roles member ON member.oid = reach.roleid
      JOIN pg_roles g ON g.oid = m.roleid
     WHERE reach.depth < 64 AND ((reach.usable AND {inherits}) OR (reach.all_set AND {can_set}))
)
SELECT DISTINCT ON (principal, roleid) principal, roleid, route, inherited, blocked_by
  FROM reach ORDER BY principal, roleid, inherited DESC, depth
"""

_MEMBERS_SQL = """
WITH RECURSIVE members AS (
    SELECT w.principal, r.oid AS roleid, true AS inherits, 0 AS depth
      FROM unnest(%(principals)s::text[]) AS w(principal) JOIN pg_roles r ON r.rolname = w.principal
    UNION ALL
    SELECT members.principal, m.member, members.inherits AND {inherits}, members.depth + 1
      FROM members
      JOIN pg_auth_members m ON m.roleid = members.roleid
      JOIN pg_roles member ON member.oid = m.member
     WHERE members.depth < 64
), per_role AS (
    SELECT principal, roleid, bool_or(inherits) AS inherits FROM members GROUP BY principal, roleid
)
SELECT p.principal, count(*) FILTER (WHERE r.rolcanlogin AND r.rolname <> p.principal),
       count(*) FILTER (WHERE r.rolcanlogin AND NOT p.inherits AND r.rolname <> p.principal)
  FROM per_role p JOIN pg_roles r ON r.oid = p.roleid GROUP BY p.principal
"""


def membership_sql(server_version: int) -> tuple[str, str]:
    """The reach and member-count queries for this server's membership model."""
    options = _MEMBERSHIP_OPTIONS[16 if server_version >= 160000 else 15]
    return _REACH_SQL.format(**options), _MEMBERS_SQL.format(**options)


_RELATIONS_SQL = f"""
SELECT c.oid, n.nspname, c.relname, c.relkind, i.inhparent, d.description, c.relnamespace,
       coalesce('security_invoker=true' = ANY(c.reloptions) OR 'security_invoker=on' = ANY(c.reloptions), false),
       c.relowner, c.relrowsecurity
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
  LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
 WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND {NOT_SYSTEM}
"""

# Every SELECT item on every relation, whoever holds it: who reads what is decided per reader (access.py),
# and the items held by roles the principals reach become findings.
_TABLE_GRANTS_SQL = f"""
SELECT c.oid, a.grantee, a.grantor
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 WHERE a.privilege_type = 'SELECT' AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND {NOT_SYSTEM}
"""

_COLUMN_GRANTS_SQL = """
SELECT att.attrelid, att.attname, a.grantee, a.grantor, att.attnum
  FROM pg_attribute att
 CROSS JOIN LATERAL aclexplode(att.attacl) a
 WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped AND a.privilege_type = 'SELECT'
"""

_DEFAULT_GRANTS_SQL = """
SELECT d.defaclrole, d.defaclnamespace, n.nspname, g.principal, a.grantee, a.grantor
  FROM pg_default_acl d
  LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
 CROSS JOIN LATERAL aclexplode(d.defaclacl) a
  JOIN unnest(%(principals)s::text[], %(roles)s::oid[]) AS g(principal, roleid) ON g.roleid = a.grantee
 WHERE d.defaclobjtype = 'r' AND a.privilege_type = 'SELECT' AND a.grantee <> d.defaclrole
"""

_SCHEMA_USAGE_SQL = """
SELECT n.oid, a.grantee
  FROM pg_namespace n
 CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE a.privilege_type = 'USAGE'
"""

# A view's bases, with each referenced column's number (0: the relation as a whole): a plain view needs its owner
# to hold SELECT on every column it reads.
_VIEW_DEPENDENCIES_SQL = """
SELECT DISTINCT r.ev_class, d.refobjid, d.refobjsubid
  FROM pg_rewrite r
  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class AND d.deptype = 'n'
"""


class ReachFields(TypedDict):
    """A finding's fields saying how its principal reaches the grant."""

    route: tuple[str, ...]
    set_role: str | None


@dataclass(frozen=True)
class _Reach:
    """One role a principal's members can act as, and how they get there."""

    principal: str
    role: str
    route: tuple[str, ...]  # roles walked through, ending with `role`; empty for the principal itself
    inherited: bool
    blocked_by: str | None  # why SET ROLE is necessary: the NOINHERIT role (15) or grant (16+)

    def fields(self) -> ReachFields:
        """How the principal reaches the grant, as a finding's fields (`Finding.route`, `Finding.set_role`)."""
        return {"route": self.route, "set_role": None if self.inherited else self.blocked_by or ""}


class _Relation(NamedTuple):
    oid: int
    schema: str
    name: str
    kind: str
    parent: int | None
    comment: str | None
    namespace: int
    security_invoker: bool
    owner: int
    row_security: bool

    @property
    def fqn(self) -> str:
        """schema.name, made when asked: 200,000 of them kept were 14 MB of a large scan's peak."""
        return f"{self.schema}.{self.name}"

    @property
    def kind_label(self) -> str:
        return "partition" if self.parent is not None else _KINDS[self.kind]
