"""Unity Catalog scan: walk catalogs, schemas and tables in scope and report every table a scope principal can read,
with the securable (table, schema or catalog) whose grant makes it readable.

Tables are read only where a principal holds USE CATALOG and USE SCHEMA; their permission reads run side by side.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from sevtool.core.exposure import AccessPath, Finding, Scope, Securable
from sevtool.targets.base import Classifier, ScanResult
from sevtool.targets.unity.client import JSON
from sevtool.targets.unity.privileges import (
    USE_CATALOG,
    USE_SCHEMA,
    holds,
    normalise_privilege,
    privileges_of,
    select_sources,
)

if TYPE_CHECKING:
    from sevtool.targets.unity.target import UnityCatalogTarget


def _in_scope_privileges(
    target: UnityCatalogTarget, securable_type: str, full_name: str, principals: list[str]
) -> dict[str, list[str]]:
    assignments = target.permissions(securable_type, full_name)
    return {p: privileges_of(assignments, p) for p in principals}


def scan(target: UnityCatalogTarget, scope: Scope, classify: Classifier) -> ScanResult:
    started = time.monotonic()
    findings: list[Finding] = []
    objects: dict[str, int | None] = {}
    notices: list[str] = []
    principals = list(scope.principals)
    with ThreadPoolExecutor(target.workers, thread_name_prefix="uc-scan") as pool:
        _scan_catalogs(target, scope, classify, principals, pool, findings, objects, notices)
    return ScanResult(
        findings=findings,
        objects_in_scope=len(objects),
        objects=objects,
        notices=notices,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _scan_catalogs(
    target: UnityCatalogTarget,
    scope: Scope,
    classify: Classifier,
    principals: list[str],
    pool: ThreadPoolExecutor,
    findings: list[Finding],
    objects: dict[str, int | None],
    notices: list[str],
) -> None:
    for catalog in target.client.pages("/catalogs", "catalogs", {}):
        cat = catalog["name"]
        if scope.schemas and not any(s == cat or s.startswith(f"{cat}.") for s in scope.schemas):
            continue
        cat_privs = _in_scope_privileges(target, "catalog", cat, principals)
        for schema in target.client.pages("/schemas", "schemas", {"catalog_name": cat}):
            schema_fqn = f"{cat}.{schema['name']}"
            if scope.schemas and cat not in scope.schemas and schema_fqn not in scope.schemas:
                continue
            sch_privs = _in_scope_privileges(target, "schema", schema_fqn, principals)
            # Without USE CATALOG and USE SCHEMA nobody in scope can read any table here: skip the per-table reads.
            reachable = [
                p
                for p in principals
                if holds(cat_privs[p], USE_CATALOG)
                and (holds(cat_privs[p], USE_SCHEMA) or holds(sch_privs[p], USE_SCHEMA))
            ]
            in_scope: list[tuple[JSON, str, int | None]] = []
            for table in target.client.pages("/tables", "tables", {"catalog_name": cat, "schema_name": schema["name"]}):
                name = table["name"]
                if scope.table_glob and not any(
                    fnmatchcase(n, scope.table_glob) for n in (name, f"{schema['name']}.{name}", f"{schema_fqn}.{name}")
                ):
                    continue
                dss = classify(schema_fqn, name, table.get("comment"))
                if scope.matches_dss(dss):
                    objects[f"{schema_fqn}.{name}"] = dss
                    in_scope.append((table, name, dss))
            if not reachable:
                continue
            # One permissions read per table: run them side by side, the round trip dominates.
            table_privs = pool.map(
                lambda item, schema=schema_fqn, holders=reachable: _in_scope_privileges(
                    target, "table", f"{schema}.{item[1]}", holders
                ),
                in_scope,
            )
            inherited_here = 0
            for (table, name, dss), tbl_privs in zip(in_scope, table_privs, strict=False):
                fqn = f"{schema_fqn}.{name}"
                kind = "view" if "VIEW" in (table.get("table_type") or "") else "table"
                for principal in reachable:
                    for level, privilege in select_sources(
                        cat_privs[principal], sch_privs[principal], tbl_privs[principal]
                    ):
                        holder = {"table": fqn, "schema": schema_fqn, "catalog": cat}[level]
                        inherited_here += level != "table"
                        findings.append(
                            Finding(
                                object_kind=kind,
                                schema_name=schema_fqn,
                                object_name=name,
                                principal=principal,
                                path=AccessPath.DIRECT if level == "table" else AccessPath.INHERITED,
                                granted_on=Securable(level, holder),
                                privilege=normalise_privilege(privilege),
                                grantee=principal,
                                dss=dss,
                            )
                        )
            if inherited_here:
                notices.append(
                    f"{schema_fqn}: {inherited_here} finding(s) come from grants on the schema or catalog; "
                    "revoking on the tables would not close them"
                )
