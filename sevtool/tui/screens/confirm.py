"""Yes/no before anything that changes a target: the question says exactly what will happen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "dismiss(False)", "No"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str, *, confirm: str = "Yes", variant: str = "error"):
        super().__init__()
        self.question = question
        self.confirm = confirm
        self.variant = variant

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="confirm"):
            yield Static(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.confirm} (y)", variant=self.variant, id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class CollateralConfirmScreen(ModalScreen[str | None]):
    """Apply a plan some of whose actions take access beyond the incident's scope (their collateral).

    Accepting that harm is its own choice, never the default: y applies and holds those actions back (they stay
    planned), c runs them too, n cancels. Dismisses with "hold", "accept" or None.
    """

    BINDINGS = [
        Binding("escape,n", "dismiss(None)", "Cancel"),
        Binding("y", "dismiss('hold')", "Apply, hold"),
        Binding("c", "dismiss('accept')", "Accept collateral"),
    ]

    def __init__(self, question: str, *, held: int):
        super().__init__()
        self.question = question
        self.held = held

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="confirm-collateral"):
            yield Static(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"Apply, hold {self.held} back (y)", variant="primary", id="hold")
                yield Button("Apply all, accept collateral (c)", variant="error", id="accept")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "no" else event.button.id)
