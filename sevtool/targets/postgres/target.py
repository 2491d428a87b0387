"""PostgreSQL target: who can read what, from the catalogs only, in a handful of set-based queries.

A scan answers "can a member of principal P read this object?" and never reads table contents.
Only SELECT is reported: it is the one privilege that reveals data (UPDATE/DELETE ... WHERE on a
column needs SELECT on it too, so write privileges alone leak nothing).

The queries, all in one REPEATABLE READ read-only transaction:

- roles: a recursive CTE over pg_auth_members walks from each principal up to every role it is a
  member of, transitively. Each reached role carries its route (`all_employees -> analytics_readers`)
  and whether privileges flow automatically: in PostgreSQL 15 a role inherits only if it is INHERIT
  (pg_roles.rolinherit); a NOINHERIT link still lets members `SET ROLE`, so the role stays reachable
  and the finding says "SET ROLE". PostgreSQL 16+ keeps INHERIT and SET on each grant
  (pg_auth_members.inherit_option / set_option); a role is reachable when its route is SET-able
  steps followed by inheriting ones. PUBLIC (oid 0) is reachable by every principal; the principal
  `PUBLIC` reaches nothing else. Members are counted by walking down the same table.
- relations: pg_class (tables, partitioned and foreign tables, views, materialized views) outside
  system schemas, with pg_description (the COMMENT, for DSS) and pg_inherits (partition parent).
- table grants (DIRECT, PUBLIC, ROLE, GRANT_OPTION, PARTITION, VIEW): aclexplode over
  coalesce(relacl, acldefault('r', relowner)) joined to the reached roles, SELECT only. A grant whose
  grantor is not the owner was made by a grant-option holder (a superuser's REVOKE acts as the owner
  and leaves it in place): path GRANT_OPTION, "granted by X". A partition readable on its own is
  PARTITION with base_object = its parent (granting/revoking the parent does not touch it).
- column grants (COLUMN): aclexplode over pg_attribute.attacl, one finding per column.
- default privileges (DEFAULT_PRIVILEGES): aclexplode over pg_default_acl.defaclacl for tables; one
  finding per schema marked `future_tables`, grantor = the role whose future tables get the grant.
  Schema "" means database-wide defaults (no IN SCHEMA).
- views (VIEW): pg_rewrite + pg_depend give the tables each view or materialized view reads,
  followed transitively through views of views; a readable view over an in-scope table is a finding
  with base_object = that table. A plain view reads its bases with its owner's privileges (a view whose
  owner cannot read them is readable by no one); a security_invoker view with the reader's, so a base
  granted to the principal is a finding on the base even when its schema is closed to members.
- predefined roles (PREDEFINED_ROLE) and superuser roles (SUPERUSER) the principal can act as read every
  relation in scope, views included.
- who reads is decided per member (access.py): schema USAGE from any source, SELECT and USAGE held by
  one identity. A grant that exposes nothing is a notice: latent (no member can use the schema) or
  redundant (every member reads it another way).

The relation and grant queries are pipelined, so the server works while Python classifies. Findings
keep the grantor exactly as the ACL records it: when it is not the owner, a REVOKE must be run as it.
"""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg import conninfo
from psycopg.rows import tuple_row

from sevtool.core.exposure import Scope
from sevtool.errors import TargetRejected, TargetUnreachable, UsageError
from sevtool.targets.base import Classifier, ScanResult
from sevtool.targets.postgres.exceptions import ExceptionGrants
from sevtool.targets.postgres.plugin import KIND
from sevtool.targets.postgres.probe import PostgresProber
from sevtool.targets.postgres.revoke import PostgresRevoker
from sevtool.targets.postgres.scan import CatalogScan, ScanOutput

__all__ = ["PostgresTarget", "strip_secrets"]

_SECRET_KEYS = ("password", "sslpassword")


def strip_secrets(dsn: str) -> str:
    """The DSN without password fields, in key=value form (URLs are converted)."""
    params = conninfo.conninfo_to_dict(dsn)
    for key in _SECRET_KEYS:
        params.pop(key, None)
    first = {key: params.pop(key) for key in ("host", "port", "dbname", "user") if key in params}
    return conninfo.make_conninfo("", **first, **params)


