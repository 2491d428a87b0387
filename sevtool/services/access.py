"""Just-in-time access after lock-down (`sevtool access`): grant, list, end early, expire; and what verification
and undo make of the exceptions.

A grant is checked against the SEV's limits, planned on the target (refused when the role already reads an
object, when an object does not exist, or when the usage it needs would open other tables), recorded, made, and
read back. The exception's row exists before its grants do and is ended only after they read back gone, so no
crash leaves a grant sevtool does not know about: an open row past its end is revoked by the next `access
expire`, `watch` or `guard` run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sevtool.core import access_exceptions as core
from sevtool.core.access_exceptions import AccessException, Ending, ExceptionReview, RoleAccess
from sevtool.core.checks import Findings
from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_utc, utcnow
from sevtool.errors import SevtoolError, TargetRejected, UsageError
from sevtool.store import access as q
from sevtool.targets.base import GrantsExceptions

if TYPE_CHECKING:
    from sevtool.services import Workbench

SHOWN = 5  # objects named in a refusal or an event; the count is always complete


@dataclass
class Ended:
    """How ending one exception went: `still_readable` objects the role reads by other means after its grants
    were taken back (verification reports them as a lapsed exception)."""

    exception: AccessException
    still_readable: list[str] = field(default_factory=list)
    recorded: bool = True  # False when another process recorded the end first, or it failed
    error: str | None = None  # why the revoke failed: the exception stays open and due

    def as_dict(self) -> dict[str, Any]:
        return {**exception_dict(self.exception), "still_readable": self.still_readable, "error": self.error}


def exception_dict(exc: AccessException, now: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "incident_id": exc.incident_id,
        "number": exc.number,
        "target": exc.target,
        "role": exc.role,
        "objects": list(exc.objects),
        "why": exc.why,
        "approver": exc.approver,
        "requested_by": exc.requested_by,
        "granted_at": format_utc(exc.granted_at),
        "until": format_utc(exc.until),
        "grants": [{"on": g.securable.kind, "name": g.securable.name, "privilege": g.privilege} for g in exc.grants],
        "ended_at": format_utc(exc.ended_at) if exc.ended_at else None,
        "ending": exc.ending.value if exc.ending else None,
        "ended_by": exc.ended_by,
    }
    if now is not None:
        data["state"] = exc.state(now)
        data["remaining_seconds"] = int(exc.remaining(now).total_seconds())
    return data


def _named(objects: Iterable[str]) -> str:
    items = list(objects)
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


class AccessService:
    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store

    # --- grant ------------------------------------------------------------------------------------

    def grant(
        self,
        incident_id: int,
        role: str,
        objects: list[str],
        duration: timedelta,
        why: str,
        approver: str | None = None,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> AccessException:
        incident = self.store.incident(incident_id)
        if incident.status == Status.CLOSED:
            raise UsageError(f"incident {incident_id} is closed: its exceptions ended with it")
        wanted = list(dict.fromkeys(o.strip() for o in objects if o.strip()))
        try:
            core.check_request(
                self.wb.policy.level(incident.sev),
                role=role,
                objects=wanted,
                duration=duration,
                why=why,
                approver=approver,
            )
            target_name, target = self._target(incident_id)
            plan = target.plan_exception(role, wanted)
            self._refuse(role, plan)
        except UsageError as refusal:  # a refused request is part of the record too: who asked for what, and why not
            self._record_refusal(incident_id, role, wanted, duration, why, approver, refusal, now())
            raise
        started = now()
        with self.store.write() as tx:  # recorded before the grants exist, so no crash leaves one unknown
            exc = q.add(
                tx.session,
                AccessException(
                    incident_id=incident_id,
                    number=0,
                    target=target_name,
                    role=role,
                    objects=tuple(wanted),
                    why=why.strip(),
                    requested_by=self.store.actor,
                    granted_at=started,
                    until=started + duration,
                    approver=(approver or "").strip() or None,
                    grants=plan.grants,
                    held_before=plan.held_before,
                ),
            )
        try:
            target.grant_exception(role, list(plan.grants))
            unread = [a.object_fqn for a in target.role_access(role, wanted) if not a.readable]
            if unread:
                raise TargetRejected(
                    f"granted {role} SELECT, but the server still denies it {_named(unread)}",
                    hint="a row-level or column-level rule, or a REVOKE by someone else: see the target's ACLs",
                )
        except TargetRejected:
            self._end(exc, Ending.NOT_GRANTED, now(), target)
            raise
        with self.store.write() as tx:
            tx.append(
                incident_id,
                "access_granted",
                f"Exception {exc.number}: {role} may read {_named(wanted)} for {format_duration(duration)}, until "
                f"{format_utc(exc.until)} ({exc.why}; "
                + (f"approved by {exc.approver})" if exc.approver else "no approver)"),
                exception_dict(exc),
                at=started,
            )
        return exc

    def _record_refusal(
        self,
        incident_id: int,
        role: str,
        objects: list[str],
        duration: timedelta,
        why: str,
        approver: str | None,
        refusal: UsageError,
        at: datetime,
    ) -> None:
        with self.store.write() as tx:
            tx.append(
                incident_id,
                "access_refused",
                f"Access exception refused: {role} on {_named(objects)} for {format_duration(duration)}: "
                f"{refusal.message}",
                {
                    "role": role,
                    "objects": objects,
                    "seconds": int(duration.total_seconds()),
                    "why": why,
                    "approver": approver,
                    "refusal": refusal.message,
                },
                at=at,
            )

    @staticmethod
    def _refuse(role: str, plan: core.GrantPlan) -> None:
        if plan.missing:
            raise UsageError(
                f"no such table or view: {_named(plan.missing)}",
                hint="name objects by their full names, as `scan` lists them",
            )
        if plan.already:
            raise UsageError(
                f"{role} already reads {_named(plan.already)}: no exception is needed",
                hint="if it should not, that is access the fix missed: run `sevtool verify`",
            )
        if plan.collateral:
            # Kind-neutral: the container privileges are the target's own (USAGE on a schema, USE CATALOG, ...).
            needed = ", ".join(
                f"{g.privilege} on {g.securable.kind} {g.securable.name}"
                for g in plan.grants
                if g.securable.kind != "table"
            )
            raise UsageError(
                f"{role} needs {needed}, which would also let it read "
                f"{len(plan.collateral)} other object(s): {_named(plan.collateral)}",
                hint="those grants were left in place behind the closed schema or catalog; revoke them first, "
                "or grant to a role that holds none",
            )

    def _target(self, incident_id: int) -> tuple[str, GrantsExceptions]:
        versions = self.wb.scanning.versions(incident_id)
        if not versions:
            raise UsageError(
                f"incident {incident_id} has no scope yet: exceptions are granted on its target",
                hint=f"run `sevtool scan {incident_id} --target DSN_OR_NAME --principal P` first",
            )
        name = versions[-1].scope.target
        target = self.wb.scanning.target(name)
        if not isinstance(target, GrantsExceptions):
            raise UsageError(f"{target.display} cannot grant just-in-time access", hint="grant and revoke it by hand")
        return name, target

    # --- list, end, expire --------------------------------------------------------------------------

    def list(self, incident_id: int) -> list[AccessException]:
        self.store.incident(incident_id)  # NotFound for an unknown incident
        return q.of_incident(self.store, incident_id)

    def end(self, incident_id: int, number: int, *, now: Callable[[], datetime] = utcnow) -> Ended:
        """End an exception before its time: its grants are revoked and read back."""
        exc = q.one(self.store, incident_id, number)
        if exc is None:
            raise UsageError(
                f"incident {incident_id} has no exception {number}", hint=f"`sevtool access list {incident_id}`"
            )
        if exc.ended_at is not None:
            raise UsageError(f"exception {number} already ended at {format_utc(exc.ended_at)} ({exc.ending})")
        return self._end(exc, Ending.ENDED_EARLY if exc.active(now()) else Ending.EXPIRED, now(), None)

    def expire(self, incident_id: int | None = None, *, now: Callable[[], datetime] = utcnow) -> list[Ended]:
        """Revoke every exception past its end (of one incident, or all): restart-safe, each revoke read back.
        One target failing does not stop the others: its exception stays open, due, with the error."""
        ended: list[Ended] = []
        for exc in q.due(self.store, now(), incident_id):
            try:
                ended.append(self._end(exc, Ending.EXPIRED, now(), None))
            except SevtoolError as error:
                ended.append(Ended(exc, recorded=False, error=error.message))
        return ended

    def end_for_undo(self, incident_id: int, *, now: Callable[[], datetime] = utcnow) -> list[Ended]:
        """Undoing the revocation gives access back to everyone: the exceptions to it end first, so that undo restores
        exactly the grants from before the fix and no exception grant is left behind."""
        at = now()
        return [
            self._end(e, Ending.UNDO, at, None) for e in q.of_incident(self.store, incident_id) if e.ended_at is None
        ]

    def next_end(self, incident_id: int) -> datetime | None:
        return q.next_end(self.store, incident_id)

    def _end(self, exc: AccessException, ending: Ending, at: datetime, target: GrantsExceptions | None) -> Ended:
        target = target or self._open(exc)
        left = target.revoke_exception(exc.role, list(exc.grants))
        if left:
            raise TargetRejected(
                f"revoked exception {exc.number}'s grants, but {exc.role} still holds "
                + ", ".join(f"{g.privilege} on {g.securable.kind} {g.securable.name}" for g in left),
                hint="revoke them by hand, then run `sevtool access expire` again",
            )
        still = [a.object_fqn for a in target.role_access(exc.role, list(exc.objects)) if a.readable]
        with self.store.write() as tx:
            recorded = q.finish_end(tx.session, exc.incident_id, exc.number, at, ending, self.store.actor)
            if recorded and ending != Ending.NOT_GRANTED:
                remains = f"; {exc.role} still reads {_named(still)} by other means" if still else ""
                tx.append(
                    exc.incident_id,
                    "access_ended",
                    f"Exception {exc.number} {ending.value}: {exc.role}'s read access to {_named(exc.objects)} "
                    f"revoked and read back{remains}",
                    {"number": exc.number, "role": exc.role, "ending": ending.value, "still_readable": still},
                    at=at,
                )
        ended = q.one(self.store, exc.incident_id, exc.number) or exc
        return Ended(ended, still, recorded)

    def _open(self, exc: AccessException) -> GrantsExceptions:
        target = self.wb.scanning.target(exc.target)
        if not isinstance(target, GrantsExceptions):
            raise UsageError(f"{target.display} cannot revoke just-in-time access", hint="revoke it by hand")
        return target

    # --- verification -------------------------------------------------------------------------------

    def review(self, incident_id: int, target_name: str, findings: Findings, now: datetime) -> ExceptionReview:
        """Which findings active exceptions explain, and what the exceptions' roles read that they should not."""
        exceptions = [e for e in q.of_incident(self.store, incident_id) if e.target == target_name]
        if not exceptions:
            return ExceptionReview(findings)  # the same list: the caller sees nothing was set apart
        target = self._open(exceptions[0])
        access: dict[int, list[RoleAccess]] = {
            e.number: target.role_access(e.role, list(e.objects)) for e in exceptions
        }
        return core.review(exceptions, findings, access, now)
