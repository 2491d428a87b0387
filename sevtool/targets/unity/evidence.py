"""What `evidence` needs from a Unity Catalog target: which metastore it is, its tables' ids, who is a member.

Membership. The permissions API names principals but never says who is in a group, so the only membership this
target can report is Databricks' built-in `account users` group, which holds every user and service principal
of the account: with it in scope every reader is a member. A reader named as a principal itself (a user granted
directly) is a member of the scope too. For any other group the caller must say membership is unknown.
"""

from __future__ import annotations

from sevtool.errors import TargetRejected
from sevtool.targets.unity.target import UnityCatalogTarget

EVERYONE_GROUPS = ("account users",)


def metastore_id(target: UnityCatalogTarget) -> str | None:
    """The id of the metastore the target serves (GET /metastore_summary), or None if it does not say."""
    try:
        body = target.client.get("/metastore_summary")
    except TargetRejected:
        return None
    value = body.get("metastore_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


def table_ids(target: UnityCatalogTarget, objects: list[str]) -> dict[str, str]:
    """table_id -> full name for the in-scope tables, so a credential request naming only the id is matched."""
    out: dict[str, str] = {}
    for catalog, schema in sorted({(o.split(".")[0], o.split(".")[1]) for o in objects if o.count(".") == 2}):
        for table in target.client.pages("/tables", "tables", {"catalog_name": catalog, "schema_name": schema}):
            if table.get("table_id"):
                out[str(table["table_id"])] = f"{catalog}.{schema}.{table['name']}".lower()
    return out


def principal_members(principals: list[str]) -> tuple[set[str], bool, list[str]]:
    """(known members, whether everyone is one, groups whose membership this target cannot tell)."""
    everyone = any(p.lower() in EVERYONE_GROUPS for p in principals)
    unknown = [] if everyone else [p for p in principals if "@" not in p]
    return {p for p in principals if "@" in p}, everyone, unknown
