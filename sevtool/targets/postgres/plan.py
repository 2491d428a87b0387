"""Plan drafting: from findings to ordered actions, each with its SQL and the exact prior state undo needs.

This module sorts findings by what closes them, reads the ACLs of the tables they name (a chunk at a time, while
the findings are still coming in), and orders, numbers and validates the drafts. The drafts themselves are made
in `drafts.py` (one per ACL item, manual steps) and `plan_grants.py` (columns, default privileges, memberships).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from pydantic import TypeAdapter

from sevtool.core.exposure import PUBLIC, AccessPath, Finding, Scope
from sevtool.core.plan import Action, BatchKey
from sevtool.targets.postgres.blast import blast_radius
from sevtool.targets.postgres.drafts import (
    KIND_ORDER,
    OBJECT_KIND,
    ActionDraft,
    Row,
    becomable_roles,
    draft_batch_key,
    grant_drafts,
    grantee_of,
    manual_draft,
    manual_step,
    object_order,
)
from sevtool.targets.postgres.plan_grants import plan_columns, plan_defaults, plan_memberships
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.pool import RevokeSessions
from sevtool.targets.postgres.sql import (
    _COLUMN_ACLS,
    _RELATION_ACL,
    Quoted,
    json_list,
    statements,
    table_statement,
)

PLAN_CHUNK = 10_000  # tables per catalog read when planning
PLAN_READERS = 3  # catalog reads side by side when planning (the column ACLs take one)
_ACTIONS = TypeAdapter(list[Action])


class _RelationAcls:
    """The ACLs of the tables a plan names, read PLAN_CHUNK tables at a time on pooled connections as they are named.

    Tens of thousands of tables' ACLs take the server a while: read them side by side (both cores) while the findings
    are still being read, instead of after. Only items of `grantee_oids` come back, with every privilege: the plan picks the wanted ones.
    """

    def __init__(self, target: RevokePlanner, pool: ThreadPoolExecutor, grantee_oids: dict[str, int]):
        self._target, self._pool, self._grantee_oids = target, pool, grantee_oids
        self.keys: list[tuple[str, str]] = []  # (schema, table) in the order they were named
        self._chunks: list[Future[list[Row]] | None] = []  # None once taken in
        self._columns: Future[list[Row]] | None = None

    def covers(self, grantees: set[str]) -> bool:
        return grantees <= self._grantee_oids.keys()

    def want(self, key: tuple[str, str]) -> None:
        if self._columns is None:  # every column ACL of the database, in one pass over pg_attribute
            self._columns = self._pool.submit(self._target._fetch, _COLUMN_ACLS, None)
        self.keys.append(key)
        if len(self.keys) % PLAN_CHUNK == 0:
            self._read(len(self.keys) - PLAN_CHUNK)

    def _read(self, start: int) -> None:
        chunk = self.keys[start : start + PLAN_CHUNK]
        self._chunks.append(
            self._pool.submit(
                self._target._fetch,
                _RELATION_ACL,
                {
                    "nsp": json_list(k[0] for k in chunk),
                    "rel": json_list(k[1] for k in chunk),
                    "grantees": list(self._grantee_oids.values()),
                },
            )
        )

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(index into keys, the rest of the row) for every object found and each of its matching ACL items."""
        if len(self.keys) % PLAN_CHUNK:
            self._read(len(self.keys) - len(self.keys) % PLAN_CHUNK)
        for n in range(len(self._chunks)):
            future, self._chunks[n] = self._chunks[n], None  # a chunk's rows are let go once taken in
            if future is None:
                raise RuntimeError("the ACL rows of a plan are read once")
            chunk = future.result()
            for i, *row in chunk:
                yield n * PLAN_CHUNK + i - 1, row

    def columns(self) -> list[Row]:
        """(attrelid, attname, attacl text) of every column that has an ACL."""
        return self._columns.result() if self._columns else []


