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
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby

import psycopg
from psycopg import sql

from sevtool.core.exposure import AccessPath, Finding, Scope
from sevtool.core.plan import Action, ActionKind, ActionResult, ActionStatus
from sevtool.errors import TargetRejected, TargetUnreachable

DEFAULT_BATCH_SIZE = 1000
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")
PUBLIC = "PUBLIC"
NOT_REVOKED = "01006"   # SQLSTATE of "WARNING: no privileges could be revoked"

RELATION_KINDS = (ActionKind.REVOKE_TABLE, ActionKind.REVOKE_VIEW, ActionKind.REVOKE_AS_GRANTOR, ActionKind.REVOKE_GRANT_OPTION)
KIND_ORDER = {k: i for i, k in enumerate((ActionKind.REVOKE_AS_GRANTOR, ActionKind.REVOKE_GRANT_OPTION, ActionKind.REVOKE_TABLE,
                                          ActionKind.REVOKE_VIEW, ActionKind.REVOKE_COLUMN, ActionKind.REVOKE_DEFAULT_PRIVILEGES,
                                          ActionKind.REVOKE_MEMBERSHIP))}
OBJECT_KIND = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}

# The wanted objects with their ACL text, and the ACL items (one row per item x privilege) that hold one of
# the wanted privileges for one of the wanted grantees: flat rows, filtered in the server (45,000 tables).
_RELATION_ACL = """
SELECT want.i, c.oid, c.relkind, c.relispartition, pg_get_userbyid(c.relowner), c.relacl::text,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END, pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable
FROM unnest(%(nsp)s::text[], %(rel)s::text[]) WITH ORDINALITY AS want(nsp, rel, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
LEFT JOIN LATERAL aclexplode(c.relacl) x ON x.privilege_type = ANY(%(privs)s) AND x.grantee = ANY(%(grantees)s::oid[])
"""

# Role names -> oids as ACL items hold them; PUBLIC is 0. A role that no longer exists is left out.
_ROLE_OIDS = "SELECT rolname, oid FROM pg_roles WHERE rolname = ANY(%s)"

# A join, not `attrelid = ANY(array)`: that compares every pg_attribute row with every element (minutes at 45k).
_COLUMN_ACLS = """
SELECT a.attrelid, a.attname, a.attacl::text FROM unnest(%s::oid[]) AS r(oid)
JOIN pg_attribute a ON a.attrelid = r.oid
WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
"""

# Read-back: which of these objects still have an item (grantee, grantor) holding one of the privileges.
# aclcontains() matches grantee and grantor exactly and checks the privilege bits, without exploding the ACL.
_RELATION_STILL_GRANTED = """
SELECT want.i FROM unnest(%(nsp)s::text[], %(rel)s::text[], %(grantee)s::oid[], %(grantor)s::oid[])
                   WITH ORDINALITY AS want(nsp, rel, grantee, grantor, i)
JOIN pg_namespace n ON n.nspname = want.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
WHERE EXISTS (SELECT FROM unnest(%(privs)s::text[]) AS p WHERE aclcontains(c.relacl, makeaclitem(want.grantee, want.grantor, p, false)))
"""

_COLUMN_ACL = """
SELECT want.i, pg_get_userbyid(c.relowner), att.attacl::text,
       (SELECT json_agg(json_build_array(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                         pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable))
          FROM aclexplode(att.attacl) x)
FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS want(nsp, rel, col, i)
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
FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS want(role, nsp, i)
JOIN pg_roles r ON r.rolname = want.role
JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r'
 AND d.defaclnamespace = CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END
"""

_MEMBERSHIP = """
SELECT want.i, pg_get_userbyid(m.grantor), m.admin_option
FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS want(role, member, i)
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

# ACL text -> ordered items, without parsing aclitem text ourselves (role names may need quoting).
_EXPLODE = """
SELECT u.i, x.ord, CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
       pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable
