"""Scope tab: run a scan, see the exposure summarised by DSS and access path, browse every finding."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, ProgressBar, Static

from sevtool.core.exposure import ExposureSummary, Finding
from sevtool.tui.widgets.findings_table import FindingsTable, finding_text


class ScopePane(Vertical):
    """Findings load in a thread after first paint; the filter runs over them in memory."""

    def __init__(self, incident_id: int, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.findings: list[Finding] = []
        self._haystack: list[str] = []
        self.load_ms: int | None = None

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
        yield Input(placeholder="/ filter findings: schema, table, principal, path, DSS 4 ...", id="findings-filter")
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

    def on_unmount(self) -> None:
        """Let the findings go with the screen: Textual keeps a finished worker, and through it this pane."""
        self.findings, self._haystack = [], []

    # --- scan -------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("scan-"):
            event.stop()
            self.scan()

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
        findings = outcome.result.findings
        self._show_summary(outcome.summary, outcome.result.objects_in_scope, outcome.version)
        self._show_findings(findings, [finding_text(f) for f in findings])
        self.screen.changed()

    # --- findings ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="findings")
    def load_findings(self) -> None:
        """Everything proportional to the findings happens here, off the UI thread: the summary first, counted
        by the store in a blink, then the findings themselves, which take seconds at 45,000."""
        started = time.perf_counter()
        with self.app.reporting_errors("loading findings"):
            latest = self.app.wb.scanning.aggregate_summary(self.incident_id)
            if latest is None:
                return
            version, summary = latest
            self.app.call_from_thread(self._show_summary, summary, version.objects, version.version, loading=True)
            findings = self.app.wb.scanning.findings(self.incident_id, version.version)
            haystack = [finding_text(f) for f in findings]
            self.load_ms = int((time.perf_counter() - started) * 1000)
            self.app.call_from_thread(self._show_summary, summary, version.objects, version.version)
            self.app.call_from_thread(self._show_findings, findings, haystack)

    def _show_summary(self, summary: ExposureSummary, in_scope: int, version: int, *, loading: bool = False) -> None:
        by_dss = "  ".join(
            f"{label}: {count:,}" for label, count in sorted(summary.by_dss.items(), key=_most_sensitive_first)
        )
        by_path = "  ".join(f"{path}: {count:,}" for path, count in summary.by_path.items())
        by_principal = "  ".join(f"{p}: {n:,} objects" for p, n in summary.by_principal.items())
        self.query_one("#scope-summary", Static).update(
            f"[b]Scope v{version}[/b]: [b]{summary.objects:,}[/b] of {in_scope:,} objects in scope readable "
            f"([b]{summary.findings:,}[/b] findings){' · loading findings…' if loading else ''}\n"
            f"by DSS   {by_dss or '-'}\nby path  {by_path or '-'}\nwho      {by_principal or '-'}"
        )

    def _show_findings(self, findings: list[Finding], haystack: list[str]) -> None:
        self.findings = findings
        self._haystack = haystack
        self.apply_filter(self.query_one("#findings-filter", Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "findings-filter":
            self.apply_filter(event.value)

    def apply_filter(self, text: str) -> None:
        """Every word must appear somewhere in the row: 'hr dss 4 role' narrows to those."""
        words = text.lower().split()
        table = self.query_one(FindingsTable)
        if not words:
            table.show(self.findings)
        else:
            table.show(
                [f for f, hay in zip(self.findings, self._haystack, strict=False) if all(w in hay for w in words)]
            )
        table.border_subtitle = (
            f"{len(table.rows):,} of {len(self.findings):,} findings" if words else f"{len(self.findings):,} findings"
        )

    def _busy(self, busy: bool, label: str = "") -> None:
        self.query_one("#scan-progress").set_class(not busy, "hidden")
        if busy:
            self.query_one("#scope-summary", Static).update(label)


def _most_sensitive_first(item: tuple[str, int]) -> int:
    label = item[0]
    return -5 if label == "unrated" else -int(label.split()[-1])
