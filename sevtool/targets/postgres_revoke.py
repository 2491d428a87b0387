"""Revocation half of the PostgreSQL target: plan, apply in bounded batches, read back, undo exactly.

How each finding is closed (`plan`):
- a grant to the principal itself or to PUBLIC, on a table, view, partition: one action per grant *item*
  found in `relacl` (grantee x grantor). Made by the owner: `REVOKE ... ON TABLE ... FROM grantee`.
  Made by a grant-option holder: executed as that holder (`SET LOCAL ROLE holder`), because a superuser's
  REVOKE acts as the owner and silently leaves the holder's grant in place; when the connected user cannot
  become the holder, `REVOKE GRANT OPTION FOR ... FROM holder CASCADE` instead (what an owner can do).
- a column grant: `REVOKE priv (col) ON TABLE ...`, per column ACL item, same grantor rules.
- default privileges: `ALTER DEFAULT PRIVILEGES FOR ROLE r [IN SCHEMA s] REVOKE ... ON TABLES FROM grantee`.
- access through another role (an inherited role, a predefined role such as pg_read_all_data): revoke the
  principal's membership of the first role on the chain. That role may legitimately hold the grant, so the
  action is flagged `review=True` and never hidden in a batch summary.

Every action records the exact prior ACL text before anything runs. `apply` groups actions by statement
shape, runs each group in transactions of at most `batch_size` objects (45,000 tables in one transaction
exhaust the lock table at max_locks_per_transaction=64), halves and retries a batch on out-of-shared-memory
(and bisects a failing batch down to the object the server refused), captures server notices
("no privileges could be revoked" is a failure), and reads the grants back inside the transaction: only
what is really gone is reported applied.

`undo` restores each object's ACL to the recorded text byte for byte: ACL items are kept in insertion
order, so it keeps the common prefix of the current and prior ACL, removes what follows, and re-grants the
prior items that follow in their original order, each as its original grantor and with its grant options.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import groupby

import psycopg
from pydantic import TypeAdapter

from sevtool.core.exposure import AccessPath, Finding, Scope
from sevtool.core.plan import Action, ActionKind, ActionResult, ActionStatus, batch_key
from sevtool.errors import TargetRejected, TargetUnreachable
from sevtool.targets.postgres_blast import blast_radius

DEFAULT_BATCH_SIZE = 1000
PLAN_CHUNK = 10_000   # tables per catalog read when planning
PLAN_READERS = 3      # catalog reads side by side when planning (the column ACLs take one)
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")
PUBLIC = "PUBLIC"
NOT_REVOKED = "01006"   # SQLSTATE of "WARNING: no privileges could be revoked"

RELATION_KINDS = (ActionKind.REVOKE_TABLE, ActionKind.REVOKE_VIEW, ActionKind.REVOKE_AS_GRANTOR, ActionKind.REVOKE_GRANT_OPTION)
KIND_ORDER = {k: i for i, k in enumerate((ActionKind.REVOKE_AS_GRANTOR, ActionKind.REVOKE_GRANT_OPTION, ActionKind.REVOKE_TABLE,
                                          ActionKind.REVOKE_VIEW, ActionKind.REVOKE_COLUMN, ActionKind.REVOKE_DEFAULT_PRIVILEGES,
                                          ActionKind.REVOKE_MEMBERSHIP))}
OBJECT_KIND = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}

# The wanted objects with their ACL text, and their ACL items (one row per item x privilege) for the wanted
# grantees: flat rows, filtered in the server (45,000 tables).
_RELATION_ACL = """
SELECT want.i, c.oid, c.relkind, c.relispartition, pg_get_userbyid(c.relowner), c.relacl::text,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END, pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable
FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json)) WITH ORDINALITY AS want(nsp, rel, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
LEFT JOIN LATERAL aclexplode(c.relacl) x ON x.grantee = ANY(%(grantees)s::oid[])
"""

# Role names -> oids as ACL items hold them; PUBLIC is 0. A role that no longer exists is left out.
_ROLE_OIDS = "SELECT rolname, oid FROM pg_roles WHERE rolname = ANY(%s)"

# Every column ACL of the database: one pass over pg_attribute (0.13 s at 45,000 tables) is cheaper than an
# index lookup per exposed table (0.3 s), and column grants are few.
_COLUMN_ACLS = """
SELECT attrelid, attname, attacl::text FROM pg_attribute WHERE attacl IS NOT NULL AND attnum > 0 AND NOT attisdropped
"""

# Read-back: which of these objects still hold an item (grantee, grantor) with one of the privileges.
# aclcontains() matches grantee and grantor exactly and checks the privilege bits, without exploding the ACL.
# Objects are looked up by schema and name, not to_regclass(quoted name): parsing 45,000 names cost the server
# a third more than the read-back itself, twice per batch.
_RELATION_STILL_GRANTED = """
SELECT want.i FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json)) WITH ORDINALITY AS want(nsp, rel, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
WHERE EXISTS (SELECT FROM unnest(%(privs)s::text[]) AS p WHERE aclcontains(c.relacl, makeaclitem(%(grantee)s, %(grantor)s, p, false)))
"""

_COLUMN_ACL = """
SELECT want.i, pg_get_userbyid(c.relowner), att.attacl::text,
       (SELECT json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                         pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable))
          FROM aclexplode(att.attacl) x)
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json), json_array_elements_text(%s::json)) WITH ORDINALITY AS want(nsp, rel, col, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
JOIN pg_attribute att ON att.attrelid = c.oid AND att.attname = want.col AND NOT att.attisdropped
"""

# Schema '' means the role's global default privileges (defaclnamespace 0).
_DEFAULT_ACL = """
SELECT want.i, d.defaclacl::text,
       (SELECT json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                         pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable))
          FROM aclexplode(d.defaclacl) x)
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) WITH ORDINALITY AS want(role, nsp, i)
JOIN pg_roles r ON r.rolname = want.role
JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r'
 AND d.defaclnamespace = CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END
