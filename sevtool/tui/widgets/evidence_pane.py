"""Evidence tab: who read the exposed objects during the exposure window, from the audit logs, and what the logs cover.

The paths box is prefilled from the team config's `[evidence] logs` (the demo writes its pgaudit directory there).
The use case runs in a worker thread: a month of logs takes a while, and the screen keeps answering meanwhile.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from sevtool.core.timeparse import format_utc

ANSWER_STYLE = {
    "reads": ("READ", "bold #ff6b6b"),
    "no_reads": ("no reads", "#69db7c"),
    "unknown": ("UNKNOWN", "bold #ffd43b"),
}


def _readers(readers) -> str:
    return ", ".join(f"{r.role} ({r.reads})" for r in readers) or "-"


def _span(a, b) -> str:
    return f"{format_utc(a) if a else '(unknown start)'} → {format_utc(b)}"


def _short_span(a, b) -> str:
    """For the table's narrow column: UTC, minutes, the end's date only when it differs."""
    start = f"{a:%m-%d %H:%M}" if a else "(unknown)"
    return f"{start}→{b:%H:%M}" if a and a.date() == b.date() else f"{start}→{b:%m-%d %H:%M}"


class EvidencePane(Vertical):
    class Done(Message):
        """The evidence report is ready (posted from the worker thread)."""

        def __init__(self, report) -> None:
            super().__init__()
            self.report = report

    def __init__(self, incident_id: int, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.report = None
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static(
            "Audit logs (pgaudit log files or directory; Unity Catalog: system.access.audit JSON Lines), comma-separated. "
            "Enter or g reads them. Statement text is never shown.",
            id="evidence-help",
        )
        yield Input(placeholder="/var/log/postgresql, /tmp/audit.jsonl.gz", id="evidence-logs")
        yield Static("No evidence read yet.", id="evidence-summary")
        yield DataTable(id="evidence-objects", cursor_type="row", zebra_stripes=True)
        yield Static("", id="evidence-detail")

    def on_mount(self) -> None:
        table = self.query_one("#evidence-objects", DataTable)
        for label, width in (
            ("object", 32),
            ("answer", 9),
            ("reads", 6),
            ("members", 24),
            ("not members", 20),
            ("unknown time (UTC)", None),
        ):
            table.add_column(label, width=width)
        with self.app.reporting_errors("reading the team config"):
            self.query_one("#evidence-logs", Input).value = ", ".join(self.app.wb.evidence.configured_logs())

    def paths(self) -> list[str]:
        return [p.strip() for p in self.query_one("#evidence-logs", Input).value.split(",") if p.strip()]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "evidence-logs":
            event.stop()
            self.run_evidence()

    def run_evidence(self) -> None:
        paths = self.paths()
        if not paths:
            self.app.notify("Give the audit log paths first.", severity="warning", timeout=6)
            self.query_one("#evidence-logs", Input).focus()
            return
        self.running = True
        self.query_one("#evidence-summary", Static).update(Text(f"Reading {len(paths)} path(s)…", style="italic"))
        self._gather(paths)

    @work(thread=True, exclusive=True, group="evidence")
    def _gather(self, paths: list[str]) -> None:
        report = None
        with self.app.reporting_errors("reading the evidence"):
            report = self.app.wb.evidence.evidence(self.incident_id, sources=paths, now=self.app.clock())
        self.post_message(self.Done(report))

    def on_evidence_pane_done(self, message: Done) -> None:
        self.running = False
        if message.report is None:
            self.query_one("#evidence-summary", Static).update("Evidence could not be read: see the notification.")
            return
        self.show(message.report)
        self.screen.changed()  # the evidence summary is a timeline event now

    def show(self, report) -> None:
        self.report = report
        counts, logs = report.counts, report.logs
        members, others = report.readers(True), report.readers(False)
        covered = "; ".join(_span(a, b) for a, b in report.coverage) or "nothing"
        summary = Text.assemble(
            (f"{counts['reads']} of {len(report.objects)} object(s) read", "bold"),
            f", {counts['no_reads']} no reads, ",
            (f"{counts['unknown']} unknown", "bold #ffd43b" if counts["unknown"] else ""),
            f" · {len(members)} member reader(s), {len(others)} non-member reader(s) of {', '.join(report.principals)}",
            f"\n{logs['files']} file(s), {logs['entries']:,} entries, {logs['audit']:,} audit records; "
            f"{logs['corrupt']} corrupt line(s); covered: {covered} · timeline event {report.event_seq}",
            style="",
        )
        self.query_one("#evidence-summary", Static).update(summary)
        table = self.query_one("#evidence-objects", DataTable)
        table.clear()
        for o in sorted(
            report.objects, key=lambda o: ({"reads": 0, "unknown": 1, "no_reads": 2}[o.answer], o.object_fqn)
        ):
            label, style = ANSWER_STYLE[o.answer]
            unknown = ", ".join(_short_span(a, b) for a, b in o.uncovered) or "-"
            table.add_row(
                o.object_fqn,
                Text(label, style=style),
                str(sum(r.reads for r in o.readers)),
                _readers([r for r in o.readers if r.member]),
                _readers([r for r in o.readers if not r.member]),
                unknown,
                key=o.object_fqn,
            )
        notes = [f"note: {n}" for n in report.notes]
        self.query_one("#evidence-detail", Static).update(Text("\n".join(notes), style="dim"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.report is None or event.row_key is None:
            return
        found = next((o for o in self.report.objects if o.object_fqn == event.row_key.value), None)
        if found is None:
            return
        lines = [f"{found.object_fqn}: {found.reason} (window start: {found.start_source})"]
        lines += [f"  covered: {_span(a, b)}" for a, b in found.covered]
        lines += [f"  unknown: {_span(a, b)}" for a, b in found.uncovered]
        lines += [
            f"  {'member' if r.member else 'not a member'} {r.role}: {r.reads} read(s), {format_utc(r.first)} → {format_utc(r.last)}"
            for r in found.readers
        ]
        self.query_one("#evidence-detail", Static).update(Text("\n".join(lines)))
