"""One incident: where the response stands, the playbook, and a tab per phase of the work."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Header, Input, Static, TabbedContent, TabPane

from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_local
from sevtool.tui.widgets.badges import regression_marker, sev_badge, status_label
from sevtool.tui.widgets.keys_footer import KeysFooter
from sevtool.tui.widgets.playbook_checklist import PlaybookChecklist
from sevtool.tui.widgets.scope_pane import ScopePane

TABS = ("scope", "revoke", "verify", "timeline", "postmortem", "evidence")
# Where the keyboard lands when a tab is opened, or when escape leaves a text box.
TAB_FOCUS = {
    "scope": "#findings",
    "revoke": "#actions",
    "verify": "#checks",
    "timeline": "#events",
    "postmortem": "#postmortem-scroll",
    "evidence": "#evidence-objects",
}
# Panes that read the store again each time their tab is opened; the others follow `changed()`.
RELOAD_ON_OPEN = ("revoke", "postmortem")


class IncidentScreen(Screen):
    """Only the scope tab is built with the screen; the other panes mount the first time their tab opens."""

    AUTO_FOCUS = TAB_FOCUS["scope"]
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('scope')", "Scope", show=False),
        Binding("2", "tab('revoke')", "Revoke", show=False),
        Binding("3", "tab('verify')", "Verify", show=False),
        Binding("4", "tab('timeline')", "Timeline", show=False),
        Binding("5", "tab('postmortem')", "Postmortem", show=False),
        Binding("6", "tab('evidence')", "Evidence", show=False),
        Binding("s", "scan", "Scan"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("p", "plan", "Plan"),
        Binding("a", "apply", "Apply"),
        Binding("u", "undo", "Undo"),
        Binding("v", "verify", "Verify"),
        Binding("w", "auto_recheck", "Auto re-check", show=False),
        Binding("n", "note", "Note"),
        Binding("k", "mark_key", "Key event", show=False),
        Binding("t", "status", "Status"),
        Binding("e", "export", "Export"),
        Binding("g", "evidence", "Evidence"),
        Binding("r", "reload", "Refresh", show=False),
    ]
    PALETTE = [
        ("Back to the incident list", "escape", "back"),
        ("Scope tab", "what is exposed, by DSS and path (1)", "tab('scope')"),
        ("Revoke tab", "plan, apply, undo (2)", "tab('revoke')"),
        ("Verify tab", "checks, schedule, regressions (3)", "tab('verify')"),
        ("Timeline tab", "events, notes, key events (4)", "tab('timeline')"),
        ("Postmortem tab", "preview and export (5)", "tab('postmortem')"),
        ("Evidence tab", "who read the exposed objects during the window, from the audit logs (6)", "tab('evidence')"),
        ("Scan the target", "find every object the principals can read, by every access path (s)", "scan"),
        ("Filter findings", "narrow the findings table by any column (/)", "filter"),
        ("Plan the revocation", "one action per grant, with the exact SQL and prior ACL (p)", "plan"),
        ("Apply the plan", "revoke in batches, with live results (a)", "apply"),
        ("Undo the revocation", "restore every object's recorded prior ACL (u)", "undo"),
        ("Verify now", "re-run the scope: can anyone in scope still read anything? (v)", "verify"),
        ("Toggle auto re-check", "run the SEV schedule's re-checks while this screen is open (w)", "auto_recheck"),
        ("Add a note to the timeline", "'update: …', 'root-cause: …' set the kind; '-20m …' back-dates (n)", "note"),
        ("Mark or unmark the selected timeline event as key", "(k)", "mark_key"),
        ("Move the incident to another status", "contained, verifying, resolved, closed (t)", "status"),
        ("Export the postmortem", "write the markdown to a file (e)", "export"),
        (
            "Gather evidence",
            "read the audit logs: reads / no reads / unknown per object, members and not (g)",
            "evidence",
        ),
        ("Refresh everything", "re-read the store (r)", "reload"),
        ("Help: key bindings", "?", "app.help"),
    ]

    def __init__(self, incident_id: int, *, auto_recheck: bool = False):
        super().__init__()
        self.incident_id = incident_id
        self.auto_recheck = auto_recheck
        self._mounting: dict[str, AwaitMount] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="incident-head")
        with Horizontal(id="incident-body"):
            with VerticalScroll(id="playbook-sidebar"):
                yield PlaybookChecklist(self.incident_id, id="checklist")
            with TabbedContent(id="tabs", initial="scope"):
                with TabPane("1 Scope", id="scope"):
                    yield ScopePane(self.incident_id)
                for tab, title in (
                    ("revoke", "2 Revoke"),
                    ("verify", "3 Verify"),
                    ("timeline", "4 Timeline"),
                    ("postmortem", "5 Postmortem"),
                    ("evidence", "6 Evidence"),
                ):
                    yield TabPane(title, id=tab)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.refresh_head()
        self.set_interval(30, self.refresh_head)  # keeps "declared … ago" honest
        if self.auto_recheck:
            self.call_after_refresh(self._pane, "verify")  # due re-checks run from the verify pane, opened or not

    def refresh_head(self) -> None:
        """The header answers: how bad, where we are, who leads, for how long, and did the fix hold."""
        with self.app.reporting_errors("loading the incident"):
            incident = self.app.wb.incidents.get(self.incident_id)
            level = self.app.wb.policy.level(incident.sev)
            regressed = bool(self.app.wb.verification.open_regressions(self.incident_id))
            self.sub_title = f"{incident.ref}: {incident.title}"
            line1 = Text.assemble(
                (f"{incident.ref} ", "bold"),
                sev_badge(incident.sev),
                " ",
                status_label(incident.status),
                "  ",
                regression_marker(regressed),
                " " if regressed else "",
                (incident.title, "bold"),
            )
            since = format_duration(self.app.clock() - incident.declared_at) if incident.declared_at else "unknown"
            line2 = Text(
                f"commander {incident.commander or '-'} · declared {format_local(incident.declared_at, self.app.wb.zone)} "
                f"({since} ago) · updates every {level.update_every} · pages {', '.join(level.page) or 'nobody'}",
                style="dim",
            )
            self.query_one("#incident-head", Static).update(Text("\n").join([line1, line2]))

    def changed(self) -> None:
        """Something happened (scan, apply, check, note): refresh what summarises it."""
        self.refresh_head()
        for widget in self.query("PlaybookChecklist, TimelinePane, VerifyPane").results():
            if widget.is_mounted:  # one still mounting reads the store when it is
                widget.reload()
        if self.query_one("#tabs", TabbedContent).active == "postmortem":
            for pane in self.query("PostmortemPane"):
                pane.reload()

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab opened by key, action or mouse: its pane exists from here on, and some panes re-read the store."""
        pane = await self._pane(event.pane.id)
        if event.pane.id in RELOAD_ON_OPEN:
            pane.reload()

    async def _pane(self, tab: str) -> Widget:
        """The tab's pane, mounted on its first use: a hidden tab costs nothing until someone opens it."""
        tab_pane = self.query_one(f"#{tab}", TabPane)
        if not tab_pane.children:
            self._mounting[tab] = tab_pane.mount(self._new_pane(tab))
        if tab in self._mounting:
            await self._mounting[tab]
        return tab_pane.children[0]

    def _new_pane(self, tab: str) -> Widget:
        if tab == "revoke":
            from sevtool.tui.widgets.revoke_pane import RevokePane

            return RevokePane(self.incident_id)
        if tab == "verify":
            from sevtool.tui.widgets.verify_pane import VerifyPane

            return VerifyPane(self.incident_id, auto_recheck=self.auto_recheck)
        if tab == "timeline":
            from sevtool.tui.widgets.timeline_pane import TimelinePane

            return TimelinePane(self.incident_id)
        if tab == "evidence":
            from sevtool.tui.widgets.evidence_pane import EvidencePane

            return EvidencePane(self.incident_id)
        from sevtool.tui.widgets.postmortem_pane import PostmortemPane

        return PostmortemPane(self.incident_id)

    async def _open(self, tab: str, focus: str | None = None):
        """Show the tab with the keyboard on its main widget (or `focus`); returns its pane, mounted and ready.

        Actions that open a dialog open their tab first: when the dialog closes, the keyboard comes back here.
        """
        self.query_one("#tabs", TabbedContent).active = tab
        pane = await self._pane(tab)
        self.set_focus(self.query_one(focus or TAB_FOCUS[tab]))
        return pane

    # --- actions --------------------------------------------------------------------------------

    def action_back(self) -> None:
        """Escape leaves a text box first, then the screen."""
        if isinstance(self.focused, Input):
            self.set_focus(self.query_one(TAB_FOCUS[self.query_one("#tabs", TabbedContent).active]))
        else:
            self.app.show_incident_list()

    async def action_tab(self, tab: str) -> None:
        if tab in TABS:
            await self._open(tab)

    async def action_scan(self) -> None:
        (await self._open("scope")).scan()

    async def action_filter(self) -> None:
        (await self._open("scope")).focus_filter()

    async def action_plan(self) -> None:
        (await self._open("revoke")).plan()

    async def action_apply(self) -> None:
        (await self._open("revoke")).confirm_apply()

    async def action_undo(self) -> None:
        (await self._open("revoke")).confirm_undo()

    async def action_verify(self) -> None:
        (await self._open("verify")).run_check()

    async def action_auto_recheck(self) -> None:
        (await self._open("verify")).toggle_auto()

    async def action_note(self) -> None:
        await self._open("timeline", focus="#note")

    async def action_mark_key(self) -> None:
        (await self._open("timeline")).toggle_key()

    async def action_evidence(self) -> None:
        (await self._open("evidence")).run_evidence()

    async def action_export(self) -> None:
        (await self._open("postmortem")).export()

    def action_reload(self) -> None:
        self.changed()
        self.query_one(ScopePane).load_findings()
        for pane in self.query("RevokePane"):
            pane.reload()

    def action_status(self) -> None:
        from sevtool.tui.screens.status import StatusScreen

        def chosen(new: Status | None) -> None:
            if new is None:
                return
            with self.app.reporting_errors(f"moving to {new.value}"):
                incident = self.app.wb.incidents.set_status(self.incident_id, new)
                self.app.notify(f"{incident.ref} is now {incident.status.value}", timeout=4)
            self.changed()

        with self.app.reporting_errors("loading the incident"):
            self.app.push_screen(StatusScreen(self.app.wb.incidents.get(self.incident_id)), chosen)
