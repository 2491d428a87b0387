"""Incident status state machine and roles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from sevtool.errors import IllegalTransition, UsageError


class Status(StrEnum):
    DECLARED = "declared"
    CONTAINED = "contained"
    VERIFYING = "verifying"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Forward moves follow the response; backward moves are regressions (the fix did not stick).
TRANSITIONS: dict[Status, set[Status]] = {
    Status.DECLARED: {Status.CONTAINED},
    Status.CONTAINED: {Status.VERIFYING, Status.DECLARED},
    Status.VERIFYING: {Status.RESOLVED, Status.CONTAINED, Status.DECLARED},
    Status.RESOLVED: {Status.CLOSED, Status.CONTAINED, Status.DECLARED},
    Status.CLOSED: set(),
}

# The timestamp a status change stamps the first time it happens.
STATUS_TIMESTAMP = {
    Status.CONTAINED: "contained_at",
    Status.VERIFYING: "verifying_at",
    Status.RESOLVED: "resolved_at",
    Status.CLOSED: "closed_at",
}

ROLES = ("commander", "scribe", "comms")

# Key timestamps a responder can set with --at; the order is the order of a response.
TIMESTAMPS = (
    "exposure_started_at",
    "detected_at",
    "declared_at",
    "contained_at",
    "verified_at",
    "resolved_at",
    "closed_at",
)


def parse_status(value: str) -> Status:
    try:
        return Status(value.strip().lower())
    except ValueError:
        raise UsageError(f"unknown status {value!r}", hint="one of: " + ", ".join(s.value for s in Status)) from None


def check_transition(current: Status, new: Status) -> None:
    if new == current:
        raise IllegalTransition(f"incident is already {current.value}")
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing (closed is final)"
        raise IllegalTransition(
            f"cannot move from {current.value} to {new.value}",
            hint=f"from {current.value} the next status can be: {allowed}",
        )


def is_regression(current: Status, new: Status) -> bool:
    order = list(Status)
    return order.index(new) < order.index(current)


class SevChange(BaseModel):
    from_sev: int | None
    to_sev: int
    reason: str
    at: datetime


class Incident(BaseModel):
    """An incident as the CLI, TUI and postmortem see it (read model, detached from the store)."""

    id: int
    title: str
    sev: int
    status: Status
    commander: str | None = None
    scribe: str | None = None
    comms: str | None = None
    playbook: str | None = None
    exposure_started_at: datetime | None = None
    detected_at: datetime | None = None
    declared_at: datetime | None = None
    contained_at: datetime | None = None
    verifying_at: datetime | None = None
    verified_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    sev_history: list[SevChange] = Field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def first_sev(self) -> int:
        return self.sev_history[0].to_sev if self.sev_history else self.sev

    @property
    def highest_sev(self) -> int:
        return min([c.to_sev for c in self.sev_history] or [self.sev])

    @property
    def roles(self) -> dict[str, str | None]:
        return {role: getattr(self, role) for role in ROLES}
