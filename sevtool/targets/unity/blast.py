"""Unity Catalog blast radius: what a revoke on a catalog or schema takes beyond the incident's scope.

SELECT (or ALL PRIVILEGES) granted on a schema or catalog is inherited by every table below it, so the plan's
revoke there takes the grantee's access to all of them: the in-scope tables (the point) and any table the
scan left out (another schema filter, a table glob, a DSS below the minimum). Those out-of-scope tables are
the action's collateral, cause `container_revoke`, with the grantee as the role that loses them.

The permissions API does not expose group membership, so `login_members` stays 0: unknown, not none.
Readability before and after is decided with the same rule the scan uses (`select_sources`), over the
grantee's own privileges at the three levels, with the action's privileges removed at its level.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sevtool.core.plan import Action, Collateral
from sevtool.targets.unity.privileges import normalise_privilege, privileges_of, select_sources

if TYPE_CHECKING:
    from sevtool.targets.unity.target import UnityCatalogTarget

CAUSE = "container_revoke"


def attach(target: UnityCatalogTarget, actions: list[Action], in_scope: set[str]) -> None:
    """Fill `collateral` (and an `alternative`) of every catalog- or schema-level action in place."""
    containers = [a for a in actions if a.object_kind in ("catalog", "schema")]
    if not containers:
        return
    with ThreadPoolExecutor(target.workers, thread_name_prefix="uc-blast") as pool:
        for action in containers:
            lost = _lost_tables(target, pool, action, in_scope)
            if not lost:
                continue
            action.collateral = [Collateral(role=action.grantee, objects=lost, login_members=0, cause=CAUSE)]
            action.alternative = (
                f"to keep the access of {action.grantee} to the {len(lost)} out-of-scope table(s), grant "
                f"{'/'.join(action.privileges)} on them at table level before this revoke (a table-level "
                f"revoke cannot close a {action.object_kind}-level grant), or move the in-scope tables "
                "to a schema of their own"
            )


def _lost_tables(target: UnityCatalogTarget, pool: ThreadPoolExecutor, action: Action, in_scope: set[str]) -> list[str]:
    grantee = action.grantee
    removed = {normalise_privilege(p) for p in action.privileges}

    def mine(stype: str, name: str) -> list[str]:
        return privileges_of(target.permissions(stype, name), grantee)

    def without(privs: list[str]) -> list[str]:
        return [p for p in privs if normalise_privilege(p) not in removed]

    if action.object_kind == "catalog":
        catalog = action.object_name
        schemas = [
            f"{catalog}.{s['name']}" for s in target.client.pages("/schemas", "schemas", {"catalog_name": catalog})
        ]
    else:
        catalog = action.schema_name
        schemas = [action.object_fqn]
    cat_before = mine("catalog", catalog)
    cat_after = without(cat_before) if action.object_kind == "catalog" else cat_before
    lost: list[str] = []
    for schema in schemas:
        sch_before = mine("schema", schema)
        sch_after = without(sch_before) if action.object_kind == "schema" else sch_before
        _, name = schema.split(".", 1)
        tables = [
            f"{schema}.{t['name']}"
            for t in target.client.pages("/tables", "tables", {"catalog_name": catalog, "schema_name": name})
        ]
        outside = [t for t in tables if t not in in_scope]
        # One permissions read per table outside the scope: side by side, the round trip dominates.
        for table, tbl in zip(outside, pool.map(lambda t: mine("table", t), outside), strict=False):
            if select_sources(cat_before, sch_before, tbl) and not select_sources(cat_after, sch_after, tbl):
                lost.append(table)
    return sorted(lost)
