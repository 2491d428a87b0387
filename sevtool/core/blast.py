"""Blast radius: the access a plan takes beyond what the incident must close, per action and in total; and the
size guard, which refuses a plan far larger than an incident should need.

Collateral is access lost outside the incident's scope: a role outside the principal losing objects (grant-option
CASCADE, PUBLIC, memberships), or the principal itself losing objects outside the scanned scope (a Unity Catalog
schema- or catalog-wide revoke). A target fills each action's `collateral`; this module only reads it. An action with collateral needs a
human's acceptance: it is marked `review`, and an unattended apply holds it back (see `split_held`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from sevtool.core.plan import Action, ActionStatus
from sevtool.errors import UsageError

ACCEPT_FLAG = "--accept-collateral"
MAX_FLAG = "--max-actions"


class ActionBlast(TypedDict):
    roles: list[str]
    objects: int
    login_members: int
    causes: list[str]


class NumberedActionBlast(ActionBlast):
    seq: int
    object: str


class BlastTotals(TypedDict):
    actions: int
    roles: list[str]
    objects: int
    login_members: int


class HeldReport(TypedDict):
    held: int
    roles: list[str]
    objects: int
    login_members: int
    actions: list[NumberedActionBlast]


def check_size(incident_id: int, count: int, limit: int, what: str) -> None:
    """Like Cloud Custodian's max-resources: a plan this large usually means a scope gone wrong, so it needs a
    responder to say so. `what` is "plan" (actions made) or "apply" (actions a run would send)."""
    if count > limit:
        doing = "has" if what == "plan" else "would apply"
        raise UsageError(
            f"the revocation plan of incident {incident_id} {doing} {count:,} actions, more than the limit of "
            f"{limit:,} (max_actions of its SEV level); nothing was {'journaled' if what == 'plan' else 'applied'}",
            hint=f"check the scan's scope (--schema, --table, --min-dss); if the plan is right, re-run with "
            f"{MAX_FLAG} {count} or raise max_actions under [sev.N] in the team config",
        )


def mark_review(actions: Iterable[Action]) -> None:
    """An action that takes access beyond the incident's scope is never one a responder should run unread."""
    for action in actions:
        if action.collateral:
            action.review = True


def of_action(action: Action) -> ActionBlast:
    """One action's blast radius: the roles, how many objects they lose in all, how many login members."""
    return {
        "roles": sorted({c.role for c in action.collateral}),
        "objects": len({(c.role, o) for c in action.collateral for o in c.objects}),
        "login_members": sum(c.login_members for c in action.collateral),
        "causes": sorted({c.cause for c in action.collateral if c.cause}),
    }


def by_action(actions: Iterable[Action]) -> list[NumberedActionBlast]:
    """The blast radius of each action that has one, with the action it belongs to."""
    return [{"seq": a.seq, "object": a.object_fqn, **of_action(a)} for a in actions if a.collateral]


class Tally:
    """`totals` over a plan seen a chunk at a time."""

    def __init__(self) -> None:
        self.actions = 0
        self._roles: dict[str, int] = {}
        self._objects: set[str] = set()

    def add(self, actions: Iterable[Action]) -> None:
        roles, objects = self._roles, self._objects
        for action in actions:
            if not action.collateral:
                continue
            self.actions += 1
            for c in action.collateral:
                roles[c.role] = max(roles.get(c.role, 0), c.login_members)
                objects.update(c.objects)

    def totals(self) -> BlastTotals:
        return {
            "actions": self.actions,
            "roles": sorted(self._roles),
            "objects": len(self._objects),
            "login_members": sum(self._roles.values()),
        }


def totals(actions: Iterable[Action]) -> BlastTotals:
    """Distinct roles, distinct objects and login members over a set of actions.

    Login members are counted once per role (the largest count any action gives it): the same role losing
    access through two actions is the same people. A login inside two such roles is counted in each, so the
    figure is an upper bound.
    """
    tally = Tally()
    tally.add(actions)
    return tally.totals()


def summary_text(blast: BlastTotals) -> str:
    """`3 action(s) also take access beyond the incident's scope: 2 role(s) (a, b) lose 7 object(s), at most 4 login member(s)`."""
    if not blast["actions"]:
        return "no action takes access beyond the incident's scope"
    roles = ", ".join(blast["roles"][:5]) + (f" and {len(blast['roles']) - 5} more" if len(blast["roles"]) > 5 else "")
    return (
        f"{blast['actions']} action(s) also take access beyond the incident's scope: {len(blast['roles'])} role(s) ({roles}) "
        f"lose {blast['objects']} object(s), at most {blast['login_members']} login member(s)"
    )


def cell(action: Action) -> str:
    """A short table cell: `2 roles, 5 obj, 3 login` (empty when the action harms no one else)."""
    if not action.collateral:
        return ""
    b = of_action(action)
    return (
        f"{len(b['roles'])} role{'s' if len(b['roles']) != 1 else ''}, {b['objects']} obj, {b['login_members']} login"
    )


def split_held(actions: list[Action], accept_collateral: bool) -> tuple[list[Action], list[Action]]:
    """(to run, held back). Without acceptance an action with collateral is held, unless it is already in
    flight (`applying`): an interrupted run that was accepted must be read back, not left half-done."""
    if accept_collateral:
        return actions, []
    run: list[Action] = []
    held: list[Action] = []
    for action in actions:
        (held if action.collateral and action.status is not ActionStatus.APPLYING else run).append(action)
    return run, held


def held_message(action: Action) -> str:
    """What the ledger says about an action held back: why, and how to run it."""
    b = of_action(action)
    return (
        f"held: would also take access beyond the incident's scope: {', '.join(b['roles'])} would lose {b['objects']} "
        f"object(s) ({b['login_members']} login member(s)); review it and apply with {ACCEPT_FLAG}"
        + (f" (or: {action.alternative})" if action.alternative else "")
    )


def held_report(held: list[Action]) -> HeldReport:
    """For the run report, the timeline event and the CLI: how many were held, for which roles."""
    blast = totals(held)
    return {
        "held": len(held),
        "roles": blast["roles"],
        "objects": blast["objects"],
        "login_members": blast["login_members"],
        "actions": by_action(held[:50]),
    }
