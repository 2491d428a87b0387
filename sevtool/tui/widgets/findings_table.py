"""A virtual findings table: renders only the visible lines, so 45,000 findings paint as fast as 45.

Textual's DataTable builds a row object per finding up front; with a whole warehouse in scope that
is seconds of work before the first paint. Here rows are plain `Finding`s and each frame formats the
few dozen on screen.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sevtool.core.exposure import Finding

COLUMNS: list[tuple[str, int]] = [("object", 46), ("dss", 8), ("principal", 16), ("path", 19), ("via", 40), ("priv", 10)]
DSS_STYLES = {4: Style(color="#ff6b6b", bold=True), 3: Style(color="#ffa94d"), 2: Style(color="#ffd43b"), 1: Style(color="#adb5bd")}
HEADER_STYLE = Style(bold=True, underline=True)
CURSOR_STYLE = Style(reverse=True)


def _cell(text: str, width: int) -> str:
    return (text[: width - 2] + "… ") if len(text) > width - 1 else text.ljust(width)


def finding_cells(f: Finding) -> list[str]:
    return [f.object_fqn + (f".{f.column}" if f.column else ""), f.dss_label, f.principal, f.path.value, f.via, f.privilege]


def finding_text(f: Finding) -> str:
    """What the filter matches against: every visible column, lower-cased."""
    return " ".join(finding_cells(f)).lower()


class FindingsTable(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "move(-1)", show=False), Binding("down", "move(1)", show=False),
        Binding("pageup", "page(-1)", show=False), Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False), Binding("end", "jump(-1)", show=False),
    ]
    DEFAULT_CSS = "FindingsTable { height: 1fr; }"

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, finding: Finding | None):
            super().__init__()
            self.finding = finding

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows: list[Finding] = []
        self._width = sum(width for _, width in COLUMNS)

    def show(self, findings: list[Finding]) -> None:
        self.rows = findings
        self.virtual_size = Size(self._width, len(findings) + 1)  # +1: the header line
        self.cursor = 0
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    @property
    def body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            text = "".join(_cell(name, w) for name, w in COLUMNS)
            return Strip([Segment(text.ljust(self._width), HEADER_STYLE)]).crop(scroll_x, scroll_x + width)
        index = scroll_y + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        finding = self.rows[index]
        cells = finding_cells(finding)
        base = CURSOR_STYLE if index == self.cursor and self.has_focus else Style()
        segments = []
        for (_, w), text, col in zip(COLUMNS, cells, range(len(COLUMNS))):
            style = base + DSS_STYLES.get(finding.dss, Style()) if col == 1 else base
            segments.append(Segment(_cell(text, w), style))
        return Strip(segments, self._width).crop(scroll_x, scroll_x + width)

    def watch_cursor(self, cursor: int) -> None:
        _, top = self.scroll_offset
        if cursor < top:
            self.scroll_to(y=cursor, animate=False)
        elif cursor >= top + self.body_height:
            self.scroll_to(y=cursor - self.body_height + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self.rows[cursor] if self.rows else None))

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
