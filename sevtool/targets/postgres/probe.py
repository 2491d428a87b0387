"""Live-probe half of the PostgreSQL target: does the server agree with the catalog?

A check reads catalogs; the probe asks the server itself. It connects as a canary login role that is
a member of the in-scope principal and runs `SELECT FROM <object> LIMIT 0` on each object:

- no column list and LIMIT 0, so not a single value is ever read;
- with no column named, PostgreSQL allows the query when the role can read the table *or any of
  its columns*, so a column-level grant is caught too (`SELECT *` would be refused for it);
- each statement runs in its own subtransaction, so one refusal does not hide the next;
- `lock_timeout` keeps a probe from queueing behind a long lock: that object is reported as
  inconclusive, never as closed without saying so.

The statements run server-side, in a DO block per chunk of objects, as the canary itself (DO is not
security definer): one round trip per chunk instead of one per table, which is what makes probing
every sensitive table of a 45,000-table scope practical. Object names travel as a bound parameter
(a session setting), never spliced into SQL text; answers come back the same way.

Permission denied is the expected, healthy answer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import psycopg
from psycopg import errors, sql

from sevtool.errors import TargetRejected
from sevtool.targets.base import ProbeResult
from sevtool.targets.postgres.sql import one_row

PROBE_LOCK_TIMEOUT = "2s"
PROBE_CHUNK = 2000
INCONCLUSIVE = "inconclusive"

_RESOLVE = """
SELECT n.nspname || '.' || c.relname, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname || '.' || c.relname = ANY(%s)
"""

# Answers, in input order: "readable", "denied: <message>" or "inconclusive: <message>".
_PROBE_BLOCK = """
DO $probe$
DECLARE
    item json;
    answers text[] := '{}';
BEGIN
    FOR item IN SELECT value FROM json_array_elements(current_setting('sevtool.probe_objects')::json) LOOP
        BEGIN
            EXECUTE format('SELECT FROM %I.%I LIMIT 0', item->>0, item->>1);
            answers := answers || 'readable'::text;
        EXCEPTION
            WHEN insufficient_privilege THEN answers := answers || ('denied: ' || SQLERRM);
            WHEN lock_not_available OR undefined_table OR invalid_schema_name THEN answers := answers || ('inconclusive: ' || SQLERRM);
        END;
    END LOOP;
    PERFORM set_config('sevtool.probe_answers', array_to_json(answers)::text, false);
END
$probe$
"""


class PostgresProber:
    """Mixin for PostgresTarget: relies on its `connect(*, autocommit, user)`."""

    if TYPE_CHECKING:  # provided by PostgresTarget

        def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection: ...

    def probe(self, role: str, objects: list[str]) -> list[ProbeResult]:
        """Try a zero-row read of each object as `role`; readable=True means the fix does not hold there."""
        if not objects:
            return []
        with self.connect(autocommit=True, user=role) as conn:
            self._refuse_privileged_canary(conn, role)
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(PROBE_LOCK_TIMEOUT)))
            # Names are resolved in the catalog, so schemas or tables whose names contain dots are not split wrongly.
            located = {fqn: (schema, name) for fqn, schema, name in conn.execute(_RESOLVE, (list(objects),)).fetchall()}
            found = [fqn for fqn in objects if fqn in located]
            answers: dict[str, str] = {}
            for start in range(0, len(found), PROBE_CHUNK):
                chunk = found[start : start + PROBE_CHUNK]
                answers.update(zip(chunk, self._probe_chunk(conn, role, [located[fqn] for fqn in chunk]), strict=False))
        return [
            _result(fqn, answers.get(fqn, f"{INCONCLUSIVE}: no such object any more (dropped or renamed)"))
            for fqn in objects
        ]

    @staticmethod
    def _probe_chunk(conn: psycopg.Connection, role: str, names: list[tuple[str, str]]) -> list[str]:
        conn.execute("SELECT set_config('sevtool.probe_objects', %s, false)", (json.dumps(names),))
        try:
            conn.execute(_PROBE_BLOCK)
        except errors.InsufficientPrivilege as exc:
            raise TargetRejected(
                f"probe role {role} cannot run the probe: {exc.diag.message_primary}",
                hint="the probe needs the plpgsql language, usable by every role unless revoked",
            ) from None
        answers: list[str] = json.loads(
            one_row(conn.execute("SELECT current_setting('sevtool.probe_answers')"))[0]
        )  # written by _PROBE_BLOCK
        return answers

    @staticmethod
    def _refuse_privileged_canary(conn: psycopg.Connection, role: str) -> None:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if row and row[0]:
            raise TargetRejected(
                f"probe role {role} is a superuser: it can read everything, so its answers prove nothing",
                hint="use an ordinary login role that is a member of the in-scope principal",
            )


def _result(fqn: str, answer: str) -> ProbeResult:
    if answer == "readable":
        return ProbeResult(object_fqn=fqn, readable=True, message="readable: a zero-row SELECT succeeded")
    return ProbeResult(
        object_fqn=fqn,
        readable=False,
        inconclusive=answer.startswith(INCONCLUSIVE),
        message=answer.removeprefix("denied: "),
    )