class RevokePlanner(RevokeSessions):
    """Plan half of PostgresRevoker."""

    def plan(self, findings: Iterable[Finding], scope: Scope) -> list[Action]:
        """Ordered actions closing every finding; each carries its SQL and the prior ACL text."""
        relation: dict[tuple[str, str], dict[str, set[str]]] = {}
        column: dict[tuple[str, str, str], dict[str, set[str]]] = {}
        default: dict[tuple[str, str], dict[str, set[str]]] = {}  # (schema, grantor-or-'') -> grantee -> privs
        membership: dict[tuple[str, str], list[Finding]] = {}  # (principal, role holding the grant)
        in_scope: set[str] = set()
        manual: dict[tuple[str, str, AccessPath, str], tuple[Finding, str]] = {}
        with self.connect(autocommit=True) as conn, ThreadPoolExecutor(max_workers=PLAN_READERS) as pool:
            # A table's grants to the scope's principals and PUBLIC are what its findings name: read them while the
            # findings are still coming in, a chunk of tables at a time.
            acls = _RelationAcls(self, pool, self._role_oids(conn, [PUBLIC, *scope.principals]))
            for f in findings:
                in_scope.add(f.object_fqn)
                grantee = grantee_of(f)
                if f.path == AccessPath.INHERITS_PARENT:
                    continue  # closed by the revoke on the parent, whose own finding is planned
                if step := manual_step(f, grantee):
                    manual.setdefault((f.schema_name, f.object_name, f.path, grantee), (f, step))
                elif grantee not in (PUBLIC, f.principal):
                    membership.setdefault((f.principal, grantee), []).append(f)
                elif f.path == AccessPath.DEFAULT_PRIVILEGES:
                    default.setdefault((f.schema_name, f.grantor), {}).setdefault(grantee, set()).add(
                        f.privilege.upper()
                    )
                elif f.column is not None:
                    column.setdefault((f.schema_name, f.object_name, f.column), {}).setdefault(grantee, set()).add(
                        f.privilege.upper()
                    )
                else:
                    by_grantee = relation.get(key := (f.schema_name, f.object_name))
                    if by_grantee is None:
                        by_grantee = relation[key] = {}
                        acls.want(key)
                    by_grantee.setdefault(grantee, set()).add(f.privilege.upper())
            drafts = [
                *self._plan_relations(conn, pool, relation, acls),
                *plan_columns(conn, column),
                *plan_defaults(conn, default),
                *plan_memberships(conn, membership),
                *(manual_draft(f, step) for f, step in manual.values()),
            ]
        # Actions are drafted as dicts, ordered and numbered, then validated in one call: 45,000 Action()
        # constructions and two attribute assignments each cost more than the catalog queries.
        # Ordered by statement shape (a handful), then by object within each shape; the sorts are stable.
        by_shape: dict[BatchKey, list[ActionDraft]] = {}
        for draft in drafts:
            by_shape.setdefault(draft_batch_key(draft), []).append(draft)
        drafts = []
        quoted = Quoted()
        for shape_key in sorted(by_shape, key=lambda k: (KIND_ORDER[k[0]], k)):
            group = sorted(by_shape.pop(shape_key), key=object_order)
            first = group[0]
            shape = table_statement(
                first["kind"], first.get("column"), first["privileges"], first["grantee"], first["grantor"], quoted
            )
            if shape:  # composed once per shape
                for draft in group:
                    draft["sql"] = f"{shape[0]}{quoted.qualified(draft['schema_name'], draft['object_name'])}{shape[1]}"
            drafts += group
        for seq, draft in enumerate(drafts, start=1):
            draft["seq"] = seq
        actions: list[Action] = []
        while drafts:  # a slice at a time, so 45,000 dicts and 45,000 Actions are never all alive at once
            actions += _ACTIONS.validate_python(drafts[:PLAN_CHUNK])
            del drafts[:PLAN_CHUNK]
        for action in actions:
            if not action.sql:
                action.sql = "; ".join(statements([action], quoted))
        with self.connect(autocommit=True) as conn:
            blast_radius(conn, actions, scope.principals, in_scope)
        return actions

    def _plan_relations(
        self,
        conn: psycopg.Connection,
        pool: ThreadPoolExecutor,
        wanted: dict[tuple[str, str], dict[str, set[str]]],
        acls: _RelationAcls,
    ) -> list[ActionDraft]:
        if not wanted:
            return []
        grantees = {g for by_grantee in wanted.values() for g in by_grantee}
        if not acls.covers(grantees):  # a finding for a principal outside the scope: read again for every grantee
            acls = _RelationAcls(self, pool, self._role_oids(conn, sorted(grantees)))
            for key in wanted:
                acls.want(key)
        objects: dict[int, Row] = {}
        items: dict[int, list[Row]] = {}
        for i, (oid, relkind, is_partition, owner, relacl, grantee, grantor, privilege, grantable) in acls.rows():
            objects[i] = (oid, relkind, is_partition, owner, relacl)
            if grantee is not None:
                items.setdefault(i, []).append((grantee, grantor, privilege, grantable))
        columns: dict[int, dict[str, str]] = {}
        exposed = {objects[i][0]: i for i in items}
        for attrelid, attname, attacl in acls.columns():
            if attrelid in exposed:
                columns.setdefault(exposed[attrelid], {})[attname] = attacl
        becomable = becomable_roles(conn, {item[1] for found in items.values() for item in found})
        actions: list[ActionDraft] = []
        for i, found in items.items():
            _oid, relkind, is_partition, owner, relacl = objects[i]
            schema, name = acls.keys[i]
            object_kind = "partition" if is_partition else OBJECT_KIND.get(relkind, "table")
            owner_kind = ActionKind.REVOKE_VIEW if relkind in ("v", "m") else ActionKind.REVOKE_TABLE
            actions += grant_drafts(
                wanted[(schema, name)],
                owner,
                found,
                becomable,
                owner_kind=owner_kind,
                object_kind=object_kind,
                schema_name=schema,
                object_name=name,
                prior_state=relacl,
                prior_columns=columns.get(i, {}),
            )
        return actions
