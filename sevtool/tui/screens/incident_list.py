"""The first screen: every incident, hottest first, with what needs attention at a glance."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from sevtool.core.incident import Status
from sevtool.core.timeparse import format_duration
from sevtool.tui.widgets.badges import regression_marker, sev_badge, status_label
from sevtool.tui.widgets.keys_footer import KeysFooter


class IncidentListScreen(Screen):
    BINDINGS = [
        Binding("n", "declare", "Declare"),
        Binding("enter", "open", "Open", show=True),
        Binding("r", "refresh", "Refresh"),
        Binding("g", "guard", "Guard"),
        Binding("q", "app.quit", "Quit"),
    ]
    PALETTE = [
        ("Declare a new incident", "open the declare form with the SEV rubric (n)", "declare"),
        ("Open the selected incident", "scope, revoke, verify, timeline, postmortem (enter)", "open"),
        ("Refresh the incident list", "re-read the store (r)", "refresh"),
        ("Guard: standing exposure policies", "policies, last run, state, violations, exceptions (g)", "guard"),
        ("Help: key bindings", "every key on every screen (?)", "app.help"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="list-empty")
        yield DataTable(id="incidents", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one("#incidents", DataTable)
        table.add_column("id", key="id", width=8)
        table.add_column("sev", key="sev", width=7)
        table.add_column("status", key="status", width=10)
        table.add_column("age", key="age", width=8)
        table.add_column("", key="regressed", width=12)
        table.add_column("commander", key="commander", width=12)
        table.add_column("title", key="title")
        table.focus()

    def on_screen_resume(self) -> None:
        """Shown for the first time, or again after an incident screen (whose status may have moved)."""
        self.action_refresh()

    def action_refresh(self) -> None:
        """Re-read the list; the cursor stays on the incident it was on (the one just left, coming back)."""
        with self.app.reporting_errors("loading incidents"):
            incidents = self.app.wb.incidents.all()
            regressed = self._regressed({i.id for i in incidents})
            now = self.app.clock()
            open_first = sorted(incidents, key=lambda i: (i.status in (Status.RESOLVED, Status.CLOSED), i.sev, -i.id))
            table = self.query_one("#incidents", DataTable)
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
            table.clear()
            for incident in open_first:
                age = format_duration(now - incident.declared_at).split(" ")[0] if incident.declared_at else ""
                table.add_row(
                    incident.ref,
                    sev_badge(incident.sev),
                    status_label(incident.status),
                    age,
                    regression_marker(incident.id in regressed),
                    incident.commander or "",
                    incident.title,
                    key=str(incident.id),
                )
            if selected in table.rows:
                table.move_cursor(row=table.get_row_index(selected))
            empty = self.query_one("#list-empty", Static)
            empty.update("No incidents yet. Press n to declare one (the form shows the SEV rubric).")
            empty.display = not incidents

    def _regressed(self, incident_ids: set[int]) -> set[int]:
        """Incidents whose fix did not stick: a regression no clean check has answered yet."""
        return {i for i in incident_ids if self.app.wb.verification.open_regressions(i)}

    def action_declare(self) -> None:
        from sevtool.tui.screens.declare import DeclareScreen

        def opened(incident_id: int | None) -> None:
            if incident_id is not None:
                self.app.show_incident(incident_id)

        self.app.push_screen(DeclareScreen(), opened)

    def action_guard(self) -> None:
        from sevtool.tui.screens.guard import GuardScreen

        self.app.push_screen(GuardScreen())

    def action_open(self) -> None:
        table = self.query_one("#incidents", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.show_incident(int(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.app.show_incident(int(event.row_key.value))
