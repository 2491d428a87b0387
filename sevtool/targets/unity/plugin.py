"""The Unity Catalog plug-in declaration: cheap to import (no httpx), registered in pyproject.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from sevtool.core.plan import Closes
from sevtool.targets.plugin import (
    ActionKindSpec,
    AuditFacts,
    AuditTrail,
    Capabilities,
    SpecSyntax,
    TargetPlugin,
)

if TYPE_CHECKING:  # the factories import the target when one is opened
    from sevtool.targets.base import Target
    from sevtool.targets.unity.target import UnityCatalogTarget

KIND = "unity-catalog"
SPEC_PREFIXES = ("uc+http://", "uc+https://")
REVOKE_SECURABLE = "revoke_securable"  # PATCH permissions on a securable (a catalog, schema or table)


class UnityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)  # https://HOST/api/2.1/unity-catalog
    token_env: str | None = None  # the environment variable holding the bearer token
    timeout: float = Field(default=10.0, ge=1, le=300)  # seconds per HTTP request


def recognises(spec: str) -> bool:
    return spec.startswith(SPEC_PREFIXES)


def from_config(name: str, config: UnityConfig) -> UnityCatalogTarget:
    from sevtool.targets.unity.target import UnityCatalogTarget

    return UnityCatalogTarget(config.url, token_env=config.token_env, name=name, timeout=config.timeout)


def from_spec(spec: str) -> UnityCatalogTarget:
    from sevtool.targets.unity.target import UnityCatalogTarget

    return UnityCatalogTarget.from_spec(spec)


def audit_facts(target: Target, principals: list[str], objects: list[str]) -> AuditFacts:
    """The metastore whose rows count, the in-scope tables' ids, and the membership this API can tell."""
    from sevtool.targets.unity import evidence as uc
    from sevtool.targets.unity.target import UnityCatalogTarget

    assert isinstance(target, UnityCatalogTarget)
    metastore, ids = uc.metastore_id(target), uc.table_ids(target, objects)
    members, everyone, unknown = uc.principal_members(principals)
    notes = []
    if everyone:
        notes.append("the principal is Databricks' `account users` group: every reader is a member")
    if unknown:
        notes.append(
            f"the Unity Catalog API does not say who is in {', '.join(unknown)}: readers are listed as not "
            "members unless named in the scope; check them against the group in the account console"
        )
    if metastore is None:
        notes.append("the catalog does not report its metastore id: rows of every metastore in the export are read")
    return AuditFacts(metastore or "", members, everyone, notes, "the audit system table", ids)


PLUGIN = TargetPlugin(
    kind=KIND,
    title="Unity Catalog",
    config=UnityConfig,
    from_config=from_config,
    # The REST API cannot act as a member of a group, so there is no canary to probe as.
    capabilities=Capabilities(live_probe=False),
    # A grant on a catalog or schema is inherited by every table under it: revoking it there closes them all.
    action_kinds=(ActionKindSpec(REVOKE_SECURABLE, Closes.OBJECT, containers=frozenset({"catalog", "schema"})),),
    config_example='kind = "unity-catalog"\nurl = "https://HOST/api/2.1/unity-catalog"\ntoken_env = "DATABRICKS_TOKEN"',
    spec=SpecSyntax(recognises, from_spec, "uc+https://HOST/api/2.1/unity-catalog?token_env=DATABRICKS_TOKEN"),
    audit=AuditTrail("databricks-audit-table", "--uc-audit", "a system.access.audit export (JSON Lines)", audit_facts),
)
