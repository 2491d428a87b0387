"""The findings of a scan, one line per object x principal x path x privilege, coloured by DSS, worst first;
and the filter box above them, which takes the keyboard only when asked."""

from __future__ import annotations

from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Input

from sevtool.core.exposure import Finding
from sevtool.describe import via
from sevtool.tui.widgets.finding_window import FindingWindow
from sevtool.tui.widgets.virtual_table import VirtualTable

DSS_STYLES = {
    4: Style(color="#ff6b6b", bold=True),
    3: Style(color="#ffa94d"),
    2: Style(color="#ffd43b"),
    1: Style(color="#adb5bd"),
}


def finding_cells(f: Finding) -> list[str]:
    return [
        f.object_fqn + (f".{f.column}" if f.column else ""),
        f.dss_label,
        f.principal,
        f.path.value,
        via(f),
        f.privilege,
    ]


class FindingsTable(VirtualTable[Finding]):
    """Shows a `FindingWindow`: a line whose page has not arrived is a placeholder, and asks for it."""

    COLUMNS = [("object", 46), ("dss", 9), ("principal", 16), ("path", 19), ("via", 40), ("priv", 10)]

    class PageWanted(Message):
        def __init__(self, window: FindingWindow, offset: int):
            super().__init__()
            self.window = window
            self.offset = offset

    def cells(self, row: Finding) -> list[str]:
        return finding_cells(row)

    def cell_style(self, row: Finding, column: int) -> Style:
        return DSS_STYLES.get(row.dss, Style(color="#ff6b6b", italic=True)) if column == 1 else Style()

    def render_line(self, y: int) -> Strip:
        window = self.rows
        index = self.scroll_offset.y + y - 1
        if y and isinstance(window, FindingWindow) and index < len(window) and window[index] is None:
            offset = window.ask(index)
            if offset is not None:
                self.post_message(self.PageWanted(window, offset))
        return super().render_line(y)


class FindingsFilter(Input, can_focus=False):
    """Focusable only after `/`: otherwise focus moving on its own (a scan ending, a dialog closing, tab) could
    land here, and s, p, a ... would type into the filter instead of acting. Escape clears it and lets go;
    enter keeps it and lets go."""

    BINDINGS = [
        Binding("enter", "submit", "Keep filter"),
        Binding("escape", "cancel", "Clear filter"),
    ]

    class Left(Message):
        """The filter let go of the keyboard: the findings table takes it."""

    def take_keyboard(self) -> None:
        self.can_focus = True
        self.focus()

    def action_cancel(self) -> None:
        self.value = ""
        self.post_message(self.Left())

    async def action_submit(self) -> None:
        self.post_message(self.Left())

    def on_blur(self) -> None:
        self.can_focus = False
