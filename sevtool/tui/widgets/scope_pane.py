"""Scope tab: run a scan, see the exposure summarised by DSS and access path, browse every finding."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, ProgressBar, Static

from sevtool.core.exposure import ExposureSummary
from sevtool.services.finding_pages import FindingPage
from sevtool.tui.widgets.finding_window import PAGE, FindingWindow
from sevtool.tui.widgets.findings_table import FindingsFilter, FindingsTable

# Typing pauses this long before a filter reads the store: a fast typist's keys then cost one query, not one each.
FILTER_SETTLE_S = 0.15


class ScopePane(Vertical):
    """Findings come from the store a page at a time, in threads: the first page after first paint, the rest as
    the table scrolls to them, and each filter as a new first page, the latest typed winning."""

    def __init__(self, incident_id: int, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self._generation = 0  # bumped by each filter and reload: a page for an older one is dropped
        # (generation, words) of the text in the filter, set in one assignment: the filter's thread reads it
        self._typed: tuple[int, tuple[str, ...]] = (0, ())
        self._filtering = False  # one filter query at a time: typing queues the latest text, not a query per key
        self._paging = False  # likewise one page read at a time, for the newest page still on screen
        self._pages_wanted: list[int] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="scan-form"):
            yield Label("target")
            yield Input(placeholder="target name or DSN", id="scan-target")
            yield Label("principals")
            yield Input(value="all_employees", placeholder="all_employees, PUBLIC", id="scan-principals")
            yield Label("schemas")
            yield Input(placeholder="all", id="scan-schemas")
            yield Label("min DSS")
            yield Input(placeholder="any", id="scan-min-dss", max_length=1, restrict="[1-4]?")
        yield ProgressBar(total=None, show_eta=False, id="scan-progress", classes="hidden")
        yield Static(
            "Not scanned yet. Fill in the target and press s (or enter in the form) to scan.", id="scope-summary"
        )
        yield FindingsFilter(
            placeholder="/ filter findings: schema, table, principal, path, DSS 4 ... (enter keeps, esc clears)",
            id="findings-filter",
        )
        yield FindingsTable(id="findings")

    def on_mount(self) -> None:
        wb = self.app.wb
        with self.app.reporting_errors("loading the scope"):
            versions = wb.scanning.versions(self.incident_id)
            if versions:
                latest = versions[-1]
                self.query_one("#scan-target", Input).value = latest.scope.target
                self.query_one("#scan-principals", Input).value = ", ".join(latest.scope.principals)
                self.query_one("#scan-schemas", Input).value = ", ".join(latest.scope.schemas)
                self.query_one("#scan-min-dss", Input).value = str(latest.scope.min_dss or "")
                self.query_one("#scope-summary", Static).update(
                    f"Scope v{latest.version}: {latest.findings:,} findings on {latest.objects:,} objects in scope · loading findings…"
                )
                self.call_after_refresh(self.load_findings)  # paint first, then load: a big scope takes seconds
            elif wb.settings.team.targets:
                self.query_one("#scan-target", Input).value = next(iter(wb.settings.team.targets))

    def focus_filter(self) -> None:
        self.query_one(FindingsFilter).take_keyboard()

    # --- scan -------------------------------------------------------------------------------

    def scan(self) -> None:
        target = self.query_one("#scan-target", Input).value.strip()
        principals = [p.strip() for p in self.query_one("#scan-principals", Input).value.split(",") if p.strip()]
        schemas = [s.strip() for s in self.query_one("#scan-schemas", Input).value.split(",") if s.strip()]
        min_dss = self.query_one("#scan-min-dss", Input).value.strip()
        if not target:
            self.app.notify(
                "Name the target to scan: a [targets.NAME] from the config, or a DSN", severity="warning", title="scan"
            )
            self.query_one("#scan-target", Input).focus()
            return
        self._busy(True, f"Scanning {target} for access by {', '.join(principals) or '?'}…")
        self._scan(target, principals, schemas, int(min_dss) if min_dss else None)

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self, target: str, principals: list[str], schemas: list[str], min_dss: int | None) -> None:
        outcome = None
        with self.app.reporting_errors("scanning"):
            outcome = self.app.wb.scanning.scan(self.incident_id, target, principals, schemas=schemas, min_dss=min_dss)
        self.app.call_from_thread(self._scanned, outcome)

    def _scanned(self, outcome) -> None:
        self._busy(False)
        if outcome is None:
            self.query_one("#scope-summary", Static).update(
                "The scan did not complete (the notification says why). Fix it and press s to scan again."
            )
            return
        self.app.notify(
            f"Scan v{outcome.version}: {outcome.summary.objects:,} objects readable ({outcome.summary.findings:,} findings) "
            f"in {outcome.result.duration_ms / 1000:.1f} s",
            title="scan done",
            timeout=6,
        )
        self._show_summary(outcome.summary, outcome.result.objects_in_scope, outcome.version)
        focused = self.screen.focused
        if isinstance(focused, Input) and (focused.id or "").startswith("scan-"):  # started by enter in the form
            self.query_one(FindingsTable).focus()  # the keys go back to the screen's bindings
        self.load_findings(summary=False)
        self.screen.changed()

    # --- findings ---------------------------------------------------------------------------

    def load_findings(self, *, summary: bool = True) -> None:
        """The first page for the filter as it stands, then (unless a scan just said it) the summary."""
        self._generation += 1
        self._load(self._generation, self._words(), summary)

    @work(thread=True, exclusive=True, group="findings")
    def _load(self, generation: int, words: tuple[str, ...], summary: bool) -> None:
        """A page is one query whatever the scope's size; the summary is counted by the store, so neither
        reads every finding back."""
        with self.app.reporting_errors("loading findings"):
            first = self.app.wb.finding_pages.page(self.incident_id, words, 0, PAGE)
            if first is None:
                return
            self.app.call_from_thread(self._show_first_page, generation, words, first)
            latest = self.app.wb.scanning.aggregate_summary(self.incident_id) if summary else None
            if latest is not None:
                version, counts = latest
                self.app.call_from_thread(self._show_summary, counts, version.objects, version.version)

    def _show_summary(self, summary: ExposureSummary, in_scope: int, version: int) -> None:
        by_dss = "  ".join(
            f"{label}: {count:,}" for label, count in sorted(summary.by_dss.items(), key=_most_sensitive_first)
        )
        by_path = "  ".join(f"{path}: {count:,}" for path, count in summary.by_path.items())
        by_principal = "  ".join(f"{p}: {n:,} objects" for p, n in summary.by_principal.items())
        self.query_one("#scope-summary", Static).update(
            f"[b]Scope v{version}[/b]: [b]{summary.objects:,}[/b] of {in_scope:,} objects in scope readable "
            f"([b]{summary.findings:,}[/b] findings)\n"
            f"by DSS   {by_dss or '-'}\nby path  {by_path or '-'}\nwho      {by_principal or '-'}"
        )

    def _show_first_page(self, generation: int, words: tuple[str, ...], first: FindingPage) -> None:
        if generation != self._generation:
            return  # the filter changed since this page was asked for
        table = self.query_one(FindingsTable)
        self._pages_wanted.clear()
        table.show(FindingWindow(generation, words, first))
        table.border_subtitle = (
            f"{first.matching:,} of {first.total:,} findings, most sensitive first"
            if words
            else f"{first.total:,} findings, most sensitive first"
        )

    def on_findings_table_page_wanted(self, event: FindingsTable.PageWanted) -> None:
        if event.window is self.query_one(FindingsTable).rows:
            self._pages_wanted.append(event.offset)
            self._next_page()

    def _next_page(self) -> None:
        """Read the newest page asked for that is still on screen; forget the ones scrolled past, so holding
        page-down through 200,000 findings does not queue a read for every page it went by."""
        table = self.query_one(FindingsTable)
        window = table.rows
        if self._paging or not isinstance(window, FindingWindow):
            return
        top = table.scroll_offset.y
        while self._pages_wanted:
            offset = self._pages_wanted.pop()
            if offset < top + table.body_height and top < offset + PAGE:
                self._paging = True
                self._fetch_page(window.generation, window.words, offset)
                return
            window.forget(offset)

    @work(thread=True, group="finding-pages")
    def _fetch_page(self, generation: int, words: tuple[str, ...], offset: int) -> None:
        """Given what to read, not the window: Textual keeps finished workers, and a window holds findings."""
        page = None
        with self.app.reporting_errors("loading findings"):
            page = self.app.wb.finding_pages.page(self.incident_id, words, offset, PAGE)
        self.app.call_from_thread(self._page_arrived, generation, page)

    def _page_arrived(self, generation: int, page: FindingPage | None) -> None:
        self._paging = False
        table = self.query_one(FindingsTable)
        if page is not None and isinstance(table.rows, FindingWindow) and table.rows.generation == generation:
            table.rows.add(page)
            table.refresh()
        self._next_page()

    # --- filter -----------------------------------------------------------------------------

    def _words(self) -> tuple[str, ...]:
        return tuple(self.query_one(FindingsFilter).value.split())

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "findings-filter":
            self._generation += 1
            self._typed = (self._generation, self._words())
            table = self.query_one(FindingsTable)
            if table.border_subtitle:  # findings are shown, so a page will come
                table.border_subtitle = "filtering…"
            if not self._filtering:
                self._filtering = True
                self._filter()

    @work(thread=True, group="filter")
    def _filter(self) -> None:
        """Off the UI thread, so keys keep coming while the store looks: at 200,000 findings a filter takes
        a good part of a second. It runs the text as it is when the typing pauses, and once it is done,
        the text typed meanwhile, if any: the latest filter wins, and queries never pile up."""
        time.sleep(FILTER_SETTLE_S)
        generation, words = self._typed
        first = None
        with self.app.reporting_errors("filtering findings"):
            first = self.app.wb.finding_pages.page(self.incident_id, words, 0, PAGE)
        self.app.call_from_thread(self._filtered, generation, words, first)

    def _filtered(self, generation: int, words: tuple[str, ...], first: FindingPage | None) -> None:
        if generation != self._generation:
            self._filter()  # typed on while it ran: run the text as it is now
            return
        self._filtering = False
        if first is not None:
            self._show_first_page(generation, words, first)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("scan-"):
            event.stop()
            self.scan()

    def on_findings_filter_left(self) -> None:
        self.query_one(FindingsTable).focus()

    def _busy(self, busy: bool, label: str = "") -> None:
        self.query_one("#scan-progress").set_class(not busy, "hidden")
        if busy:
            self.query_one("#scope-summary", Static).update(label)


def _most_sensitive_first(item: tuple[str, int]) -> int:
    label = item[0]
    return -5 if label == "unrated" else -int(label.split()[-1])
