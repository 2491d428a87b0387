"""Blast radius: who loses read access when a plan runs, beyond the exposure it closes.

A revoke from a principal only takes from that principal's members, and what they lose through it is the
exposure itself (or nothing, when they read the object another way). Collateral comes from the other
actions, and this module works out exactly which roles lose what, with the per-reader model the scan uses:
- a REVOKE ... CASCADE, or REVOKE GRANT OPTION FOR ... CASCADE, also removes every grant made with that
  grant option, down the chain: `contractor`, granted by `emp_all` WITH GRANT OPTION, loses the table;
- a revoke from PUBLIC takes the object from every role that read it only through PUBLIC;
- removing the principal from a role takes from its members what that role gave them outside the scope, and
  from anyone the views those members own stop working for.

A (role, object) pair read before the plan and not after is collateral unless the scan counted it as
exposure through the principals. The answer is per action and is written onto the action: its roles,
objects and login members, `review` set, and the access-preserving alternative a responder can run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Container, Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from sevtool.core.exposure import PUBLIC
from sevtool.core.plan import Action, BatchKey, Collateral
from sevtool.targets.postgres.access import (
    NOT_SYSTEM,
    PUBLIC_OID,
    Grants,
    ReadModel,
    RoleGraph,
    ViewRule,
    load_graph,
)
from sevtool.targets.postgres.plugin import ActionKind

if TYPE_CHECKING:
    import psycopg

_RELATION_KINDS = (
    ActionKind.REVOKE_TABLE,
    ActionKind.REVOKE_VIEW,
    ActionKind.REVOKE_AS_GRANTOR,
    ActionKind.REVOKE_GRANT_OPTION,
    ActionKind.REVOKE_COLUMN,
)

# The actions' relations that a revoke could take from someone else: a grant to PUBLIC, one made by a role the plan
# revokes from (a grant-option holder's dependents), a column grant, or a view reading it. The rest (nearly all of a
# bulk exposure) only lose the principal's own grant.
_CANDIDATES = """
WITH want AS (
  SELECT want.i, c.oid, c.relowner, c.relacl FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json))
         WITH ORDINALITY AS want(nsp, rel, i)
    JOIN pg_namespace n ON n.nspname = want.nsp JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
), with_column_acls AS (
  SELECT DISTINCT attrelid FROM pg_attribute WHERE attacl IS NOT NULL
), read_by_views AS (
  SELECT DISTINCT d.refobjid FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
    JOIN pg_class v ON v.oid = r.ev_class
   WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class AND v.relkind = 'v'
)
SELECT want.i, want.oid FROM want
 WHERE want.oid IN (SELECT attrelid FROM with_column_acls) OR want.oid IN (SELECT refobjid FROM read_by_views)
    OR EXISTS (SELECT FROM aclexplode(coalesce(want.relacl, acldefault('r', want.relowner))) a
                WHERE a.grantee = 0 OR (a.grantor <> want.relowner AND a.grantor = ANY(%(grantees)s::oid[])))
"""

# Every relation a plain or security_invoker view reads, by name.
_VIEW_BASES = """
SELECT DISTINCT n.nspname, b.relname
  FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
  JOIN pg_class v ON v.oid = r.ev_class JOIN pg_class b ON b.oid = d.refobjid JOIN pg_namespace n ON n.oid = b.relnamespace
 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class AND v.relkind = 'v'
"""

# The plain and security_invoker views reading these relations, or views over them (recursively), with every base
# (and column) each of them reads.
_VIEWS = """
WITH RECURSIVE reads(view, base, attnum) AS (
    SELECT r.ev_class, d.refobjid, d.refobjsubid
      FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class AND d.deptype = 'n'
), above(view) AS (
    SELECT view FROM reads WHERE base = ANY(%(oids)s::oid[])
    UNION
    SELECT reads.view FROM reads JOIN above ON reads.base = above.view
)
SELECT DISTINCT reads.view, reads.base, reads.attnum, v.relowner,
       coalesce('security_invoker=true' = ANY(v.reloptions) OR 'security_invoker=on' = ANY(v.reloptions), false)
  FROM reads JOIN above ON above.view = reads.view JOIN pg_class v ON v.oid = reads.view
 WHERE v.relkind = 'v'
"""

# SELECT items (table and column level) with their grantor, on the given relations or, with NULL, on every relation.
_ITEMS = f"""
SELECT c.oid, c.relnamespace, NULL::text, a.grantee, a.grantor, n.nspname || '.' || c.relname, NULL::int2
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 WHERE a.privilege_type = 'SELECT' AND c.relkind IN ('r', 'p', 'f', 'v', 'm') AND {NOT_SYSTEM}
   AND (%(oids)s::oid[] IS NULL OR c.oid = ANY(%(oids)s::oid[]))
