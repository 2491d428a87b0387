"""The target interface: what a data platform must offer for sevtool to scope, revoke and verify.

Each kind is a plug-in (plugin.py: declared through the `sevtool.targets` entry-point group); one contract
test suite runs against every registered kind. Targets never see the store: services pass results to the
ledger through callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Protocol, runtime_checkable

from pydantic import BaseModel, Field, SkipValidation

from sevtool.core.access_exceptions import ExceptionGrant, GrantPlan, RoleAccess
from sevtool.core.exposure import Finding, Scope
from sevtool.core.plan import Action, ActionChunks, ActionResult

# Called with the results of each batch after it was read back, so the ledger is updated batch by batch.
BatchCallback = Callable[[list[ActionResult]], None]

# Decides an object's DSS rating from its name and comment; None means unrated.
Classifier = Callable[[str, str, str | None], int | None]


class ScanResult(BaseModel):
    # A list, or a `FindingSpool` (a large scan's findings, never all alive as objects): read them by iterating and
    # len(). Not validated: each finding was when it was made, and validating would copy 200,000 of them.
    findings: Annotated[Sequence[Finding], SkipValidation]
    objects_in_scope: int = 0  # objects the scope matched, exposed or not
    principal_members: dict[str, int] = Field(default_factory=dict)  # principal -> member count
    # Every matched object fqn -> DSS (lets checks see new tables); not validated, for the same reason.
    objects: Annotated[dict[str, int | None], SkipValidation] = Field(default_factory=dict)
    notices: list[str] = Field(default_factory=list)
    duration_ms: int = 0


class ProbeResult(BaseModel):
    object_fqn: str
    readable: bool
    # The target could not tell (a lock, the object gone): neither proof of access nor of its absence, so a check
    # that met one is not clean.
    inconclusive: bool = False
    message: str = ""


@runtime_checkable
class Target(Protocol):
    kind: str  # the kind its plug-in declares
    display: str  # how the store and the timeline name it: never contains a secret

    def scan(self, scope: Scope, classify: Classifier) -> ScanResult:
        """Every in-scope object a member of the scope's principals can read, with the access path."""

    def plan(self, findings: Iterable[Finding], scope: Scope) -> list[Action]:
        """Ordered actions that close every finding, each with its prior state captured."""

    def apply(self, actions: list[Action], on_batch: BatchCallback, *, batch_size: int | None = None) -> None:
        """Run actions in bounded batches; report each batch after reading the result back."""

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        """Restore each applied action's recorded prior state exactly."""

    def probe(self, role: str, objects: list[str]) -> list[ProbeResult]:
        """Live check as a canary member: zero-row reads; permission denied is the expected answer."""

    def close(self) -> None: ...


@runtime_checkable
class PlansInChunks(Protocol):
    """A target that makes a large plan a chunk at a time (preferred to `Target.plan` when offered)."""

    def plan_in_chunks(self, findings: Iterable[Finding], scope: Scope) -> ActionChunks:
        """What `Target.plan` returns, counted first and then made a chunk at a time."""


@runtime_checkable
class GrantsExceptions(Protocol):
    """A target that can grant just-in-time read access (`sevtool access`) and take exactly that back."""

    def role_access(self, role: str, objects: list[str]) -> list[RoleAccess]:
        """What the role holds on each object now, by the target's own privilege checks (not the scan's model)."""

    def plan_exception(self, role: str, objects: list[str]) -> GrantPlan:
        """What letting the role read these objects takes; changes nothing."""

    def grant_exception(self, role: str, grants: list[ExceptionGrant]) -> None:
        """Make the grants in one transaction (or all-or-nothing as the target allows)."""

    def revoke_exception(self, role: str, grants: list[ExceptionGrant]) -> list[ExceptionGrant]:
        """Take the grants back and read them back: the ones still in place (none, when it worked)."""
