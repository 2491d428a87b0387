"""Revocation plans: made from the latest scan's findings, journaled in the ledger with each object's current ACL.

A plan is journaled as `planned` before anything runs (see services.revocation for apply and undo). The size guard
has its count first; then it goes to the ledger a chunk at a time as the target makes it, in one transaction, its
counts and blast radius tallied on the way, so a 200,000-action plan is never held whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sevtool.core import blast
from sevtool.core.plan import PENDING, Action, ActionChunks, ActionStatus, count_by_status
from sevtool.errors import UsageError
from sevtool.gcpause import gc_paused
from sevtool.store import ledger
from sevtool.targets.base import PlansInChunks

if TYPE_CHECKING:
    from sevtool.services import Workbench


class Plan(BaseModel):
    incident_id: int
    plan_version: int
    scope_version: int
    target: str
    actions: list[Action]
    counts: dict[str, int]  # by status
    by_kind: dict[str, int]
    review: int  # actions that need a human's eyes (role memberships, collateral)
    blast: dict = {}  # totals of the access the plan takes beyond the incident's scope (core.blast.totals)
    blast_actions: list[dict] = []  # per action with collateral: seq, object, roles, objects, login_members, causes
    created: bool = False  # made just now (False: an existing plan with work left)

    @property
    def pending(self) -> list[Action]:
        return [a for a in self.actions if a.status in PENDING]


class PlanOutline(BaseModel):
    """What a responder is shown before an apply, without the plan's every action: its counts, and the actions
    that need a human's eyes (review, collateral) when asked for."""

    incident_id: int
    plan_version: int
    target: str
    counts: dict[str, int]  # by status
    by_kind: dict[str, int]
    notable: list[Action] = []  # actions to review or with collateral, any status
    blast: dict = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def pending(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in PENDING)


class PlanMade(BaseModel):
    """A plan just journaled, without its actions: they went to the ledger a chunk at a time as they were made, and
    are read back from it a page at a time (`RevocationPlanning.plan_pages`)."""

    incident_id: int
    plan_version: int
    scope_version: int
    target: str
    count: int  # actions
    counts: dict[str, int]  # by status
    by_kind: dict[str, int]
    review: int
    blast: dict = {}
    blast_actions: list[dict] = []
    notable: list[Action] = []  # actions to review or with collateral

    def outline(self) -> PlanOutline:
        return PlanOutline(
            incident_id=self.incident_id,
            plan_version=self.plan_version,
            target=self.target,
            counts=self.counts,
            by_kind=self.by_kind,
            notable=self.notable,
            blast=self.blast,
        )

    def with_actions(self, actions: list[Action]) -> Plan:
        return Plan(
            incident_id=self.incident_id,
            plan_version=self.plan_version,
            scope_version=self.scope_version,
            target=self.target,
            actions=actions,
            counts=self.counts,
            by_kind=self.by_kind,
            review=self.review,
            blast=self.blast,
            blast_actions=self.blast_actions,
            created=True,
        )

    def document(self, actions: Any) -> dict[str, Any]:
        """The plan as `Plan` writes it in JSON (its fields in its order), with `actions` as given."""
        plain = self.model_dump(mode="json", exclude={"count", "notable"})
        named = {k: plain.pop(k) for k in ("incident_id", "plan_version", "scope_version", "target")}
        return {**named, "actions": actions, **plain, "created": True}


