"""One scan: the catalog read in one transaction and turned into findings, decided per reader.

The relation and grant queries are pipelined, so the server works while Python classifies. Who reads what is
decided by the per-reader model (access.py); the grants held by roles the principals reach become findings
on the exposed objects, with the grantor exactly as the ACL records it (a grant-option holder's grant must be
revoked as that holder); paths that are not a grant are added by escalation.py.

The roles the principals reach are read in reach.py; catalog rows are made into findings in scan_findings.py.
This module runs the queries, builds the read model, and says why granted objects are not exposed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from itertools import chain
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from sevtool.core.exposure import PUBLIC, AccessPath, Scope
from sevtool.core.finding_spool import FindingSpool
from sevtool.targets.base import Classifier
from sevtool.targets.postgres.access import (
    PUBLIC_OID,
    Grants,
    ReadModel,
    load_graph,
    union_of,
)
from sevtool.targets.postgres.catalog import (
    _COLUMN_GRANTS_SQL,
    _RELATIONS_SQL,
    _SCHEMA_USAGE_SQL,
    _SCOPED_KINDS,
    _TABLE_GRANTS_SQL,
    _VIEW_DEPENDENCIES_SQL,
    READ_ALL_ROLES,
    _finding,
    _Relation,
    membership_sql,
)
from sevtool.targets.postgres.compact import GrantRows, relations_of, shared_holders
from sevtool.targets.postgres.escalation import Escalations, legacy_parents
from sevtool.targets.postgres.reach import read_members, read_reach
from sevtool.targets.postgres.scan_findings import add_default_privileges, add_everything, add_grant
from sevtool.targets.postgres.views import read_through_views, view_rules, views_over

# (findings, objects in scope -> DSS, principal -> member count, notices)
ScanOutput = tuple[FindingSpool, dict[str, int | None], dict[str, int], list[str]]


class CatalogScan:
    """One scan's queries and the turning of catalog rows into findings."""

    def __init__(self, cur: psycopg.Cursor, scope: Scope, classify: Classifier, display: str):
        self.cur = cur
        self.scope = scope
        self.classify = classify
        self.display = display
        self.findings = FindingSpool()  # spooled as made: never all alive beside the catalog
        self.notices: list[str] = []
        self._usable: dict[int, bool] = {}
        self._usage_notes: dict[tuple[str, int], tuple[str, str] | None] = {}
        self.reach_sql, self.members_sql = membership_sql(cur.connection.info.server_version)

    def run(self) -> ScanOutput:
        matched, members = self.find()
        # With the findings spooled, making the objects' names was a large scan's peak: the read model goes first,
        # and each relation as its name is made, so the names take the room the relations leave.
        del self.model, self.by_member
        relations, dss = self.relations, self.dss
        del self.relations, self.dss
        named = [(relations.pop(oid).fqn, dss[oid]) for oid in matched]
        del relations
        named.sort()
        objects = dict(named)
        return self.findings, objects, {p: total for p, (total, _n) in members.items()}, self.notices

    def find(self) -> tuple[frozenset[int], dict[str, tuple[int, int]]]:
        """The findings and notices, and `by_member` (as `exposure_by_member` reads it after this, not `run`);
        returns the matched relations and each principal's (members, NOINHERIT ones)."""
        graph = load_graph(self.cur)
        roles = graph.roles
        self.role_names = {oid: info.name for oid, info in roles.items()}
        self.role_names[PUBLIC_OID] = PUBLIC
        reach, self._reach_oid = read_reach(self.cur, self.scope, self.reach_sql, self.role_names, self.display)
        members = read_members(self.cur, self.scope, self.members_sql)
        role_oids = [self._reach_oid[r] for r in reach]
        params = {"principals": [r.principal for r in reach], "roles": role_oids}
        self.reach_by = {(r.principal, oid): r for r, oid in zip(reach, role_oids, strict=False)}
        self.reach_fields = {key: r.fields() for key, r in self.reach_by.items()}
        self.plain_path = {
            key: AccessPath.PUBLIC if r.role == PUBLIC else AccessPath.ROLE if r.route else AccessPath.DIRECT
            for key, r in self.reach_by.items()
        }
        principals_of: dict[int, list[str]] = {}
        for r, oid in zip(reach, role_oids, strict=False):
            principals_of.setdefault(oid, []).append(r.principal)

        # Pipelined: the server runs the grant queries while we classify and match the relations.
        conn = self.cur.connection
        with conn.pipeline():
            # Binary results: ~half the client CPU of parsing 45,000-row text results.
            pending = {
                name: conn.cursor(row_factory=tuple_row, binary=True)
                for name in ("relations", "usage", "views", "tables", "columns")
            }
            pending["relations"].execute(_RELATIONS_SQL)
            pending["usage"].execute(_SCHEMA_USAGE_SQL)
            pending["views"].execute(_VIEW_DEPENDENCIES_SQL)
            pending["tables"].execute(_TABLE_GRANTS_SQL)
            pending["columns"].execute(_COLUMN_GRANTS_SQL)
            relations = relations_of(read_and_free(pending.pop("relations")))
            self.relations = relations
            dss, matched = self._match(relations)
            self.dss = dss
            usage: dict[int, set[int]] = {}
            for namespace, grantee in read_and_free(pending.pop("usage")):
                usage.setdefault(namespace, set()).add(grantee)
            self.usage = usage
            dependencies = list(read_and_free(pending.pop("views")))
            views = views_over(self, matched, relations, dependencies)
            table_grants = GrantRows(read_and_free(pending.pop("tables")))
            column_grants = list(read_and_free(pending.pop("columns")))
        release_freed_memory()

        parents = legacy_parents(self.cur)
        # Sets of 200,000 oids are 8 MB each: a union is made only when it adds something.
        watched = _with(matched, views.keys() | {p for child in matched for p in parents.get(child, ())})
        rules = view_rules(self, watched, dependencies)
        bases = {base for rule in rules.values() for base, _columns in rule.bases}
        needed = _with(watched, bases)
        table_level = shared_holders((oid, grantee) for oid, grantee, _grantor in table_grants if oid in bases)
        by_column: dict[tuple[int, int], set[int]] = {}
        for oid, _column, grantee, _grantor, attnum in column_grants:
            if oid in needed:
                by_column.setdefault((oid, attnum), set()).add(grantee)
        read_all = next((oid for oid, info in roles.items() if info.name in READ_ALL_ROLES), None)
        self.model = ReadModel(
            graph,
            Grants(
                select=shared_holders(
                    chain(
                        ((oid, grantee) for oid, grantee, _grantor in table_grants if oid in needed),
                        ((oid, grantee) for oid, _column, grantee, _grantor, _attnum in column_grants if oid in needed),
                    )
                ),
                schema_of={oid: relations[oid].namespace for oid in watched},
                usage=usage,
                read_all=read_all,
                views=rules,
                table_select=table_level,
                column_select=by_column,
            ),
            watched,
        )
        self.principal_oids = {
            oid for r, oid in zip(reach, role_oids, strict=False) if not r.route and r.role == r.principal
        }
        self.by_member = self.model.exposure(self.principal_oids)
        exposed = union_of(self.by_member.values())
        not_exposed: dict[tuple[str, int], int] = {}  # (principal, namespace) -> objects granted but not exposed

        for oid, grantee, grantor in table_grants:
            for principal in principals_of.get(grantee, ()):
                if oid not in watched:
                    continue
                if oid in exposed:
                    add_grant(
                        self,
                        relations[oid],
                        principal,
                        grantee,
                        grantor,
                        relations[oid].owner,
                        column=None,
                        views=views,
                    )
                else:
                    key = (principal, relations[oid].namespace)
                    not_exposed[key] = not_exposed.get(key, 0) + 1

        for oid, column, grantee, grantor, _attnum in column_grants:
            if oid in exposed:
                for principal in principals_of.get(grantee, ()):
                    add_grant(
                        self,
                        relations[oid],
                        principal,
                        grantee,
                        grantor,
                        relations[oid].owner,
                        column=column,
                        views=views,
                    )
        read_through_views(self, exposed, rules, table_grants, principals_of)

        for r, oid in zip(reach, role_oids, strict=False):
            if r.role in READ_ALL_ROLES:
                add_everything(self, r, AccessPath.PREDEFINED_ROLE, exposed)
            elif roles.get(oid) is not None and roles[oid].superuser:
                add_everything(self, r, AccessPath.SUPERUSER, exposed)

        Escalations(self, _finding).add(
            reach, role_oids, roles, matched, exposed, parents, self.cur.connection.info.server_version
        )
        add_default_privileges(self, params)
        self._explain_unexposed(not_exposed)
        for principal, (_total, noinherit) in members.items():
            if noinherit and principal != PUBLIC:
                self.notices.append(
                    f"{noinherit} member(s) of {principal} are NOINHERIT: they read these objects after SET ROLE {principal}"
                )
        return matched, members

    def usage_elsewhere(self, principal: str, namespace: int) -> tuple[str, str] | None:
        """When the principal's side holds no USAGE on the schema, where readers get it: (the role holding USAGE, an example
        member who has it). None when the principal, a role it reaches or PUBLIC has USAGE."""
        key = (principal, namespace)
        if key not in self._usage_notes:
            holders = self.usage.get(namespace, set())
            ours = {oid for (p, oid) in self.reach_by if p == principal}
            note = None
            if holders.isdisjoint(ours):
                graph = self.model.graph
                for member in sorted(self.by_member, key=lambda m: self.role_names[m]):
                    found = next(
                        (h for i in graph.settable(member) for h in sorted(graph.inherited(i) & holders)), None
                    )
                    if found is not None:
                        note = (self.role_names[found], self.role_names[member])
                        break
            self._usage_notes[key] = note
        return self._usage_notes[key]

    def some_member_uses(self, namespace: int) -> bool:
        """Can some member of the principals, as some role it can be, use this schema?"""
        if namespace not in self._usable:
            graph = self.model.graph
            self._usable[namespace] = any(
                (usage := self.model.usage_now(i)) is None or namespace in usage
                for m in graph.members(self.principal_oids)
                for i in graph.settable(m)
            )
        return self._usable[namespace]

    def _explain_unexposed(self, not_exposed: dict[tuple[str, int], int]) -> None:
        """Grants to the principals that expose nothing today: latent (no member can use the schema) or redundant."""
        if not not_exposed:
            return
        schema_names = {rel.namespace: rel.schema for rel in self.relations.values()}
        for (principal, namespace), count in sorted(
            not_exposed.items(), key=lambda kv: (kv[0][0], schema_names[kv[0][1]])
        ):
            schema = schema_names[namespace]
            if self.some_member_uses(namespace):
                self.notices.append(
                    f"{count} object(s) in schema {schema} are granted to {principal} (or a role it reaches), but every "
                    f"member who can read them also reads them through other roles: not counted as exposure; "
                    f"revoke those grants if they should not exist"
                )
            else:
                self.notices.append(
                    f"{count} object(s) in schema {schema} are granted to {principal} but not readable yet: "
                    f"no member of {principal} has USAGE on {schema} (granting USAGE would expose them)"
                )

    # --- objects ---------------------------------------------------------------------------

    def _match(self, relations: dict[int, _Relation]) -> tuple[dict[int, int | None], frozenset[int]]:
        """DSS of every table, and the tables the scope matches (partitions follow their parent)."""
        classify = self.classify
        dss = {
            oid: classify(rel.schema, rel.name, rel.comment)
            for oid, rel in relations.items()
            if rel.kind in _SCOPED_KINDS
        }
        # A partition rated nothing of its own takes its parent's rating (the parent's own, or in turn its parent's).
        for oid, own in dss.items():
            parent = relations[oid].parent
            while own is None and parent is not None and parent in dss:
                own, parent = dss[parent], relations[parent].parent
            dss[oid] = own

        scope = self.scope
        if not (scope.schemas or scope.table_glob or scope.min_dss):
            return dss, frozenset(dss)
        by_name = {oid for oid in dss if scope.matches_name(relations[oid].schema, relations[oid].name)}

        def in_scope(oid: int) -> bool:
            current: int | None = oid
            while current is not None and current in dss:
                if current in by_name:
                    return True
                current = relations[current].parent
            return False

        return dss, frozenset(oid for oid in dss if in_scope(oid) and scope.matches_dss(dss[oid]))


def _with(oids: frozenset[int], more: AbstractSet[int]) -> frozenset[int]:
    """`oids | more`, the same set when `more` adds nothing."""
    return oids if more <= oids else oids | more


def read_and_free(cursor: psycopg.Cursor[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """A pipelined result's rows; the result is freed once they are read, when the last reference to the cursor goes
    (closing it is not enough: its row loader keeps the result). libpq holds each whole result, and the relations and
    grants of 200,000 tables came to about 80 MB beside the read model built from them."""
    with cursor:
        yield from cursor


def release_freed_memory() -> None:
    """Hand the freed results' pages back to the system (glibc's malloc_trim): the read model and the findings made
    next are mostly small objects, which Python does not place in the C heap those pages belong to."""
    try:
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError):  # as in sevtool.gcpause, which targets do not import: no glibc, or Windows
        return
    if trim is not None:
        trim(0)