class PostgresTarget(PostgresRevoker, PostgresProber, ExceptionGrants):
    """A PostgreSQL database reached by a libpq DSN; passwords come from libpq's usual sources."""

    kind = KIND

    def __init__(self, dsn: str, *, name: str | None = None, connect_timeout: int = 5):
        try:
            self.display = name or strip_secrets(dsn)
        except psycopg.ProgrammingError as exc:
            raise UsageError(
                f"not a PostgreSQL DSN or URL: {str(exc).strip()}",
                hint="e.g. 'host=db1 dbname=warehouse' or postgresql://db1/warehouse",
            ) from None
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self._scan_conn: psycopg.Connection | None = None
        # The TUI scans and verifies from worker threads; one scan at a time on the shared connection.
        self._scan_lock = threading.Lock()

    # --- connections -----------------------------------------------------------------------

    def connect(self, *, autocommit: bool = False, user: str | None = None) -> psycopg.Connection:
        """A new connection (as `user` if given), or TargetUnreachable within the connect timeout."""
        try:  # psycopg leaves out parameters given as None: user=None keeps the DSN's user
            return psycopg.connect(
                self.dsn,
                autocommit=autocommit,
                connect_timeout=self.connect_timeout,
                application_name="sevtool",
                user=user or None,
            )
        except psycopg.OperationalError as exc:
            reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            who = f" as {user}" if user else ""
            raise TargetUnreachable(
                f"cannot connect to {self.display}{who}: {reason}",
                hint="check host, port and that the server is up; passwords come from PGPASSWORD, ~/.pgpass or a service file",
            ) from None

    def _scan_connection(self) -> psycopg.Connection:
        """Scans reuse one connection (watch re-scans often); reconnect if it was lost."""
        if self._scan_conn is None or self._scan_conn.closed or self._scan_conn.broken:
            conn = self.connect()
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            self._scan_conn = conn
        return self._scan_conn

    def close(self) -> None:
        with self._scan_lock:
            self._drop_scan_connection()
        self._close_revoke_connections()

    # --- scan ------------------------------------------------------------------------------

    def scan(self, scope: Scope, classify: Classifier) -> ScanResult:
        started = time.perf_counter()
        with self._scan_lock:
            findings, objects, members, notices = self._scan_locked(scope, classify)
        return ScanResult(
            findings=findings,
            objects_in_scope=len(objects),
            principal_members=members,
            objects=objects,
            notices=notices,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )

    def exposure_by_member(self, scope: Scope) -> dict[str, set[str]]:
        """Member role -> the in-scope objects ("schema.name") it reads through the scope's principals."""
        with self._scan_lock, self.connect() as conn:
            conn.read_only = True
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                scan = CatalogScan(cur, scope, lambda *_: None, self.display)
                scan.find()
        return {
            scan.role_names[member]: {scan.relations[oid].fqn for oid in objects}
            for member, objects in scan.by_member.items()
        }

    def _scan_locked(self, scope: Scope, classify: Classifier) -> ScanOutput:
        reused = self._scan_conn is not None
        try:
            return self._scan_once(scope, classify)
        except psycopg.OperationalError as exc:
            self._drop_scan_connection()
            if not reused:
                raise TargetUnreachable(
                    f"lost the connection to {self.display} during the scan: {str(exc).strip()}",
                    hint="run the scan again once the server is reachable",
                ) from None
        # The kept connection went stale (server restarted, idle timeout): one retry on a fresh one.
        try:
            return self._scan_once(scope, classify)
        except psycopg.OperationalError as exc:
            self._drop_scan_connection()
            raise TargetUnreachable(
                f"lost the connection to {self.display} during the scan: {str(exc).strip()}",
                hint="run the scan again once the server is reachable",
            ) from None

    def _scan_once(self, scope: Scope, classify: Classifier) -> ScanOutput:
        conn = self._scan_connection()
        try:
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                return CatalogScan(cur, scope, classify, self.display).run()
        except psycopg.OperationalError:
            raise  # the connection is gone: the caller decides whether to retry
        except psycopg.Error as exc:
            raise TargetRejected(
                f"{self.display} refused a catalog query: {str(exc).strip()}",
                hint="the scanning role needs to read pg_catalog; any login role can",
            ) from None

    def _drop_scan_connection(self) -> None:
        if self._scan_conn is not None:
            self._scan_conn.close()
            self._scan_conn = None