UNION ALL
SELECT c.oid, c.relnamespace, att.attname::text, a.grantee, a.grantor, n.nspname || '.' || c.relname, att.attnum
  FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(att.attacl) a
 WHERE att.attacl IS NOT NULL AND NOT att.attisdropped AND a.privilege_type = 'SELECT' AND {NOT_SYSTEM}
   AND (%(oids)s::oid[] IS NULL OR c.oid = ANY(%(oids)s::oid[]))
"""

_USAGE = """
SELECT n.oid, a.grantee FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE a.privilege_type = 'USAGE'
"""

Item = tuple[int, str | None, int, int]  # relation, column (None: table level), grantee, grantor
# (role graph, principal oids, in-scope objects, schema -> USAGE grantees, pg_read_all_data's oid)
Context = tuple[RoleGraph, set[int], Container[str], dict[int, set[int]], int | None]


class _World:
    """The SELECT items on some relations; a model of who reads them, with some items or a membership removed."""

    def __init__(
        self,
        graph: RoleGraph,
        items: list[tuple[Any, ...]],
        usage: dict[int, set[int]],
        read_all: int | None,
        views: dict[int, ViewRule] | None = None,
    ):
        self.graph = graph
        self.items: set[Item] = {(rel, col, grantee, grantor) for rel, _nsp, col, grantee, grantor, _fqn, _num in items}
        self.names = {rel: fqn for rel, _nsp, _col, _grantee, _grantor, fqn, _num in items}
        self.attnum = {(rel, col): num for rel, _nsp, col, _grantee, _grantor, _fqn, num in items if col is not None}
        self.views = views or {}
        self.on: dict[int, list[Item]] = defaultdict(list)
        for item in self.items:
            self.on[item[0]].append(item)
        self.schema_of = {rel: nsp for rel, nsp, *_ in items}
        self.usage = usage
        self.read_all = read_all

    def model(self, removed: AbstractSet[Item] = frozenset(), graph: RoleGraph | None = None) -> ReadModel:
        holders: dict[int, set[int]] = defaultdict(set)
        table_level: dict[int, set[int]] = defaultdict(set)
        by_column: dict[tuple[int, int], set[int]] = defaultdict(set)
        for rel, col, grantee, _grantor in self.items - removed:
            holders[rel].add(grantee)
            if col is None:
                table_level[rel].add(grantee)
            else:
                by_column[(rel, self.attnum[(rel, col)])].add(grantee)
        grants = Grants(
            select=dict(holders),
            schema_of=self.schema_of,
            usage=self.usage,
            read_all=self.read_all,
            views=self.views,
            table_select=dict(table_level),
            column_select=dict(by_column),
        )
        return ReadModel(graph or self.graph, grants, self.schema_of)

    def reads_from(self) -> dict[int, set[int]]:
        """Relation -> itself and every relation it reads, through views of views: a revoke on any of those can
        take it from a reader."""
        out: dict[int, set[int]] = defaultdict(set)

        def behind(rel: int) -> set[int]:
            if rel not in out:
                out[rel] = {rel}
                for base, _columns in self.views.get(rel, ViewRule(0, False, ())).bases:
                    out[rel] |= behind(base)
            return out[rel]

        for rel in self.schema_of:
            behind(rel)
        return out

    def cascade(
        self, rel: int, column: str | None, grantee: int, grantor: int | None, *, keep_own: bool = False
    ) -> set[Item]:
        """The item (unless `keep_own`: a grant option revoke) and every grant made from it, down the chain."""
        on = self.on.get(rel, [])
        removed: set[Item] = set()
        if not keep_own:
            removed |= {
                i
                for i in on
                if i[2] == grantee and (grantor is None or i[3] == grantor) and (column is None or i[1] == column)
            }
        frontier = [grantee]
        seen = {grantee}
        while frontier:
            holder = frontier.pop()
            for item in on:
                if item[3] == holder and item[2] != holder and (column is None or item[1] in (None, column)):
                    removed.add(item)
                    if item[2] not in seen:
                        seen.add(item[2])
                        frontier.append(item[2])
        return removed


class Screen:
    """A cheap first look at a draft (its shape and recorded ACL text), so the bulk of a large plan (the principal's own
    grant, made by the owner) skips the catalog: a grant to PUBLIC, a grant some plan grantee made, a column ACL, or a
    view over it. It may say yes too often (a name inside another), never no wrongly; the catalog decides the rest."""

    def __init__(self, conn: psycopg.Connection, shapes: Iterable[BatchKey]):
        self.grantees = {key[1] for key in shapes if key[0] in _RELATION_KINDS}
        self.view_bases: set[tuple[str, str]] = set(conn.execute(_VIEW_BASES).fetchall()) if self.grantees else set()
        self._acls: dict[str | None, bool] = {}

    def shape(self, shape: BatchKey) -> bool | None:
        """What a shape alone says: every such action may take from others (True), none can (False), or it depends
        on the action (None: ask `action`)."""
        kind, grantee = shape[0], shape[1]
        if kind not in _RELATION_KINDS:
            return False
        return True if grantee == PUBLIC or kind == ActionKind.REVOKE_GRANT_OPTION else None

    def action(self, schema: str, name: str, column: str | None, column_acls: bool, acl: str | None) -> bool:
        if column is not None or column_acls or (schema, name) in self.view_bases:
            return True
        if acl not in self._acls:  # tables share a handful of ACL texts
            self._acls[acl] = self._acl(acl or "")
        return self._acls[acl]

    def _acl(self, acl: str) -> bool:
        if acl.startswith("{=") or ",=" in acl:
            return True
        # A grantor whose name needs quoting shows as /\" in the array text: always looked at in the catalog.
        return '/\\"' in acl or any(f"/{g}" in acl for g in self.grantees)


def blast_radius(
    conn: psycopg.Connection, actions: list[Action], principals: list[str], in_scope: Container[str]
) -> None:
    """Fill `collateral` (and `review`, `alternative`) on the actions that take access from anyone else.

    `actions` are the ones a Screen picked out of the plan, and its membership removals, in plan order. `in_scope`
    names the objects ("schema.name") the scan found exposed: losing those is the point of the plan.
    """
    relation_actions = [a for a in actions if a.kind in _RELATION_KINDS]
    memberships = [a for a in actions if a.kind == ActionKind.REVOKE_MEMBERSHIP]
    if not relation_actions and not memberships:
        return
    cur = conn.cursor()
    graph = load_graph(cur)
    oid_of = {info.name: oid for oid, info in graph.roles.items()} | {PUBLIC: PUBLIC_OID}
    principal_oids = {
        oid_of[name] for name in (PUBLIC if p.upper() == PUBLIC else p for p in principals) if name in oid_of
    }
    usage: dict[int, set[int]] = defaultdict(set)
    for nsp, grantee in cur.execute(_USAGE).fetchall():
        usage[nsp].add(grantee)
    context: Context = (graph, principal_oids, in_scope, usage, oid_of.get("pg_read_all_data"))
    if relation_actions:
        risky = {
            i - 1: rel
            for i, rel in cur.execute(
                _CANDIDATES,
                {
                    "nsp": json.dumps([a.schema_name for a in relation_actions]),
                    "rel": json.dumps([a.object_name for a in relation_actions]),
                    "grantees": sorted({oid_of[a.grantee] for a in relation_actions if a.grantee in oid_of}),
                },
            ).fetchall()
        }
        if risky:
            views = _view_rules(cur.execute(_VIEWS, {"oids": sorted(set(risky.values()))}).fetchall())
            related = (
                set(risky.values()) | views.keys() | {base for rule in views.values() for base, _cols in rule.bases}
            )
            items = cur.execute(_ITEMS, {"oids": sorted(related)}).fetchall()
            world = _World(
                graph,
                items,
                usage,
                context[4],
                {v: rule for v, rule in views.items() if all(b in related for b, _ in rule.bases)},
            )
            _relation_collateral(context, world, {n: relation_actions[n] for n in risky}, risky, oid_of)
    if memberships:
        world = _World(graph, cur.execute(_ITEMS, {"oids": None}).fetchall(), usage, context[4])
        before = world.model()
        for action in memberships:
            role, member = oid_of.get(action.object_name), oid_of.get(action.grantee)
            if role is not None and member is not None:
                after = world.model(graph=graph.without_membership(role, member))
                # Everyone, not only the members: a view owned by a member stops working for the view's other readers.
                _record(action, _losses(world, before, after, context), world, cause="membership")


def _relation_collateral(
    context: Context, world: _World, actions: dict[int, Action], rel_of: dict[int, int], oid_of: dict[str, int]
) -> None:
    """Each action's own losses: actions on one relation are weighed one at a time (the k-th action on every
    relation together, since a revoke on one relation changes no one's access to another)."""
    removals: dict[int, set[Item]] = {}
    for n, action in actions.items():
        grantee = oid_of.get(action.grantee)
        if grantee is not None:
            grantor = oid_of.get(action.grantor) if action.grantor else None
            removals[n] = world.cascade(
                rel_of[n], action.column, grantee, grantor, keep_own=action.kind == ActionKind.REVOKE_GRANT_OPTION
            )
    by_relation: dict[int, list[int]] = defaultdict(list)
    for n in removals:
        by_relation[rel_of[n]].append(n)
    before = world.model()
    reads_from = world.reads_from()
    takers: dict[int, dict[int, set[int]]] = defaultdict(dict)
    for k in range(max((len(ns) for ns in by_relation.values()), default=0)):
        turn = [ns[k] for ns in by_relation.values() if len(ns) > k]
        lost = _losses(world, before, world.model(set().union(*(removals[n] for n in turn))), context)
        for n in turn:
            for role, rels in lost.items():
                if taken := {r for r in rels if rel_of[n] in reads_from[r]}:
                    takers[n].setdefault(role, set()).update(taken)
    # Two grants may each keep a reader on their own (the owner's and a holder's grant to PUBLIC): what only the
    # actions together take is collateral of each of them.
    together = _losses(world, before, world.model(set().union(*removals.values())), context)
    for rel, ns in by_relation.items():
        for role, rels in together.items():
            for lost_rel in rels:
                if rel in reads_from[lost_rel] and not any(lost_rel in takers[n].get(role, ()) for n in ns):
                    for n in ns:
                        takers[n].setdefault(role, set()).add(lost_rel)
    for n, lost_by in takers.items():
        action = actions[n]
        _record(action, lost_by, world, cause="public_revoke" if action.grantee == PUBLIC else "grant_option_cascade")


