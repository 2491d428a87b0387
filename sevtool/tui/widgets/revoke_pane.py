"""Revoke tab: review the plan with its exact SQL and blast radius, apply it in batches with live results, undo.

Actions that take access beyond the incident's scope (their collateral) are applied only when the
responder accepts that explicitly in the apply dialog; otherwise the run holds them back, as the CLI does.
"""

from __future__ import annotations

from collections import Counter

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, ProgressBar, Static

from sevtool.core import blast
from sevtool.core.plan import PENDING, Action, ActionStatus
from sevtool.tui.widgets.virtual_table import VirtualTable

STATUS_STYLES = {
    ActionStatus.PLANNED.value: Style(color="#74c0fc"),
    ActionStatus.APPLYING.value: Style(color="#ffd43b"),
    ActionStatus.APPLIED.value: Style(color="#69db7c"),
    ActionStatus.SKIPPED.value: Style(color="#adb5bd"),
    ActionStatus.FAILED.value: Style(color="#ff6b6b", bold=True),
    ActionStatus.UNDONE.value: Style(color="#da77f2"),
}


class ActionsTable(VirtualTable[Action]):
    COLUMNS = [
        ("#", 7),
        ("status", 9),
        ("kind", 26),
        ("object", 40),
        ("grantee", 18),
        ("review", 7),
        ("blast radius", 26),
        ("message", 40),
    ]

    def cells(self, row: Action) -> list[str]:
        return [
            str(row.seq),
            row.status.value,
            row.kind,
            row.object_fqn + (f".{row.column}" if row.column else ""),
            row.grantee,
            "review" if row.review else "",
            blast.cell(row),
            row.message,
        ]

    def cell_style(self, row: Action, column: int) -> Style:
        if column == 1:
            return STATUS_STYLES.get(row.status.value, Style())
        return Style(color="#ffa94d", bold=True) if column in (5, 6) else Style()


def _nothing_pending(plan) -> str:
    """The next step once a plan has no work left: it depends on whether its grants are gone or were put back."""
    applied, undone = plan.counts.get(ActionStatus.APPLIED.value, 0), plan.counts.get(ActionStatus.UNDONE.value, 0)
    if applied:
        return "nothing pending: verify (tab 3), or u to undo"
    if undone:
        return f"nothing pending: its {undone:,} action(s) were undone, so the access is back; press p to plan again"
    return "nothing pending: every grant was already gone; verify (tab 3), or scan again if access came back"