"""

_MEMBERSHIP = """
SELECT want.i, pg_get_userbyid(m.grantor), m.admin_option
FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) WITH ORDINALITY AS want(role, member, i)
JOIN pg_roles r ON r.rolname = want.role
JOIN pg_roles mem ON mem.rolname = want.member
JOIN pg_auth_members m ON m.roleid = r.oid AND m.member = mem.oid
"""

# The roles the principal belongs to directly that lead (transitively) to the role holding the grant.
_FIRST_HOPS = """
WITH RECURSIVE up(roleid, first_hop) AS (
    SELECT m.roleid, m.roleid FROM pg_auth_members m JOIN pg_roles p ON p.oid = m.member WHERE p.rolname = %(principal)s
  UNION
    SELECT m.roleid, up.first_hop FROM pg_auth_members m JOIN up ON m.member = up.roleid
)
SELECT DISTINCT pg_get_userbyid(first_hop) FROM up JOIN pg_roles g ON g.oid = up.roleid WHERE g.rolname = %(grantee)s ORDER BY 1
"""

# Undo: per object its owner, current ACL and recorded prior ACL (text as recorded); `present` is false when the
# object (or role) is gone. Objects are named by quoted name, so a dropped and re-created table is found by name.
_UNDO_SOURCES = {
    "relation": """
SELECT want.i, c.oid IS NOT NULL, c.relowner, c.relacl, want.prior
FROM ROWS FROM (json_array_elements_text(%(names)s::json), json_array_elements_text(%(priors)s::json)) WITH ORDINALITY AS want(name, prior, i)
LEFT JOIN pg_class c ON c.oid = to_regclass(want.name)""",
    "column": """
SELECT want.i, a.attrelid IS NOT NULL, c.relowner, a.attacl, want.prior
FROM ROWS FROM (json_array_elements_text(%(names)s::json), json_array_elements_text(%(columns)s::json), json_array_elements_text(%(priors)s::json)) WITH ORDINALITY AS want(name, col, prior, i)
LEFT JOIN pg_class c ON c.oid = to_regclass(want.name)
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = want.col AND NOT a.attisdropped""",
    # Schema '' means the role's global default privileges, whose absence means the built-in default.
    "default": """
SELECT want.i, r.oid IS NOT NULL, r.oid, COALESCE(d.defaclacl, CASE WHEN want.nsp = '' THEN acldefault('r', r.oid) END), want.prior
FROM ROWS FROM (json_array_elements_text(%(roles)s::json), json_array_elements_text(%(schemas)s::json), json_array_elements_text(%(priors)s::json)) WITH ORDINALITY AS want(role, nsp, prior, i)
LEFT JOIN pg_roles r ON r.rolname = want.role
LEFT JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r'
 AND d.defaclnamespace = CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END""",
}

# ACL items keep their insertion order, so the prior ACL comes back by keeping the common prefix of the
# current and prior ACL, revoking the current items after it and re-granting the prior ones in order.
# Per differing object: JSON [[grantee, grantor] to revoke, ...], [[grantee, grantor, with grant option, plain], ...]]
# with grantor null when it is the owner. Objects needing the same statements share them (the usual case).
_UNDO_OPS = """
WITH src(i, present, owner, cur, prior) AS ({source}),
diff AS (
  SELECT i, owner, cur, prior::aclitem[] AS pri,
         (SELECT min(n) FROM generate_series(1, greatest(cardinality(cur), cardinality(prior::aclitem[])) + 1) AS n
           WHERE cur[n] IS DISTINCT FROM (prior::aclitem[])[n]) AS keep
  FROM src WHERE present AND cur::text IS DISTINCT FROM prior
)
SELECT i, json_build_array(
  (SELECT COALESCE(json_agg(json_build_array(e.grantee, e.grantor) ORDER BY it.ord), '[]')
     FROM unnest(cur[keep:]) WITH ORDINALITY AS it(acl, ord), LATERAL ({item}) e),
  (SELECT COALESCE(json_agg(json_build_array(e.grantee, e.grantor, e.with_option, e.plain) ORDER BY it.ord), '[]')
     FROM unnest(pri[keep:]) WITH ORDINALITY AS it(acl, ord), LATERAL ({item}) e))::text
