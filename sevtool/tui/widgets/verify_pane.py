"""Verify tab: did the fix stick? Check history, the re-check schedule with a countdown, regressions in red, and
the just-in-time access exceptions with the time each has left."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, ProgressBar, Static

from sevtool.core.timeline import Event
from sevtool.core.timeparse import format_duration, format_utc

LAPSED = ("exception_lapsed", "beyond_exception")  # regressions an access exception's own role causes


class VerifyPane(Vertical):
    """With auto re-check on, due checks of the SEV schedule run here, as `sevtool watch` would."""

    def __init__(self, incident_id: int, *, auto_recheck: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.incident_id = incident_id
        self.auto_recheck = auto_recheck
        self.checking = False
        self._next: dict | None = None
        self._gate: str | None = None
        self._scheduled = False
        self._can_start = False
        self._exceptions: list = []

    def compose(self) -> ComposeResult:
        yield Static("", id="regression-banner", classes="banner-regression hidden")
        yield Static("", id="next-check")
        yield ProgressBar(total=None, show_eta=False, id="check-progress", classes="hidden")
        with Horizontal(id="verify-tables"):
            yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="schedule", cursor_type="row")
        yield DataTable(id="access-exceptions", cursor_type="row", classes="hidden")

    def on_mount(self) -> None:
        checks = self.query_one("#checks", DataTable)
        checks.border_title = "checks"
        for label, width in [
            ("#", 3),
            ("ran (UTC)", 14),
            ("result", 8),
            ("exposed", 8),
            ("findings", 8),
            ("regressions", 11),
        ]:
            checks.add_column(label, width=width)
        schedule = self.query_one("#schedule", DataTable)
        schedule.border_title = "re-check schedule"
        for label, width in [("rnd", 3), ("#", 2), ("offset", 6), ("due (UTC)", 14), ("status", 10), ("late", 5)]:
            schedule.add_column(label, width=width)
        exceptions = self.query_one("#access-exceptions", DataTable)
        exceptions.border_title = "access exceptions (sevtool access)"
        for label, width in [
            ("#", 3),
            ("role", 16),
            ("objects", 24),
            ("why", 22),
            ("approver", 10),
            ("until (UTC)", 14),
        ]:
            exceptions.add_column(label, width=width)
        exceptions.add_column("left", width=20, key="left")
        self.reload()
        self.set_interval(1, self._tick)

    def reload(self) -> None:
        verification = self.app.wb.verification
        with self.app.reporting_errors("loading checks"):
            history = verification.history(self.incident_id)
            schedule = verification.schedule(self.incident_id)
            self._next = verification.next_check(self.incident_id, now=self.app.clock())
            self._gate = verification.resolution_gate(self.incident_id) if schedule and self._next is None else None
            self._scheduled = bool(schedule)
            self._can_start = not schedule and self.app.wb.incidents.get(self.incident_id).contained_at is not None
            table = self.query_one("#checks", DataTable)
            table.clear()
            for c in reversed(history):
                result = Text("clean", style="bold #69db7c") if c["clean"] else Text("EXPOSED", style="bold #ff6b6b")
                table.add_row(
                    str(c["check"]),
                    _short(c["ran_at"]),
                    result,
                    f"{c['exposed_objects']:,}",
                    f"{c['findings']:,}",
                    Text(f"{c['regressions']:,}", style="bold #ff6b6b" if c["regressions"] else ""),
                )
            slots = self.query_one("#schedule", DataTable)
            slots.clear()
            for s in schedule:
                late = format_duration_short(s["delay_seconds"]) if s["delay_seconds"] else ""
                slots.add_row(str(s["round"]), str(s["idx"] + 1), s["offset"], _short(s["due_at"]), s["status"], late)
            self._show_banner(verification.open_regressions(self.incident_id))
            self._show_exceptions(self.app.wb.access.list(self.incident_id))
            self._tick()

    def _show_exceptions(self, exceptions: list) -> None:
        table = self.query_one("#access-exceptions", DataTable)
        table.set_class(not exceptions, "hidden")
        table.clear()
        self._exceptions = exceptions
        for e in exceptions:
            table.add_row(
                str(e.number),
                e.role,
                ", ".join(e.objects),
                e.why,
                e.approver or "none",
                _short(format_utc(e.until)),
                self._left(e),
                key=str(e.number),
            )

    def _left(self, exception) -> Text:
        """The countdown while it is active; afterwards how it ended (red while it is past due and not revoked)."""
        now = self.app.clock()
        if exception.active(now):
            return Text(f"{format_duration(exception.remaining(now))} left", style="bold #ffd43b")
        if exception.due(now):
            return Text("EXPIRED, not revoked", style="bold #ff6b6b")
        return Text(exception.state(now), style="dim")

    def _show_banner(self, regressions: list[Event]) -> None:
        banner = self.query_one("#regression-banner", Static)
        banner.set_class(not regressions, "hidden")
        if regressions:
            objects = sum(e.data.get("count", 1) for e in regressions)
            lines = [f"⚠ REGRESSION: the fix did not stick. {objects:,} object(s) readable again."]
            lines += [
                f"  cause: {e.data.get('cause', e.summary)} ({e.data.get('count', 1):,} object(s), check {e.data.get('check')})"
                for e in regressions[:4]
            ]
            if all(e.data.get("cause_kind") in LAPSED for e in regressions):
                lines.append("  → revoke the exception's access: w (auto re-check) or `sevtool access expire`.")
            else:
                lines.append("  → re-scan (1, s), plan (2, p) and apply (a) again; the next checks will confirm.")
            banner.update(Text("\n".join(lines)))

    def _tick(self) -> None:
        """Once a second: the countdowns, and with auto re-check on, run what is due."""
        if self._exceptions:
            table = self.query_one("#access-exceptions", DataTable)
            for e in self._exceptions:
                if e.ended_at is None:
                    table.update_cell(str(e.number), "left", self._left(e))
            if self.auto_recheck and not self.checking and any(e.due(self.app.clock()) for e in self._exceptions):
                self.checking = True  # one worker at a time touches the target from this pane
                self._expire()
        label = self.query_one("#next-check", Static)
        auto = (
            "auto re-check ON (w to turn off)"
            if self.auto_recheck
            else "auto re-check off (w: run scheduled checks here)"
        )
        if self.checking:
            label.update(Text.assemble(("Checking now… ", "bold"), auto))
            return
        if self._next is None and self._scheduled:
            if self._gate is None:
                label.update(
                    Text.assemble(
                        ("Re-check schedule complete and clean: the incident can be resolved (t). ", "bold #69db7c"),
                        ("v checks again now.", "dim"),
                    )
                )
            else:
                label.update(Text.assemble(("Re-check schedule done, but: ", "bold #ffa94d"), self._gate))
            return
        if self._next is None:
            label.update(
                Text.assemble(
                    "No re-check scheduled yet: the schedule starts from the fix. v checks now. · ", (auto, "dim")
                )
            )
            if self.auto_recheck and self._can_start:
                self.run_check(scheduled=True)
            return
        seconds = int((self._next["due_at"] - self.app.clock()).total_seconds())
        when = f"in {format_duration_short(seconds)}" if seconds > 0 else "due now"
        label.update(
            Text.assemble(
                ("Next re-check ", ""),
                (f"#{self._next['idx'] + 1} (round {self._next['round']}) {when}", "bold #ffd43b"),
                f" · {auto}",
            )
        )
        if seconds <= 0 and self.auto_recheck:
            self.run_check(scheduled=True)

    def toggle_auto(self) -> None:
        self.auto_recheck = not self.auto_recheck
        self.app.notify(
            "Scheduled re-checks run here while this incident is open."
            if self.auto_recheck
            else "Scheduled re-checks paused here (run `sevtool watch` elsewhere).",
            title="auto re-check",
            timeout=4,
        )
        self._tick()

    def run_check(self, *, scheduled: bool = False) -> None:
        if self.checking:
            return
        self.checking = True
        self.query_one("#check-progress").remove_class("hidden")
        self._tick()
        self._check(scheduled)

    @work(thread=True, exclusive=True, group="check")
    def _check(self, scheduled: bool) -> None:
        verification = self.app.wb.verification
        reports = None
        with self.app.reporting_errors("the scheduled re-check" if scheduled else "verifying"):
            if scheduled:
                reports = verification.watch(self.incident_id, once=True, now=self.app.clock).checks
            else:
                reports = [verification.verify(self.incident_id, now=self.app.clock)]
        self.app.call_from_thread(self._checked, reports, scheduled)

    @work(thread=True, exclusive=True, group="check")
    def _expire(self) -> None:
        """Exceptions past their end are revoked here too while auto re-check is on, as `sevtool watch` does."""
        ended = None
        with self.app.reporting_errors("revoking expired access exceptions"):
            ended = self.app.wb.access.expire(self.incident_id, now=self.app.clock)
        self.app.call_from_thread(self._expired, ended)

    def _expired(self, ended: list | None) -> None:
        self.checking = False
        if ended is None:
            self.auto_recheck = False  # a failing revoke is not retried every second; w turns it back on
        for e in ended or []:
            exc = e.exception
            if e.error:
                self.app.notify(f"Exception {exc.number} NOT revoked: {e.error}", severity="error", timeout=15)
            elif e.recorded:
                still = (
                    f" {exc.role} still reads {', '.join(e.still_readable)} by other means." if e.still_readable else ""
                )
                self.app.notify(
                    f"Exception {exc.number} expired: {exc.role}'s access revoked and read back.{still}",
                    title="access exception ended",
                    severity="warning" if still else "information",
                    timeout=8,
                )
        self.reload()

    def _checked(self, reports: list | None, scheduled: bool) -> None:
        self.checking = False
        self.query_one("#check-progress").add_class("hidden")
        if reports is None and scheduled:
            self.auto_recheck = False  # do not repeat a failing check every second; w turns it back on
        for report in reports or []:
            out = report.outcome
            authorized = f" {len(report.authorized)} read(s) authorized by exception." if report.authorized else ""
            if out.clean:
                self.app.notify(
                    f"Check {report.number}: clean, no in-scope principal can read any of {report.objects_in_scope:,} object(s).{authorized}",
                    title="verified",
                    timeout=8,
                )
            else:
                regressions = f", {len(out.regressions):,} regression(s)" if out.regressions else ""
                self.app.notify(
                    f"Check {report.number}: access remains on {out.exposed_objects:,} object(s){regressions}.",
                    title="exposure remains",
                    severity="error",
                    timeout=15,
                )
        self.reload()
        self.screen.changed()


def _short(utc: str | None) -> str:
    """'2026-06-18 14:05:00Z' -> '06-18 14:05:00': the year is noise in a table of minutes."""
    return (utc or "")[5:19]


def format_duration_short(seconds: int) -> str:
    from datetime import timedelta

    return format_duration(timedelta(seconds=seconds))