FROM unnest(%s::text[]) WITH ORDINALITY AS u(acl, i), aclexplode(u.acl::aclitem[]) WITH ORDINALITY AS x(grantor, grantee, privilege_type, is_grantable, ord)
ORDER BY u.i, x.ord
"""

BatchCallback = Callable[[list[ActionResult]], None]


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


def _role(name: str) -> sql.Composable:
    return sql.SQL(PUBLIC) if name == PUBLIC else sql.Identifier(name)


def quote_ident(name: str) -> str:
    """Always-quoted identifier, as libpq's PQescapeIdentifier (and so psycopg's sql.Identifier) writes it.

    Plain string work: calling into psycopg for 90,000 names (schema and table of 45,000 actions) takes
    longer than the REVOKEs themselves. A name cannot hold a NUL byte, so doubling quotes is the whole rule.
    """
    return '"' + name.replace('"', '""') + '"'


class _Quoted:
    """Identifier quoting for statements composed by the thousand (see quote_ident)."""

    def __call__(self, *names: str) -> str:
        return ".".join(map(quote_ident, names))

    def role(self, name: str) -> str:
        return PUBLIC if name == PUBLIC else self(name)

    def table(self, action: Action) -> str:
        return self(action.schema_name, action.object_name)


def _privilege_list(privs: Iterable[str]) -> str:
    """Privilege keywords are SQL, not identifiers: only the known ones ever reach a statement."""
    chosen = [p.upper() for p in privs]
    unknown = [p for p in chosen if p not in PRIVILEGES]
    if unknown or not chosen:
        raise TargetRejected(f"unknown privilege {', '.join(unknown) or '(none)'} in a revoke action", hint="privileges: " + ", ".join(PRIVILEGES))
    return ", ".join(chosen)


def _privileges(privs: Iterable[str]) -> sql.Composable:
    return sql.SQL(_privilege_list(privs))


def _items(rows) -> list[tuple[str, str, frozenset]]:
    """aclexplode rows (grantee, grantor, privilege, grantable) -> ordered ACL items."""
    items: dict[tuple[str, str], set] = {}
    for grantee, grantor, privilege, grantable in rows or []:
        items.setdefault((grantee, grantor), set()).add((privilege, bool(grantable)))
    return [(grantee, grantor, frozenset(privs)) for (grantee, grantor), privs in items.items()]


class PostgresRevoker:
    """Mixin for PostgresTarget, which provides `connect(*, autocommit=False, user=None)`."""

    # Lowered for the rest of the run when a batch runs out of shared memory.
    _batch_limit: int | None = None

    # ------------------------------------------------------------------------------------------
    # plan

    def plan(self, findings: list[Finding], scope: Scope) -> list[Action]:
        """Ordered actions closing every finding; each carries its SQL and the prior ACL text."""
        relation: dict[tuple[str, str], dict[str, set[str]]] = {}
        column: dict[tuple[str, str, str], dict[str, set[str]]] = {}
        default: dict[tuple[str, str], dict[str, set[str]]] = {}   # (schema, grantor-or-'') -> grantee -> privs
        membership: dict[tuple[str, str], list[Finding]] = {}       # (principal, role holding the grant)
        for f in findings:
            grantee = _grantee_of(f)
            if grantee not in (PUBLIC, f.principal):
                membership.setdefault((f.principal, grantee), []).append(f)
            elif f.path == AccessPath.DEFAULT_PRIVILEGES:
                default.setdefault((f.schema_name, f.grantor), {}).setdefault(grantee, set()).add(f.privilege.upper())
            elif f.column is not None:
                column.setdefault((f.schema_name, f.object_name, f.column), {}).setdefault(grantee, set()).add(f.privilege.upper())
            else:
                relation.setdefault((f.schema_name, f.object_name), {}).setdefault(grantee, set()).add(f.privilege.upper())
        with self.connect(autocommit=True) as conn:
            actions = [*self._plan_relations(conn, relation), *self._plan_columns(conn, column),
                       *self._plan_defaults(conn, default), *self._plan_memberships(conn, membership)]
            actions.sort(key=lambda a: (KIND_ORDER[a.kind], a.batch_key, a.schema_name, a.object_name, a.column or ""))
            quoted = _Quoted()
            for seq, action in enumerate(actions, start=1):
                action.seq = seq
                action.sql = "; ".join(self._statements([action], quoted))
        return actions

    def _role_oids(self, conn, names) -> dict[str, int]:
        oids = {name: oid for name, oid in conn.execute(_ROLE_OIDS, [sorted(set(names) - {PUBLIC})]).fetchall()}
        return {**oids, PUBLIC: 0} if PUBLIC in names else oids

    def _becomable(self, conn, roles: set[str]) -> set[str]:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER')",
                            [sorted(roles)]).fetchall()
        return {r[0] for r in rows}

    def _grant_actions(self, wanted: dict[str, set[str]], owner: str, items, becomable, owner_kind: ActionKind,
                       **fields) -> Iterator[Action]:
        """One action per ACL item (grantee x grantor) holding a wanted privilege."""
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
            yield Action(kind=kind, grantee=grantee, grantor=grantor, privileges=sorted(privs, key=PRIVILEGES.index),
                         sql="", reason=reason, **fields)

    def _plan_relations(self, conn, wanted: dict) -> list[Action]:
        if not wanted:
            return []
        keys = list(wanted)
        grantees = sorted({g for by_grantee in wanted.values() for g in by_grantee})
        privs = sorted({p for by_grantee in wanted.values() for ps in by_grantee.values() for p in ps})
        rows = conn.execute(_RELATION_ACL, {"nsp": [k[0] for k in keys], "rel": [k[1] for k in keys],
                                            "privs": privs, "grantees": list(self._role_oids(conn, grantees).values())}).fetchall()
        objects: dict[int, tuple] = {}
        items: dict[int, list[tuple]] = {}
        for i, oid, relkind, is_partition, owner, relacl, grantee, grantor, privilege, grantable in rows:
            objects[i] = (oid, relkind, is_partition, owner, relacl)
            if grantee is not None:
                items.setdefault(i, []).append((grantee, grantor, privilege, grantable))
        columns: dict[int, dict[str, str]] = {}
        exposed = {objects[i][0]: i for i in items}
        for attrelid, attname, attacl in conn.execute(_COLUMN_ACLS, [list(exposed)]).fetchall():
            columns.setdefault(exposed[attrelid], {})[attname] = attacl
        becomable = self._becomable(conn, {item[1] for found in items.values() for item in found})
        actions = []
        for i, found in items.items():
            _oid, relkind, is_partition, owner, relacl = objects[i]
            schema, name = keys[i - 1]
            object_kind = "partition" if is_partition else OBJECT_KIND.get(relkind, "table")
            owner_kind = ActionKind.REVOKE_VIEW if relkind in ("v", "m") else ActionKind.REVOKE_TABLE
            actions += self._grant_actions(wanted[(schema, name)], owner, found, becomable, owner_kind=owner_kind,
                                           object_kind=object_kind, schema_name=schema, object_name=name,
                                           prior_state=relacl, prior_columns=columns.get(i, {}))
        return actions

    def _plan_columns(self, conn, wanted: dict) -> list[Action]:
        if not wanted:
            return []
        keys = list(wanted)
        rows = conn.execute(_COLUMN_ACL, [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]]).fetchall()
        becomable = self._becomable(conn, {item[1] for row in rows for item in (row[3] or [])})
        actions = []
        for i, owner, attacl, items in rows:
            schema, name, col = keys[i - 1]
            actions += self._grant_actions(wanted[(schema, name, col)], owner, items, becomable, owner_kind=ActionKind.REVOKE_COLUMN,
                                           object_kind="column", schema_name=schema, object_name=name, column=col, prior_state=attacl)
        return actions

    def _plan_defaults(self, conn, wanted: dict) -> list[Action]:
        if not wanted:
            return []
        # A finding may not name the role whose defaults grant: then every role's defaults in that schema count.
        roles = [r[0] for r in conn.execute("SELECT DISTINCT pg_get_userbyid(defaclrole) FROM pg_default_acl ORDER BY 1").fetchall()]
        keys = [(role, schema, grantees) for (schema, grantor), grantees in wanted.items() for role in ([grantor] if grantor else roles)]
        rows = conn.execute(_DEFAULT_ACL, [[k[0] for k in keys], [k[1] for k in keys]]).fetchall()
        actions = []
        for i, defaclacl, items in rows:
            role, schema, grantees = keys[i - 1]
            for action in self._grant_actions(grantees, role, items, set(), owner_kind=ActionKind.REVOKE_DEFAULT_PRIVILEGES,
                                              object_kind="default privileges", schema_name=schema, object_name="(future tables)",
                                              prior_state=defaclacl):
                action.reason = f"default privileges of {role} grant on tables created later" + (f" in {schema}" if schema else "")
                actions.append(action)
        return actions

    def _plan_memberships(self, conn, wanted: dict[tuple[str, str], list[Finding]]) -> list[Action]:
        through: dict[tuple[str, str], list[Finding]] = {}
        for (principal, grantee), found in wanted.items():
            for (hop,) in conn.execute(_FIRST_HOPS, {"principal": principal, "grantee": grantee}).fetchall():
                through.setdefault((principal, hop), []).extend(found)
        if not through:
            return []
        keys = list(through)
        rows = conn.execute(_MEMBERSHIP, [[k[1] for k in keys], [k[0] for k in keys]]).fetchall()
        actions = []
        for i, grantor, admin in rows:
            principal, role = keys[i - 1]
            found = through[(principal, role)]
            objects = sorted({f.object_fqn for f in found})
            predefined = role.startswith("pg_")
            reason = (f"{principal} is a member of {'predefined role ' if predefined else ''}{role}, which gives it "
                      f"{len(objects)} object(s) (e.g. {objects[0]}); removing the membership may also remove legitimate access: review")
            prior = json.dumps({"role": role, "member": principal, "grantor": grantor, "admin_option": admin}, sort_keys=True)
            actions.append(Action(kind=ActionKind.REVOKE_MEMBERSHIP, object_kind="role", object_name=role, grantee=principal,
                                  grantor=grantor, privileges=["MEMBER"], sql="", prior_state=prior, review=True, reason=reason))
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
        privs = _privilege_list(first.privileges)
        if first.kind == ActionKind.REVOKE_GRANT_OPTION:
            return self._revoke(batch, f"GRANT OPTION FOR {privs}", q(first.grantor), q)
        statements = self._revoke(batch, privs, q.role(first.grantee), q)
        if first.kind == ActionKind.REVOKE_AS_GRANTOR:
            statements = [f"SET LOCAL ROLE {q(first.grantor)}", *statements, "RESET ROLE"]
        return statements

    def _revoke(self, batch: list[Action], what: str, grantee: str, q: _Quoted) -> list[str]:
        """One multi-table REVOKE for table-level grants; one statement per column (column lists differ per table)."""
        if batch[0].column is None:
            return [f"REVOKE {what} ON TABLE {', '.join(q.table(a) for a in batch)} FROM {grantee} CASCADE"]
        return [f"REVOKE {what} ({q(a.column)}) ON TABLE {q.table(a)} FROM {grantee} CASCADE" for a in batch]

    # ------------------------------------------------------------------------------------------
    # reading grants back

    def _still_granted(self, conn, actions: list[Action], oids: dict[str, int]) -> set[int]:
        """Indexes (into `actions`) whose grant item still holds one of the action's privileges."""
        if not actions:
            return set()
        family = _family(actions[0])
        if family == "membership":
            rows = conn.execute(_MEMBERSHIP, [[a.object_name for a in actions], [a.grantee for a in actions]]).fetchall()
            return {row[0] - 1 for row in rows}
        if family == "relation":
            present = set()
            missing = ({a.grantee for a in actions} | {a.grantor for a in actions}) - oids.keys()
            if missing:
                oids.update(self._role_oids(conn, missing))
            for privs, group in groupby(sorted(range(len(actions)), key=lambda i: actions[i].privileges), key=lambda i: actions[i].privileges):
                group = [i for i in group if actions[i].grantee in oids and actions[i].grantor in oids]   # a dropped role holds no grant
                rows = conn.execute(_RELATION_STILL_GRANTED, {
                    "nsp": [actions[i].schema_name for i in group], "rel": [actions[i].object_name for i in group],
                    "grantee": [oids[actions[i].grantee] for i in group], "grantor": [oids[actions[i].grantor] for i in group],
                    "privs": privs}).fetchall()
                present.update(group[row[0] - 1] for row in rows)
            return present
        if family == "column":
            rows = conn.execute(_COLUMN_ACL, [[a.schema_name for a in actions], [a.object_name for a in actions],
                                              [a.column for a in actions]]).fetchall()
            items = {row[0] - 1: row[3] for row in rows}
        else:
            rows = conn.execute(_DEFAULT_ACL, [[a.grantor for a in actions], [a.schema_name for a in actions]]).fetchall()
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
        """Run actions in bounded batches of one statement shape; report each batch once read back."""
        size = batch_size or DEFAULT_BATCH_SIZE
        with self.connect(autocommit=True) as conn:
            notices: list[tuple[str | None, str | None]] = []
            oids: dict[str, int] = {}   # role oids, looked up once per run
            # A Diagnostic is only valid during the callback: keep its text, not the object.
            conn.add_notice_handler(lambda diag: notices.append((diag.sqlstate, diag.message_primary)))
            for _, group in groupby(actions, key=lambda a: a.batch_key):
                group = list(group)
                start = 0
                while start < len(group):
                    limit = min(size, self._batch_limit or size)
                    self._apply_bounded(conn, group[start:start + limit], notices, oids, on_batch)
                    start += limit

    def _apply_bounded(self, conn, batch: list[Action], notices: list, oids: dict, on_batch: BatchCallback) -> None:
        try:
            results = self._apply_batch(conn, batch, notices, oids)
        except psycopg.errors.OutOfMemory as exc:
            if len(batch) == 1:
                on_batch([ActionResult(seq=batch[0].seq, status=ActionStatus.FAILED, message=str(exc).strip())])
                return
            # The server's shared memory (lock table) is smaller than this batch: stay smaller for the rest of the run.
            self._batch_limit = min(self._batch_limit or len(batch), max(1, len(batch) // 2))
            self._bisect(conn, batch, notices, oids, on_batch)
            return
        except psycopg.Error as exc:
            if conn.broken:
                raise TargetUnreachable(f"lost the connection to {getattr(self, 'display', 'the target')} while revoking: {exc}".strip(),
                                        hint="run the same command again: the ledger resumes where it stopped") from None
            if len(batch) == 1:
                on_batch([ActionResult(seq=batch[0].seq, status=ActionStatus.FAILED, message=str(exc).strip())])
                return
            self._bisect(conn, batch, notices, oids, on_batch)   # find the object the server refused; the rest still go through
            return
        on_batch(results)

    def _bisect(self, conn, batch, notices, oids, on_batch) -> None:
        half = len(batch) // 2
        self._apply_bounded(conn, batch[:half], notices, oids, on_batch)
        self._apply_bounded(conn, batch[half:], notices, oids, on_batch)

    def _apply_batch(self, conn, batch: list[Action], notices: list, oids: dict) -> list[ActionResult]:
        results: dict[int, ActionResult] = {}
        with conn.transaction():
            present = self._still_granted(conn, batch, oids)
            todo = [a for i, a in enumerate(batch) if i in present]
            for i, action in enumerate(batch):
                if i not in present:
                    results[action.seq] = ActionResult(seq=action.seq, status=ActionStatus.SKIPPED, message="already absent")
            notices.clear()
            if todo:
                for statement in self._statements(todo, _Quoted()):
                    conn.execute(statement)
            remaining = self._still_granted(conn, todo, oids)
            warnings = [message or "" for sqlstate, message in notices if sqlstate == NOT_REVOKED]
            for i, action in enumerate(todo):
                # Per object only: a table-level REVOKE also warns once for every column of the table.
                warned = [w for w in warnings if w.endswith(f'for "{action.object_name}"') or action.kind == ActionKind.REVOKE_MEMBERSHIP
                          or (action.column is not None and w.endswith(f'column "{action.column}" of relation "{action.object_name}"'))]
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
        """Restore every object these actions touched to its recorded prior ACL, byte for byte."""
        units = self._restore_units(actions)
        with self.connect(autocommit=True) as conn:
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

        def unit(key, family, prior, action, **extra):
            units.setdefault(key, {"family": family, "prior": prior, "actions": [], "columns": [], **extra})["actions"].append(action)

        for a in actions:
            family = _family(a)
            if family == "relation":
                unit(("relation", a.schema_name, a.object_name), family, a.prior_state, a, schema=a.schema_name, name=a.object_name,
                     columns=[{"family": "column", "prior": attacl, "actions": [], "schema": a.schema_name, "name": a.object_name, "column": col}
                              for col, attacl in sorted(a.prior_columns.items())])
            elif family == "column":
                unit(("column", a.schema_name, a.object_name, a.column), family, a.prior_state, a, schema=a.schema_name, name=a.object_name, column=a.column)
            elif family == "default":
                unit(("default", a.grantor, a.schema_name), family, a.prior_state, a, schema=a.schema_name, role=a.grantor)
            else:
                unit(("membership", a.object_name, a.grantee), family, a.prior_state, a, role=a.object_name, member=a.grantee)
        return list(units.values())

    def _current_acl(self, conn, batch: list[dict]) -> list[str | None]:
        family = batch[0]["family"]
        if family == "relation":
            rows = conn.execute("""SELECT want.i, c.relacl::text FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS want(nsp, rel, i)
                                   JOIN pg_namespace n ON n.nspname = want.nsp JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel""",
                                [[u["schema"] for u in batch], [u["name"] for u in batch]]).fetchall()
        elif family == "column":
            rows = conn.execute(_COLUMN_ACL, [[u["schema"] for u in batch], [u["name"] for u in batch], [u["column"] for u in batch]]).fetchall()
            rows = [(r[0], r[2]) for r in rows]
        elif family == "default":
            rows = conn.execute("""SELECT want.i, COALESCE(d.defaclacl, CASE WHEN want.nsp = '' THEN acldefault('r', r.oid) END)::text
                                   FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS want(role, nsp, i)
                                   JOIN pg_roles r ON r.rolname = want.role
                                   LEFT JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r' AND d.defaclnamespace =
                                        CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END""",
                                [[u["role"] for u in batch], [u["schema"] for u in batch]]).fetchall()
        else:
            rows = conn.execute(_MEMBERSHIP, [[u["role"] for u in batch], [u["member"] for u in batch]]).fetchall()
            rows = [(r[0], json.dumps({"role": u["role"], "member": u["member"], "grantor": r[1], "admin_option": r[2]}, sort_keys=True))
                    for r in rows for u in [batch[r[0] - 1]]]
        current: list[str | None] = [None] * len(batch)
        for i, text in rows:
            current[i - 1] = text
        return current

    def _explode(self, conn, acls: list[str | None]) -> list[list]:
        exploded: list[list] = [[] for _ in acls]
        present = [(i, a) for i, a in enumerate(acls) if a]
        if present:
            for i, _ord, grantee, grantor, privilege, grantable in conn.execute(_EXPLODE, [[a for _, a in present]]).fetchall():
                exploded[present[i - 1][0]].append((grantee, grantor, privilege, grantable))
        return [_items(rows) for rows in exploded]

    def _restore(self, conn, batch: list[dict]) -> None:
        family = batch[0]["family"]
        current = self._current_acl(conn, batch)
        if family == "membership":
            for unit, now in zip(batch, current):
                if now != unit["prior"]:
                    self._restore_membership(conn, unit, now)
            return
        currents, priors = self._explode(conn, current), self._explode(conn, [u["prior"] for u in batch])
        owners = self._owners(conn, batch)
        # Objects needing the same statements (the usual case: re-grant one item at the end) share them.
        by_ops: dict[tuple, list[dict]] = {}
        for unit, now_items, prior_items, owner in zip(batch, currents, priors, owners):
            keep = 0
            while keep < min(len(now_items), len(prior_items)) and now_items[keep] == prior_items[keep]:
                keep += 1
            ops = []
            for grantee, grantor, _privs in now_items[keep:]:
                ops.append(("REVOKE", grantee, None if grantor == owner else grantor, None, False))
            for grantee, grantor, privs in prior_items[keep:]:
                for option in (True, False):   # grant options first: the item keeps its place either way
                    chosen = tuple(sorted((p for p, g in privs if g == option), key=PRIVILEGES.index))
                    if chosen:
                        ops.append(("GRANT", grantee, None if grantor == owner else grantor, chosen, option))
            if ops:
                key = (tuple(ops),) if family == "relation" else (tuple(ops), id(unit))
                by_ops.setdefault(key, []).append(unit)
        for (ops, *_), units in by_ops.items():
            for verb, grantee, grantor, privs, option in ops:
                self._acl_statement(conn, units, verb, grantee, grantor, privs, grant_option=option)

    def _owners(self, conn, batch: list[dict]) -> list[str]:
        if batch[0]["family"] == "default":
            return [u["role"] for u in batch]
        rows = conn.execute("""SELECT want.i, pg_get_userbyid(c.relowner) FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS want(nsp, rel, i)
                               JOIN pg_namespace n ON n.nspname = want.nsp JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel""",
                            [[u["schema"] for u in batch], [u["name"] for u in batch]]).fetchall()
        owners = [""] * len(batch)
        for i, owner in rows:
            owners[i - 1] = owner
        return owners

    def _acl_statement(self, conn, units: list[dict], verb: str, grantee: str, grantor: str | None, privs: tuple[str, ...] | None,
                       *, grant_option: bool) -> None:
        """One GRANT or REVOKE of one ACL item, made as the item's grantor (None: the owner) so the recorded grantor is identical.

        Several units only for table ACLs; column and default-privilege units come one at a time.
        """
        what = _privileges(privs) if privs else sql.SQL("ALL")
        family, unit = units[0]["family"], units[0]
        to_from = sql.SQL("TO" if verb == "GRANT" else "FROM")
        tail = sql.SQL(" WITH GRANT OPTION" if grant_option else (" CASCADE" if verb == "REVOKE" else ""))
        if family == "default":
            where = sql.SQL(" IN SCHEMA {}").format(sql.Identifier(unit["schema"])) if unit["schema"] else sql.SQL("")
            conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} {} {} ON TABLES {} {}{}").format(
                sql.Identifier(unit["role"]), where, sql.SQL(verb), what, to_from, _role(grantee), tail))
            return
        columns = sql.SQL(" ({})").format(sql.Identifier(unit["column"])) if family == "column" else sql.SQL("")
        tables = sql.SQL(", ".join(f"{quote_ident(u['schema'])}.{quote_ident(u['name'])}" for u in units))   # 1,000 names: no Identifier each
        statement = sql.SQL("{} {}{} ON TABLE {} {} {}{}").format(sql.SQL(verb), what, columns, tables, to_from, _role(grantee), tail)
        if grantor is None:
            conn.execute(statement)   # the owner's grants are recorded with the owner as grantor, whoever runs them
            return
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(grantor)))
        conn.execute(statement)
        conn.execute("RESET ROLE")

    def _restore_membership(self, conn, unit: dict, now: str | None) -> None:
        prior = json.loads(unit["prior"])
        if now is not None:
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(prior["role"]), sql.Identifier(prior["member"])))
        conn.execute(sql.SQL("GRANT {} TO {}{} GRANTED BY {}").format(
            sql.Identifier(prior["role"]), sql.Identifier(prior["member"]),
            sql.SQL(" WITH ADMIN OPTION" if prior["admin_option"] else ""), sql.Identifier(prior["grantor"])))

    def _undo_results(self, conn, batch: list[dict]) -> list[ActionResult]:
        current = self._current_acl(conn, batch)
        columns = [c for u in batch for c in u["columns"]]
        column_now = dict(zip(map(id, columns), self._current_acl(conn, columns))) if columns else {}
        results = []
        for unit, now in zip(batch, current):
            mismatch = [f"the ACL is {now!r}, not the recorded {unit['prior']!r}"] if now != unit["prior"] else []
            mismatch += [f"column {c['column']} ACL is {column_now[id(c)]!r}, not the recorded {c['prior']!r}"
                         for c in unit["columns"] if column_now[id(c)] != c["prior"]]
            for action in unit["actions"]:
                if unit.get("error"):
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message=f"undo failed: {unit['error']}"))
                elif mismatch:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message="after undo " + "; ".join(mismatch)))
                else:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.UNDONE, message="restored to the recorded ACL"))
        return results