class RevocationPlanning:
    """The plan half of RevocationService (which mixes it in)."""

    def __init__(self, wb: Workbench):
        self.wb = wb
        self.store = wb.store
        # Each incident's newest plan made or read by this process, so plan+apply in one run does not decode
        # 45,000 actions back from the ledger. One plan per incident: a long session planning again and again
        # would otherwise hold every plan it ever made. Only what never changes is cached; statuses are always
        # read from the ledger under the lock.
        self._made: dict[int, tuple[int, list[Action]]] = {}

    # --- targets ----------------------------------------------------------------------------

    def _open(self, target: str):
        from sevtool.services.targets import open_target

        return open_target(target, self.wb.settings)

    # --- plan -------------------------------------------------------------------------------

    @gc_paused()
    def plan(self, incident_id: int, *, max_actions: int | None = None) -> Plan:
        """A fresh plan from the latest scan's findings, journaled with each object's current ACL, with every
        action in hand (for a screen that shows them all; `journal_plan` leaves them in the ledger).

        Refused (UsageError, nothing journaled) when it has more actions than the size guard allows.
        """
        made, actions = self._journal(incident_id, max_actions, keep=True)
        return made.with_actions(actions)

    @gc_paused()
    def journal_plan(self, incident_id: int, *, max_actions: int | None = None) -> PlanMade:
        """`plan`, journaled a chunk at a time as it is made and left in the ledger: a 200,000-action plan is never
        held whole. Its actions are read back with `plan_pages`."""
        return self._journal(incident_id, max_actions, keep=False)[0]

    def plan_pages(self, made: PlanMade) -> Iterator[list[Action]]:
        """A plan's actions as the ledger has them, in plan order, a page at a time."""
        return ledger.pages(self.store, made.incident_id, made.plan_version, list(ActionStatus))

    def plain_plan_pages(self, made: PlanMade) -> Iterator[list[dict]]:
        """`plan_pages` as the plain JSON each action dumps to (for writing the plan out)."""
        return ledger.plain_pages(self.store, made.incident_id, made.plan_version)

    def _journal(self, incident_id: int, max_actions: int | None, *, keep: bool) -> tuple[PlanMade, list[Action]]:
        limit = self.max_actions(incident_id, max_actions)
        latest = self.wb.scanning.latest_scope(incident_id)
        if latest is None:
            raise UsageError(
                f"incident {incident_id} has no scan yet, so there is nothing to revoke",
                hint=f"run `sevtool scan {incident_id} --target ... --principal ...` first",
            )
        scope_version, scope = latest
        with self.wb.scanning.finding_stream(incident_id, scope_version) as (seen, findings):
            target = self._open(scope.target)
            try:
                if isinstance(target, PlansInChunks):
                    chunked = target.plan_in_chunks(findings, scope)
                else:
                    chunked = ActionChunks.of(target.plan(findings, scope))
            finally:
                target.close()
        blast.check_size(incident_id, chunked.count, limit, "plan")  # before anything is journaled
        kept: list[Action] = []
        statuses: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        radius = blast.Tally()
        blast_actions: list[blast.NumberedActionBlast] = []
        notable: list[Action] = []
        with self.store.write() as tx:
            tx.incident_row(incident_id)
            version = ledger.next_plan_version(tx.session, incident_id)
            for chunk in chunked.chunks:
                blast.mark_review(chunk)
                statuses.update(a.status for a in chunk)
                by_kind.update(a.kind for a in chunk)
                radius.add(chunk)
                blast_actions += blast.by_action(chunk)
                notable += [a for a in chunk if a.review or a.collateral]
                ledger.insert_plan(tx.session, incident_id, version, scope_version, scope.target, chunk)
                if keep:
                    kept += chunk
            if keep:
                self._made[incident_id] = (version, kept)
            else:
                self._made.pop(incident_id, None)
            review = sum(a.review for a in notable)
            totals = radius.totals()
            tx.append(
                incident_id,
                "revoke_planned",
                f"Revocation plan {version}: {chunked.count} actions for {seen} findings"
                + (f", {review} to review" if review else "")
                + (f"; {blast.summary_text(totals)}" if totals["actions"] else ""),
                {
                    "plan_version": version,
                    "scope_version": scope_version,
                    "actions": chunked.count,
                    "findings": seen,
                    "by_kind": dict(by_kind),
                    "review": review,
                    "blast": totals,
                },
            )
        made = PlanMade(
            incident_id=incident_id,
            plan_version=version,
            scope_version=scope_version,
            target=scope.target,
            count=chunked.count,
            counts=count_by_status(statuses.elements()),
            by_kind=dict(by_kind),
            review=review,
            blast=dict(totals),
            blast_actions=list(blast_actions),
            notable=notable,
        )
        return made, kept

    def current_plan(self, incident_id: int) -> Plan | None:
        """The newest plan as the ledger has it, or None if there is none."""
        latest = ledger.latest_plan(self.store, incident_id)
        if latest is None:
            return None
        version, scope_version, target = latest
        actions = self._actions(incident_id, version)
        return Plan(
            incident_id=incident_id,
            plan_version=version,
            scope_version=scope_version,
            target=target,
            actions=actions,
            counts=count_by_status(a.status for a in actions),
            by_kind=dict(Counter(a.kind for a in actions)),
            review=sum(a.review for a in actions),
            blast=blast.totals(actions),
            blast_actions=blast.by_action(actions),
        )

    def _actions(self, incident_id: int, version: int, statuses: Iterable[ActionStatus] | None = None) -> list[Action]:
        """A plan's actions with their ledger status now, decoded from the ledger once per process.

        Only what never changes is cached (what to revoke, the SQL, the prior state); status and message are
        read from the ledger on every call.
        """
        made = self._cached(incident_id, version)
        if made is None:
            made = [a for _, _, a in ledger.actions(self.store, incident_id, version)]
            self._made[incident_id] = (version, made)
        else:
            by_seq = {a.seq: a for a in made}
            for seq, (status, message) in ledger.moved_on(self.store, incident_id, version).items():
                action = by_seq[seq]
                if action.status is not status or action.message != message:
                    action.status, action.message = status, message
        if statuses is None:
            return made
        wanted = set(statuses)
        return [a for a in made if a.status in wanted]

    def _cached(self, incident_id: int, version: int) -> list[Action] | None:
        cached_version, actions = self._made.get(incident_id, (None, None))
        return actions if cached_version == version else None
