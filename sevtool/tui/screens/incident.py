"""One incident: where the response stands, the playbook, and a tab per phase of the work."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration, format_local
from sevtool.tui.widgets.badges import sev_badge, status_label
from sevtool.tui.widgets.timeline_pane import TimelinePane

TABS = ("scope", "revoke", "verify", "timeline", "postmortem")


class IncidentScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Incidents"),
        Binding("1", "tab('scope')", "Scope", show=False),
        Binding("2", "tab('revoke')", "Revoke", show=False),
        Binding("3", "tab('verify')", "Verify", show=False),
        Binding("4", "tab('timeline')", "Timeline", show=False),
        Binding("5", "tab('postmortem')", "Postmortem", show=False),
        Binding("n", "note", "Note"),
        Binding("k", "mark_key", "Key event", show=False),
        Binding("t", "status", "Status"),
    ]
    PALETTE = [
        ("Back to the incident list", "escape", "back"),
        ("Scope tab", "what is exposed, by DSS and path (1)", "tab('scope')"),
        ("Revoke tab", "plan, apply, undo (2)", "tab('revoke')"),
        ("Verify tab", "checks, schedule, regressions (3)", "tab('verify')"),
        ("Timeline tab", "events, notes, key events (4)", "tab('timeline')"),
        ("Postmortem tab", "preview and export (5)", "tab('postmortem')"),
        ("Add a note to the timeline", "n", "note"),
        ("Mark or unmark the selected timeline event as key", "k", "mark_key"),
        ("Move the incident to the next status", "contained, verifying, resolved, closed (t)", "status"),
        ("Help: key bindings", "?", "app.help"),
    ]

    def __init__(self, incident_id: int):
        super().__init__()
        self.incident_id = incident_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="incident-head")
        with Horizontal(id="incident-body"):
            with TabbedContent(id="tabs", initial="timeline"):
                with TabPane("1 Scope", id="scope"):
                    yield Static("", id="scope-placeholder")
                with TabPane("4 Timeline", id="timeline"):
                    yield TimelinePane(self.incident_id, id="timeline-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_head()

    def on_screen_resume(self) -> None:
        self.refresh_head()

    def refresh_head(self) -> None:
        """The header answers: how bad, where we are, who leads, for how long."""
        with self.app.reporting_errors("loading the incident"):
            incident = self.app.wb.incidents.get(self.incident_id)
            level = self.app.wb.policy.level(incident.sev)
            self.sub_title = f"{incident.ref}: {incident.title}"
            now = self.app.clock()
            line1 = Text.assemble((f"{incident.ref} ", "bold"), sev_badge(incident.sev), " ", status_label(incident.status), "  ",
                                  (incident.title, "bold"))
            since = format_duration(now - incident.declared_at) if incident.declared_at else "unknown"
            line2 = Text(f"commander {incident.commander or '-'} · declared {format_local(incident.declared_at, self.app.wb.zone)} "
                         f"({since} ago) · updates every {level.update_every} · pages {', '.join(level.page) or 'nobody'}", style="dim")
            self.query_one("#incident-head", Static).update(Text("\n").join([line1, line2]))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        if tab in TABS:
            self.query_one("#tabs", TabbedContent).active = tab

    def action_note(self) -> None:
        self.action_tab("timeline")
        self.query_one("#note").focus()

    def action_mark_key(self) -> None:
        self.action_tab("timeline")
        self.query_one(TimelinePane).toggle_key()

    def action_status(self) -> None:
        from sevtool.tui.screens.status import StatusScreen

        def chosen(new: Status | None) -> None:
            if new is None:
                return
            with self.app.reporting_errors(f"moving to {new.value}"):
                incident = self.app.wb.incidents.set_status(self.incident_id, new)
                self.app.notify(f"{incident.ref} is now {incident.status.value}", timeout=4)
            self.refresh_all()

        with self.app.reporting_errors("loading the incident"):
            self.app.push_screen(StatusScreen(self.app.wb.incidents.get(self.incident_id)), chosen)

    def refresh_all(self) -> None:
        self.refresh_head()
        self.query_one(TimelinePane).reload()