FROM diff
"""
_UNDO_ITEM = """SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee,
         CASE WHEN x.grantor = owner THEN NULL ELSE pg_get_userbyid(x.grantor) END AS grantor,
         COALESCE(array_agg(x.privilege_type) FILTER (WHERE x.is_grantable), '{}') AS with_option,
         COALESCE(array_agg(x.privilege_type) FILTER (WHERE NOT x.is_grantable), '{}') AS plain
  FROM aclexplode(ARRAY[it.acl]) x GROUP BY x.grantee, x.grantor"""
_UNDO_OPS_SQL = {family: _UNDO_OPS.format(source=source, item=_UNDO_ITEM) for family, source in _UNDO_SOURCES.items()}

# After undo: the objects whose ACL text is not the recorded one, with what it is now.
_UNDO_MISMATCH = """
WITH src(i, present, owner, cur, prior) AS ({source})
SELECT i, present, cur::text FROM src WHERE NOT present OR cur::text IS DISTINCT FROM prior
"""
_UNDO_MISMATCH_SQL = {family: _UNDO_MISMATCH.format(source=source) for family, source in _UNDO_SOURCES.items()}

BatchCallback = Callable[[list[ActionResult]], None]
_ACTIONS = TypeAdapter(list[Action])


def _list(values: Iterable) -> str:
    """A list parameter as JSON text, unpacked by json_array_elements_text in the query.

    psycopg dumps a 1,000-element text[] element by element in Python (~10 ms of CPU per batch); json.dumps
    does it in C in well under 1 ms, and the server parses JSON faster than array literals too.
    """
    return json.dumps(list(values))


def _object_order(draft: dict) -> tuple:
    return draft.get("schema_name", ""), draft["object_name"], draft.get("column") or ""


def _draft_batch_key(draft: dict) -> tuple:
    return batch_key(draft["kind"], draft["grantee"], draft["grantor"], draft["privileges"], draft.get("column"))


def _family(action: Action) -> str:
    if action.kind == ActionKind.REVOKE_MEMBERSHIP:
        return "membership"
    if action.kind == ActionKind.REVOKE_DEFAULT_PRIVILEGES:
        return "default"
    return "column" if action.column is not None else "relation"


def _grantee_of(finding: Finding) -> str:
    if finding.grantee:
        return finding.grantee
    return PUBLIC if finding.path == AccessPath.PUBLIC else finding.principal


def quote_ident(name: str) -> str:
    """Always-quoted identifier, as libpq's PQescapeIdentifier (and so psycopg's sql.Identifier) writes it.

    Plain string work: calling into psycopg for 90,000 names (schema and table of 45,000 actions) takes
    longer than the REVOKEs themselves. A name cannot hold a NUL byte, so doubling quotes is the whole rule.
    """
    return '"' + name.replace('"', '""') + '"'


class _Quoted:
    """Identifier quoting for statements composed by the thousand (see quote_ident)."""

    def __init__(self) -> None:
        self._schemas: dict[str, str] = {}   # 45,000 tables live in a handful of schemas: each is quoted once

    def __call__(self, *names: str) -> str:
        return ".".join(map(quote_ident, names))

    def role(self, name: str) -> str:
        return PUBLIC if name == PUBLIC else self(name)

    def qualified(self, schema: str, name: str) -> str:
        quoted = self._schemas.get(schema)
        if quoted is None:
            quoted = self._schemas[schema] = quote_ident(schema)
        return f"{quoted}.{quote_ident(name)}"

    def table(self, action: Action) -> str:
        return self.qualified(action.schema_name, action.object_name)

    def tables(self, actions: list[Action]) -> str:
        return ", ".join(self.qualified(a.schema_name, a.object_name) for a in actions)


def _privilege_list(privs: Iterable[str]) -> str:
    """Privilege keywords are SQL, not identifiers: only the known ones ever reach a statement."""
    chosen = [p.upper() for p in privs]
    unknown = [p for p in chosen if p not in PRIVILEGES]
    if unknown or not chosen:
        raise TargetRejected(f"unknown privilege {', '.join(unknown) or '(none)'} in a revoke action", hint="privileges: " + ", ".join(PRIVILEGES))
    return ", ".join(chosen)


_POOL_LOCK = threading.Lock()   # guards each target's idle connections and role oid cache


class _RelationAcls:
    """The ACLs of the tables a plan names, read PLAN_CHUNK tables at a time on pooled connections as they are named.

    45,000 tables' ACLs cost the server ~0.5 s: read side by side (both cores) while the findings are still being
    read, instead of after. Only items of `grantee_oids` come back, with every privilege: the plan picks the wanted ones.
    """

    def __init__(self, target: PostgresRevoker, pool: ThreadPoolExecutor, grantee_oids: dict[str, int]):
        self._target, self._pool, self._grantee_oids = target, pool, grantee_oids
        self.keys: list[tuple[str, str]] = []   # (schema, table) in the order they were named
        self._chunks: list[Future | None] = []
        self._columns: Future | None = None

    def covers(self, grantees: set[str]) -> bool:
        return grantees <= self._grantee_oids.keys()

    def want(self, key: tuple[str, str]) -> None:
        if self._columns is None:   # every column ACL of the database, in one pass over pg_attribute
            self._columns = self._pool.submit(self._target._fetch, _COLUMN_ACLS, None)
        self.keys.append(key)
        if len(self.keys) % PLAN_CHUNK == 0:
            self._read(len(self.keys) - PLAN_CHUNK)

    def _read(self, start: int) -> None:
        chunk = self.keys[start:start + PLAN_CHUNK]
        self._chunks.append(self._pool.submit(self._target._fetch, _RELATION_ACL, {
            "nsp": _list(k[0] for k in chunk), "rel": _list(k[1] for k in chunk), "grantees": list(self._grantee_oids.values())}))

    def rows(self) -> Iterator[tuple[int, tuple]]:
        """(index into keys, the rest of the row) for every object found and each of its matching ACL items."""
        if len(self.keys) % PLAN_CHUNK:
            self._read(len(self.keys) - len(self.keys) % PLAN_CHUNK)
        for n in range(len(self._chunks)):
            chunk, self._chunks[n] = self._chunks[n].result(), None   # a chunk's rows are let go once taken in
            for i, *row in chunk:
                yield n * PLAN_CHUNK + i - 1, row

    def columns(self) -> list[tuple]:
        """(attrelid, attname, attacl text) of every column that has an ACL."""
        return self._columns.result() if self._columns else []


class _RevokeSession:
    """A pooled connection and the server notices it received (a Diagnostic is only valid in its callback)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.notices: list[tuple[str | None, str | None]] = []
        conn.add_notice_handler(lambda diag: self.notices.append((diag.sqlstate, diag.message_primary)))


