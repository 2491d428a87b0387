"""Connections for revoking and restoring: a small per-target pool, and the server notices each connection received."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.abc import Params

from sevtool.core.exposure import PUBLIC
from sevtool.targets.postgres.sql import _ROLE_OIDS

if TYPE_CHECKING:
    from sevtool.targets.postgres.roles import UndoIdentity

POOL_LOCK = threading.Lock()  # guards each target's idle connections and role oid cache


class RevokeSession:
    """A pooled connection and the server notices it received (a Diagnostic is only valid in its callback)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.notices: list[tuple[str | None, str | None, str | None]] = []  # (sqlstate, message, severity)
        self.identity: UndoIdentity | None = None  # who the connection is: asked once, by undo
        conn.add_notice_handler(
            lambda diag: self.notices.append((diag.sqlstate, diag.message_primary, diag.severity_nonlocalized))
        )


class RevokeSessions:
    """Pooled connections of a PostgresTarget, which provides `connect(*, autocommit=False, user=None)`."""

    if TYPE_CHECKING:  # provided by PostgresTarget, which the revoking mixins are part of
        display: str

        def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection: ...

    # Lowered for the rest of the run when a batch runs out of shared memory (by apply; undo keeps to it too).
    _batch_limit: int | None = None

    @contextmanager
    def _revoke_connection(self) -> Iterator[RevokeSession]:
        """An autocommit connection for revoking or restoring, kept for the next batch, call or worker thread.

        Opening one per batch cost more than some batches. A connection an error went through is closed, not kept.
        """
        with POOL_LOCK:
            idle: list[RevokeSession] = self.__dict__.setdefault("_idle_revoke_sessions", [])
            session = idle.pop() if idle else None
        if session is None or session.conn.closed or session.conn.broken:
            session = RevokeSession(self.connect(autocommit=True))
        try:
            yield session
        except BaseException:
            session.conn.close()
            raise
        with POOL_LOCK:
            self.__dict__["_idle_revoke_sessions"].append(session)

    def _close_revoke_connections(self) -> None:
        with POOL_LOCK:
            idle, self.__dict__["_idle_revoke_sessions"] = self.__dict__.get("_idle_revoke_sessions", []), []
        for session in idle:
            session.conn.close()

    def _fetch(self, query: str, params: Params | None) -> list[tuple[Any, ...]]:
        """All rows of one catalog query, on a pooled connection (callable from worker threads)."""
        with self._revoke_connection() as session:
            return session.conn.execute(query, params).fetchall()

    def _role_oid_cache(self, conn: psycopg.Connection, names: set[str]) -> dict[str, int]:
        """Role name -> oid, looked up once per target (roles a run revokes from are not re-created under it)."""
        with POOL_LOCK:
            oids: dict[str, int] = self.__dict__.setdefault("_role_oids_seen", {})
            missing = names - oids.keys()
        if missing:
            found = self._role_oids(conn, missing)
            with POOL_LOCK:
                oids.update(found)
        return oids

    def _role_oids(self, conn: psycopg.Connection, names: Collection[str]) -> dict[str, int]:
        oids: dict[str, int] = dict(conn.execute(_ROLE_OIDS, [sorted(set(names) - {PUBLIC})]).fetchall())
        return {**oids, PUBLIC: 0} if PUBLIC in names else oids
