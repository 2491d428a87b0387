"""Which plan a revocation run may execute, and how much of it: the size guard, the plan a responder confirmed,
and the actions held back because they would take access beyond the incident's scope.

The rules themselves are in core.blast; this is where RevocationService applies them to the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sevtool.core import blast
from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import UsageError
from sevtool.services.revocation_plan import PlanOutline
from sevtool.store import ledger

if TYPE_CHECKING:
    from sevtool.services import Workbench
    from sevtool.store.repository import Store


class RevocationGates:
    """The gates of RevocationService (which mixes them in); the plan methods come from RevocationPlanning."""

    wb: Workbench
    store: Store

    def max_actions(self, incident_id: int, override: int | None = None) -> int:
        """The size guard for this incident: `--max-actions` if given, else its SEV's `max_actions`."""
        return override or self.wb.policy.level(self.store.incident(incident_id).sev).max_actions

    def plan_to_apply(self, incident_id: int, *, max_actions: int | None = None, notable: bool = True) -> PlanOutline:
        """The newest plan if it covers the latest scan; otherwise a new one. What `--apply` will run.

        Counted by the store; with `notable`, the plan is read page by page for the actions a responder is
        shown (review, collateral). An unattended run needs only the counts.
        """
        if not self._newest_if_current(incident_id):
            return self.journal_plan(incident_id, max_actions=max_actions).outline()
        version, _, target = ledger.latest_plan(self.store, incident_id) or (0, 0, "")
        outline = PlanOutline(
            incident_id=incident_id,
            plan_version=version,
            target=target,
            counts=ledger.status_counts(self.store, incident_id, version),
            by_kind=ledger.kind_counts(self.store, incident_id, version),
        )
        blast.check_size(
            incident_id, outline.pending, self.max_actions(incident_id, max_actions), "apply"
        )  # before anyone is asked
        if notable:
            everything = list(ActionStatus)
            for page in ledger.pages(self.store, incident_id, version, everything):
                outline.notable += [a for a in page if a.review or a.collateral]
            outline.blast = dict(blast.totals(outline.notable))
        return outline

    def _newest_if_current(self, incident_id: int) -> tuple[int, int, str] | None:
        """(version, scope_version, target) of the newest plan if it covers the latest scan, else None."""
        newest = ledger.latest_plan(self.store, incident_id)
        latest = self.wb.scanning.latest_scope(incident_id)
        return newest if newest is not None and (latest is None or newest[1] == latest[0]) else None

    @staticmethod
    def _hold(tx, incident_id: int, version: int, held: list[Action]) -> None:
        """Held actions stay as they are in the ledger (`planned`, or `failed` from an accepted run) with a message saying why."""
        planned = [a for a in held if a.status is ActionStatus.PLANNED]
        for action in planned:
            action.message = blast.held_message(action)  # the cached plan shows it too, not only the ledger
        ledger.record(
            tx.session,
            incident_id,
            version,
            [ActionResult(seq=a.seq, status=a.status, message=a.message) for a in planned],
        )

    def _confirmed(self, incident_id: int, version: int) -> tuple[int, str]:
        """(version, target) of the plan a responder confirmed, if it is still the newest one."""
        latest = ledger.latest_plan(self.store, incident_id)
        newest = latest[0] if latest else 0
        if version == newest + 1:  # a plan with no actions leaves no ledger rows: nothing to do
            return version, ""
        if version != newest:
            raise UsageError(
                f"plan {version} of incident {incident_id} is not the newest plan (plan {newest} is)",
                hint=f"review `sevtool revoke {incident_id} --plan` and apply again",
            )
        return version, latest[2]
