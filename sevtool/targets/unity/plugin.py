"""The Unity Catalog plug-in declaration: cheap to import (no httpx), registered in pyproject.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from sevtool.core.plan import Closes
from sevtool.targets.plugin import (
    ActionKindSpec,
    Capabilities,
    SpecSyntax,
    TargetPlugin,
)

if TYPE_CHECKING:   # the factories import the target when one is opened
    from sevtool.targets.unity.target import UnityCatalogTarget

KIND = "unity-catalog"
SPEC_PREFIXES = ("uc+http://", "uc+https://")
REVOKE_SECURABLE = "revoke_securable"   # PATCH permissions on a securable (a catalog, schema or table)


class UnityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)        # https://HOST/api/2.1/unity-catalog
    token_env: str | None = None          # the environment variable holding the bearer token
    timeout: float = Field(default=10.0, ge=1, le=300)   # seconds per HTTP request


def recognises(spec: str) -> bool:
    return spec.startswith(SPEC_PREFIXES)


def from_config(name: str, config: UnityConfig) -> UnityCatalogTarget:
    from sevtool.targets.unity.target import UnityCatalogTarget

    return UnityCatalogTarget(config.url, token_env=config.token_env, name=name, timeout=config.timeout)


def from_spec(spec: str) -> UnityCatalogTarget:
    from sevtool.targets.unity.target import UnityCatalogTarget

    return UnityCatalogTarget.from_spec(spec)


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
)
