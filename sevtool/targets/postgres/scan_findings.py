"""A scan's catalog rows made into findings: a grant on an exposed relation (by its path: plain, through roles, PUBLIC,
column, view, partition, owner, grant-option holder), a role that reads everything, and default privileges.

Each function appends to `scan.findings`, with the grantor exactly as the ACL records it (a grant-option holder's
grant must be revoked as that holder).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from sevtool.core.exposure import FUTURE_TABLES, AccessPath, Finding
from sevtool.targets.postgres.catalog import _DEFAULT_GRANTS_SQL, _KINDS, _finding, _Reach, _Relation

if TYPE_CHECKING:
    from sevtool.targets.postgres.scan import CatalogScan


def add_grant(
    scan: CatalogScan,
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
    reached = scan.reach_by[key]
    grantor_name = scan.role_names.get(grantor, str(grantor))
    by_holder = grantor != owner
    how = {**scan.reach_fields[key], "usage_from": scan.usage_elsewhere(principal, rel.namespace)}
    if (
        not by_holder
        and column is None
        and rel.parent is None
        and rel.oid not in views
        and grantee != owner
        and not rel.row_security
    ):
        # The bulk of a large exposure: a plain table granted by its owner.
        scan.findings.append(
            _finding(
                {
                    "object_kind": _KINDS[rel.kind],
                    "schema_name": rel.schema,
                    "object_name": rel.name,
                    "principal": principal,
                    "path": scan.plain_path[key],
                    "grantee": reached.role,
                    "grantor": grantor_name,
                    "dss": scan.dss[rel.oid],
                    **how,
                }
            )
        )
        return
    base_object = None
    bases: tuple[str, ...] = ()
    dss = scan.dss.get(rel.oid)
    if rel.oid in views:
        bases = tuple(scan.relations[b].fqn for b in views[rel.oid])
        base_object = bases[0]
        dss = scan.dss[views[rel.oid][0]]
        path = AccessPath.VIEW
    elif rel.parent is not None:
        base_object = parent_fqn(scan, rel)
        path = AccessPath.PARTITION
    elif column is not None:
        path = AccessPath.COLUMN
    elif grantee == owner:
        path = AccessPath.OWNER
    elif by_holder:
        path = AccessPath.GRANT_OPTION
    else:
        path = scan.plain_path[key]
    scan.findings.append(
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


def add_everything(scan: CatalogScan, reached: _Reach, path: AccessPath, exposed: AbstractSet[int]) -> None:
    """Findings for a role that reads every relation (a superuser, pg_read_all_data): views included."""
    for oid in sorted(exposed, key=lambda o: scan.relations[o].fqn):
        rel = scan.relations[oid]
        scan.findings.append(
            _finding(
                {
                    "object_kind": rel.kind_label,
                    "schema_name": rel.schema,
                    "object_name": rel.name,
                    "principal": reached.principal,
                    "path": path,
                    "grantee": reached.role,
                    "dss": scan.dss.get(oid),
                    "base_object": parent_fqn(scan, rel),
                    **reached.fields(),
                }
            )
        )


def parent_fqn(scan: CatalogScan, rel: _Relation) -> str | None:
    parent = scan.relations.get(rel.parent) if rel.parent is not None else None
    return parent.fqn if parent else None


def add_default_privileges(scan: CatalogScan, params: Mapping[str, object]) -> None:
    """Future tables: granted in a schema some member of the principal can use (or database-wide)."""
    for owner, namespace, schema, principal, grantee, _grantor in scan.cur.execute(_DEFAULT_GRANTS_SQL, params):
        if namespace and not scan.some_member_uses(namespace):
            continue
        schema = schema or ""
        if schema and scan.scope.schemas and schema not in scan.scope.schemas:
            continue
        reached = scan.reach_by[(principal, grantee)]
        owner_name = scan.role_names.get(owner, str(owner))
        scan.findings.append(
            Finding(
                object_kind="schema",
                schema_name=schema,
                object_name=FUTURE_TABLES,
                future_tables=True,
                principal=principal,
                path=AccessPath.DEFAULT_PRIVILEGES,
                grantee=reached.role,
                grantor=owner_name,
                dss=scan.classify(schema, FUTURE_TABLES, None) if schema else None,
                **reached.fields(),
            )
        )
