"""One incident: where the response stands, the playbook, and a tab per phase of the work."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Header, Input, Static, TabbedContent, TabPane

from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_local
from sevtool.tui.widgets.badges import regression_marker, sev_badge, status_label
from sevtool.tui.widgets.keys_footer import KeysFooter
from sevtool.tui.widgets.playbook_checklist import PlaybookChecklist
from sevtool.tui.widgets.postmortem_pane import PostmortemPane
from sevtool.tui.widgets.revoke_pane import RevokePane
from sevtool.tui.widgets.scope_pane import ScopePane
from sevtool.tui.widgets.timeline_pane import TimelinePane
from sevtool.tui.widgets.verify_pane import VerifyPane, open_regressions

TABS = ("scope", "revoke", "verify", "timeline", "postmortem")
# Where the keyboard lands when a tab is opened, or when escape leaves a text box.
TAB_FOCUS = {"scope": "#findings", "revoke": "#actions", "verify": "#checks", "timeline": "#events", "postmortem": "#postmortem-scroll"}


class IncidentScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('scope')", "Scope", show=False),
        Binding("2", "tab('revoke')", "Revoke", show=False),
        Binding("3", "tab('verify')", "Verify", show=False),
        Binding("4", "tab('timeline')", "Timeline", show=False),
        Binding("5", "tab('postmortem')", "Postmortem", show=False),
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
        Binding("r", "reload", "Refresh", show=False),
    ]
    PALETTE = [
        ("Back to the incident list", "escape", "back"),
        ("Scope tab", "what is exposed, by DSS and path (1)", "tab('scope')"),
        ("Revoke tab", "plan, apply, undo (2)", "tab('revoke')"),
        ("Verify tab", "checks, schedule, regressions (3)", "tab('verify')"),
        ("Timeline tab", "events, notes, key events (4)", "tab('timeline')"),
        ("Postmortem tab", "preview and export (5)", "tab('postmortem')"),
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
        ("Refresh everything", "re-read the store (r)", "reload"),
        ("Help: key bindings", "?", "app.help"),
    ]

    def __init__(self, incident_id: int, *, auto_recheck: bool = False):
        super().__init__()
        self.incident_id = incident_id
        self.auto_recheck = auto_recheck
        self._tab_after_dialog: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="incident-head")
        with Horizontal(id="incident-body"):
            with VerticalScroll(id="playbook-sidebar"):
                yield PlaybookChecklist(self.incident_id, id="checklist")
            with TabbedContent(id="tabs", initial="scope"):
                with TabPane("1 Scope", id="scope"):
                    yield ScopePane(self.incident_id)
                # The hidden tabs mount right after the first paint, so opening a big incident shows something at once.
                with TabPane("2 Revoke", id="revoke"):
                    yield Lazy(RevokePane(self.incident_id))
                with TabPane("3 Verify", id="verify"):
                    yield Lazy(VerifyPane(self.incident_id, auto_recheck=self.auto_recheck))
                with TabPane("4 Timeline", id="timeline"):
                    yield Lazy(TimelinePane(self.incident_id))
                with TabPane("5 Postmortem", id="postmortem"):
                    yield Lazy(PostmortemPane(self.incident_id))
        yield KeysFooter()

    def on_mount(self) -> None:
        self.refresh_head()
        self._focus_tab("scope")
        self.set_interval(30, self.refresh_head)  # keeps "declared … ago" honest

    def on_screen_resume(self) -> None:
        self.refresh_head()
        tab, self._tab_after_dialog = self._tab_after_dialog, None
        if tab:
            self._show_tab(tab)
            self._focus_tab(tab)

    def refresh_head(self) -> None:
        """The header answers: how bad, where we are, who leads, for how long, and did the fix hold."""
        with self.app.reporting_errors("loading the incident"):
            incident = self.app.wb.incidents.get(self.incident_id)
            level = self.app.wb.policy.level(incident.sev)
            regressed = bool(open_regressions(self.app.wb.incidents.timeline(self.incident_id)))
            self.sub_title = f"{incident.ref}: {incident.title}"
            line1 = Text.assemble((f"{incident.ref} ", "bold"), sev_badge(incident.sev), " ", status_label(incident.status), "  ",
                                  regression_marker(regressed), " " if regressed else "", (incident.title, "bold"))
            since = format_duration(self.app.clock() - incident.declared_at) if incident.declared_at else "unknown"
            line2 = Text(f"commander {incident.commander or '-'} · declared {format_local(incident.declared_at, self.app.wb.zone)} "
                         f"({since} ago) · updates every {level.update_every} · pages {', '.join(level.page) or 'nobody'}", style="dim")
            self.query_one("#incident-head", Static).update(Text("\n").join([line1, line2]))

    def changed(self) -> None:
        """Something happened (scan, apply, check, note): refresh what summarises it."""
        self.refresh_head()
        for widget in self.query("PlaybookChecklist, TimelinePane, VerifyPane").results():
            widget.reload()
        if self.query_one("#tabs", TabbedContent).active == "postmortem":
            for pane in self.query(PostmortemPane):
                pane.reload()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane_type = {"postmortem": PostmortemPane, "revoke": RevokePane}.get(event.pane.id)
        for pane in self.query(pane_type) if pane_type else []:
            pane.reload()

    # --- actions --------------------------------------------------------------------------------

    def action_back(self) -> None:
        """Escape leaves a text box first, then the screen."""
        if isinstance(self.focused, Input):
            for widget in self.query(TAB_FOCUS[self.query_one("#tabs", TabbedContent).active]):
                widget.focus()
        else:
            self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        if tab in TABS:
            self._show_tab(tab)
            self._focus_tab(tab)

    def _show_tab(self, tab: str, *, dialog: bool = False) -> None:
        """Switch tabs without moving focus: for actions that open a dialog, which must keep the keyboard.

        When the dialog closes, Textual gives focus back to the widget that had it, and focusing a widget
        in a hidden tab shows that tab; `on_screen_resume` moves focus to this tab instead.
        """
        self.query_one("#tabs", TabbedContent).active = tab
        self._tab_after_dialog = tab if dialog else None

    def _focus_tab(self, tab: str, attempts: int = 50) -> None:
        """Focus the tab's main widget; a lazily mounted tab needs a few refreshes before it exists."""
        def focus() -> None:
            widgets = self.query(TAB_FOCUS[tab])
            if widgets:
                widgets.first().focus()
            elif attempts > 1:
                self._focus_tab(tab, attempts - 1)

        self.call_after_refresh(focus)

    def _pane(self, pane_type):
        """The pane, or None in the instant before a lazily mounted tab is there."""
        panes = self.query(pane_type)
        return panes.first() if panes else None

    def action_scan(self) -> None:
        self.action_tab("scope")
        if pane := self._pane(ScopePane):
            pane.scan()

    def action_filter(self) -> None:
        self._show_tab("scope")
        if pane := self._pane(ScopePane):
            pane.focus_filter()

    def action_plan(self) -> None:
        self.action_tab("revoke")
        if pane := self._pane(RevokePane):
            pane.plan()

    def action_apply(self) -> None:
        self._show_tab("revoke", dialog=True)
        if pane := self._pane(RevokePane):
            pane.confirm_apply()

    def action_undo(self) -> None:
        self._show_tab("revoke", dialog=True)
        if pane := self._pane(RevokePane):
            pane.confirm_undo()

    def action_verify(self) -> None:
        self.action_tab("verify")
        if pane := self._pane(VerifyPane):
            pane.run_check()

    def action_auto_recheck(self) -> None:
        self.action_tab("verify")
        if pane := self._pane(VerifyPane):
            pane.toggle_auto()

    def action_note(self) -> None:
        self._show_tab("timeline")
        for note in self.query("#note"):
            note.focus()

    def action_mark_key(self) -> None:
        self.action_tab("timeline")
        if pane := self._pane(TimelinePane):
            pane.toggle_key()

    def action_export(self) -> None:
        self._show_tab("postmortem", dialog=True)
        if pane := self._pane(PostmortemPane):
            pane.export()

    def action_reload(self) -> None:
        self.changed()
        self.query_one(ScopePane).load_findings()
        for pane in self.query(RevokePane):
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
