"""Small visual vocabulary shared by every screen: SEV badges and status labels."""

from __future__ import annotations

from rich.text import Text

from sevtool.core.incident import Status

# 0 is the most critical: the lower the level, the hotter the colour.
SEV_STYLES = {
    0: "bold white on #b00020",
    1: "bold white on #d9480f",
    2: "bold black on #f08c00",
    3: "bold black on #fab005",
    4: "bold black on #74c0fc",
    5: "bold black on #adb5bd",
}

STATUS_STYLES = {
    Status.DECLARED: "bold #ff6b6b",
    Status.CONTAINED: "bold #ffa94d",
    Status.VERIFYING: "bold #ffd43b",
    Status.RESOLVED: "bold #69db7c",
    Status.CLOSED: "#868e96",
}


def sev_badge(sev: int) -> Text:
    return Text(f" SEV {sev} ", style=SEV_STYLES.get(sev, "reverse"))


def status_label(status: Status) -> Text:
    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def regression_marker(regressed: bool) -> Text:
    return Text("↺ regressed", style="bold #ff6b6b") if regressed else Text("")
