"""One scan: the catalog read in one transaction and turned into findings, decided per reader.

The relation and grant queries are pipelined, so the server works while Python classifies. Who reads what is
decided by the per-reader model (access.py); the grants held by roles the principals reach become findings
on the exposed objects, with the grantor exactly as the ACL records it (a grant-option holder's grant must be
revoked as that holder); paths that are not a grant are added by escalation.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg.rows import tuple_row

from sevtool.core.exposure import FUTURE_TABLES, PUBLIC, AccessPath, Finding, Scope
from sevtool.errors import NotFound
from sevtool.targets.base import Classifier
from sevtool.targets.postgres.access import (
    PUBLIC_OID,
    Grants,
    ReadModel,
    load_graph,
)
from sevtool.targets.postgres.catalog import (
    _COLUMN_GRANTS_SQL,
    _DEFAULT_GRANTS_SQL,
    _KINDS,
    _RELATIONS_SQL,
    _SCHEMA_USAGE_SQL,
    _SCOPED_KINDS,
    _TABLE_GRANTS_SQL,
    _VIEW_DEPENDENCIES_SQL,
    READ_ALL_ROLES,
    _finding,
    _Reach,
    _Relation,
    membership_sql,
)
from sevtool.targets.postgres.compact import GrantRows, relations_of
from sevtool.targets.postgres.escalation import Escalations, legacy_parents
from sevtool.targets.postgres.sql import one_row
from sevtool.targets.postgres.views import read_through_views, view_rules, views_over

# (findings, objects in scope -> DSS, principal -> member count, notices)
ScanOutput = tuple[list[Finding], dict[str, int | None], dict[str, int], list[str]]


class CatalogScan:
    """One scan's queries and the turning of catalog rows into findings."""

    def __init__(self, cur: psycopg.Cursor, scope: Scope, classify: Classifier, display: str):
        self.cur = cur
        self.scope = scope
        self.classify = classify
        self.display = display
        self.findings: list[Finding] = []
        self.notices: list[str] = []
        self._usable: dict[int, bool] = {}
        self._usage_notes: dict[tuple[str, int], tuple[str, str] | None] = {}
        self.reach_sql, self.members_sql = membership_sql(cur.connection.info.server_version)

    def run(self) -> ScanOutput:
        graph = load_graph(self.cur)
        roles = graph.roles
        self.role_names = {oid: info.name for oid, info in roles.items()}
        self.role_names[PUBLIC_OID] = PUBLIC
        reach = self._reach()
        members = self._members()
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
            relations = relations_of(pending["relations"])
            self.relations = relations
            dss, matched = self._match(relations)
            self.dss = dss
            usage: dict[int, set[int]] = {}
            for namespace, grantee in pending["usage"].fetchall():
                usage.setdefault(namespace, set()).add(grantee)
            self.usage = usage
            dependencies = pending["views"].fetchall()
            views = views_over(self, matched, relations, dependencies)
            table_grants = GrantRows(pending["tables"])
            column_grants = pending["columns"].fetchall()
        for cursor in pending.values():
            cursor.close()

        parents = legacy_parents(self.cur)
        watched = matched | views.keys() | {p for child in matched for p in parents.get(child, ())}
        rules = view_rules(self, watched, dependencies)
        needed = watched | {base for rule in rules.values() for base, _columns in rule.bases}
        holders: dict[int, set[int]] = {}
        table_level: dict[int, set[int]] = {}
        for oid, grantee, _grantor in table_grants:
            if oid in needed:
                holders.setdefault(oid, set()).add(grantee)
                table_level.setdefault(oid, set()).add(grantee)
        by_column: dict[tuple[int, int], set[int]] = {}
        for oid, _column, grantee, _grantor, attnum in column_grants:
            if oid in needed:
                holders.setdefault(oid, set()).add(grantee)
                by_column.setdefault((oid, attnum), set()).add(grantee)
        holders, table_level = _shared_sets(holders), _shared_sets(table_level)
        read_all = next((oid for oid, info in roles.items() if info.name in READ_ALL_ROLES), None)
        self.model = ReadModel(
            graph,
            Grants(
                select=holders,
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
        exposed: set[int] = set().union(*self.by_member.values()) if self.by_member else set()
        not_exposed: dict[tuple[str, int], int] = {}  # (principal, namespace) -> objects granted but not exposed

        for oid, grantee, grantor in table_grants:
            for principal in principals_of.get(grantee, ()):
                if oid not in watched:
                    continue
                if oid in exposed:
                    self._add(
                        relations[oid], principal, grantee, grantor, relations[oid].owner, column=None, views=views
                    )
                else:
                    key = (principal, relations[oid].namespace)
                    not_exposed[key] = not_exposed.get(key, 0) + 1

        for oid, column, grantee, grantor, _attnum in column_grants:
            if oid in exposed:
                for principal in principals_of.get(grantee, ()):
                    self._add(
                        relations[oid], principal, grantee, grantor, relations[oid].owner, column=column, views=views
                    )
        read_through_views(self, exposed, rules, table_grants, principals_of)

        for r, oid in zip(reach, role_oids, strict=False):
            if r.role in READ_ALL_ROLES:
                self._everything(r, AccessPath.PREDEFINED_ROLE, exposed)
            elif roles.get(oid) is not None and roles[oid].superuser:
                self._everything(r, AccessPath.SUPERUSER, exposed)

        Escalations(self, _finding).add(
            reach, role_oids, roles, matched, exposed, parents, self.cur.connection.info.server_version
        )
        self._default_privileges(params)
        self._explain_unexposed(not_exposed)
        for principal, (_total, noinherit) in members.items():
            if noinherit and principal != PUBLIC:
                self.notices.append(
                    f"{noinherit} member(s) of {principal} are NOINHERIT: they read these objects after SET ROLE {principal}"
                )
        objects = dict(sorted((relations[oid].fqn, dss[oid]) for oid in matched))
        return self.findings, objects, {p: total for p, (total, _n) in members.items()}, self.notices

    def _everything(self, reached: _Reach, path: AccessPath, exposed: set[int]) -> None:
        """Findings for a role that reads every relation (a superuser, pg_read_all_data): views included."""
        for oid in sorted(exposed, key=lambda o: self.relations[o].fqn):
            rel = self.relations[oid]
            self.findings.append(
                _finding(
                    {
                        "object_kind": rel.kind_label,
                        "schema_name": rel.schema,
                        "object_name": rel.name,
                        "principal": reached.principal,
                        "path": path,
                        "grantee": reached.role,
                        "dss": self.dss.get(oid),
                        "base_object": self._parent_fqn(rel),
                        **reached.fields(),
                    }
                )
            )

    def _usage_elsewhere(self, principal: str, namespace: int) -> tuple[str, str] | None:
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

    def _some_member_uses(self, namespace: int) -> bool:
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
            if self._some_member_uses(namespace):
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

    # --- roles -----------------------------------------------------------------------------

    def _reach(self) -> list[_Reach]:
        names = []
        for principal in self.scope.principals:
            names.append(PUBLIC if principal.upper() == PUBLIC else principal)
        roles = [n for n in names if n != PUBLIC]
        rows = self.cur.execute(self.reach_sql, {"principals": roles}).fetchall()
        found = {row[0] for row in rows}
        missing = [n for n in roles if n not in found]
        if missing:
            raise NotFound(
                f"role {missing[0]!r} does not exist on {self.display}",
                hint="role names are case-sensitive; PUBLIC means every role",
            )
        self._reach_oid = {}
        reach: list[_Reach] = []
        for principal, roleid, route, inherited, blocked_by in rows:
            entry = _Reach(principal, self.role_names[roleid], tuple(route), inherited, blocked_by)
            self._reach_oid[entry] = roleid
            reach.append(entry)
        for name in dict.fromkeys(names):
            public = _Reach(name, PUBLIC, (), True, None)
            self._reach_oid[public] = PUBLIC_OID
            reach.append(public)
        return reach

    def _members(self) -> dict[str, tuple[int, int]]:
        names = list(dict.fromkeys(PUBLIC if p.upper() == PUBLIC else p for p in self.scope.principals))
        roles = [n for n in names if n != PUBLIC]
        counts = {row[0]: (row[1], row[2]) for row in self.cur.execute(self.members_sql, {"principals": roles})}
        if PUBLIC in names:
            total, noinherit = one_row(
                self.cur.execute(
                    "SELECT count(*), count(*) FILTER (WHERE NOT rolinherit) FROM pg_roles WHERE rolcanlogin"
                )
            )
            counts[PUBLIC] = (total, noinherit)
        return {name: counts.get(name, (0, 0)) for name in names}

    # --- objects ---------------------------------------------------------------------------

    def _match(self, relations: dict[int, _Relation]) -> tuple[dict[int, int | None], set[int]]:
        """DSS of every table, and the tables the scope matches (partitions follow their parent)."""
        tables = {oid: rel for oid, rel in relations.items() if rel.kind in _SCOPED_KINDS}
        own = {oid: self.classify(rel.schema, rel.name, rel.comment) for oid, rel in tables.items()}
        dss: dict[int, int | None] = {}

        def rating(oid: int) -> int | None:
            if oid not in dss:
                parent = tables[oid].parent
                inherit = own[oid] is None and parent is not None and parent in tables
                dss[oid] = rating(parent) if inherit and parent is not None else own[oid]
            return dss[oid]

        scope = self.scope
        if not (scope.schemas or scope.table_glob or scope.min_dss):
            return {oid: rating(oid) for oid in tables}, set(tables)
        by_name = {oid for oid, rel in tables.items() if scope.matches_name(rel.schema, rel.name)}

        def in_scope(oid: int) -> bool:
            current: int | None = oid
            while current is not None and current in tables:
                if current in by_name:
                    return True
                current = tables[current].parent
            return False

        matched = {oid for oid in tables if in_scope(oid) and scope.matches_dss(rating(oid))}
        return dss, matched

    def _parent_fqn(self, rel: _Relation) -> str | None:
        parent = self.relations.get(rel.parent) if rel.parent is not None else None
        return parent.fqn if parent else None

    # --- findings --------------------------------------------------------------------------

    def _add(
        self,
        rel: _Relation,
        principal: str,
        grantee: int,
        grantor: int,
        owner: int,
        *,
        column: str | None,
        views: dict[int, list[int]],
    ) -> None:
        key = (principal, grantee)
        reached = self.reach_by[key]
        grantor_name = self.role_names.get(grantor, str(grantor))
        by_holder = grantor != owner
        how = {**self.reach_fields[key], "usage_from": self._usage_elsewhere(principal, rel.namespace)}
        if (
            not by_holder
            and column is None
            and rel.parent is None
            and rel.oid not in views
            and grantee != owner
            and not rel.row_security
        ):
            # The bulk of a large exposure: a plain table granted by its owner.
            self.findings.append(
                _finding(
                    {
                        "object_kind": _KINDS[rel.kind],
                        "schema_name": rel.schema,
                        "object_name": rel.name,
                        "principal": principal,
                        "path": self.plain_path[key],
                        "grantee": reached.role,
                        "grantor": grantor_name,
                        "dss": self.dss[rel.oid],
                        **how,
                    }
                )
            )
            return
        base_object = None
        bases: tuple[str, ...] = ()
        dss = self.dss.get(rel.oid)
        if rel.oid in views:
            bases = tuple(self.relations[b].fqn for b in views[rel.oid])
            base_object = bases[0]
            dss = self.dss[views[rel.oid][0]]
            path = AccessPath.VIEW
        elif rel.parent is not None:
            base_object = self._parent_fqn(rel)
            path = AccessPath.PARTITION
        elif column is not None:
            path = AccessPath.COLUMN
        elif grantee == owner:
            path = AccessPath.OWNER
        elif by_holder:
            path = AccessPath.GRANT_OPTION
        else:
            path = self.plain_path[key]
        self.findings.append(
            _finding(
                {
                    "object_kind": rel.kind_label,
                    "schema_name": rel.schema,
                    "object_name": rel.name,
                    "principal": principal,
                    "path": path,
                    "grantee": reached.role,
                    "grantor": grantor_name,
                    "column": column,
                    "dss": dss,
                    "base_object": base_object,
                    "bases": bases,
                    "by_holder": by_holder,
                    "row_security": rel.row_security,
                    **how,
                }
            )
        )

    def _default_privileges(self, params: Mapping[str, object]) -> None:
        """Future tables: granted in a schema some member of the principal can use (or database-wide)."""
        for owner, namespace, schema, principal, grantee, _grantor in self.cur.execute(_DEFAULT_GRANTS_SQL, params):
            if namespace and not self._some_member_uses(namespace):
                continue
            schema = schema or ""
            if schema and self.scope.schemas and schema not in self.scope.schemas:
                continue
            reached = self.reach_by[(principal, grantee)]
            owner_name = self.role_names.get(owner, str(owner))
            self.findings.append(
                Finding(
                    object_kind="schema",
                    schema_name=schema,
                    object_name=FUTURE_TABLES,
                    future_tables=True,
                    principal=principal,
                    path=AccessPath.DEFAULT_PRIVILEGES,
                    grantee=reached.role,
                    grantor=owner_name,
                    dss=self.classify(schema, FUTURE_TABLES, None) if schema else None,
                    **reached.fields(),
                )
            )


def _shared_sets(by_oid: dict[int, set[int]]) -> dict[int, set[int]]:
    """One set object per distinct set of holders: tens of thousands of tables hold the same few (owner and grantee),
    and a set per table was the largest part of the grant model. Only read once the model is built."""
    distinct: dict[frozenset[int], set[int]] = {}
    return {oid: distinct.setdefault(frozenset(found), found) for oid, found in by_oid.items()}
