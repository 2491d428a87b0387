"""Plan drafting: from findings to ordered actions, each with its SQL and the exact prior state undo needs.

This module sorts findings by what closes them and reads the ACLs of the tables they name (a chunk at a time, while
the findings are still coming in). The drafts themselves are made in `drafts.py` (one per ACL item, manual steps)
and `plan_grants.py` (columns, default privileges, memberships); `plan_order.py` orders and numbers them and makes
them into Actions a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from typing import Any

import psycopg

from sevtool.core.exposure import PUBLIC, AccessPath, Finding, Scope
from sevtool.core.plan import Action, ActionChunks, BatchKey
from sevtool.targets.postgres.blast import Screen, blast_radius
from sevtool.targets.postgres.drafts import (
    OBJECT_KIND,
    becomable_roles,
    draft_batch_key,
    grant_drafts,
    grantee_of,
    manual_draft,
    manual_step,
)
from sevtool.targets.postgres.plan_grants import plan_columns, plan_defaults, plan_memberships
from sevtool.targets.postgres.plan_order import Shapes
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.pool import RevokeSessions
from sevtool.targets.postgres.sql import _COLUMN_ACLS, _RELATION_ACL, json_list

PLAN_CHUNK = 10_000  # tables per catalog read, and actions made at a time, when planning
PLAN_READERS = 3  # catalog reads side by side when planning (the column ACLs take one)

# What a table's findings want revoked: (grantee, PRIVILEGE) pairs. Tables share a handful of these, so each
# distinct one is held once.
Wanted = frozenset[tuple[str, str]]
# A table's ACL as the plan needs it: (oid, relkind, is a partition, owner, ACL text, its items for the grantees asked
# about: (grantee, grantor, privilege, grantable)). Strings repeated across tables are held once.
TableAcl = tuple[int, str, bool, str, str | None, tuple[tuple[Any, ...], ...]]


class _RelationAcls:
    """The ACLs of the tables a plan names, read PLAN_CHUNK tables at a time on pooled connections as they are named.

    Tens of thousands of tables' ACLs take the server a while: read them side by side (both cores) while the findings
    are still being read, instead of after, and keep only what the plan needs of each table's rows. Only items of
    `grantee_oids` come back, with every privilege: the plan picks the wanted ones.
    """

    def __init__(self, target: RevokePlanner, pool: ThreadPoolExecutor, grantee_oids: dict[str, int]):
        self._target, self._pool, self._grantee_oids = target, pool, grantee_oids
        self.keys: list[tuple[str, str]] = []  # (schema, table) in the order they were named
        self.found: dict[int, TableAcl] = {}  # index into keys -> the table's ACL, for tables with a matching item
        self._reading: list[Future[dict[int, TableAcl]]] = []
        self._columns: Future[list[tuple[Any, ...]]] | None = None
        self._same: dict[Any, Any] = {}  # one object per distinct string or item tuple

    def covers(self, grantees: set[str]) -> bool:
        return grantees <= self._grantee_oids.keys()

    def want(self, key: tuple[str, str]) -> None:
        if self._columns is None:  # every column ACL of the database, in one pass over pg_attribute
            self._columns = self._pool.submit(self._target._fetch, _COLUMN_ACLS, None)
        self.keys.append(key)
        if len(self.keys) % PLAN_CHUNK == 0:
            self._read(len(self.keys) - PLAN_CHUNK)

    def _read(self, start: int) -> None:
        self._take_in(wait=False)  # the tables of chunks already read, so their rows are let go
        chunk = self.keys[start : start + PLAN_CHUNK]
        params = {
            "nsp": json_list(k[0] for k in chunk),
            "rel": json_list(k[1] for k in chunk),
            "grantees": list(self._grantee_oids.values()),
        }
        self._reading.append(self._pool.submit(self._kept, start, params))

    def _kept(self, start: int, params: dict[str, Any]) -> dict[int, TableAcl]:
        """One chunk's rows (on a reader thread), as one TableAcl per table with a matching item."""
        same = self._same
        tables: dict[int, tuple[Any, ...]] = {}
        items: dict[int, list[tuple[Any, ...]]] = {}
        for i, oid, relkind, is_partition, owner, relacl, *item in self._target._fetch(_RELATION_ACL, params):
            n = start + i - 1
            if n not in tables:
                tables[n] = (
                    oid,
                    same.setdefault(relkind, relkind),
                    is_partition,
                    same.setdefault(owner, owner),
                    relacl,
                )
            if item[0] is not None:
                grant = tuple(item)
                items.setdefault(n, []).append(same.setdefault(grant, grant))
        kept: dict[int, TableAcl] = {}
        for n, found in items.items():
            oid, relkind, is_partition, owner, relacl = tables[n]
            held = tuple(found)
            kept[n] = (oid, relkind, is_partition, owner, same.setdefault(relacl, relacl), same.setdefault(held, held))
        return kept

    def tables(self) -> dict[int, TableAcl]:
        """Every table read, once all are named; handed over (the caller lets them go when drafted)."""
        if len(self.keys) % PLAN_CHUNK:
            self._read(len(self.keys) - len(self.keys) % PLAN_CHUNK)
        self._take_in(wait=True)
        found, self.found = self.found, {}
        return found

    def _take_in(self, *, wait: bool) -> None:
        reading = []
        for future in self._reading:
            if wait or future.done():
                self.found.update(future.result())
            else:
                reading.append(future)
        self._reading = reading

    def columns(self) -> list[tuple[Any, ...]]:
        """(attrelid, attname, attacl text) of every column that has an ACL."""
        return self._columns.result() if self._columns else []


