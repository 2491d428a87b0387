"""Move an incident along its state machine; only the moves it allows are offered."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from sevtool.core.incident import TRANSITIONS, Incident, Status, is_regression


class StatusScreen(ModalScreen[Status | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, incident: Incident):
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        moves = sorted(
            TRANSITIONS[self.incident.status],
            key=lambda s: (is_regression(self.incident.status, s), list(Status).index(s)),
        )
        with Vertical(classes="modal", id="status-form"):
            yield Static(f"{self.incident.ref} is {self.incident.status.value}. Move it to:", classes="modal-title")
            yield OptionList(
                *[
                    Option(
                        f"{s.value}"
                        + ("  (back: the fix did not hold)" if is_regression(self.incident.status, s) else ""),
                        id=s.value,
                    )
                    for s in moves
                ],
                id="moves",
            )
            if not moves:
                yield Static("closed is final: nothing to move to.")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Status(event.option.id))
