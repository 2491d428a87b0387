"""Live-probe half of the PostgreSQL target: does the server agree with the catalog?

A check reads catalogs; the probe asks the server itself. It connects as a canary login role that is
a member of the in-scope principal and runs `SELECT FROM <object> LIMIT 0` on each object:

- no column list and LIMIT 0, so not a single value is ever read;
- with no column named, PostgreSQL allows the query when the role can read the table *or any of
  its columns*, so a column-level grant is caught too (`SELECT *` would be refused for it);
- each statement runs in its own transaction (autocommit), so one refusal does not hide the next;
- `lock_timeout` keeps a probe from queueing behind a long lock: that object is reported as
  inconclusive, never as closed without saying so.

Permission denied is the expected, healthy answer.
"""

from __future__ import annotations

import psycopg
from psycopg import errors, sql

from sevtool.errors import TargetRejected
from sevtool.targets.base import ProbeResult

PROBE_LOCK_TIMEOUT = "2s"
PROBE_STATEMENT_TIMEOUT = "10s"
INCONCLUSIVE = "inconclusive"

_RESOLVE = """
SELECT n.nspname || '.' || c.relname, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname || '.' || c.relname = ANY(%s)
"""


class PostgresProber:
    """Mixin for PostgresTarget: relies on its `connect(*, autocommit, user)`."""

    def probe(self, role: str, objects: list[str]) -> list[ProbeResult]:
        """Try a zero-row read of each object as `role`; readable=True means the fix does not hold there."""
        if not objects:
            return []
        with self.connect(autocommit=True, user=role) as conn:
            self._refuse_privileged_canary(conn, role)
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(PROBE_LOCK_TIMEOUT)))
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(PROBE_STATEMENT_TIMEOUT)))
            # Names are resolved in the catalog, so schemas or tables whose names contain dots are not split wrongly.
            located = {fqn: (schema, name) for fqn, schema, name in conn.execute(_RESOLVE, (list(objects),)).fetchall()}
            return [self._probe_one(conn, fqn, located.get(fqn)) for fqn in objects]

    @staticmethod
    def _refuse_privileged_canary(conn: psycopg.Connection, role: str) -> None:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if row and row[0]:
            raise TargetRejected(f"probe role {role} is a superuser: it can read everything, so its answers prove nothing",
                                 hint="use an ordinary login role that is a member of the in-scope principal")

    @staticmethod
    def _probe_one(conn: psycopg.Connection, fqn: str, located: tuple[str, str] | None) -> ProbeResult:
        if located is None:
            return ProbeResult(object_fqn=fqn, readable=False, message=f"{INCONCLUSIVE}: no such object any more (dropped or renamed)")
        statement = sql.SQL("SELECT FROM {}.{} LIMIT 0").format(sql.Identifier(located[0]), sql.Identifier(located[1]))
        try:
            conn.execute(statement)
        except errors.InsufficientPrivilege as exc:
            return ProbeResult(object_fqn=fqn, readable=False, message=(exc.diag.message_primary or "permission denied"))
        except (errors.LockNotAvailable, errors.QueryCanceled) as exc:
            return ProbeResult(object_fqn=fqn, readable=False, message=f"{INCONCLUSIVE}: {exc.diag.message_primary or exc}")
        except errors.UndefinedTable:
            return ProbeResult(object_fqn=fqn, readable=False, message=f"{INCONCLUSIVE}: dropped while probing")
        return ProbeResult(object_fqn=fqn, readable=True, message="readable: a zero-row SELECT succeeded")
