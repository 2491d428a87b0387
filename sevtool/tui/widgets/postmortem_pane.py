"""Postmortem tab: the document compiled from the incident, previewed as rendered markdown, exported to a file."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static


class PostmortemPane(Vertical):
    def __init__(self, incident_id: int, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.markdown = ""

    def compose(self) -> ComposeResult:
        yield Static(
            "Compiled from the incident, timeline, ledger, checks and notes. e exports it to a file; r re-renders.",
            id="postmortem-help",
        )
        with VerticalScroll(id="postmortem-scroll"):
            yield Markdown("*Compiling the postmortem…*", id="postmortem")

    def reload(self) -> None:
        self._compile()

    @work(thread=True, exclusive=True, group="postmortem")
    def _compile(self) -> None:
        with self.app.reporting_errors("rendering the postmortem"):
            markdown = self.app.wb.postmortem.render(self.incident_id)
            self.app.call_from_thread(self._show, markdown)

    def _show(self, markdown: str) -> None:
        self.markdown = markdown
        self.query_one("#postmortem", Markdown).update(markdown)

    def export(self) -> None:
        from sevtool.tui.screens.prompt import PromptScreen

        default = str(Path.cwd() / f"INC-{self.incident_id}-postmortem.md")
        self.app.push_screen(PromptScreen("Export the postmortem to", value=default, confirm="Export"), self._export)

    def _export(self, path: str | None) -> None:
        if not path:
            return
        with self.app.reporting_errors("exporting the postmortem"):
            target = Path(path).expanduser()
            markdown, event = self.app.wb.postmortem.export(self.incident_id, target)
            self._show(markdown)
            self.app.notify(
                f"Written to {target} ({len(markdown.encode()):,} bytes); recorded as timeline event {event.seq}.",
                title="postmortem exported",
                timeout=10,
                markup=False,
            )
            self.screen.changed()
