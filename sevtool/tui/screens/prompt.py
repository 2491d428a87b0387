"""Ask for one line of text (a file name, a reason); returns it, or None when cancelled."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, *, value: str = "", confirm: str = "OK"):
        super().__init__()
        self.question = question
        self.value = value
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="prompt"):
            yield Static(self.question, classes="modal-title", markup=False)
            yield Input(value=self.value, id="answer")
            yield Static(f"enter: {self.confirm.lower()} · escape: cancel", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)
