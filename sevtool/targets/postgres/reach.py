"""Who a scan's principals are in the role graph: every role each one reaches (directly, through roles, or as
PUBLIC) with the route, and how many login members each has (NOINHERIT ones counted apart).
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from sevtool.core.exposure import PUBLIC, Scope
from sevtool.errors import NotFound
from sevtool.targets.postgres.access import PUBLIC_OID
from sevtool.targets.postgres.catalog import _Reach
from sevtool.targets.postgres.sql import one_row


def read_reach(
    cur: psycopg.Cursor, scope: Scope, reach_sql: str, role_names: Mapping[int, str], display: str
) -> tuple[list[_Reach], dict[_Reach, int]]:
    """Every role each scope principal reaches (PUBLIC too), and the oid of each; NotFound for an unknown role."""
    names = []
    for principal in scope.principals:
        names.append(PUBLIC if principal.upper() == PUBLIC else principal)
    roles = [n for n in names if n != PUBLIC]
    rows = cur.execute(reach_sql, {"principals": roles}).fetchall()
    found = {row[0] for row in rows}
    missing = [n for n in roles if n not in found]
    if missing:
        raise NotFound(
            f"role {missing[0]!r} does not exist on {display}",
            hint="role names are case-sensitive; PUBLIC means every role",
        )
    reach_oid: dict[_Reach, int] = {}
    reach: list[_Reach] = []
    for principal, roleid, route, inherited, blocked_by in rows:
        entry = _Reach(principal, role_names[roleid], tuple(route), inherited, blocked_by)
        reach_oid[entry] = roleid
        reach.append(entry)
    for name in dict.fromkeys(names):
        public = _Reach(name, PUBLIC, (), True, None)
        reach_oid[public] = PUBLIC_OID
        reach.append(public)
    return reach, reach_oid


def read_members(cur: psycopg.Cursor, scope: Scope, members_sql: str) -> dict[str, tuple[int, int]]:
    """Per scope principal: its login members, and how many of them are NOINHERIT (PUBLIC: every login role)."""
    names = list(dict.fromkeys(PUBLIC if p.upper() == PUBLIC else p for p in scope.principals))
    roles = [n for n in names if n != PUBLIC]
    counts = {row[0]: (row[1], row[2]) for row in cur.execute(members_sql, {"principals": roles})}
    if PUBLIC in names:
        total, noinherit = one_row(
            cur.execute("SELECT count(*), count(*) FILTER (WHERE NOT rolinherit) FROM pg_roles WHERE rolcanlogin")
        )
        counts[PUBLIC] = (total, noinherit)
    return {name: counts.get(name, (0, 0)) for name in names}
