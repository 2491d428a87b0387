"""Views in a scan: what reading a view needs of its bases, and which bases a readable view exposes.

A plain view reads its bases with its owner's privileges, a security_invoker view with the reader's; a
materialized view holds its own rows. Findings on a view name the grant on the base it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from sevtool.core.exposure import AccessPath
from sevtool.targets.postgres.access import PUBLIC_OID, ViewRule
from sevtool.targets.postgres.catalog import _finding, _Relation

if TYPE_CHECKING:  # the scan imports this module
    from sevtool.targets.postgres.scan import CatalogScan


def view_rules(
    scan: CatalogScan, watched: AbstractSet[int], dependencies: list[tuple[int, int, int]]
) -> dict[int, ViewRule]:
    """The views among (and behind) the watched relations, with what reading each needs of its bases."""
    bases: dict[int, dict[int, set[int]]] = {}
    for view, base, attnum in dependencies:
        if base in scan.relations:
            bases.setdefault(view, {}).setdefault(base, set()).add(attnum)
    bases = {
        view: found for view, found in bases.items() if scan.relations[view].kind == "v"
    }  # matviews hold their rows
    rules: dict[int, ViewRule] = {}
    pending = [oid for oid in watched if oid in bases]
    while pending:
        view = pending.pop()
        if view in rules:
            continue
        rel = scan.relations[view]
        rules[view] = ViewRule(
            owner=rel.owner,
            invoker=rel.security_invoker,
            bases=tuple((base, tuple(sorted(cols - {0}))) for base, cols in bases[view].items()),
        )
        pending += [b for b in bases[view] if b in bases]
    return rules


def read_through_views(
    scan: CatalogScan,
    exposed: AbstractSet[int],
    rules: dict[int, ViewRule],
    table_grants: Iterable[tuple[int, int, int]],
    principals_of: dict[int, list[str]],
) -> None:
    """Views exposed by a grant on what they read: a security_invoker view reads its bases with the reader's own
    SELECT, and a plain view with its owner's, who may be a member reading them through the principal. The base's
    grant is named on the view, and on the base itself where the base is not readable directly (no USAGE)."""
    behind: dict[int, set[int]] = {}
    cut = frozenset(scan.principal_oids - {PUBLIC_OID})
    for view in exposed & rules.keys():
        if not rules[view].invoker and not scan.model.owners_read_through(view, cut):
            continue  # its owners read the bases on their own: a grant on the view is what exposes it
        stack = [view]
        while stack:
            for base, _columns in rules[stack.pop()].bases:
                behind.setdefault(base, set()).add(view)
                if base in rules:
                    stack.append(base)
    if not behind:
        return
    for oid, grantee, grantor in table_grants:
        if oid not in behind:
            continue
        base_rel = scan.relations[oid]
        grantor_name = scan.role_names.get(grantor, str(grantor))
        for principal in principals_of.get(grantee, ()):
            route, holder = scan.reach_fields[(principal, grantee)], scan.reach_by[(principal, grantee)].role
            # The view is what members read; the grant to revoke is on the base.
            for view in sorted(behind[oid], key=lambda v: scan.relations[v].fqn):
                rel = scan.relations[view]
                scan.findings.append(
                    _finding(
                        {
                            "object_kind": rel.kind_label,
                            "schema_name": rel.schema,
                            "object_name": rel.name,
                            "principal": principal,
                            "path": AccessPath.VIEW,
                            "grantee": holder,
                            "grantor": grantor_name,
                            "dss": scan.dss.get(oid),
                            "base_object": base_rel.fqn,
                            **route,
                        }
                    )
                )
            if oid in exposed:
                continue  # the base is read directly too: its own finding closes it
            scan.findings.append(
                _finding(
                    {
                        "object_kind": base_rel.kind_label,
                        "schema_name": base_rel.schema,
                        "object_name": base_rel.name,
                        "principal": principal,
                        "path": AccessPath.VIEW,
                        "grantee": holder,
                        "grantor": grantor_name,
                        "dss": scan.dss.get(oid),
                        "base_object": base_rel.fqn,
                        "views": tuple(sorted(scan.relations[v].fqn for v in behind[oid])),
                        **route,
                    }
                )
            )


def views_over(
    scan: CatalogScan,
    matched: AbstractSet[int],
    relations: dict[int, _Relation],
    dependencies: list[tuple[int, int, int]],
) -> dict[int, list[int]]:
    """View oid -> the in-scope tables it reads, following views of views."""
    reads: dict[int, set[int]] = {}
    for view, base, _attnum in dependencies:
        reads.setdefault(view, set()).add(base)
    resolved: dict[int, set[int]] = {}

    def tables_behind(view: int, seen: frozenset[int]) -> set[int]:
        if view in resolved:
            return resolved[view]
        out: set[int] = set()
        for base in reads.get(view, ()):
            if base in matched:
                out.add(base)
            elif base in reads and base not in seen:
                out |= tables_behind(base, seen | {base})
        resolved[view] = out
        return out

    views: dict[int, list[int]] = {}
    for view in reads:
        rel = relations.get(view)
        if rel is None or view in matched:
            continue
        bases = tables_behind(view, frozenset({view}))
        if bases:
            views[view] = sorted(bases, key=lambda b: (_dss_order(scan.dss[b]), relations[b].fqn))
    return views


def _dss_order(dss: int | None) -> int:
    """Most sensitive first; unrated counts as the most sensitive."""
    return -(dss or 5)
