"""The PostgreSQL plug-in declaration: cheap to import (no psycopg), registered in pyproject.toml.

Also the vocabulary of PostgreSQL's actions: `ActionKind` names every statement shape its plans use.
"""

from __future__ import annotations

from enum import StrEnum
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
    from sevtool.core.table_stats import TableStats
    from sevtool.targets.base import Target
    from sevtool.targets.postgres.target import PostgresTarget

KIND = "postgresql"
_URL_PREFIXES = ("postgresql://", "postgres://")


class ActionKind(StrEnum):
    REVOKE_TABLE = "revoke_table"  # REVOKE priv ON t1, t2, ... FROM grantee
    REVOKE_COLUMN = "revoke_column"  # REVOKE priv (col) ON t FROM grantee
    REVOKE_AS_GRANTOR = "revoke_as_grantor"  # SET ROLE grantor; REVOKE ...: a grant the owner cannot see
    REVOKE_GRANT_OPTION = "revoke_grant_option"  # REVOKE GRANT OPTION FOR ... FROM holder CASCADE
    REVOKE_MEMBERSHIP = "revoke_membership"  # REVOKE role FROM member (review: it may be legitimate)
    REVOKE_DEFAULT_PRIVILEGES = "revoke_default_privileges"  # ALTER DEFAULT PRIVILEGES ... REVOKE
    REVOKE_VIEW = "revoke_view"  # REVOKE on a view over a sensitive table
    MANUAL = "manual"  # a path sevtool cannot close itself: the step a human must take


class PostgresConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn: str = Field(min_length=1)  # libpq DSN or URL; keep passwords in PGPASSWORD/.pgpass
    connect_timeout: int = Field(default=5, ge=1, le=120)


def recognises(spec: str) -> bool:
    """A postgresql:// URL, or a key=value DSN (which names no other scheme)."""
    return spec.startswith(_URL_PREFIXES) or ("=" in spec and "://" not in spec)


def from_config(name: str, config: PostgresConfig) -> PostgresTarget:
    from sevtool.targets.postgres.target import PostgresTarget

    return PostgresTarget(config.dsn, name=name, connect_timeout=config.connect_timeout)


def from_spec(spec: str) -> PostgresTarget:
    from sevtool.targets.postgres.target import PostgresTarget

    return PostgresTarget(spec)


def audit_facts(target: Target, principals: list[str], objects: list[str]) -> AuditFacts:
    """pgaudit lines of other databases are not evidence for this one; members at any depth, now."""
    from sevtool.targets.postgres.members import database_name, principal_members
    from sevtool.targets.postgres.target import PostgresTarget

    assert isinstance(target, PostgresTarget)
    return AuditFacts(database_name(target), principal_members(target, principals), False, [], "pgaudit", {})


def table_stats(target: Target, objects: list[str]) -> TableStats:
    """pg_stat_user_tables' scan counters of the objects, and when the database's statistics were reset."""
    from sevtool.targets.postgres.stats import table_stats as read_stats
    from sevtool.targets.postgres.target import PostgresTarget

    assert isinstance(target, PostgresTarget)
    return read_stats(target, objects)


_OBJECT_KINDS = (
    ActionKind.REVOKE_TABLE,
    ActionKind.REVOKE_COLUMN,
    ActionKind.REVOKE_AS_GRANTOR,
    ActionKind.REVOKE_GRANT_OPTION,
    ActionKind.REVOKE_VIEW,
    ActionKind.REVOKE_DEFAULT_PRIVILEGES,
)  # default privileges: "schema.(future tables)"

PLUGIN = TargetPlugin(
    kind=KIND,
    title="PostgreSQL",
    config=PostgresConfig,
    from_config=from_config,
    capabilities=Capabilities(live_probe=True),
    action_kinds=(
        *(ActionKindSpec(k.value, Closes.OBJECT) for k in _OBJECT_KINDS),
        ActionKindSpec(ActionKind.REVOKE_MEMBERSHIP.value, Closes.ROLE),
        ActionKindSpec(ActionKind.MANUAL.value, Closes.NOTHING),
    ),
    config_example='kind = "postgresql"\ndsn = "host=db1 dbname=warehouse user=sevtool"   # the password in ~/.pgpass',
    spec=SpecSyntax(recognises, from_spec, "'host=db1 dbname=warehouse' or postgresql://db1/warehouse"),
    audit=AuditTrail("pgaudit-log", "--log", "pgaudit server logs", audit_facts),
    table_stats=table_stats,
)
