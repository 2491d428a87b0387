"""The findings of a scan, one line per object x principal x path x privilege, coloured by DSS."""

from __future__ import annotations

from rich.style import Style

from sevtool.core.exposure import Finding
from sevtool.describe import via
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


def finding_text(f: Finding) -> str:
    """What the filter matches against: every visible column, lower-cased."""
    return " ".join(finding_cells(f)).lower()


class FindingsTable(VirtualTable[Finding]):
    COLUMNS = [("object", 46), ("dss", 9), ("principal", 16), ("path", 19), ("via", 40), ("priv", 10)]

    def cells(self, row: Finding) -> list[str]:
        return finding_cells(row)

    def cell_style(self, row: Finding, column: int) -> Style:
        return DSS_STYLES.get(row.dss, Style(color="#ff6b6b", italic=True)) if column == 1 else Style()
