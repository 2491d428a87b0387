"""What undo works on: one object (a table with its columns, a role's default privileges, a membership) and every
action on it, whose results are decided together; and each ACL of it to merge (see undo.py)."""

from __future__ import annotations

from sevtool.core.plan import Action
from sevtool.targets.postgres.acl import Acl, Key
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.roles import MembershipRow
from sevtool.targets.postgres.sql import family_of

# Actions whose grantor is the object's owner at plan time (the others are grant-option holders').
OWNER_KINDS = (
    ActionKind.REVOKE_TABLE,
    ActionKind.REVOKE_VIEW,
    ActionKind.REVOKE_COLUMN,
    ActionKind.REVOKE_DEFAULT_PRIVILEGES,
)


class Part:
    """One ACL to merge: a table's, a column's or a role's default privileges."""

    __slots__ = ("actions", "expected", "notes", "now", "now_text", "owner", "prior")

    def __init__(self, prior: str | None):
        self.prior = prior
        self.actions: list[Action] = []
        self.expected: list[tuple[Key, str, bool]] = []  # (item key, privilege, grant option) present again after undo
        self.notes: list[str] = []
        self.now: Acl | None = None  # the ACL read just now; None when the object is gone
        self.now_text: str | None = None
        self.owner = ""


class Unit:
    """One object and every action on it: its results are decided together.

    A plain slotted class: undo builds one per table, tens of thousands per run.
    """

    __slots__ = (
        "actions",
        "columns",
        "error",
        "expected",
        "family",
        "member",
        "name",
        "notes",
        "prior",
        "role",
        "schema",
        "table",
        "warnings",
    )

    def __init__(
        self,
        family: str,
        *,
        schema: str = "",
        name: str = "",
        role: str = "",
        member: str = "",
        prior: str | None = None,
    ):
        self.family, self.schema, self.name = family, schema, name
        self.role, self.member, self.prior = role, member, prior  # role: whose default privileges / the role granted
        self.actions: list[Action] = []
        self.table: Part | None = None
        self.columns: dict[str, Part] = {}
        self.error = ""
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.expected: list[MembershipRow] = []  # memberships: rows present again after undo

    @property
    def label(self) -> str:
        if self.family == "relation":
            return f"{self.schema}.{self.name}"
        if self.family == "default":
            return f"default privileges of {self.role}" + (f" in schema {self.schema}" if self.schema else "")
        return f"membership of {self.member} in {self.role}"

    def parts(self) -> list[tuple[str | None, Part]]:
        """(column, or None for the table itself, and its part): the table's first."""
        table: list[tuple[str | None, Part]] = [(None, self.table)] if self.table else []
        return table + list(self.columns.items())


def units_of(actions: list[Action]) -> list[Unit]:
    units: dict[tuple[str, str, str], Unit] = {}
    for a in sorted(actions, key=lambda a: a.column is not None):  # table actions first: they own the column parts
        family = family_of(a)
        if family in ("relation", "column"):
            key = ("relation", a.schema_name, a.object_name)
            unit = units.get(key) or units.setdefault(key, Unit("relation", schema=a.schema_name, name=a.object_name))
            if a.column is None:
                unit.table = unit.table or Part(a.prior_state)
                unit.table.actions.append(a)
                for col, attacl in a.prior_columns.items():  # a table-level REVOKE took these column grants with it
                    unit.columns.setdefault(col, Part(attacl)).actions.append(a)
            else:
                unit.columns.setdefault(a.column, Part(a.prior_state)).actions.append(a)
        elif family == "default":
            key = ("default", a.grantor, a.schema_name)
            unit = units.get(key) or units.setdefault(key, Unit("default", role=a.grantor, schema=a.schema_name))
            unit.table = unit.table or Part(a.prior_state)
            unit.table.actions.append(a)
        else:
            key = ("membership", a.object_name, a.grantee)
            unit = units.get(key) or units.setdefault(
                key, Unit("membership", role=a.object_name, member=a.grantee, prior=a.prior_state)
            )
        unit.actions.append(a)
    return list(units.values())


def prior_owner(part: Part) -> str:
    """The owner when the plan was made: the grantor of an owner's grant it revoked (else the owner now)."""
    for a in part.actions:
        if a.kind in OWNER_KINDS:
            return a.grantor
    return part.owner
