"""What a DBA would run instead of sevtool, through psql as a DBA runs it: the strongest alternatives.

- who reads what: one query asking the server's own privilege functions for every member of the principal x
  every in-scope table (the floor for a scan or a check: the server's answer, with no paths, no findings, no store);
- revoke / restore: `REVOKE ... ON ALL TABLES IN SCHEMA s` per schema in one session (no journal, no read-back,
  no per-object prior state: undo is a blanket GRANT that cannot restore what was there before);
- the per-table loop a responder scripts at 3 a.m., kept as a second row.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from psycopg import sql

from sevtool.bench.measure import Finished, run_process

# Every member of the principal (and the principal) x every table of the scope, asked of the server itself.
READERS_QUERY = """
WITH RECURSIVE members(oid) AS (
    SELECT oid FROM pg_roles WHERE rolname = {principal}
    UNION SELECT am.member FROM pg_auth_members am JOIN members m ON am.roleid = m.oid)
SELECT count(*)
FROM members m
CROSS JOIN pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY({schemas})
  AND (has_table_privilege(m.oid, c.oid, 'SELECT') OR has_any_column_privilege(m.oid, c.oid, 'SELECT'))
"""


def psql_binary() -> str:
    found = shutil.which("psql")
    if found is None:
        raise RuntimeError("psql not found: install Debian's postgresql-client (the alternatives run through it)")
    return found


class Alternatives:
    """The DBA's commands against one database, each run as its own psql process."""

    def __init__(
        self, dsn: str, principal: str, schemas: Sequence[str], tables: Sequence[tuple[str, str]], workdir: Path
    ):
        self.dsn, self.principal, self.schemas, self.tables = dsn, principal, list(schemas), list(tables)
        self.workdir = workdir

    def readers(self) -> tuple[Finished, int]:
        """The server's answer: how many (member, table) pairs are readable."""
        text = (
            sql.SQL(READERS_QUERY)
            .format(principal=sql.Literal(self.principal), schemas=sql.Literal(self.schemas))
            .as_string()
        )
        finished = self._psql(["-At", "-c", text])
        return finished, int(finished.stdout.strip())

    def revoke_per_schema(self) -> Finished:
        return self._script(
            "per-schema-revoke.sql",
            (
                sql.SQL("REVOKE SELECT ON ALL TABLES IN SCHEMA {} FROM {};").format(
                    sql.Identifier(s), sql.Identifier(self.principal)
                )
                for s in self.schemas
            ),
        )

    def grant_per_schema(self) -> Finished:
        return self._script(
            "per-schema-grant.sql",
            (
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {};").format(
                    sql.Identifier(s), sql.Identifier(self.principal)
                )
                for s in self.schemas
            ),
        )

    def revoke_per_table(self) -> Finished:
        return self._script(
            "per-table-revoke.sql",
            (
                sql.SQL("REVOKE SELECT ON {} FROM {};").format(sql.Identifier(s, t), sql.Identifier(self.principal))
                for s, t in self.tables
            ),
        )

    def grant_per_table(self) -> Finished:
        return self._script(
            "per-table-grant.sql",
            (
                sql.SQL("GRANT SELECT ON {} TO {};").format(sql.Identifier(s, t), sql.Identifier(self.principal))
                for s, t in self.tables
            ),
        )

    def _script(self, name: str, statements) -> Finished:
        """Written before the clock starts: the DBA's script exists before it is run."""
        path = self.workdir / name
        if not path.exists():
            path.write_text("\n".join(statement.as_string() for statement in statements) + "\n")
        return self._psql(["-q", "-f", str(path)])

    def _psql(self, args: list[str]) -> Finished:
        return run_process([psql_binary(), "-X", "-v", "ON_ERROR_STOP=1", "-d", self.dsn, *args])


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="sevtool-bench-"))
