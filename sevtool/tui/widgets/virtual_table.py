"""A virtual table: renders only the visible lines, so 45,000 rows paint as fast as 45.

Textual's DataTable builds a row object per row up front; with a whole warehouse in scope that is
seconds of work before the first paint. Here rows stay plain objects and each frame formats the few
dozen on screen. Subclasses name the columns and how to turn a row into cells. The rows need not all be
in memory: a sequence may answer None for a row it has not read yet, shown as a placeholder line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Row = TypeVar("Row")
HEADER_STYLE = Style(bold=True, underline=True)
CURSOR_STYLE = Style(reverse=True)
PLACEHOLDER_STYLE = Style(dim=True)


def fit(text: str, width: int) -> str:
    return (text[: width - 2] + "… ") if len(text) > width - 1 else text.ljust(width)


class VirtualTable(ScrollView, Generic[Row], can_focus=True):
    BINDINGS = [
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
    ]
    DEFAULT_CSS = "VirtualTable { height: 1fr; }"
    COLUMNS: list[tuple[str, int]] = []

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, table: VirtualTable, row: Any):
            super().__init__()
            self.table = table
            self.row = row

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows: Sequence[Row | None] = []
        self._width = sum(width for _, width in self.COLUMNS)

    def cells(self, row: Row) -> list[str]:
        raise NotImplementedError

    def cell_style(self, row: Row, column: int) -> Style:
        return Style()

    def show(self, rows: Sequence[Row | None], *, keep_cursor: bool = False) -> None:
        self.rows = rows
        self.virtual_size = Size(self._width, len(rows) + 1)  # +1: the header line
        if keep_cursor and rows:
            self.cursor = min(self.cursor, len(rows) - 1)
        else:
            self.cursor = 0
            self.scroll_to(0, 0, animate=False)
        self.refresh()

    @property
    def highlighted(self) -> Row | None:
        return self.rows[self.cursor] if self.rows else None

    @property
    def body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            text = "".join(fit(name, w) for name, w in self.COLUMNS)
            return Strip([Segment(text, HEADER_STYLE)]).crop(scroll_x, scroll_x + width)
        index = scroll_y + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        base = CURSOR_STYLE if index == self.cursor and self.has_focus else Style()
        if row is None:
            return Strip([Segment(fit("…", self._width), base + PLACEHOLDER_STYLE)], self._width).crop(
                scroll_x, scroll_x + width
            )
        segments = [
            Segment(fit(text, w), base + self.cell_style(row, col))
            for col, ((_, w), text) in enumerate(zip(self.COLUMNS, self.cells(row), strict=False))
        ]
        return Strip(segments, self._width).crop(scroll_x, scroll_x + width)

    def watch_cursor(self, cursor: int) -> None:
        self._keep_cursor_in_view()
        self.refresh()
        self.post_message(self.Highlighted(self, self.highlighted))

    def on_resize(self) -> None:
        """A pane above that grows (a summary arriving) must not push the highlighted row out of sight."""
        self.call_after_refresh(self._keep_cursor_in_view)

    def _keep_cursor_in_view(self) -> None:
        _, top = self.scroll_offset
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + self.body_height:
            self.scroll_to(y=self.cursor - self.body_height + 1, animate=False)

    def action_move(self, delta: int) -> None:
        if self.rows:
            self.cursor = min(max(self.cursor + delta, 0), len(self.rows) - 1)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.body_height)

    def action_jump(self, where: int) -> None:
        if self.rows:
            self.cursor = where % len(self.rows)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_unmount(self) -> None:
        """Let the rows go with the screen, even if something still holds the widget."""
        self.rows = []