class PostgresRevoker:
    """Mixin for PostgresTarget, which provides `connect(*, autocommit=False, user=None)`."""

    # Lowered for the rest of the run when a batch runs out of shared memory.
    _batch_limit: int | None = None

    # ------------------------------------------------------------------------------------------
    # plan

    def plan(self, findings: Iterable[Finding], scope: Scope) -> list[Action]:
        """Ordered actions closing every finding; each carries its SQL and the prior ACL text."""
        relation: dict[tuple[str, str], dict[str, set[str]]] = {}
        column: dict[tuple[str, str, str], dict[str, set[str]]] = {}
        default: dict[tuple[str, str], dict[str, set[str]]] = {}   # (schema, grantor-or-'') -> grantee -> privs
        membership: dict[tuple[str, str], list[Finding]] = {}       # (principal, role holding the grant)
        in_scope: set[str] = set()
        with self.connect(autocommit=True) as conn, ThreadPoolExecutor(max_workers=PLAN_READERS) as pool:
            # A table's grants to the scope's principals and PUBLIC are what its findings name: read them while the
            # findings are still coming in, a chunk of tables at a time.
            acls = _RelationAcls(self, pool, self._role_oids(conn, [PUBLIC, *scope.principals]))
            for f in findings:
                in_scope.add(f.object_fqn)
                grantee = _grantee_of(f)
                if grantee not in (PUBLIC, f.principal):
                    membership.setdefault((f.principal, grantee), []).append(f)
                elif f.path == AccessPath.DEFAULT_PRIVILEGES:
                    default.setdefault((f.schema_name, f.grantor), {}).setdefault(grantee, set()).add(f.privilege.upper())
                elif f.column is not None:
                    column.setdefault((f.schema_name, f.object_name, f.column), {}).setdefault(grantee, set()).add(f.privilege.upper())
                else:
                    by_grantee = relation.get(key := (f.schema_name, f.object_name))
                    if by_grantee is None:
                        by_grantee = relation[key] = {}
                        acls.want(key)
                    by_grantee.setdefault(grantee, set()).add(f.privilege.upper())
            drafts = [*self._plan_relations(conn, pool, relation, acls), *self._plan_columns(conn, column),
                      *self._plan_defaults(conn, default), *self._plan_memberships(conn, membership)]
        # Actions are drafted as dicts, ordered and numbered, then validated in one call: 45,000 Action()
        # constructions and two attribute assignments each cost more than the catalog queries.
        # Ordered by statement shape (a handful), then by object within each shape; the sorts are stable.
        by_shape: dict[tuple, list[dict]] = {}
        for draft in drafts:
            by_shape.setdefault(_draft_batch_key(draft), []).append(draft)
        drafts = []
        quoted = _Quoted()
        for key in sorted(by_shape, key=lambda k: (KIND_ORDER[k[0]], k)):
            group = sorted(by_shape.pop(key), key=_object_order)
            first = group[0]
            shape = self._table_statement(first["kind"], first.get("column"), first["privileges"], first["grantee"], first["grantor"], quoted)
            if shape:   # composed once per shape
                for draft in group:
                    draft["sql"] = f"{shape[0]}{quoted.qualified(draft['schema_name'], draft['object_name'])}{shape[1]}"
            drafts += group
        for seq, draft in enumerate(drafts, start=1):
            draft["seq"] = seq
        actions: list[Action] = []
        while drafts:   # a slice at a time, so 45,000 dicts and 45,000 Actions are never all alive at once
            actions += _ACTIONS.validate_python(drafts[:PLAN_CHUNK])
            del drafts[:PLAN_CHUNK]
        for action in actions:
            if not action.sql:
                action.sql = "; ".join(self._statements([action], quoted))
        with self.connect(autocommit=True) as conn:
            blast_radius(conn, actions, scope.principals, in_scope)
        return actions

    def _role_oids(self, conn, names) -> dict[str, int]:
        oids = {name: oid for name, oid in conn.execute(_ROLE_OIDS, [sorted(set(names) - {PUBLIC})]).fetchall()}
        return {**oids, PUBLIC: 0} if PUBLIC in names else oids

    def _becomable(self, conn, roles: set[str]) -> set[str]:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER')",
                            [sorted(roles)]).fetchall()
        return {r[0] for r in rows}

    def _grant_actions(self, wanted: dict[str, set[str]], owner: str, items, becomable, owner_kind: ActionKind,
                       **fields) -> Iterator[dict]:
        """One action (drafted as a dict) per ACL item (grantee x grantor) holding a wanted privilege."""
        held: dict[tuple[str, str], list[str]] = {}
        for grantee, grantor, privilege, _grantable in items or []:
            if privilege in wanted.get(grantee, ()):
                held.setdefault((grantee, grantor), []).append(privilege)
        for (grantee, grantor), privs in held.items():
            if grantor == owner:
                kind, reason = owner_kind, f"granted by the owner {owner}"
            elif grantor in becomable:
                kind, reason = ActionKind.REVOKE_AS_GRANTOR, f"granted by grant-option holder {grantor}: revoked as {grantor}, an owner's REVOKE would leave it"
            else:
                kind, reason = ActionKind.REVOKE_GRANT_OPTION, f"granted by grant-option holder {grantor}, whom we cannot act as: their grant option is revoked with CASCADE"
            # Interned: 45,000 actions share a handful of reasons, not 45,000 copies of one.
            yield {"kind": kind, "grantee": grantee, "grantor": grantor, "privileges": sorted(privs, key=PRIVILEGES.index),
                   "sql": "", "reason": sys.intern(reason), **fields}

    def _plan_relations(self, conn, pool: ThreadPoolExecutor, wanted: dict, acls: _RelationAcls) -> list[dict]:
        if not wanted:
            return []
        grantees = {g for by_grantee in wanted.values() for g in by_grantee}
        if not acls.covers(grantees):   # a finding for a principal outside the scope: read again for every grantee
            acls = _RelationAcls(self, pool, self._role_oids(conn, sorted(grantees)))
            for key in wanted:
                acls.want(key)
        objects: dict[int, tuple] = {}
        items: dict[int, list[tuple]] = {}
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
        actions = []
        for i, found in items.items():
            _oid, relkind, is_partition, owner, relacl = objects[i]
            schema, name = acls.keys[i]
            object_kind = "partition" if is_partition else OBJECT_KIND.get(relkind, "table")
            owner_kind = ActionKind.REVOKE_VIEW if relkind in ("v", "m") else ActionKind.REVOKE_TABLE
            actions += self._grant_actions(wanted[(schema, name)], owner, found, becomable, owner_kind=owner_kind,
                                           object_kind=object_kind, schema_name=schema, object_name=name,
                                           prior_state=relacl, prior_columns=columns.get(i, {}))
        return actions

    def _plan_columns(self, conn, wanted: dict) -> list[dict]:
        if not wanted:
            return []
        keys = list(wanted)
        rows = conn.execute(_COLUMN_ACL, [_list(k[0] for k in keys), _list(k[1] for k in keys), _list(k[2] for k in keys)]).fetchall()
        becomable = self._becomable(conn, {item[1] for row in rows for item in (row[3] or [])})
        actions = []
        for i, owner, attacl, items in rows:
            schema, name, col = keys[i - 1]
            actions += self._grant_actions(wanted[(schema, name, col)], owner, items, becomable, owner_kind=ActionKind.REVOKE_COLUMN,
                                           object_kind="column", schema_name=schema, object_name=name, column=col, prior_state=attacl)
        return actions

    def _plan_defaults(self, conn, wanted: dict) -> list[dict]:
        if not wanted:
            return []
        # A finding may not name the role whose defaults grant: then every role's defaults in that schema count.
        roles = [r[0] for r in conn.execute("SELECT DISTINCT pg_get_userbyid(defaclrole) FROM pg_default_acl ORDER BY 1").fetchall()]
        keys = [(role, schema, grantees) for (schema, grantor), grantees in wanted.items() for role in ([grantor] if grantor else roles)]
        rows = conn.execute(_DEFAULT_ACL, [_list(k[0] for k in keys), _list(k[1] for k in keys)]).fetchall()
        actions = []
        for i, defaclacl, items in rows:
            role, schema, grantees = keys[i - 1]
            for draft in self._grant_actions(grantees, role, items, set(), owner_kind=ActionKind.REVOKE_DEFAULT_PRIVILEGES,
                                             object_kind="default privileges", schema_name=schema, object_name="(future tables)",
                                             prior_state=defaclacl):
                draft["reason"] = f"default privileges of {role} grant on tables created later" + (f" in {schema}" if schema else "")
                actions.append(draft)
        return actions

    def _plan_memberships(self, conn, wanted: dict[tuple[str, str], list[Finding]]) -> list[dict]:
        through: dict[tuple[str, str], list[Finding]] = {}
        for (principal, grantee), found in wanted.items():
            for (hop,) in conn.execute(_FIRST_HOPS, {"principal": principal, "grantee": grantee}).fetchall():
                through.setdefault((principal, hop), []).extend(found)
        if not through:
            return []
        keys = list(through)
        rows = conn.execute(_MEMBERSHIP, [_list(k[1] for k in keys), _list(k[0] for k in keys)]).fetchall()
        actions = []
        for i, grantor, admin in rows:
            principal, role = keys[i - 1]
            found = through[(principal, role)]
            objects = sorted({f.object_fqn for f in found})
            predefined = role.startswith("pg_")
            reason = (f"{principal} is a member of {'predefined role ' if predefined else ''}{role}, which gives it "
                      f"{len(objects)} object(s) (e.g. {objects[0]}); removing the membership may also remove legitimate access: review")
            prior = json.dumps({"role": role, "member": principal, "grantor": grantor, "admin_option": admin}, sort_keys=True)
            actions.append({"kind": ActionKind.REVOKE_MEMBERSHIP, "object_kind": "role", "object_name": role, "grantee": principal,
                            "grantor": grantor, "privileges": ["MEMBER"], "sql": "", "prior_state": prior, "review": True, "reason": reason})
        return actions

    # ------------------------------------------------------------------------------------------
    # statements

    def _statements(self, batch: list[Action], q: _Quoted) -> list[str]:
        """The statements for a batch of actions that share a batch key (one object each when planning)."""
        first = batch[0]
        if first.kind == ActionKind.REVOKE_MEMBERSHIP:
            return [f"REVOKE {q(a.object_name)} FROM {q(a.grantee)}" for a in batch]
        if first.kind == ActionKind.REVOKE_DEFAULT_PRIVILEGES:
            return [f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(a.grantor)}" + (f" IN SCHEMA {q(a.schema_name)}" if a.schema_name else "")
                    + f" REVOKE {_privilege_list(a.privileges)} ON TABLES FROM {q.role(a.grantee)} CASCADE" for a in batch]
        before, after = self._revoke_shape(first.kind, first.privileges, first.grantee, first.grantor, q)
        if first.column is None:   # one multi-table REVOKE
            statements = [f"{before} ON TABLE {q.tables(batch)} {after}"]
        else:                      # one statement per column: column lists differ per table
            statements = [f"{before} ({q(a.column)}) ON TABLE {q.table(a)} {after}" for a in batch]
        if first.kind == ActionKind.REVOKE_AS_GRANTOR:
            statements = [f"SET LOCAL ROLE {q(first.grantor)}", *statements, "RESET ROLE"]
        return statements

    @staticmethod
    def _revoke_shape(kind: ActionKind, privileges: list[str], grantee: str, grantor: str, q: _Quoted) -> tuple[str, str]:
        """`REVOKE <what>` and `FROM <grantee> CASCADE` of a relation action: the same for its whole batch."""
        privs = _privilege_list(privileges)
        if kind == ActionKind.REVOKE_GRANT_OPTION:
            return f"REVOKE GRANT OPTION FOR {privs}", f"FROM {q(grantor)} CASCADE"
        return f"REVOKE {privs}", f"FROM {q.role(grantee)} CASCADE"

    def _table_statement(self, kind: ActionKind, column: str | None, privileges: list[str], grantee: str, grantor: str,
                         q: _Quoted) -> tuple[str, str] | None:
        """(text before, text after) the table name in a one-table statement, for table-level relation actions."""
        if kind not in RELATION_KINDS or column is not None:
            return None
        before, after = self._revoke_shape(kind, privileges, grantee, grantor, q)
        if kind == ActionKind.REVOKE_AS_GRANTOR:
            return f"SET LOCAL ROLE {q(grantor)}; {before} ON TABLE ", f" {after}; RESET ROLE"
        return f"{before} ON TABLE ", f" {after}"

    # ------------------------------------------------------------------------------------------
    # connections

    @contextmanager
    def _revoke_connection(self) -> Iterator[_RevokeSession]:
        """An autocommit connection for revoking or restoring, kept for the next batch, call or worker thread.

        Opening one per batch cost more than some batches. A connection an error went through is closed, not kept.
        """
        with _POOL_LOCK:
            idle = self.__dict__.setdefault("_idle_revoke_sessions", [])
            session = idle.pop() if idle else None
        if session is None or session.conn.closed or session.conn.broken:
            session = _RevokeSession(self.connect(autocommit=True))
        try:
            yield session
        except BaseException:
            session.conn.close()
            raise
        with _POOL_LOCK:
            self.__dict__["_idle_revoke_sessions"].append(session)

    def _close_revoke_connections(self) -> None:
        with _POOL_LOCK:
            idle, self.__dict__["_idle_revoke_sessions"] = self.__dict__.get("_idle_revoke_sessions", []), []
        for session in idle:
            session.conn.close()

    def _fetch(self, query: str, params) -> list[tuple]:
        """All rows of one catalog query, on a pooled connection (callable from worker threads)."""
        with self._revoke_connection() as session:
            return session.conn.execute(query, params).fetchall()

    def _role_oid_cache(self, conn, names: set[str]) -> dict[str, int]:
        """Role name -> oid, looked up once per target (roles a run revokes from are not re-created under it)."""
        with _POOL_LOCK:
            oids = self.__dict__.setdefault("_role_oids_seen", {})
            missing = names - oids.keys()
        if missing:
            found = self._role_oids(conn, missing)
            with _POOL_LOCK:
                oids.update(found)
        return oids

    # ------------------------------------------------------------------------------------------
    # reading grants back

    def _still_granted(self, conn, actions: list[Action]) -> set[int]:
        """Indexes (into `actions`, a batch of one statement shape) whose grant item still holds one of its privileges."""
        if not actions:
            return set()
        family = _family(actions[0])
        if family == "membership":
            rows = conn.execute(_MEMBERSHIP, [_list(a.object_name for a in actions), _list(a.grantee for a in actions)]).fetchall()
            return {row[0] - 1 for row in rows}
        if family == "relation":
            first = actions[0]
            oids = self._role_oid_cache(conn, {first.grantee, first.grantor})
            if first.grantee not in oids or first.grantor not in oids:
                return set()   # a dropped role holds no grant
            rows = conn.execute(_RELATION_STILL_GRANTED, {"nsp": _list(a.schema_name for a in actions), "rel": _list(a.object_name for a in actions),
                                                          "privs": first.privileges, "grantee": oids[first.grantee],
                                                          "grantor": oids[first.grantor]}).fetchall()
            return {row[0] - 1 for row in rows}
        if family == "column":
            rows = conn.execute(_COLUMN_ACL, [_list(a.schema_name for a in actions), _list(a.object_name for a in actions),
                                              _list(a.column for a in actions)]).fetchall()
            items = {row[0] - 1: row[3] for row in rows}
        else:
            rows = conn.execute(_DEFAULT_ACL, [_list(a.grantor for a in actions), _list(a.schema_name for a in actions)]).fetchall()
            items = {row[0] - 1: row[2] for row in rows}
        present = set()
        for i, action in enumerate(actions):
            wanted = set(action.privileges)
            if any(g == action.grantee and r == action.grantor and p in wanted for g, r, p, _ in items.get(i) or []):
                present.add(i)
        return present

    # ------------------------------------------------------------------------------------------
    # apply

    def apply(self, actions: list[Action], on_batch: BatchCallback, *, batch_size: int | None = None) -> None:
        """Run actions in bounded batches of one statement shape; report each batch once read back.

        Calls with disjoint objects may run side by side from several threads (each holds its own connection).
        """
        size = batch_size or DEFAULT_BATCH_SIZE
        with self._revoke_connection() as session:
            for _, group in groupby(actions, key=lambda a: a.batch_key):
                group = list(group)
                start = 0
                while start < len(group):
                    limit = min(size, self._batch_limit or size)
                    self._apply_bounded(session, group[start:start + limit], on_batch)
                    start += limit

    def _apply_bounded(self, session: _RevokeSession, batch: list[Action], on_batch: BatchCallback) -> None:
        conn = session.conn
        try:
            results = self._apply_batch(session, batch)
        except psycopg.errors.OutOfMemory as exc:
            if len(batch) == 1:
                on_batch([ActionResult(seq=batch[0].seq, status=ActionStatus.FAILED, message=str(exc).strip())])
                return
            # The server's shared memory (lock table) is smaller than this batch: stay smaller for the rest of the run.
            self._batch_limit = min(self._batch_limit or len(batch), max(1, len(batch) // 2))
            self._bisect(session, batch, on_batch)
            return
        except psycopg.Error as exc:
            if conn.broken:
                raise TargetUnreachable(f"lost the connection to {getattr(self, 'display', 'the target')} while revoking: {exc}".strip(),
                                        hint="run the same command again: the ledger resumes where it stopped") from None
            if len(batch) == 1:
                on_batch([ActionResult(seq=batch[0].seq, status=ActionStatus.FAILED, message=str(exc).strip())])
                return
            self._bisect(session, batch, on_batch)   # find the object the server refused; the rest still go through
            return
        on_batch(results)

    def _bisect(self, session: _RevokeSession, batch: list[Action], on_batch: BatchCallback) -> None:
        half = len(batch) // 2
        self._apply_bounded(session, batch[:half], on_batch)
        self._apply_bounded(session, batch[half:], on_batch)

    def _apply_batch(self, session: _RevokeSession, batch: list[Action]) -> list[ActionResult]:
        conn, notices = session.conn, session.notices
        with conn.transaction():
            present = self._still_granted(conn, batch)
            todo = batch if len(present) == len(batch) else [a for i, a in enumerate(batch) if i in present]
            notices.clear()
            if todo:
                for statement in self._statements(todo, _Quoted()):
                    conn.execute(statement)
            remaining = self._still_granted(conn, todo)
            warnings = [message or "" for sqlstate, message in notices if sqlstate == NOT_REVOKED]
        results = {action.seq: ActionResult(seq=action.seq, status=ActionStatus.SKIPPED, message="already absent")
                   for i, action in enumerate(batch) if i not in present}
        for i, action in enumerate(todo):
            # Per object only: a table-level REVOKE also warns once for every column of the table.
            warned = [w for w in warnings if w.endswith(f'for "{action.object_name}"') or action.kind == ActionKind.REVOKE_MEMBERSHIP
                      or (action.column is not None and w.endswith(f'column "{action.column}" of relation "{action.object_name}"'))] if warnings else []
            if i in remaining or warned:
                detail = "; ".join(warned) or "the grant is still there after REVOKE"
                if i in remaining and not warned and action.kind in (ActionKind.REVOKE_TABLE, ActionKind.REVOKE_VIEW, ActionKind.REVOKE_COLUMN):
                    detail += (f" (if {action.grantor} is not the owner, it is a grant-option holder's grant: "
                               f"revoke it as {action.grantor}, or revoke their grant option with CASCADE)")
                results[action.seq] = ActionResult(seq=action.seq, status=ActionStatus.FAILED, message=detail)
            else:
                results[action.seq] = ActionResult(seq=action.seq, status=ActionStatus.APPLIED, message="")
        return [results[a.seq] for a in batch]

    # ------------------------------------------------------------------------------------------
    # undo

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        """Restore every object these actions touched to its recorded prior ACL, byte for byte.

        Calls for disjoint objects may run side by side from several threads (each holds its own connection).
        """
        units = self._restore_units(actions)
        with self._revoke_connection() as session:
            conn = session.conn
            for family in ("relation", "column", "default", "membership"):
                chosen = [u for u in units if u["family"] == family]
                for start in range(0, len(chosen), DEFAULT_BATCH_SIZE):
                    batch = chosen[start:start + DEFAULT_BATCH_SIZE]
                    try:
                        with conn.transaction():
                            self._restore(conn, batch)
                            columns = [c for u in batch for c in u["columns"]]
                            if columns:   # a table-level REVOKE took these column grants with it
                                self._restore(conn, columns)
                    except psycopg.Error as exc:
                        if conn.broken:
                            raise TargetUnreachable(f"lost the connection while undoing: {exc}".strip(),
                                                    hint="run the same command again: only actions still marked applied are undone") from None
                        for unit in batch:
                            unit["error"] = str(exc).strip()
                    on_batch(self._undo_results(conn, batch))

    def _restore_units(self, actions: list[Action]) -> list[dict]:
        """Each object (or column, default ACL, membership) to restore, with the actions that touched it."""
        units: dict[tuple, dict] = {}
        q = _Quoted()

        def unit(key, family, prior, action, **extra):
            units.setdefault(key, {"family": family, "prior": prior, "actions": [], "columns": [], **extra})["actions"].append(action)

        for a in actions:
            family = _family(a)
            if family == "relation":
                name = q.table(a)
                unit(("relation", a.schema_name, a.object_name), family, a.prior_state, a, name=name,
                     columns=[{"family": "column", "prior": attacl, "actions": [], "name": name, "column": col}
                              for col, attacl in sorted(a.prior_columns.items())])
            elif family == "column":
                unit(("column", a.schema_name, a.object_name, a.column), family, a.prior_state, a, name=q.table(a), column=a.column)
            elif family == "default":
                unit(("default", a.grantor, a.schema_name), family, a.prior_state, a, schema=a.schema_name, role=a.grantor)
            else:
                unit(("membership", a.object_name, a.grantee), family, a.prior_state, a, role=a.object_name, member=a.grantee)
        return list(units.values())

    @staticmethod
    def _undo_params(batch: list[dict]) -> dict:
        family = batch[0]["family"]
        params = {"priors": _list(u["prior"] for u in batch)}
        if family in ("relation", "column"):
            params["names"] = _list(u["name"] for u in batch)
        if family == "column":
            params["columns"] = _list(u["column"] for u in batch)
        if family == "default":
            params |= {"roles": _list(u["role"] for u in batch), "schemas": _list(u["schema"] for u in batch)}
        return params

    def _restore(self, conn, batch: list[dict]) -> None:
        family = batch[0]["family"]
        if family == "membership":
            current = self._memberships_now(conn, batch)
            for unit, now in zip(batch, current):
                if now != unit["prior"]:
                    self._restore_membership(conn, unit, now)
            return
        by_ops: dict[object, list[dict]] = {}
        for i, ops in conn.execute(_UNDO_OPS_SQL[family], self._undo_params(batch)).fetchall():
            # Table statements name many tables; column and default-privilege statements name one object each.
            by_ops.setdefault(ops if family == "relation" else (ops, i), []).append(batch[i - 1])
        for key, units in by_ops.items():
            revokes, grants = json.loads(key if family == "relation" else key[0])
            for grantee, grantor in revokes:
                self._acl_statement(conn, units, "REVOKE", grantee, grantor, None, grant_option=False)
            for grantee, grantor, with_option, plain in grants:
                for privs, option in ((with_option, True), (plain, False)):   # grant options first: the item keeps its place either way
                    if privs:
                        self._acl_statement(conn, units, "GRANT", grantee, grantor, tuple(sorted(privs, key=PRIVILEGES.index)), grant_option=option)

    def _memberships_now(self, conn, batch: list[dict]) -> list[str | None]:
        """Each membership as the JSON the plan recorded, or None where it is gone."""
        current: list[str | None] = [None] * len(batch)
        for i, grantor, admin in conn.execute(_MEMBERSHIP, [_list(u["role"] for u in batch), _list(u["member"] for u in batch)]).fetchall():
            unit = batch[i - 1]
            current[i - 1] = json.dumps({"role": unit["role"], "member": unit["member"], "grantor": grantor, "admin_option": admin}, sort_keys=True)
        return current

    def _acl_statement(self, conn, units: list[dict], verb: str, grantee: str, grantor: str | None, privs: tuple[str, ...] | None,
                       *, grant_option: bool) -> None:
        """One GRANT or REVOKE of one ACL item, made as the item's grantor (None: the owner) so the recorded grantor is identical.

        Several units only for table ACLs; column and default-privilege units come one at a time.
        """
        what = _privilege_list(privs) if privs else "ALL"
        family, unit = units[0]["family"], units[0]
        to_from = "TO" if verb == "GRANT" else "FROM"
        tail = " WITH GRANT OPTION" if grant_option else (" CASCADE" if verb == "REVOKE" else "")
        q = _Quoted()
        if family == "default":
            where = f" IN SCHEMA {q(unit['schema'])}" if unit["schema"] else ""
            conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(unit['role'])}{where} {verb} {what} ON TABLES {to_from} {q.role(grantee)}{tail}")
            return
        columns = f" ({q(unit['column'])})" if family == "column" else ""
        statement = f"{verb} {what}{columns} ON TABLE {', '.join(u['name'] for u in units)} {to_from} {q.role(grantee)}{tail}"
        if grantor is None:
            conn.execute(statement)   # the owner's grants are recorded with the owner as grantor, whoever runs them
            return
        conn.execute(f"SET LOCAL ROLE {q(grantor)}")
        conn.execute(statement)
        conn.execute("RESET ROLE")

    def _restore_membership(self, conn, unit: dict, now: str | None) -> None:
        prior = json.loads(unit["prior"])
        q = _Quoted()
        if now is not None:
            conn.execute(f"REVOKE {q(prior['role'])} FROM {q(prior['member'])}")
        conn.execute(f"GRANT {q(prior['role'])} TO {q(prior['member'])}{' WITH ADMIN OPTION' if prior['admin_option'] else ''} "
                     f"GRANTED BY {q(prior['grantor'])}")

    def _mismatches(self, conn, batch: list[dict]) -> dict[int, str]:
        """Index -> why this unit's ACL is not the recorded one, for the units that differ."""
        family = batch[0]["family"]
        if family == "membership":
            return {i: f"the membership is {now!r}, not the recorded {u['prior']!r}"
                    for i, (u, now) in enumerate(zip(batch, self._memberships_now(conn, batch))) if now != u["prior"]}
        rows = conn.execute(_UNDO_MISMATCH_SQL[family], self._undo_params(batch)).fetchall()
        return {i - 1: (f"the ACL is {now!r}, not the recorded {batch[i - 1]['prior']!r}" if present
                        else f"{batch[i - 1].get('name') or batch[i - 1]['role']} no longer exists")
                for i, present, now in rows}

    def _undo_results(self, conn, batch: list[dict]) -> list[ActionResult]:
        mismatch = {id(batch[i]): [why] for i, why in self._mismatches(conn, batch).items()}
        columns = [(u, c) for u in batch for c in u["columns"]]
        if columns:
            for i, why in self._mismatches(conn, [c for _, c in columns]).items():
                unit, column = columns[i]
                mismatch.setdefault(id(unit), []).append(f"column {column['column']}: {why}")
        results = []
        for unit in batch:
            for action in unit["actions"]:
                if unit.get("error"):
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message=f"undo failed: {unit['error']}"))
                elif id(unit) in mismatch:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message="after undo " + "; ".join(mismatch[id(unit)])))
                else:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.UNDONE, message="restored to the recorded ACL"))
        return results