class _InScope:
    """The objects ("schema.name") the scan found exposed, answered from the tables the plan names and a set of the
    rest: a set of 200,000 names would be held beside the plan only for the blast radius's few questions."""

    def __init__(self, relation: dict[tuple[str, str], Wanted], others: set[str]):
        self._relation, self._others = relation, others

    def __contains__(self, fqn: object) -> bool:
        if not isinstance(fqn, str):
            return False
        if fqn in self._others:
            return True
        dot = fqn.find(".")
        while dot >= 0:  # a schema's name may hold a dot
            if (fqn[:dot], fqn[dot + 1 :]) in self._relation:
                return True
            dot = fqn.find(".", dot + 1)
        return False


class RevokePlanner(RevokeSessions):
    """Plan half of PostgresRevoker."""

    def plan(self, findings: Iterable[Finding], scope: Scope) -> list[Action]:
        """Ordered actions closing every finding; each carries its SQL and the prior ACL text."""
        return list(chain.from_iterable(self.plan_in_chunks(findings, scope).chunks))

    def plan_in_chunks(self, findings: Iterable[Finding], scope: Scope) -> ActionChunks:
        """`plan`, counted, then made PLAN_CHUNK actions at a time as the caller takes them."""
        relation: dict[tuple[str, str], Wanted] = {}
        column: dict[tuple[str, str, str], dict[str, set[str]]] = {}
        default: dict[tuple[str, str], dict[str, set[str]]] = {}  # (schema, grantor-or-'') -> grantee -> privs
        membership: dict[tuple[str, str], list[Finding]] = {}  # (principal, role holding the grant)
        others: set[str] = set()  # exposed objects with no table-level finding of their own
        manual: dict[tuple[str, str, AccessPath, str], tuple[Finding, str]] = {}
        same: dict[Any, Any] = {}  # one object per distinct schema name, (grantee, privilege) pair and Wanted
        shapes = Shapes()
        with self.connect(autocommit=True) as conn, ThreadPoolExecutor(max_workers=PLAN_READERS) as pool:
            # A table's grants to the scope's principals and PUBLIC are what its findings name: read them while the
            # findings are still coming in, a chunk of tables at a time.
            acls = _RelationAcls(self, pool, self._role_oids(conn, [PUBLIC, *scope.principals]))
            for f in findings:
                grantee = grantee_of(f)
                if f.path == AccessPath.INHERITS_PARENT:
                    others.add(f.object_fqn)
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
                    pair = (grantee, f.privilege.upper())
                    pair = same.setdefault(pair, pair)
                    wanted = relation.get(key := (same.setdefault(f.schema_name, f.schema_name), f.object_name))
                    if wanted is None:
                        acls.want(key)
                        wanted = frozenset((pair,))
                    elif pair in wanted:
                        continue
                    else:
                        wanted = wanted | {pair}
                    relation[key] = same.setdefault(wanted, wanted)
                    continue
                others.add(f.object_fqn)
            self._plan_relations(conn, pool, relation, acls, shapes)
            for draft in chain(
                plan_columns(conn, column),
                plan_defaults(conn, default),
                plan_memberships(conn, membership),
                (manual_draft(f, step) for f, step in manual.values()),
            ):
                shapes.add(draft)
        ordered = shapes.ordered(PLAN_CHUNK)
        with self.connect(autocommit=True) as conn:
            # The blast radius weighs the few actions that may take access from someone else, over the whole plan,
            # before any action is handed on.
            screened = ordered.screened(Screen(conn, ordered.shapes))
            blast_radius(conn, screened, scope.principals, _InScope(relation, others))
        return ActionChunks(ordered.count, ordered.chunks({a.seq: a for a in screened}))

    def _plan_relations(
        self,
        conn: psycopg.Connection,
        pool: ThreadPoolExecutor,
        wanted: dict[tuple[str, str], Wanted],
        acls: _RelationAcls,
        shapes: Shapes,
    ) -> None:
        if not wanted:
            return
        grantees = {g for pairs in set(wanted.values()) for g, _ in pairs}
        if not acls.covers(grantees):  # a finding for a principal outside the scope: read again for every grantee
            acls = _RelationAcls(self, pool, self._role_oids(conn, sorted(grantees)))
            for key in wanted:
                acls.want(key)
        tables = acls.tables()
        columns: dict[int, dict[str, str]] = {}
        exposed = {table[0]: i for i, table in tables.items()}
        for attrelid, attname, attacl in acls.columns():
            if attrelid in exposed:
                columns.setdefault(exposed[attrelid], {})[attname] = attacl
        del exposed
        becomable = becomable_roles(conn, {item[1] for items in {t[5] for t in tables.values()} for item in items})
        # Tables with the same wanted grants, owner and ACL items (nearly all of a bulk exposure) get the same drafts.
        drafted: dict[tuple[Any, ...], list[tuple[BatchKey, str]]] = {}
        for i, (_oid, relkind, is_partition, owner, relacl, found) in tables.items():
            schema, name = acls.keys[i]
            owner_kind = ActionKind.REVOKE_VIEW if relkind in ("v", "m") else ActionKind.REVOKE_TABLE
            alike = (wanted[(schema, name)], owner, found, owner_kind)
            if (shaped := drafted.get(alike)) is None:
                privileges: dict[str, set[str]] = {}
                for grantee, privilege in alike[0]:
                    privileges.setdefault(grantee, set()).add(privilege)
                shaped = drafted[alike] = [
                    (draft_batch_key(draft), draft["reason"])
                    for draft in grant_drafts(privileges, owner, found, becomable, owner_kind=owner_kind)
                ]
            object_kind = "partition" if is_partition else OBJECT_KIND.get(relkind, "table")
            for shape, reason in shaped:
                shapes.add_relation(shape, (schema, name, object_kind, relacl, columns.get(i), reason))
