"""Table statistics of the in-scope tables: `pg_stat_user_tables` read counters, a second source for evidence.

The counters say how many sequential and index scans each table had since the database's statistics were last
reset (`pg_stat_database.stats_reset`); `last_seq_scan` and `last_idx_scan` exist from PostgreSQL 16. They name no
reader. One query for every object, the names bound as one array (a 45,000-table scope is one round trip).
"""

from __future__ import annotations

from typing import Protocol

import psycopg

from sevtool.core.table_stats import TableCounters, TableStats
from sevtool.errors import TargetRejected
from sevtool.targets.postgres.sql import one_row


class _Connects(Protocol):
    @property
    def display(self) -> str: ...

    def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection: ...


# Objects are named as findings name them: schema.table, unquoted.
_COUNTERS = """
SELECT s.schemaname || '.' || s.relname, s.seq_scan, coalesce(s.idx_scan, 0), {last}
FROM pg_stat_user_tables s WHERE s.schemaname || '.' || s.relname = ANY(%(objects)s::text[])
"""
_LAST_16 = "s.last_seq_scan, s.last_idx_scan"
_LAST_NONE = "NULL::timestamptz, NULL::timestamptz"
_RESET = "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"


def table_stats(target: _Connects, objects: list[str]) -> TableStats:
    """The counters of those of `objects` the server keeps statistics for (views have none), now."""
    with target.connect(autocommit=True) as conn:
        try:
            # A session caches what it read of the statistics; start from what the server has now.
            conn.execute("SELECT pg_stat_clear_snapshot()")
            last = _LAST_16 if conn.info.server_version >= 160000 else _LAST_NONE
            rows = conn.execute(_COUNTERS.format(last=last), {"objects": objects}).fetchall()
            reset = one_row(conn.execute(_RESET))[0]
        except psycopg.Error as exc:
            raise TargetRejected(
                f"{target.display} refused the table statistics query: {str(exc).strip()}",
                hint="any login role can read pg_stat_user_tables and pg_stat_database",
            ) from None
    return TableStats(reset, {name: TableCounters(seq, idx, ls, li) for name, seq, idx, ls, li in rows})
