"""Revocation plans and the ledger's vocabulary.

An action closes one grant on one object; it keeps the exact prior state so undo can restore it.
Actions of the same kind, grantee and grantor are executed together in bounded batches: `sql` shows the
statement for this one object, and a batch runs the same statement naming several objects at once.

Ledger life of an action: planned -> applying (sent to the target, not yet read back) -> applied |
skipped (already absent) | failed; applied -> undone. `applying` is what survives a kill -9 mid-batch:
a resumed run reads those grants back and records the ones that are gone as applied, not skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field
from pydantic.dataclasses import dataclass as validated_dataclass


class Closes(StrEnum):
    """What an applied action closes, in terms the ledger can compare with findings."""

    OBJECT = "object"  # the one object it names (schema_name.object_name)
    ROLE = "role"  # every object reached through the role it names (object_name): a membership removed
    CONTAINER = "container"  # every object under the container it names (a catalog, a schema)
    NOTHING = "nothing"  # a step a human must take: sevtool never applies it


class ActionStatus(StrEnum):
    PLANNED = "planned"
    APPLYING = "applying"  # in flight: the outcome is read back from the target on resume
    APPLIED = "applied"
    SKIPPED = "skipped"  # already absent when we got there
    FAILED = "failed"
    UNDONE = "undone"
    MANUAL = "manual"  # left for a human: the action says what to do; a check stays unclean until it is done


@validated_dataclass(frozen=True, slots=True, kw_only=True)
class Collateral:
    """A role outside the principal that an action takes read access from (its blast radius)."""

    role: str  # who loses access (PUBLIC for everyone who read through PUBLIC)
    objects: list[str]  # schema.table fqns it can no longer read after the action
    login_members: int = 0  # login roles among the role and its members who lose that access
    cause: str = ""  # grant_option_cascade | public_revoke | membership | container_revoke


@validated_dataclass(slots=True, kw_only=True)
class Action:
    """Validated like a model, but slotted: a plan holds one per table, and a BaseModel's `__dict__` and
    fields-set would multiply a large plan's memory."""

    seq: int = 0
    kind: str  # one of the action kinds its target's plug-in declares (targets.plugin)
    object_kind: str = "table"
    schema_name: str = ""
    object_name: str = ""
    column: str | None = None
    grantee: str
    grantor: str = ""
    privileges: list[str] = Field(default_factory=lambda: ["SELECT"])
    sql: str  # exactly what will run (or the HTTP request, for REST targets)
    prior_state: str | None = None  # relacl / attacl / membership / default ACL / permissions JSON
    # A table-level REVOKE also revokes that privilege on every column, so undo must restore these too.
    prior_columns: dict[str, str] = Field(default_factory=dict)  # column -> attacl text
    review: bool = False  # needs a human's eyes (e.g. removing a role membership)
    # Roles outside the principal that would lose access: such an action is held back from `--apply --yes`
    # unless the responder accepts the collateral.
    collateral: list[Collateral] = Field(default_factory=list)
    alternative: str = ""  # the access-preserving alternative the plan chose or offers, in words
    reason: str = ""
    status: ActionStatus = ActionStatus.PLANNED
    message: str = ""

    @property
    def object_fqn(self) -> str:
        return f"{self.schema_name}.{self.object_name}" if self.schema_name else self.object_name

    @property
    def batch_key(self) -> BatchKey:
        return batch_key(self.kind, self.grantee, self.grantor, self.privileges, self.column)


# (kind, grantee, grantor, privileges, column-level?)
BatchKey = tuple[str, str, str, tuple[str, ...], bool]


def batch_key(kind: str, grantee: str, grantor: str, privileges: list[str], column: str | None) -> BatchKey:
    """Actions that can share one statement (also of actions still being drafted, before they are Actions)."""
    # The member itself, not `.value`: a StrEnum member hashes and compares as its value, and enum's `.value`
    # is a descriptor call per action.
    return kind, grantee, grantor, tuple(privileges), column is not None


PENDING = (ActionStatus.PLANNED, ActionStatus.APPLYING, ActionStatus.FAILED)  # what a (re-)apply still has to do


def count_by_status(statuses: Iterable[str]) -> dict[str, int]:
    counts = {s.value: 0 for s in ActionStatus}
    for status, n in Counter(statuses).items():  # converted per distinct status, not per action (45,000)
        counts[ActionStatus(status).value] += n
    return counts


@dataclass(frozen=True, slots=True)
class ActionResult:
    """One action's outcome, read back from the target. A plain dataclass: a 45,000-table run makes 90,000."""

    seq: int
    status: ActionStatus
    message: str = ""


@dataclass(frozen=True, slots=True)
class ActionChunks:
    """A plan made a chunk at a time: how many actions it has, then its actions in plan order, numbered, a list
    at a time (iterated once). A 200,000-action plan is journaled as it is made, never held whole."""

    count: int
    chunks: Iterator[list[Action]]

    @classmethod
    def of(cls, actions: list[Action], size: int = 10_000) -> ActionChunks:
        """A plan a target made whole, handed on in chunks like any other."""
        return cls(len(actions), (actions[i : i + size] for i in range(0, len(actions), size)))
