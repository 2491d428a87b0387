"""Timeline tab: every event in the order it happened, a note box, and key-event marking."""

from __future__ import annotations

from datetime import timedelta

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from sevtool.core.timeparse import format_local, format_utc
from sevtool.errors import InvalidTime


class TimelinePane(Vertical):
    """Notes may be back-dated: "-20m the on-call saw the alert" puts it 20 minutes ago."""

    def __init__(self, incident_id: int, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id

    def compose(self) -> ComposeResult:
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield Input(
            placeholder="note; 'update: …' / 'root-cause: …' set its kind, '-20m …' back-dates it; enter saves",
            id="note",
        )

    def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        self.show_local = self.app.wb.zone.utcoffset(self.app.clock()) != timedelta(0)
        columns = (
            [("#", 4), ("when (UTC)", 20)]
            + ([("local", 24)] if self.show_local else [])
            + [("key", 3), ("kind", 14), ("who", 8), ("what", None)]
        )
        for label, width in columns:
            table.add_column(label, width=width)
        self.reload()

    def reload(self) -> None:
        wb = self.app.wb
        with self.app.reporting_errors("loading the timeline"):
            events = wb.incidents.timeline(self.incident_id)
            keys = wb.incidents.key_events(events)
            table = self.query_one("#events", DataTable)
            table.clear()
            for event in events:
                key = event.seq in keys
                style = "bold" if key else ""
                local = [format_local(event.at, wb.zone)] if self.show_local else []
                table.add_row(
                    str(event.seq),
                    format_utc(event.at),
                    *local,
                    Text("★" if key else "", style="#ffd43b"),
                    Text(event.kind, style=_KIND_STYLES.get(event.kind, "")),
                    event.actor,
                    Text(event.summary, style=style),
                    key=str(event.seq),
                )
            if events:
                table.move_cursor(row=len(events) - 1)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "note":
            return
        event.stop()
        text, at = self._split_time(event.value.strip())
        kind, text = _split_kind(text)
        if not text:
            return
        with self.app.reporting_errors("adding the note"):
            self.app.wb.incidents.note(self.incident_id, text, at=at, kind=kind)
            event.input.value = ""
            self.screen.changed()
            self.query_one("#events", DataTable).focus()
            self.app.notify(f"{kind} added to the timeline", timeout=3)

    def _split_time(self, raw: str):
        """'-20m text' and '14:05 text' are back-dated; anything else is a note at the current time."""
        first, _, rest = raw.partition(" ")
        if rest and (first[:1] in "+-" or ":" in first) and any(ch.isdigit() for ch in first):
            try:
                return rest.strip(), self.app.wb.incidents.parse_time(first)
            except InvalidTime:
                pass
        return raw, None

    def selected_seq(self) -> int | None:
        table = self.query_one("#events", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def toggle_key(self) -> None:
        seq = self.selected_seq()
        if seq is None:
            return
        wb = self.app.wb
        with self.app.reporting_errors("marking the key event"):
            is_key = seq in wb.incidents.key_events(wb.incidents.timeline(self.incident_id))
            wb.incidents.mark_key(self.incident_id, seq, key=not is_key)
            self.reload()
            self.query_one("#events", DataTable).move_cursor(row=self._row_of(seq))
            self.app.notify(f"event {seq} {'unmarked' if is_key else 'marked as key'}", timeout=3)

    def _row_of(self, seq: int) -> int:
        return self.query_one("#events", DataTable).get_row_index(str(seq))


# Note kinds the postmortem and the playbook read; typed as a prefix: "update: first stakeholder update sent".
NOTE_KINDS = (
    "note",
    "update",
    "comms",
    "detection",
    "summary",
    "root-cause",
    "trigger",
    "contributing",
    "went-well",
    "went-wrong",
    "lucky",
)


def _split_kind(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition(":")
    if sep and first.strip().lower() in NOTE_KINDS:
        return first.strip().lower(), rest.strip()
    return "note", text


_KIND_STYLES = {
    "declared": "bold #ff6b6b",
    "regression": "bold #ff6b6b",
    "status_changed": "#ffa94d",
    "note": "#74c0fc",
    "key_marked": "#ffd43b",
}
