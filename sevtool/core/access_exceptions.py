"""Just-in-time access after lock-down: time-boxed, justified exceptions that verification understands.

An exception lets one role read named objects (SELECT, nothing broader) from `granted_at` until `until`, on
someone's word (`why`, and an `approver` where the SEV requires one). While it is active, a finding it explains
is authorized, not exposure. Once it has ended (expired, ended early, or ended by an undo) what it granted must
be gone: the same role still reading one of its objects is a lapsed exception, reported as such.

The SEV level sets how long an exception may last and whether it needs an approver (`SevLevel.access_max`,
`access_approver`). Time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sevtool.core.causes import Cause
from sevtool.core.checks import CheckOutcome, Findings, Regression
from sevtool.core.exposure import PUBLIC, AccessPath, Finding, Securable
from sevtool.core.severity import SevLevel
from sevtool.core.timeparse import format_duration, format_utc
from sevtool.errors import UsageError

READ = "SELECT"  # the one privilege an exception grants


class Ending(StrEnum):
    """How an exception ended."""

    EXPIRED = "expired"
    ENDED_EARLY = "ended early"
    UNDO = "ended by undo"
    NOT_GRANTED = "not granted"  # the target refused, or the grant did not read back: nothing was left in place


@dataclass(frozen=True)
class ExceptionGrant:
    """One grant the target made for an exception, so that exactly it is taken back: SELECT on a table, or the
    schema or catalog usage the role needed to reach it."""

    securable: Securable
    privilege: str


@dataclass(frozen=True)
class RoleAccess:
    """What a role holds on one object now, as the target's own privilege checks answer."""

    object_fqn: str
    readable: bool  # SELECT (on the object or any column) and the usage needed to reach it
    privileges: tuple[str, ...] = ()  # every privilege held on the object, e.g. ("SELECT", "UPDATE")
    grant_option: bool = False  # may pass SELECT on


@dataclass(frozen=True)
class GrantPlan:
    """What granting an exception takes on a target, worked out before anything changes.

    `grants`: SELECT on each object, and the usage of containers the role lacks. `already`: objects the role reads
    now (no exception needed). `missing`: objects that do not exist. `collateral`: objects the role would read too
    once it can use a container (grants to it, or to PUBLIC, that the container's usage kept closed)."""

    grants: tuple[ExceptionGrant, ...]
    held_before: dict[str, tuple[str, ...]]
    already: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    collateral: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessException:
    """One exception as the store keeps it. `number` counts per incident, from 1."""

    incident_id: int
    number: int
    target: str
    role: str
    objects: tuple[str, ...]
    why: str
    requested_by: str
    granted_at: datetime
    until: datetime
    approver: str | None = None
    grants: tuple[ExceptionGrant, ...] = ()
    held_before: dict[str, tuple[str, ...]] = field(default_factory=dict)  # object -> privileges held before the grant
    ended_at: datetime | None = None
    ending: Ending | None = None
    ended_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.until

    def due(self, now: datetime) -> bool:
        """Past its end and not yet revoked: `access expire` (or watch, or guard) must take it back."""
        return self.ended_at is None and now >= self.until

    def state(self, now: datetime) -> str:
        if self.ending is not None:
            return self.ending.value
        return "active" if now < self.until else "expired, not yet revoked"

    def remaining(self, now: datetime) -> timedelta:
        return max(self.until - now, timedelta(0)) if self.ended_at is None else timedelta(0)

    def label(self) -> str:
        return f"exception {self.number}"

    def explains(self, finding: Finding) -> bool:
        """The finding is this exception's own grant: its role reading one of its objects with SELECT, held by the
        role itself. The role's members read it too; an in-scope principal reaching the role is a different role."""
        return (
            finding.principal == self.role
            and finding.grantee == self.role
            and finding.path == AccessPath.DIRECT
            and finding.privilege == READ
            and finding.column is None
            and not finding.future_tables
            and finding.object_fqn in self.objects
        )


def check_request(
    level: SevLevel, *, role: str, objects: list[str], duration: timedelta, why: str, approver: str | None
) -> None:
    """Refuse (UsageError, exit 2) a request the SEV's limits or common sense forbid, saying the limit."""
    if role.strip().upper() == PUBLIC:
        raise UsageError(
            "an exception cannot be granted to PUBLIC: that is the exposure itself",
            hint="name the role of the person or team that needs the data",
        )
    if not objects:
        raise UsageError("name at least one object with --object NAME, as `scan` lists it")
    if not why.strip():
        raise UsageError("say why with --why: the reason is part of the record")
    if duration <= timedelta(0):
        raise UsageError(f"--for must be longer than zero (got {format_duration(duration)})")
    limit = level.access_max_duration
    if duration > limit:
        raise UsageError(
            f"SEV {level.level} allows exceptions of at most {format_duration(limit)}; "
            f"{format_duration(duration)} was asked",
            hint=f"ask for --for {level.access_max} or less, and grant again when it ends if still needed",
        )
    if level.access_approver and not (approver or "").strip():
        raise UsageError(
            f"SEV {level.level} requires an approver for an exception",
            hint="name who approved it with --approver WHO (the incident commander or the data owner)",
        )


