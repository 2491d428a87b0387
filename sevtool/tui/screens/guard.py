"""The Guard screen: the team's standing exposure policies, how each stood at its last run, and their exceptions.

Reached from the incident list (g). Enter opens the incident a violated policy opened; c checks every policy now
(what `sevtool guard --once` does), in a worker so the screen stays responsive.
"""

from __future__ import annotations

from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from sevtool.core.timeparse import format_duration, format_local
from sevtool.tui.widgets.keys_footer import KeysFooter

STATE_LABEL = {"holds": "holds", "violated": "VIOLATED", "error": "ERROR", "never": "not run yet"}


class GuardScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Open incident", show=True),
        Binding("c", "check", "Check now"),
        Binding("r", "refresh", "Refresh"),
    ]
    PALETTE = [
        ("Check every policy now", "what `sevtool guard --once` does (c)", "check"),
        ("Open the policy's incident", "the incident its violation opened (enter)", "open"),
        ("Refresh", "re-read the guard's state (r)", "refresh"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="guard-empty")
        yield Static("Policies", classes="section-title")
        yield DataTable(id="policies", cursor_type="row", zebra_stripes=True)
        yield Static("Exceptions", classes="section-title")
        yield DataTable(id="exceptions", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        policies = self.query_one("#policies", DataTable)
        for label, key in [
            ("policy", "policy"),
            ("target", "target"),
            ("principals", "principals"),
            ("min DSS", "dss"),
            ("SEV", "sev"),
            ("state", "state"),
            ("objects", "objects"),
            ("last run", "last"),
            ("incident", "incident"),
            ("exceptions", "exc"),
        ]:
            policies.add_column(label, key=key)
        exceptions = self.query_one("#exceptions", DataTable)
        for label in ("policy", "objects", "principals", "owner", "reason", "expires", "state"):
            exceptions.add_column(label, key=label)
        policies.focus()
        self.action_refresh()

    def action_refresh(self) -> None:
        with self.app.reporting_errors("loading the guard's policies"):
            now = self.app.clock()
            zone = self.app.wb.zone
            rows = self.app.wb.guard.overview(now)
            policies = self.query_one("#policies", DataTable)
            exceptions = self.query_one("#exceptions", DataTable)
            policies.clear()
            exceptions.clear()
            for row in rows:
                live = [e for e in row["exceptions"] if not e["expired"]]
                expired = len(row["exceptions"]) - len(live)
                summary = f"{len(live)} live" + (f", {expired} EXPIRED" if expired else "") if row["exceptions"] else ""
                last = f"{format_duration(now - row['last_run_at']).split(' ')[0]} ago" if row["last_run_at"] else ""
                state = STATE_LABEL.get(row["state"], row["state"]) + (f": {row['error']}" if row["error"] else "")
                policies.add_row(
                    row["policy"],
                    row["target"],
                    ", ".join(row["principals"]),
                    str(row["min_dss"]),
                    str(row["sev"]),
                    state,
                    str(row["objects"]) if row["state"] != "never" else "",
                    last,
                    f"INC-{row['incident']}" if row["incident"] else "",
                    summary,
                    key=row["policy"],
                )
                for n, e in enumerate(row["exceptions"]):
                    expires = datetime.fromisoformat(e["expires"])
                    left = (
                        f"expired {format_duration(now - expires).split(' ')[0]} ago"
                        if e["expired"]
                        else f"in {format_duration(expires - now).split(' ')[0]}"
                    )
                    exceptions.add_row(
                        row["policy"],
                        ", ".join(e["objects"]),
                        ", ".join(e["principals"]) or "(all)",
                        e["owner"],
                        e["reason"],
                        format_local(expires, zone),
                        "EXPIRED: a violation again" if e["expired"] else f"live, ends {left}",
                        key=f"{row['policy']}:{n}",
                    )
            empty = self.query_one("#guard-empty", Static)
            empty.update("No policies. Add [[policy]] tables to the team config (see `sevtool guard --help`).")
            empty.display = not rows
            self._incidents = {row["policy"]: row["incident"] for row in rows}

    def action_open(self) -> None:
        table = self.query_one("#policies", DataTable)
        if not table.row_count:
            return
        policy = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        incident = getattr(self, "_incidents", {}).get(policy)
        if incident is None:
            self.app.notify(f"policy {policy} has no incident: it has not been violated", title="guard")
            return
        self.app.show_incident(incident)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "policies":
            self.action_open()

    @work(thread=True, exclusive=True, group="guard")
    def action_check(self) -> None:
        with self.app.reporting_errors("checking the policies"):
            runs = self.app.wb.guard.run_once()
            violated = sum(r.state == "violated" for r in runs)
            errors = sum(r.state == "error" for r in runs)
            self.app.call_from_thread(self.action_refresh)
            self.app.notify(
                f"{len(runs)} policies checked: {violated} violated, {errors} could not be checked",
                title="guard",
                severity="error" if violated or errors else "information",
            )
