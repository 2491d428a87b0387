"""Plan drafting: from findings to ordered actions, each with its SQL and the exact prior state undo needs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Required, TypedDict, Unpack

import psycopg
from pydantic import TypeAdapter

from sevtool.core.exposure import FUTURE_TABLES, PUBLIC, AccessPath, Finding, Scope
from sevtool.core.plan import Action, BatchKey, batch_key
from sevtool.targets.postgres.blast import blast_radius
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.pool import RevokeSessions
from sevtool.targets.postgres.roles import membership_prior
from sevtool.targets.postgres.sql import (
    _COLUMN_ACL,
    _COLUMN_ACLS,
    _DEFAULT_ACL,
    _FIRST_HOPS,
    _MEMBERSHIP,
    _RELATION_ACL,
    PRIVILEGES,
    Quoted,
    json_list,
    statements,
    table_statement,
)

PLAN_CHUNK = 10_000  # tables per catalog read when planning
PLAN_READERS = 3  # catalog reads side by side when planning (the column ACLs take one)
KIND_ORDER: dict[str, int] = {
    k: i
    for i, k in enumerate(
        (
            ActionKind.REVOKE_AS_GRANTOR,
            ActionKind.REVOKE_GRANT_OPTION,
            ActionKind.REVOKE_TABLE,
            ActionKind.REVOKE_VIEW,
            ActionKind.REVOKE_COLUMN,
            ActionKind.REVOKE_DEFAULT_PRIVILEGES,
            ActionKind.REVOKE_MEMBERSHIP,
            ActionKind.MANUAL,
        )
    )
}
OBJECT_KIND = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
_ACTIONS = TypeAdapter(list[Action])


Row = tuple[Any, ...]  # a catalog row (psycopg's tuple rows)


class DraftFields(TypedDict, total=False):
    """What an action draft may say besides its statement: the object, its prior state, review, its number (see Action)."""

    object_kind: str
    schema_name: str
    object_name: str
    column: str
    prior_state: str | None
    prior_columns: dict[str, str]
    review: bool
    seq: int


class ActionDraft(DraftFields, total=False):
    """An Action drafted as a dict: 45,000 of them are validated into Actions in one call (see RevokePlanner.plan)."""

    kind: Required[ActionKind]
    grantee: Required[str]
    grantor: Required[str]
    privileges: Required[list[str]]
    sql: Required[str]
    reason: str


def _object_order(draft: ActionDraft) -> tuple[str, str, str]:
    return draft.get("schema_name", ""), draft["object_name"], draft.get("column") or ""


def _draft_batch_key(draft: ActionDraft) -> BatchKey:
    return batch_key(draft["kind"], draft["grantee"], draft["grantor"], draft["privileges"], draft.get("column"))


def manual_step(finding: Finding, grantee: str) -> str | None:
    """What a human must do for a path no REVOKE of ours closes; None when the plan closes it."""
    if finding.path == AccessPath.SECURITY_DEFINER:
        return (
            f"review what {finding.object_fqn} returns; if it reads sensitive rows, REVOKE EXECUTE ON FUNCTION "
            f"{finding.object_fqn} FROM {grantee} (functions are executable by PUBLIC unless revoked)"
        )
    if finding.path == AccessPath.OWNER and grantee == finding.principal:
        return f"{grantee} owns {finding.object_fqn} and can grant itself access at will: ALTER TABLE ... OWNER TO a role outside it"
    if finding.path == AccessPath.CREATEROLE and grantee == finding.principal:
        return (
            f"{grantee} has CREATEROLE and can grant itself any non-superuser role: ALTER ROLE {grantee} NOCREATEROLE"
        )
    return None


def manual_draft(finding: Finding, step: str) -> ActionDraft:
    return {
        "kind": ActionKind.MANUAL,
        "object_kind": finding.object_kind,
        "schema_name": finding.schema_name,
        "object_name": finding.object_name,
        "grantee": _grantee_of(finding),
        "grantor": finding.grantor,
        "privileges": ["SELECT"],
        "sql": f"-- by hand: {step}",
        "review": True,
        "reason": f"sevtool cannot close this {finding.path.value} path: {step}",
    }


def _grantee_of(finding: Finding) -> str:
    if finding.grantee:
        return finding.grantee
    return PUBLIC if finding.path == AccessPath.PUBLIC else finding.principal


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
                grantee = _grantee_of(f)
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
                *self._plan_columns(conn, column),
                *self._plan_defaults(conn, default),
                *self._plan_memberships(conn, membership),
                *(manual_draft(f, step) for f, step in manual.values()),
            ]
        # Actions are drafted as dicts, ordered and numbered, then validated in one call: 45,000 Action()
        # constructions and two attribute assignments each cost more than the catalog queries.
        # Ordered by statement shape (a handful), then by object within each shape; the sorts are stable.
        by_shape: dict[BatchKey, list[ActionDraft]] = {}
        for draft in drafts:
            by_shape.setdefault(_draft_batch_key(draft), []).append(draft)
        drafts = []
        quoted = Quoted()
        for shape_key in sorted(by_shape, key=lambda k: (KIND_ORDER[k[0]], k)):
            group = sorted(by_shape.pop(shape_key), key=_object_order)
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

    def _becomable(self, conn: psycopg.Connection, roles: set[str]) -> set[str]:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER')",
            [sorted(roles)],
        ).fetchall()
        return {r[0] for r in rows}

    def _grant_actions(
        self,
        wanted: dict[str, set[str]],
        owner: str,
        items: Iterable[Row] | None,
        becomable: set[str],
        owner_kind: ActionKind,
        **fields: Unpack[DraftFields],
    ) -> Iterator[ActionDraft]:
        """One action (drafted as a dict) per ACL item (grantee x grantor) holding a wanted privilege."""
        held: dict[tuple[str, str], list[str]] = {}
        for grantee, grantor, privilege, _grantable in items or []:
            if privilege in wanted.get(grantee, ()):
                held.setdefault((grantee, grantor), []).append(privilege)
        for (grantee, grantor), privs in held.items():
            if grantor == owner:
                kind, reason = owner_kind, f"granted by the owner {owner}"
            elif grantor in becomable:
                kind, reason = (
                    ActionKind.REVOKE_AS_GRANTOR,
                    f"granted by grant-option holder {grantor}: revoked as {grantor}, an owner's REVOKE would leave it",
                )
            else:
                kind, reason = (
                    ActionKind.REVOKE_GRANT_OPTION,
                    f"granted by grant-option holder {grantor}, whom we cannot act as: their grant option is revoked with CASCADE",
                )
            # Interned: 45,000 actions share a handful of reasons, not 45,000 copies of one.
            yield {
                "kind": kind,
                "grantee": grantee,
                "grantor": grantor,
                "privileges": sorted(privs, key=PRIVILEGES.index),
                "sql": "",
                "reason": sys.intern(reason),
                **fields,
            }

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
        becomable = self._becomable(conn, {item[1] for found in items.values() for item in found})
        actions: list[ActionDraft] = []
        for i, found in items.items():
            _oid, relkind, is_partition, owner, relacl = objects[i]
            schema, name = acls.keys[i]
            object_kind = "partition" if is_partition else OBJECT_KIND.get(relkind, "table")
            owner_kind = ActionKind.REVOKE_VIEW if relkind in ("v", "m") else ActionKind.REVOKE_TABLE
            actions += self._grant_actions(
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

    def _plan_columns(
        self, conn: psycopg.Connection, wanted: dict[tuple[str, str, str], dict[str, set[str]]]
    ) -> list[ActionDraft]:
        if not wanted:
            return []
        keys = list(wanted)
        rows = conn.execute(
            _COLUMN_ACL, [json_list(k[0] for k in keys), json_list(k[1] for k in keys), json_list(k[2] for k in keys)]
        ).fetchall()
        becomable = self._becomable(conn, {item[1] for row in rows for item in (row[3] or [])})
        actions: list[ActionDraft] = []
        for i, owner, attacl, items in rows:
            schema, name, col = keys[i - 1]
            actions += self._grant_actions(
                wanted[(schema, name, col)],
                owner,
                items,
                becomable,
                owner_kind=ActionKind.REVOKE_COLUMN,
                object_kind="column",
                schema_name=schema,
                object_name=name,
                column=col,
                prior_state=attacl,
            )
        return actions

    def _plan_defaults(
        self, conn: psycopg.Connection, wanted: dict[tuple[str, str], dict[str, set[str]]]
    ) -> list[ActionDraft]:
        if not wanted:
            return []
        # A finding may not name the role whose defaults grant: then every role's defaults in that schema count.
        roles = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT pg_get_userbyid(defaclrole) FROM pg_default_acl ORDER BY 1"
            ).fetchall()
        ]
        keys = [
            (role, schema, grantees)
            for (schema, grantor), grantees in wanted.items()
            for role in ([grantor] if grantor else roles)
        ]
        rows = conn.execute(_DEFAULT_ACL, [json_list(k[0] for k in keys), json_list(k[1] for k in keys)]).fetchall()
        actions: list[ActionDraft] = []
        for i, defaclacl, items in rows:
            role, schema, grantees = keys[i - 1]
            for draft in self._grant_actions(
                grantees,
                role,
                items,
                set(),
                owner_kind=ActionKind.REVOKE_DEFAULT_PRIVILEGES,
                object_kind="default privileges",
                schema_name=schema,
                object_name=FUTURE_TABLES,
                prior_state=defaclacl,
            ):
                draft["reason"] = f"default privileges of {role} grant on tables created later" + (
                    f" in {schema}" if schema else ""
                )
                actions.append(draft)
        return actions

    def _plan_memberships(
        self, conn: psycopg.Connection, wanted: dict[tuple[str, str], list[Finding]]
    ) -> list[ActionDraft]:
        through: dict[tuple[str, str], list[Finding]] = {}
        for (principal, grantee), found in wanted.items():
            for (hop,) in conn.execute(_FIRST_HOPS, {"principal": principal, "grantee": grantee}).fetchall():
                through.setdefault((principal, hop), []).extend(found)
        if not through:
            return []
        keys = list(through)
        rows = conn.execute(_MEMBERSHIP, [json_list(k[1] for k in keys), json_list(k[0] for k in keys)]).fetchall()
        by_key: dict[int, list[list[Any]]] = {}
        for i, *row in rows:
            by_key.setdefault(i, []).append(row)
        actions: list[ActionDraft] = []
        for i, grantor, _admin, _inherit, _set in rows:  # one action per row: each grantor's row is revoked on its own
            principal, role = keys[i - 1]
            found = through[(principal, role)]
            objects = sorted({f.object_fqn for f in found})
            predefined = role.startswith("pg_")
            reason = (
                f"{principal} is a member of {'predefined role ' if predefined else ''}{role}, which gives it "
                f"{len(objects)} object(s) (e.g. {objects[0]}); removing the membership may also remove legitimate access: review"
            )
            prior = membership_prior(role, principal, by_key[i])
            actions.append(
                {
                    "kind": ActionKind.REVOKE_MEMBERSHIP,
                    "object_kind": "role",
                    "object_name": role,
                    "grantee": principal,
                    "grantor": grantor,
                    "privileges": ["MEMBER"],
                    "sql": "",
                    "prior_state": prior,
                    "review": True,
                    "reason": reason,
                }
            )
        return actions
