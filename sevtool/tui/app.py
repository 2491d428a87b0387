"""The sevtool Textual app. `create_app(wb)` is the only way in, for the CLI, the demo and the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from textual.app import App
from textual.binding import Binding

from sevtool.core.timeparse import utcnow
from sevtool.errors import SevtoolError
from sevtool.tui.commands import ScreenActions


class SevtoolApp(App):
    """Keyboard-first workbench. Screens call use-cases on `self.wb`; slow ones run in thread workers."""

    CSS_PATH = "app.tcss"
    TITLE = "sevtool"
    SUB_TITLE = "data-exposure incident response"
    COMMANDS = App.COMMANDS | {ScreenActions}
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
    ]

    def __init__(
        self,
        wb,
        *,
        clock: Callable[[], datetime] = utcnow,
        open_incident: int | None = None,
        banner: str | None = None,
        auto_recheck: bool = False,
    ):
        super().__init__()
        self.wb = wb
        self.clock = clock
        self.open_incident = open_incident
        self.banner = banner
        self.auto_recheck = auto_recheck

    def on_mount(self) -> None:
        """Opening straight onto an incident builds only that screen; the list waits until escape asks for it."""
        if self.open_incident is None or not self.show_incident(self.open_incident):
            self.show_incident_list()
        if self.banner:
            self.notify(self.banner, title="sevtool", timeout=20, markup=False)

    def show_incident(self, incident_id: int) -> bool:
        """Push the incident's screen; False (and a notification saying why) if it cannot be opened."""
        from sevtool.tui.screens.incident import IncidentScreen

        with self.reporting_errors("opening the incident"):
            self.wb.incidents.get(incident_id)
            self.push_screen(IncidentScreen(incident_id, auto_recheck=self.auto_recheck))
            return True
        return False

    def show_incident_list(self) -> None:
        """Back to the list below the incident, or a new list in its place when the app opened on the incident."""
        from sevtool.tui.screens.incident_list import IncidentListScreen

        below = self.screen_stack[-2] if len(self.screen_stack) > 1 else None
        if isinstance(below, IncidentListScreen):
            self.pop_screen()
        elif below is None:
            self.push_screen(IncidentListScreen())
        else:
            self.switch_screen(IncidentListScreen())

    def action_help(self) -> None:
        from sevtool.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(type(self.screen)))

    @contextmanager
    def reporting_errors(self, doing: str) -> Iterator[None]:
        """Turn a failure into a notification that says what failed and what to do, never a traceback.

        Safe from worker threads: `notify` is thread-safe.
        """
        try:
            yield
        except SevtoolError as exc:
            message = exc.message + (f"\n→ {exc.hint}" if exc.hint else "")
            self.notify(message, title=f"{doing} failed", severity="error", timeout=20, markup=False)
        except Exception as exc:  # a bug: still a notification, with the details in the Textual log
            self.log.error(f"{doing} failed", exc)
            self.notify(
                f"{type(exc).__name__}: {exc}\n→ this is a sevtool bug; the details are in the Textual log",
                title=f"{doing} failed unexpectedly",
                severity="error",
                timeout=30,
                markup=False,
            )


def create_app(
    wb,
    *,
    clock: Callable[[], datetime] = utcnow,
    open_incident: int | None = None,
    banner: str | None = None,
    auto_recheck: bool = False,
) -> SevtoolApp:
    """`auto_recheck`: run the SEV schedule's due re-checks from the incident screen (the demo turns it on)."""
    return SevtoolApp(wb, clock=clock, open_incident=open_incident, banner=banner, auto_recheck=auto_recheck)
