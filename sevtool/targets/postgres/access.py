"""Who can read what, decided per reader, the way PostgreSQL decides it.

A session reads as one role at a time: its login role with what that role inherits, or a role it can
`SET ROLE` to, with what *that* role inherits. A read needs SELECT on the relation (or any column) and
USAGE on its schema, held by the same identity, from whatever source: a member who gets USAGE from
another role reads a table granted to the principal even though the principal has no USAGE itself.

Exposure through the principals is a difference of two worlds, computed per member:
- now: the catalog as it is;
- without: every membership *in* a principal removed and every SELECT granted to PUBLIC removed.
  Schema USAGE is kept as each role has it now (it reveals no data; the exposure is about who gives
  SELECT), so a member's legitimate reads through its other roles never count as exposure.
An object is exposed when some member reads it now and could not in the other world.

Membership semantics follow the server's version. PostgreSQL 15: a role inherits the privileges of the
roles it is a member of when it is INHERIT (pg_roles.rolinherit), and can SET ROLE to any role it is a
member of, directly or not. 16+: each grant carries inherit_option and set_option, and a chain counts
only when every grant on it has the option.

The principal role itself is a reader too (a login principal, or one a member SETs ROLE to): everything it
reads is exposure through it. Superusers read everything; pg_read_all_data, inherited, grants SELECT on every relation and USAGE on
every schema. Members are counted by walking memberships down from the principal (any chain); for
PUBLIC, every role is a member.

Readers who share the same effective roles get the same answer, so answers are computed once per
distinct set of roles that hold a relevant grant, not once per member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

PUBLIC_OID = 0
NOT_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"

_ROLES_SQL = "SELECT oid, rolname, rolsuper, rolinherit, rolcanlogin, rolcreaterole FROM pg_roles"

# PostgreSQL 15 follows a membership to privileges when the member is INHERIT, and lets any member SET ROLE;
# 16+ keeps both options on each grant.
_MEMBERSHIPS_SQL = {
    15: "SELECT m.roleid, m.member, r.rolinherit, true FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member",
    16: "SELECT roleid, member, inherit_option, set_option FROM pg_auth_members",
}


@dataclass(frozen=True, slots=True)
class RoleInfo:
    name: str
    superuser: bool
    inherit: bool  # rolinherit: the 15 rule for following memberships to privileges
    login: bool
    createrole: bool


@dataclass(frozen=True, slots=True)
class Membership:
    """One pg_auth_members row (16+ keeps one per grantor)."""

    role: int
    member: int
    inherit: bool
    set: bool


class RoleGraph:
    """Memberships as PostgreSQL follows them for privileges (inherit) and for SET ROLE."""

    def __init__(self, roles: dict[int, RoleInfo], memberships: Iterable[Membership]):
        self.roles = roles
        self.memberships = list(memberships)
        self._up: dict[int, list[Membership]] = defaultdict(list)
        self._down: dict[int, list[int]] = defaultdict(list)
        for m in self.memberships:
            self._up[m.member].append(m)
            self._down[m.role].append(m.member)

    def without_membership(self, role: int, member: int) -> RoleGraph:
        """The graph once `member` is no longer a member of `role` (every grantor's grant of it revoked)."""
        return RoleGraph(self.roles, [m for m in self.memberships if (m.role, m.member) != (role, member)])

    def _closure(self, start: int, follow: Callable[[Membership], bool], without: frozenset[int]) -> frozenset[int]:
        seen = {start}
        stack = [start]
        while stack:
            for edge in self._up.get(stack.pop(), ()):
                if edge.role not in seen and edge.role not in without and follow(edge):
                    seen.add(edge.role)
                    stack.append(edge.role)
        return frozenset(seen)

    def inherited(self, role: int, without: frozenset[int] = frozenset()) -> frozenset[int]:
        """The roles whose privileges `role` uses (itself included), ignoring memberships in `without`."""
        return self._closure(role, lambda e: e.inherit, without)

    def settable(self, role: int, without: frozenset[int] = frozenset()) -> frozenset[int]:
        """The roles `role` can SET ROLE to (itself included), ignoring memberships in `without`."""
        return self._closure(role, lambda e: e.set, without)

    def members(self, roles: Iterable[int]) -> set[int]:
        """Every role with a membership chain to one of `roles`, those roles included; PUBLIC means all."""
        roles = set(roles)
        if PUBLIC_OID in roles:
            return set(self.roles)
        seen = {r for r in roles if r in self.roles}
        stack = list(seen)
        while stack:
            for member in self._down.get(stack.pop(), ()):
                if member not in seen:
                    seen.add(member)
                    stack.append(member)
        return seen


def load_graph(cur: psycopg.Cursor) -> RoleGraph:
    """Every role and membership of the cluster, with the server's version's membership rules."""
    roles = {row[0]: RoleInfo(*row[1:]) for row in cur.execute(_ROLES_SQL).fetchall()}
    version = 16 if cur.connection.info.server_version >= 160000 else 15
    return RoleGraph(roles, (Membership(*row) for row in cur.execute(_MEMBERSHIPS_SQL[version]).fetchall()))


@dataclass(frozen=True, slots=True)
class ViewRule:
    """What reading a view needs beyond SELECT on it: SELECT on each base, held by its owner (or by the reader
    for a security_invoker view). Schema USAGE is not checked again for the bases."""

    owner: int
    invoker: bool
    bases: tuple[tuple[int, tuple[int, ...]], ...]  # (base relation, the column numbers it reads; empty: the whole row)


@dataclass(frozen=True, slots=True)
class Grants:
    """What the catalog grants, as sets of role oids; PUBLIC is 0."""

    select: Mapping[int, AbstractSet[int]]  # relation -> roles holding SELECT on it or on any of its columns
    schema_of: dict[int, int]  # relation -> its namespace
    usage: dict[int, set[int]]  # namespace -> roles holding USAGE
    read_all: int | None  # oid of pg_read_all_data, if the server has it
    views: dict[int, ViewRule] = field(default_factory=dict)  # every view whose readability the answers depend on
    table_select: Mapping[int, AbstractSet[int]] = field(default_factory=dict)  # view bases: table-level SELECT holders
    column_select: dict[tuple[int, int], set[int]] = field(default_factory=dict)  # (relation, column number) -> holders


class ReadModel:
    """Per-reader effective read access over a set of relations, now and without the principals."""

    def __init__(self, graph: RoleGraph, grants: Grants, relations: Iterable[int]):
        self.graph = graph
        self.relations = relations if isinstance(relations, frozenset) else frozenset(relations)
        by_holder: dict[int, set[int]] = defaultdict(set)
        for rel in self.relations:
            for holder in grants.select.get(rel, ()):
                by_holder[holder].add(rel)
        self._by_holder = dict(by_holder)
        self._schema_holders = {h for holders in grants.usage.values() for h in holders}
        self._relevant = (
            frozenset(h for holders in grants.select.values() for h in holders)
            | self._schema_holders
            | ({grants.read_all} - {None})
        )
        # `select` is only read here, by holder: its relation -> holders map (10 MB at 200,000 relations) is not kept.
        self.grants = replace(grants, select={})
        self._usage_now: dict[int, frozenset[int] | None] = {}
        self._answers: dict[
            tuple[frozenset[int] | None, frozenset[int] | None, frozenset[int] | None], frozenset[int]
        ] = {}  # (holders, schemas, world)
        self._views_ok: dict[
            tuple[int, frozenset[int] | None, frozenset[int] | None], bool
        ] = {}  # (view, invoker, world)
        self._exposures: dict[frozenset[int], dict[int, frozenset[int]]] = {}

    # --- one identity -------------------------------------------------------------------------

    def _reads_everything(self, role: int, inherited: frozenset[int]) -> bool:
        return self.graph.roles[role].superuser or self.grants.read_all in inherited

    def _usage(self, holders: frozenset[int]) -> frozenset[int]:
        return frozenset(nsp for nsp, granted in self.grants.usage.items() if not granted.isdisjoint(holders))

    def usage_now(self, role: int) -> frozenset[int] | None:
        """The schemas `role` can use today; None means every schema."""
        if role not in self._usage_now:
            inherited = self.graph.inherited(role)
            self._usage_now[role] = (
                None if self._reads_everything(role, inherited) else self._usage(inherited | {PUBLIC_OID})
            )
        return self._usage_now[role]

    def _readable(
        self, holders: frozenset[int] | None, schemas: frozenset[int] | None, world: frozenset[int] | None
    ) -> frozenset[int]:
        """Relations readable by an identity holding `holders`' privileges (None: every relation) with USAGE on
        `schemas` (None: all), in the world without memberships in `world` (None: as it is now)."""
        key = (holders, schemas, world)
        answer = self._answers.get(key)
        if answer is None:
            if holders is None:
                selectable = set(self.relations)
            else:
                selectable = set()
                for holder in holders:
                    selectable |= self._by_holder.get(holder, set())
            if schemas is not None:
                schema_of = self.grants.schema_of
                selectable = {rel for rel in selectable if schema_of[rel] in schemas}
            views = self.grants.views
            answer = self._answers[key] = frozenset(
                rel for rel in selectable if rel not in views or self._view_ok(rel, holders, world)
            )
        return answer

    def _selects(
        self,
        rel: int,
        columns: tuple[int, ...],
        checker: frozenset[int] | None,
        invoker: frozenset[int] | None,
        world: frozenset[int] | None,
    ) -> bool:
        """Can `checker` read these columns of `rel` (the whole row when none are named) as a view's base? A view
        among the bases is then read on behalf of the query's `invoker`."""
        grants = self.grants
        held = (
            checker is None
            or not grants.table_select.get(rel, set()).isdisjoint(checker)
            or (
                bool(columns)
                and all(not grants.column_select.get((rel, col), set()).isdisjoint(checker) for col in columns)
            )
        )
        return held and (rel not in grants.views or self._view_ok(rel, invoker, world))

    def _view_ok(self, view: int, invoker: frozenset[int] | None, world: frozenset[int] | None) -> bool:
        """Can the view's bases be read: by its owner, or by the reader for a security_invoker view? A security_invoker
        view checks its bases as the query's reader even when reached through a plain view."""
        rule = self.grants.views[view]
        key = (view, invoker, world)
        if key not in self._views_ok:
            checker = invoker if rule.invoker else self._holders_of(rule.owner, world)
            self._views_ok[key] = all(
                self._selects(base, columns, checker, invoker, world) for base, columns in rule.bases
            )
        return self._views_ok[key]

    def owners_read_through(self, view: int, principals: frozenset[int]) -> bool:
        """Does the view work only through the principals' memberships or PUBLIC's grants (its owner, or an owner
        further down, reads a base that way)? Then those base grants expose it, whatever the view's own grants."""
        return self._view_ok(view, None, None) and not self._view_ok(view, None, principals)

    def _holders_of(self, role: int, world: frozenset[int] | None) -> frozenset[int] | None:
        """The roles whose SELECT grants `role` uses in that world; None when it reads everything."""
        inherited = self.graph.inherited(role, world or frozenset())
        if self._reads_everything(role, inherited):
            return None
        return inherited if world is not None else inherited | {PUBLIC_OID}

    def reads_now(self, role: int) -> frozenset[int]:
        holders = self._holders_of(role, None)
        if holders is None:
            return self._readable(None, None, None)
        holders &= self._relevant
        return self._readable(holders, self._usage(holders), None)

    def reads_without(self, role: int, principals: frozenset[int]) -> frozenset[int]:
        """What `role` reads once memberships in `principals` and SELECT grants to PUBLIC are gone."""
        holders = self._holders_of(role, principals)
        if holders is None:
            return self._readable(None, None, principals)
        schemas: set[int] = set()
        for holder in holders:
            usable = self.usage_now(holder)
            if usable is None:
                return self._readable(holders & self._relevant, None, principals)
            schemas |= usable
        return self._readable(
            holders & self._relevant, frozenset(schemas) | self._usage(frozenset({PUBLIC_OID})), principals
        )

    def reads(self, member: int) -> frozenset[int]:
        """Everything `member` reads now, as itself or any role it can SET ROLE to."""
        return frozenset().union(*(self.reads_now(i) for i in self.graph.settable(member)))

    # --- members ------------------------------------------------------------------------------

    def exposure(self, principals: Iterable[int]) -> dict[int, frozenset[int]]:
        """Member -> the relations it reads now and could not without the principals; only members with some."""
        principals = frozenset(principals)
        if principals in self._exposures:  # a plan's blast radius asks the same model once per action group
            return self._exposures[principals]
        cut = principals - {PUBLIC_OID}
        now_of: dict[int, frozenset[int]] = {}
        without_of: dict[int, frozenset[int]] = {}
        gained_by: dict[
            tuple[frozenset[int], frozenset[int]], frozenset[int]
        ] = {}  # members whose identities read alike get one answer
        exposed: dict[int, frozenset[int]] = {}
        for member in self.graph.members(principals):
            now = {id(a): a for a in (self._cached(now_of, i, self.reads_now) for i in self.graph.settable(member))}
            if not any(now.values()):
                continue
            # A principal's own reads are its exposure: without its memberships it is no principal at all.
            before = (
                {}
                if member in cut
                else {
                    id(a): a
                    for a in (
                        self._cached(without_of, i, lambda r: self.reads_without(r, cut))
                        for i in self.graph.settable(member, cut)
                    )
                }
            )
            key = (frozenset(now), frozenset(before))
            if key not in gained_by:
                lost = union_of(before.values())
                gained_by[key] = union_of(now.values()) - lost if lost else union_of(now.values())
            if gained_by[key]:
                exposed[member] = gained_by[key]
        self._exposures[principals] = exposed
        return exposed

    @staticmethod
    def _cached(
        cache: dict[int, frozenset[int]], role: int, compute: Callable[[int], frozenset[int]]
    ) -> frozenset[int]:
        if role not in cache:
            cache[role] = compute(role)
        return cache[role]


def union_of(sets: Iterable[frozenset[int]]) -> frozenset[int]:
    """The union; the set itself when there is one distinct set (of 200,000 relations, a copy is 8 MB)."""
    distinct = list({id(s): s for s in sets}.values())
    return distinct[0] if len(distinct) == 1 else frozenset().union(*distinct)
