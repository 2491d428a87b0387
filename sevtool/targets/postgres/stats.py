"""Table statistics of the in-scope tables: the read counters `pg_stat_user_tables` shows, a second source for evidence.

The counters say how many sequential and index scans each table had since the database's statistics were last
reset (`pg_stat_database.stats_reset`); `last_seq_scan` and `last_idx_scan` exist from PostgreSQL 16. They name no
reader. The names are bound as JSON, a few thousand to a query, and a large scope is read on a few connections side
by side: the lookups by name are the server's work, and it has more than one core.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Protocol

import psycopg

from sevtool.core.table_stats import TableCounters, TableStats
from sevtool.errors import TargetRejected
from sevtool.targets.postgres.sql import json_list, one_row


class _Connects(Protocol):
    @property
    def display(self) -> str: ...

    def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection: ...


# pg_stat_user_tables' seq_scan, idx_scan, last_seq_scan and last_idx_scan, asked of the named tables only: the view
# computes every counter of every table in the database and groups them, which costs more than the lookups by name.
# The rows and schemas it leaves out are left out here too.
_COUNTERS = """
SELECT want.i, pg_stat_get_numscans(c.oid),
       CASE WHEN c.relhasindex  -- false: the table has no index, so no index scans (true may linger after a drop)
            THEN coalesce((SELECT sum(pg_stat_get_numscans(x.indexrelid)) FROM pg_index x WHERE x.indrelid = c.oid), 0)
            ELSE 0 END::bigint,
       {last}
FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json)) WITH ORDINALITY AS want(nsp, rel, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
WHERE c.relkind IN ('r', 't', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
"""
_LAST_16 = (
    "pg_stat_get_lastscan(c.oid), "
    "(SELECT max(pg_stat_get_lastscan(x.indexrelid)) FROM pg_index x WHERE x.indrelid = c.oid)"
)
_LAST_NONE = "NULL::timestamptz, NULL::timestamptz"
_RESET = "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
_CHUNK = 10_000  # names to a query
_CONNECTIONS = 4  # queries side by side


def _splits(objects: list[str]) -> list[tuple[str, str, str]]:
    """(object, schema, table) for every way of reading an object name `schema.table` (findings name them unquoted,
    so a dot inside a name leaves the split open): what `schemaname || '.' || relname = object` would match."""
    out: list[tuple[str, str, str]] = []
    for obj in objects:
        dot = obj.find(".")
        while dot != -1:
            out.append((obj, obj[:dot], obj[dot + 1 :]))
            dot = obj.find(".", dot + 1)
    return out


def table_stats(target: _Connects, objects: list[str]) -> TableStats:
    """The counters of those of `objects` the server keeps statistics for (views have none), now."""
    wanted = _splits(objects)
    chunks = [wanted[i : i + _CHUNK] for i in range(0, len(wanted), _CHUNK)] or [[]]
    with ThreadPoolExecutor(max_workers=min(_CONNECTIONS, len(chunks))) as pool:
        read = list(pool.map(lambda chunk: _counters(target, chunk), chunks))
    return TableStats(read[0][1], {name: c for counters, _ in read for name, c in counters.items()})


def _counters(
    target: _Connects, wanted: list[tuple[str, str, str]]
) -> tuple[dict[str, TableCounters], datetime | None]:
    """One chunk's counters, and when the statistics were last reset."""
    with target.connect(autocommit=True) as conn:
        try:
            # A session caches what it read of the statistics; start from what the server has now.
            conn.execute("SELECT pg_stat_clear_snapshot()")
            last = _LAST_16 if conn.info.server_version >= 160000 else _LAST_NONE
            rows = conn.execute(
                _COUNTERS.format(last=last),
                {"nsp": json_list(w[1] for w in wanted), "rel": json_list(w[2] for w in wanted)},
            ).fetchall()
            reset = one_row(conn.execute(_RESET))[0]
        except psycopg.Error as exc:
            raise TargetRejected(
                f"{target.display} refused the table statistics query: {str(exc).strip()}",
                hint="any login role can read pg_class, pg_index and pg_stat_database",
            ) from None
    return {wanted[i - 1][0]: TableCounters(seq, idx, ls, li) for i, seq, idx, ls, li in rows}, reset