class RevokePane(Vertical):
    def __init__(self, incident_id: int, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.running = False
        self.planning = False

    def compose(self) -> ComposeResult:
        yield Static("No plan yet. Scan first, then press p to plan the revocation.", id="plan-summary")
        yield ActionsTable(id="actions")
        yield Static("", id="action-sql")
        yield ProgressBar(total=100, show_eta=True, id="apply-progress", classes="hidden")
        yield Log(id="apply-log", max_lines=500, classes="hidden")

    def reload(self):
        """Called each time the revoke tab opens: a plan may have been made elsewhere (CLI, another responder).

        Returns the current plan, or None. While a plan is being made, the pane is left to say so.
        """
        if self.planning:
            return None
        with self.app.reporting_errors("loading the plan"):
            plan = self.app.wb.revocation.current_plan(self.incident_id)
            if plan is not None:
                self._show_plan(plan)
            elif latest := self.app.wb.scanning.latest_scope(self.incident_id):
                self.query_one("#plan-summary", Static).update(
                    f"No plan yet. Press p to plan the revocation from scope v{latest[0]} ({latest[1].target})."
                )
            return plan
        return None

    def _show_plan(self, plan) -> None:
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(plan.counts.items()) if n)
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(plan.by_kind.items()))
        pending = len(plan.pending)
        # What to weigh before applying: said while something is still to apply, not after.
        review = (
            f"\n[b #ffa94d]{plan.review} action(s) need review before applying.[/]" if plan.review and pending else ""
        )
        if plan.blast.get("actions") and pending:
            review += (
                f"\n[b #ffa94d]Blast radius: {blast.summary_text(plan.blast)}; applying asks before running those.[/]"
            )
        next_step = f"press [b]a[/b] to apply the {pending:,} pending action(s)" if pending else _nothing_pending(plan)
        self.query_one("#plan-summary", Static).update(
            f"[b]Plan {plan.plan_version}[/b] (from scope v{plan.scope_version}, target {plan.target}): {len(plan.actions):,} actions · {kinds}\n"
            f"ledger: {counts or '-'} · {next_step}{review}"
        )
        self.query_one(ActionsTable).show(plan.actions, keep_cursor=True)

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        """The exact statement that will run for the highlighted action, and what undo restores."""
        action = event.row
        text = Text()
        if action is not None:
            text.append(f"SQL #{action.seq}: ", style="dim").append(action.sql)
            if action.prior_state:
                text.append("\nprior state: ", style="dim").append(action.prior_state)
            if action.reason:
                text.append("\nwhy: ", style="dim").append(action.reason)
            for c in action.collateral:
                shown = ", ".join(c.objects[:5]) + (f" and {len(c.objects) - 5} more" if len(c.objects) > 5 else "")
                text.append("\nalso takes from ", style="#ffa94d").append(
                    f"{c.role} ({c.login_members} login member(s), {c.cause}): {shown}"
                )
            if action.alternative:
                text.append("\nalternative: ", style="dim").append(action.alternative)
        self.query_one("#action-sql", Static).update(text)

    # --- plan / apply / undo ----------------------------------------------------------------

    def plan(self) -> None:
        if self._refuse_while_running():
            return
        self.planning = True
        self.query_one("#plan-summary", Static).update(
            "Planning: reading each object's current ACL so undo can restore it exactly…"
        )
        self._plan()

    @work(thread=True, exclusive=True, group="revoke")
    def _plan(self) -> None:
        plan = None
        with self.app.reporting_errors("planning"):
            plan = self.app.wb.revocation.plan(self.incident_id)
        self.app.call_from_thread(self._planned, plan)

    def _planned(self, plan) -> None:
        self.planning = False
        if plan is None:
            if self.reload() is None:
                self.query_one("#plan-summary", Static).update(
                    "Planning failed (the notification says why). Press p to try again."
                )
            return
        self._show_plan(plan)
        self.app.notify(
            f"Plan {plan.plan_version}: {len(plan.actions):,} actions. Review the SQL, then press a to apply.",
            title="planned",
        )
        self.screen.changed()

    def confirm_apply(self) -> None:
        from sevtool.tui.screens.confirm import CollateralConfirmScreen, ConfirmScreen

        if self._refuse_while_running():
            return
        with self.app.reporting_errors("preparing the apply"):
            plan = self.app.wb.revocation.current_plan(self.incident_id)
            if plan is None:
                self.app.notify(
                    "There is no plan yet: press p to plan from the latest scan.", severity="warning", title="apply"
                )
                return
            pending = len(plan.pending)
            if not pending:
                self.app.notify(f"Plan {plan.plan_version}: {_nothing_pending(plan)}.", title="apply")
                return
            question = (
                f"Apply plan {plan.plan_version}: run {pending:,} REVOKE action(s) on {plan.target}?\n"
                f"Each object's prior ACL is recorded; u undoes it exactly."
                + (f"\n{plan.review} action(s) need review." if plan.review else "")
            )
            harmful = [a for a in plan.actions if a.collateral and a.status in PENDING]
            if not harmful:
                self.app.push_screen(
                    ConfirmScreen(question, confirm="Apply"),
                    lambda yes: yes and self._start(plan.plan_version, pending, undo=False),
                )
                return
            lines = [
                f"  #{a.seq} {a.object_fqn} also takes {len(c.objects)} object(s) from {c.role} ({c.cause}): "
                + ", ".join(c.objects[:3])
                + (" …" if len(c.objects) > 3 else "")
                for a in harmful[:8]
                for c in a.collateral
            ]
            question += (
                f"\n\nBlast radius: {blast.summary_text(blast.totals(harmful))}.\n"
                + "\n".join(lines)
                + ("\n  …" if len(harmful) > 8 else "")
                + f"\n\ny: apply the rest, hold these {len(harmful)} back (their access stays in place).\n"
                "c: accept the collateral and run them too."
            )
            self.app.push_screen(
                CollateralConfirmScreen(question, held=len(harmful)),
                lambda choice: (
                    choice and self._start(plan.plan_version, pending, undo=False, accept_collateral=choice == "accept")
                ),
            )

    def confirm_undo(self) -> None:
        from sevtool.tui.screens.confirm import ConfirmScreen

        if self._refuse_while_running():
            return
        with self.app.reporting_errors("preparing the undo"):
            applied = len(self.app.wb.revocation.undoable(self.incident_id))
            if not applied:
                self.app.notify("Nothing applied to undo.", title="undo")
                return
            self.app.push_screen(
                ConfirmScreen(
                    f"Undo {applied:,} applied action(s)? Access is restored to each object's recorded prior ACL "
                    "and the incident goes back to declared.",
                    confirm="Undo",
                    variant="warning",
                ),
                lambda yes: yes and self._start(None, applied, undo=True),
            )

    def _start(self, plan_version: int | None, total: int, *, undo: bool, accept_collateral: bool = False) -> None:
        self.running = True
        bar = self.query_one("#apply-progress", ProgressBar)
        bar.update(total=total, progress=0)
        bar.remove_class("hidden")
        log = self.query_one("#apply-log", Log)
        log.remove_class("hidden")
        log.write_line(
            f"{'undo' if undo else f'apply plan {plan_version}'}: {total:,} action(s)"
            + (", collateral accepted" if accept_collateral else "")
        )
        self._run(plan_version, undo, accept_collateral)

    @work(thread=True, exclusive=True, group="revoke")
    def _run(self, plan_version: int | None, undo: bool, accept_collateral: bool = False) -> None:
        revocation = self.app.wb.revocation
        report = None

        def progress(p) -> None:
            self.app.call_from_thread(self._progress, p)

        with self.app.reporting_errors("undoing" if undo else "applying"):
            report = (
                revocation.undo(self.incident_id, progress=progress)
                if undo
                else revocation.apply(
                    self.incident_id, plan_version=plan_version, progress=progress, accept_collateral=accept_collateral
                )
            )
        self.app.call_from_thread(self._finished, report)

    def _progress(self, p) -> None:
        self.query_one("#apply-progress", ProgressBar).update(total=p.total, progress=p.done)
        if not p.results:
            return
        batch = Counter(r.status.value for r in p.results)
        failed = [r for r in p.results if r.status == ActionStatus.FAILED]
        line = (
            f"batch of {len(p.results):,}: "
            + ", ".join(f"{n:,} {s}" for s, n in sorted(batch.items()))
            + f"  ({p.done:,}/{p.total:,})"
        )
        log = self.query_one("#apply-log", Log)
        log.write_line(line)
        for r in failed[:5]:
            log.write_line(f"  failed #{r.seq}: {r.message}")

    def _finished(self, report) -> None:
        self.running = False
        self.query_one("#apply-progress", ProgressBar).add_class("hidden")
        log = self.query_one("#apply-log", Log)
        if report is None:
            log.write_line("stopped: see the notification; the ledger keeps what finished, apply again to resume")
        else:
            counts = ", ".join(f"{n:,} {s}" for s, n in report.counts.items())
            log.write_line(
                f"{report.mode} done in {report.duration_ms / 1000:.1f} s: {counts}; incident is {report.status}"
            )
            held = (
                (
                    f" {report.held:,} action(s) held back: they would also take access from {', '.join(report.held_roles)}; "
                    "access remains until you press a and accept the collateral (c)."
                )
                if report.held
                else ""
            )
            if held:
                log.write_line(held.strip())
            self.app.notify(
                f"{report.mode}: {counts}. Incident is {report.status}."
                + held
                + (" Verify next (tab 3, v)." if report.mode == "apply" and report.ok and not report.held else ""),
                title=f"{report.mode} done",
                severity="information" if report.ok and not report.held else "warning",
                timeout=10,
            )
        self.reload()
        self.screen.changed()

    def _refuse_while_running(self) -> bool:
        if self.running:
            self.app.notify(
                "A revocation run is in progress; wait for it to finish.", severity="warning", title="revoke"
            )
        return self.running
