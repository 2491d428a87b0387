"""Unity Catalog's read rule over privilege names: SELECT on the table, schema or catalog, with USE SCHEMA and USE
CATALOG, ALL PRIVILEGES implying all three; privileges compared in one spelling (Databricks writes USE_SCHEMA,
OSS Unity Catalog USE SCHEMA). The scan, the plan and the blast radius all decide readability here.
"""

from __future__ import annotations

from sevtool.targets.unity.client import PrivilegeAssignment

SELECT, USE_SCHEMA, USE_CATALOG, ALL = "SELECT", "USE SCHEMA", "USE CATALOG", "ALL PRIVILEGES"


def normalise_privilege(name: str) -> str:
    """Databricks spells privileges USE_SCHEMA, OSS Unity Catalog USE SCHEMA; compare one form."""
    return " ".join(name.replace("_", " ").upper().split())


def privileges_of(assignments: list[PrivilegeAssignment], principal: str) -> list[str]:
    """The raw privilege names a permissions list gives one principal (as spelled by the server)."""
    out: list[str] = []
    for item in assignments:
        if item.get("principal") == principal:
            out.extend(item.get("privileges") or [])
    return out


def holds(privileges: list[str], wanted: str) -> bool:
    names = {normalise_privilege(p) for p in privileges}
    return normalise_privilege(wanted) in names or ALL in names


def select_sources(catalog: list[str], schema: list[str], table: list[str]) -> list[tuple[str, str]]:
    """For one principal's privileges at each level: the levels whose SELECT-like grant makes the table
    readable, as (level, privilege as spelled). Empty when USE CATALOG or USE SCHEMA is missing."""
    if not holds(catalog, USE_CATALOG) or not (holds(catalog, USE_SCHEMA) or holds(schema, USE_SCHEMA)):
        return []
    sources = []
    for level, privs in (("table", table), ("schema", schema), ("catalog", catalog)):
        for p in privs:
            if normalise_privilege(p) in (SELECT, ALL):
                sources.append((level, p))
    return sources