@dataclass(frozen=True)
class Authorized:
    """A read an active exception explains."""

    exception: AccessException
    object_fqn: str


@dataclass
class ExceptionReview:
    """What verification makes of the exceptions: the findings they explain are set apart, and what they do not
    explain (a lapsed exception still readable, a privilege broader than SELECT) becomes regressions."""

    findings: Findings  # the scan's findings no active exception explains
    exceptions: list[AccessException] = field(default_factory=list)  # every exception of the incident on the target
    authorized: list[Authorized] = field(default_factory=list)
    breaches: list[Regression] = field(default_factory=list)


class Unexplained:
    """The findings no active exception explains, filtered again at each pass: a check over 200,000 findings never
    holds a copy of them."""

    def __init__(self, findings: Findings, active: list[AccessException], explained: int):
        self._findings = findings
        self._active = active
        self._count = len(findings) - explained

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Finding]:
        active = self._active
        return (f for f in self._findings if not any(e.explains(f) for e in active))


def review(
    exceptions: list[AccessException],
    findings: Findings,
    access: dict[int, list[RoleAccess]],
    now: datetime,
) -> ExceptionReview:
    """Set apart the findings active exceptions explain; `access` (exception number -> its role's access to its
    objects now) shows reads the scan does not see, since an exception's role is rarely an in-scope principal."""
    active = [e for e in exceptions if e.active(now)]
    authorized: list[Authorized] = []
    explained: set[tuple[str, str]] = set()
    for finding in findings:
        by = next((e for e in active if e.explains(finding)), None)
        if by is not None:
            authorized.append(Authorized(by, finding.object_fqn))
            explained.add((finding.object_fqn, by.role))
    kept = Unexplained(findings, active, len(authorized)) if authorized else findings
    breaches: list[Regression] = []
    for exc in exceptions:
        for seen in access.get(exc.number, []):
            pair = (seen.object_fqn, exc.role)
            if exc.active(now):
                broader = broader_than_read(exc, seen)
                if broader:
                    cause = f"{exc.label()} grants SELECT only, but {exc.role} also holds {', '.join(broader)}"
                    breaches.append(_breach(exc, seen.object_fqn, Cause.BEYOND_EXCEPTION, cause))
                elif seen.readable and pair not in explained:
                    authorized.append(Authorized(exc, seen.object_fqn))
                    explained.add(pair)
            elif seen.readable:
                breaches.append(_breach(exc, seen.object_fqn, Cause.EXCEPTION_LAPSED, lapsed_cause(exc, now)))
    return ExceptionReview(kept, exceptions, authorized, breaches)


def broader_than_read(exc: AccessException, seen: RoleAccess) -> list[str]:
    """Privileges the role holds on the object beyond SELECT that it did not hold before the exception."""
    before = set(exc.held_before.get(seen.object_fqn, ()))
    extra = [p for p in seen.privileges if p != READ and p not in before]
    if seen.grant_option and "SELECT WITH GRANT OPTION" not in before:
        extra.append("SELECT WITH GRANT OPTION")
    return extra


def lapsed_cause(exc: AccessException, now: datetime) -> str:
    if exc.ended_at is None:
        return (
            f"{exc.label()} expired at {format_utc(exc.until)} and was not revoked yet "
            f"(run `sevtool access expire`): {exc.role} still reads it"
        )
    return f"{exc.label()} ended at {format_utc(exc.ended_at)} ({exc.ending}), but {exc.role} reads it again"


def rename_lapsed(regressions: list[Regression], exceptions: list[AccessException], now: datetime) -> list[Regression]:
    """A regression on an object an ended exception covered, for its role, is that exception lapsing: say so."""
    ended = [e for e in exceptions if not e.active(now)]
    if not ended:
        return regressions
    renamed = []
    for r in regressions:
        by = next((e for e in ended if e.role == r.principal and r.object_fqn in e.objects), None)
        renamed.append(
            r
            if by is None
            else r._replace(cause_kind=Cause.EXCEPTION_LAPSED, cause=f"{lapsed_cause(by, now)}: {r.cause}")
        )
    return renamed


def _breach(exc: AccessException, object_fqn: str, kind: Cause, cause: str) -> Regression:
    return Regression(
        object_fqn, exc.role, AccessPath.DIRECT, kind, cause, exc.role, "", None, (AccessPath.DIRECT.value,)
    )


def with_exceptions(
    outcome: CheckOutcome, review: ExceptionReview, open_pairs: set[tuple[str, str]], now: datetime
) -> CheckOutcome:
    """The check's outcome with what the exceptions say: a regression on a lapsed exception's object is named as
    such; a breach is a regression the first time it is seen (`open_pairs`: regressions not closed yet) and keeps
    the check unclean for as long as it lasts."""
    outcome.regressions = rename_lapsed(outcome.regressions, review.exceptions, now)
    fresh = [b for b in review.breaches if (b.object_fqn, b.principal) not in open_pairs]
    outcome.regressions.extend(fresh)
    outcome.exception_breaches = review.breaches
    return outcome