def _view_rules(rows: list[tuple[Any, ...]]) -> dict[int, ViewRule]:
    bases: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    owners: dict[int, tuple[int, bool]] = {}
    for view, base, attnum, owner, invoker in rows:
        bases[view][base].add(attnum)
        owners[view] = (owner, invoker)
    return {
        view: ViewRule(
            owner=owners[view][0],
            invoker=owners[view][1],
            bases=tuple((base, tuple(sorted(cols - {0}))) for base, cols in found.items()),
        )
        for view, found in bases.items()
    }


def _losses(world: _World, before: ReadModel, after: ReadModel, context: Context) -> dict[int, set[int]]:
    """Role -> relations it reads before and not after, leaving out the in-scope exposure the plan is there to close."""
    graph, principal_oids, in_scope, _usage, _read_all = context
    exposed = before.exposure(principal_oids)
    lost: dict[int, set[int]] = {}
    for role in graph.roles:
        was = before.reads(role)
        if not was:
            continue
        intended = exposed.get(role, frozenset())
        gone = {rel for rel in was - after.reads(role) if rel not in intended or world.names[rel] not in in_scope}
        if gone:
            lost[role] = gone
    return lost


def _record(action: Action, lost: dict[int, set[int]], world: _World, cause: str) -> None:
    if not lost:
        return
    graph, names = world.graph, world.names
    roles = graph.roles
    logins = {r for r in lost if roles[r].login}
    if cause == "public_revoke":
        objects = sorted({names[rel] for rels in lost.values() for rel in rels})
        action.collateral = [Collateral(role=PUBLIC, objects=objects, login_members=len(logins), cause=cause)]
    else:
        action.collateral = [
            Collateral(
                role=roles[r].name,
                objects=sorted(names[rel] for rel in rels),
                cause=cause,
                login_members=len(logins & graph.members({r})),
            )
            for r, rels in sorted(lost.items(), key=lambda kv: roles[kv[0]].name)
        ]
    action.review = True
    who = ", ".join(c.role for c in action.collateral[:5]) + (" ..." if len(action.collateral) > 5 else "")
    if cause == "public_revoke":
        readers = sorted(roles[r].name for r in logins)
        action.alternative = (
            f"before revoking from PUBLIC, grant SELECT directly to the roles that need it: {len(logins)} login role(s) "
            f"outside the incident read it only through PUBLIC"
            + (f" (e.g. {', '.join(readers[:3])})" if readers else "")
        )
    elif cause == "membership":
        action.alternative = (
            f"grant {action.grantee} directly the objects it still needs from {action.object_name} "
            f"before removing the membership ({sum(len(c.objects) for c in action.collateral)} object(s) it would lose)"
        )
    else:
        grants = sorted({(c.role, o) for c in action.collateral for o in c.objects})
        action.alternative = (
            f"before this revoke, grant from the owner what {who} would lose: "
            + "; ".join(f"GRANT SELECT ON {o} TO {r}" for r, o in grants[:3])
            + (f"; ... ({len(grants)} grants)" if len(grants) > 3 else "")
        )
