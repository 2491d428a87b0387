"""Who is a member of the principals, directly or through other roles, now: `evidence` splits readers by it."""

from __future__ import annotations

from typing import Protocol

import psycopg

from sevtool.errors import TargetRejected
from sevtool.targets.postgres.sql import one_row


class _Connects(Protocol):
    """What these need of a PostgresTarget."""

    @property
    def display(self) -> str: ...

    def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection: ...


MEMBERS_SQL = """
WITH RECURSIVE members AS (
    SELECT m.member, 1 AS depth FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = ANY(%(principals)s)
    UNION
    SELECT m.member, members.depth + 1 FROM members JOIN pg_auth_members m ON m.roleid = members.member WHERE members.depth < 64
)
SELECT DISTINCT r.rolname::text FROM members JOIN pg_roles r ON r.oid = members.member
"""


def principal_members(target: _Connects, principals: list[str]) -> set[str]:
    """Every role that is a member of one of the principals, at any depth (INHERIT or not: a NOINHERIT member
    still reads after SET ROLE). PUBLIC has no catalog members: everyone is one, which the caller knows."""
    with target.connect(autocommit=True) as conn:
        try:
            rows = conn.execute(MEMBERS_SQL, {"principals": [p for p in principals if p != "PUBLIC"]}).fetchall()
        except psycopg.Error as exc:
            raise TargetRejected(
                f"{target.display} refused the membership query: {str(exc).strip()}",
                hint="any login role can read pg_auth_members",
            ) from None
    return {row[0] for row in rows}


def database_name(target: _Connects) -> str:
    """The database the target's DSN names (pgaudit lines of other databases are not evidence for it)."""
    with target.connect(autocommit=True) as conn:
        name: str = one_row(conn.execute("SELECT current_database()"))[0]
        return name
