"""What an exposure is made of: the scope responders name and the findings a target reports.

A finding is one object x one in-scope principal x one access path x one privilege. The same table
reachable by two paths yields two findings: closing one path does not close the table.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass


class AccessPath(StrEnum):
    DIRECT = "direct"  # GRANT ... TO the principal itself
    PUBLIC = "public"  # GRANT ... TO PUBLIC
    ROLE = "role"  # through membership of another role (transitive)
    COLUMN = "column"  # column-level grant
    DEFAULT_PRIVILEGES = "default_privileges"  # ALTER DEFAULT PRIVILEGES: future tables
    VIEW = "view"  # a view / materialized view over a sensitive table
    GRANT_OPTION = "grant_option"  # a grant made by a grant-option holder, not the owner
    PREDEFINED_ROLE = "predefined_role"  # pg_read_all_data and friends
    SUPERUSER = "superuser"  # a superuser role the principal can become: reads everything
    OWNER = "owner"  # owned by a role the principal acts as: owners grant themselves at will
    SERVER_FILES = "server_files"  # pg_read_server_files / pg_execute_server_program: the data files on disk
    CREATEROLE = "createrole"  # before 16, CREATEROLE can grant itself any non-superuser role
    SECURITY_DEFINER = "security_definer"  # a function running as an owner who reads the object
    INHERITS_PARENT = "inherits_parent"  # a legacy INHERITS child's rows, read through its readable parent
    PARTITION = "partition"  # a partition readable while its parent is not
    INHERITED = "inherited"  # REST catalogs: granted on the catalog or schema above


# Paths the server's privilege functions (has_table_privilege) do not show: a possible read, named for a human.
BEYOND_PRIVILEGE_CHECKS = frozenset(
    {AccessPath.SERVER_FILES, AccessPath.CREATEROLE, AccessPath.SECURITY_DEFINER, AccessPath.INHERITS_PARENT}
)

PUBLIC = "PUBLIC"  # the pseudo-role every role belongs to, as grants and scopes name it
FUTURE_TABLES = "(future tables)"  # the object name shown for default privileges; code tests `Finding.future_tables`


@validated_dataclass(frozen=True, slots=True)
class Securable:
    """What a REST catalog's grant is on: `kind` catalog, schema or table, and its full name."""

    kind: str
    name: str


class Scope(BaseModel):
    """Who must lose access, to what. Re-checks re-run the scope, so new tables are seen."""

    model_config = ConfigDict(frozen=True)

    target: str
    principals: list[str] = Field(min_length=1)
    schemas: list[str] = Field(default_factory=list)
    table_glob: str | None = None
    min_dss: int | None = Field(default=None, ge=1, le=4)

    def matches_name(self, schema: str, name: str) -> bool:
        if self.schemas and schema not in self.schemas:
            return False
        return (
            self.table_glob is None
            or fnmatch.fnmatchcase(name, self.table_glob)
            or fnmatch.fnmatchcase(f"{schema}.{name}", self.table_glob)
        )

    def matches_dss(self, dss: int | None) -> bool:
        # Unrated objects are treated as the most sensitive: never filtered out by --min-dss.
        return self.min_dss is None or dss is None or dss >= self.min_dss


def _unset(value: object) -> bool:
    return value is None or value is False or value == ()


def _unless_unset(default: Any) -> Any:
    # Any, as pydantic.Field itself returns: the field's annotation, not this call, says what it holds.
    return Field(default=default, exclude_if=_unset)


# The fields saying how a finding's access happens (set on few findings): the store keeps them together, as JSON.
HOW_FIELDS = (
    "route",
    "set_role",
    "usage_from",
    "granted_on",
    "future_tables",
    "by_holder",
    "row_security",
    "bases",
    "views",
)


@validated_dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """Validated like a model, but slotted: a large scan holds 45,000 of them at once (see `Action`)."""

    object_kind: str  # table, partitioned table, view, materialized view, schema (default privileges), catalog
    schema_name: str
    object_name: str  # for default privileges: FUTURE_TABLES, with `future_tables` set
    principal: str  # the in-scope principal that gains access
    path: AccessPath
    privilege: str = "SELECT"
    grantee: str = ""  # who holds the grant (PUBLIC, analytics_readers, the principal)
    grantor: str = ""
    column: str | None = None
    dss: int | None = None  # 1-4, None = unrated
    base_object: str | None = None  # for views / partitions / INHERITS children: the sensitive object behind it
    # How the access happens, as data: the edges (CLI, TUI, JSON) turn it into words, nothing reads words back.
    # Left out of JSON when unset, so the findings a check stores stay as small as before (see `_unset`).
    route: tuple[str, ...] = _unless_unset(
        ()
    )  # roles walked from the principal to the grantee, ending with it; () when held by the principal or PUBLIC
    set_role: str | None = _unless_unset(None)  # reached only by SET ROLE: the NOINHERIT role or grant in the way
    usage_from: tuple[str, str] | None = _unless_unset(
        None
    )  # (role, example member) giving readers USAGE the principal's side lacks
    granted_on: Securable | None = _unless_unset(None)  # REST catalogs: the catalog, schema or table the grant is on
    future_tables: bool = _unless_unset(
        False
    )  # default privileges: tables created later in schema_name ("" = every schema)
    by_holder: bool = _unless_unset(False)  # granted by `grantor` as a grant-option holder, not by the owner
    row_security: bool = _unless_unset(False)  # row-level security is on: readable, rows filtered by its policies
    bases: tuple[str, ...] = _unless_unset(())  # a granted view: the in-scope objects it reads
    views: tuple[str, ...] = _unless_unset(
        ()
    )  # a base read through these views (its grant is what the views read with)

    @property
    def object_fqn(self) -> str:
        return f"{self.schema_name}.{self.object_name}"

    @property
    def key(self) -> tuple[str, str | None, str, str, str, str, str]:
        return (
            self.object_fqn,
            self.column,
            self.principal,
            self.path.value,
            self.grantee,
            self.grantor,
            self.privilege,
        )

    @property
    def dss_label(self) -> str:
        return f"DSS {self.dss}" if self.dss else "unrated"


def dss_label(dss: int | None) -> str:
    return f"DSS {dss}" if dss else "unrated"


class ExposureSummary(BaseModel):
    findings: int
    objects: int
    by_dss: dict[str, int]
    by_path: dict[str, int]
    by_principal: dict[str, int]
    unrated: int

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> ExposureSummary:
        count = ExposureCount()
        for f in findings:
            count.add(f)
        return count.summary()


class ExposureCount:
    """`ExposureSummary.of` a finding at a time, for a caller already reading each finding once for other work."""

    def __init__(self) -> None:
        self.findings = 0
        self.objects: dict[str, int | None] = {}  # object fqn -> its first finding's DSS
        self._by_path: Counter[str] = Counter()
        self._by_principal: dict[str, set[str]] = {}

    def add(self, f: Finding) -> None:
        fqn = f.object_fqn
        self.findings += 1
        self.objects.setdefault(fqn, f.dss)
        self._by_path[f.path.value] += 1
        self._by_principal.setdefault(f.principal, set()).add(fqn)

    def summary(self) -> ExposureSummary:
        by_dss = Counter(dss_label(d) for d in self.objects.values())
        return ExposureSummary(
            findings=self.findings,
            objects=len(self.objects),
            by_dss=dict(sorted(by_dss.items())),
            by_path=dict(self._by_path.most_common()),
            by_principal={p: len(o) for p, o in sorted(self._by_principal.items())},
            unrated=by_dss.get("unrated", 0),
        )
