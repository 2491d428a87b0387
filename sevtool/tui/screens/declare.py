"""Declare an incident: title, SEV with the rubric beside it, commander, playbook."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from sevtool.core.severity import RUBRIC

DEFAULT_PLAYBOOK = "data-exposure"


class DeclareScreen(ModalScreen[int | None]):
    """Returns the new incident's id, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Declare")]
    PALETTE = [("Declare", "create the incident (ctrl+s)", "submit"), ("Cancel", "close the form (escape)", "cancel")]

    def compose(self) -> ComposeResult:
        policy = self.app.wb.policy
        with Vertical(id="declare-form", classes="modal"):
            yield Static("Declare an incident", classes="modal-title")
            with VerticalScroll(id="declare-fields"):
                yield Label("What is exposed to whom")
                yield Input(placeholder="e.g. employee telemetry tables readable by all_employees", id="title")
                yield Label("SEV (0 = most critical)")
                yield Select([(policy.level(n).label, n) for n in range(6)], value=2, allow_blank=False, id="sev")
                yield Static("", id="sev-meaning")
                yield Label("Commander")
                yield Input(placeholder="who runs the response", id="commander", value=self.app.wb.settings.who)
                yield Label("Playbook")
                playbooks = self._playbooks()
                yield Select(
                    [(name, name) for name in playbooks],
                    allow_blank=True,
                    prompt="(none)",
                    id="playbook-choice",
                    value=DEFAULT_PLAYBOOK if DEFAULT_PLAYBOOK in playbooks else Select.NULL,
                )
                yield Static(RUBRIC, id="rubric")
            with Horizontal(classes="buttons"):
                yield Button("Declare", variant="error", id="declare")
                yield Button("Cancel", id="cancel")

    def _playbooks(self) -> list[str]:
        """Valid playbooks only; a broken one is for `sevtool playbook list` to explain, not for the middle of an incident."""
        names: list[str] = []
        with self.app.reporting_errors("loading playbooks"):
            names = [p.name for p in self.app.wb.playbooks.list() if p.error is None]
        return names

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()
        self._show_meaning(2)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "sev" and isinstance(event.value, int):
            self._show_meaning(event.value)

    def _show_meaning(self, sev: int) -> None:
        level = self.app.wb.policy.level(sev)
        self.query_one("#sev-meaning", Static).update(
            f"{level.meaning}\nUpdates every {level.update_every}; re-checks at {', '.join(level.recheck)}; pages {', '.join(level.page) or 'nobody'}"
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit() if event.button.id == "declare" else self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        title = self.query_one("#title", Input).value
        sev = self.query_one("#sev", Select).value
        commander = self.query_one("#commander", Input).value.strip() or None
        playbook = self.query_one("#playbook-choice", Select).value
        with self.app.reporting_errors("declaring"):
            incident = self.app.wb.incidents.declare(
                title, sev, commander=commander, playbook=None if playbook is Select.NULL else playbook
            )
            self.app.notify(
                f"Declared {incident.ref} SEV {incident.sev}: {incident.title}", title="declared", markup=False
            )
            self.dismiss(incident.id)
