"""Help: the key bindings of every screen, generated from the bindings themselves so it cannot go stale."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

GENERAL = """\
# sevtool keys

**ctrl+p** opens the command palette: every action of the current screen, by name.
**?** this help · **ctrl+q** quit · **escape** back / cancel · **tab** next field or pane.
"""


def _bindings_table(title: str, bindings: list[Binding]) -> str:
    rows = [f"| `{b.key_display or b.key}` | {b.description} |" for b in bindings if b.description]
    return f"\n## {title}\n\n| key | action |\n|---|---|\n" + "\n".join(rows) + "\n"


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened from come first."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, current: type | None = None):
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        from sevtool.tui.screens.declare import DeclareScreen
        from sevtool.tui.screens.guard import GuardScreen
        from sevtool.tui.screens.incident import IncidentScreen
        from sevtool.tui.screens.incident_list import IncidentListScreen

        sections = [
            ("Incident", IncidentScreen),
            ("Incident list", IncidentListScreen),
            ("Declare form", DeclareScreen),
            ("Guard", GuardScreen),
        ]
        sections.sort(key=lambda section: section[1] is not self.current)
        text = GENERAL + "".join(_bindings_table(title, screen.BINDINGS) for title, screen in sections)
        with VerticalScroll(classes="modal", id="help"):
            yield Markdown(text)
