"""`sevtool demo`: the drill, on a throwaway PostgreSQL, with a fix that does not stick.

A local server is started and seeded with the drill scenario (thousands of DSS-rated tables readable by
`all_employees` through several access paths). A background "sync job" watches the catalog; a while
after the first fix removes the direct grants, it re-grants part of them, as a grant-sync job or
infrastructure-as-code run would. The SEV policy's re-checks are shortened so a check catches that
within a minute or two. Interactive: the TUI opens on it. Headless: the whole response runs through the
services (declare, scan, apply, regression caught, re-apply, clean checks, resolve, postmortem).

Everything is thrown away on exit: the server, and the store unless SEVTOOL_DB names one.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from sevtool.core.incident import Status
from sevtool.core.timeparse import format_utc, utcnow
from sevtool.pgtemp import PGAUDIT_SETTINGS, TempPostgres, find_bindir, pgaudit_library
from sevtool.scenario import PRINCIPAL, drill_reads, seed_drill
from sevtool.services import Workbench
from sevtool.settings import Settings

TARGET = "drill"
TITLE = "Employee telemetry (keystrokes, screens, chats) readable by every employee"
SEV = 2
INVESTIGATION_WINDOW = timedelta(seconds=45)  # ends during the drill's re-checks, so its expiry is seen
REGRANT_SHARE = 10  # the sync job re-grants one table in this many
POLL_SECONDS = 1.0

Say = Callable[[str], None]

# Tables on which `all_employees` holds a direct SELECT grant: what the first fix removes and the job re-adds.
_DIRECT_GRANTS = """
SELECT n.nspname, c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) acl
JOIN pg_roles r ON r.oid = acl.grantee
WHERE c.relkind IN ('r', 'p') AND r.rolname = %s AND acl.privilege_type = 'SELECT'
ORDER BY 1, 2
"""


def recheck_offsets(regrant_after: timedelta) -> list[str]:
    """Check at once, then shortly after the job re-grants, then once more: the schedule a drill can sit through."""
    seconds = int(regrant_after.total_seconds())
    return ["0s", f"{seconds + 10}s", f"{seconds + 20}s"]


@dataclass
class RegrantJob:
    """The fix that does not stick: once the direct grants are gone, wait, then put some of them back."""

    dsn: str
    delay: timedelta
    say: Say = lambda _: None
    principal: str = PRINCIPAL
    granted: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RegrantJob:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self._before = conn.execute(_DIRECT_GRANTS, (self.principal,)).fetchall()
        self._thread = threading.Thread(target=self._run, name="sevtool-demo-sync-job", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def done(self) -> bool:
        return bool(self.granted)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self._stop.wait(POLL_SECONDS):
                    if len(conn.execute(_DIRECT_GRANTS, (self.principal,)).fetchall()) * 2 < len(self._before):
                        break
                else:
                    return
                self.say(
                    f"sync job: the direct grants to {self.principal} are gone; it will re-apply some in {int(self.delay.total_seconds())} s"
                )
                if self._stop.wait(self.delay.total_seconds()):
                    return
                chosen = self._before[::REGRANT_SHARE] or self._before[:1]
                with conn.transaction():
                    for schema, table in chosen:
                        conn.execute(
                            sql.SQL("GRANT SELECT ON {} TO {}").format(
                                sql.Identifier(schema, table), sql.Identifier(self.principal)
                            )
                        )
                self.granted = [f"{s}.{t}" for s, t in chosen]
                self.say(
                    f"sync job: re-granted SELECT on {len(chosen)} table(s) to {self.principal} (e.g. {self.granted[0]})"
                )
        except psycopg.Error as exc:  # the server went away at shutdown: nothing left to do
            self.say(f"sync job stopped: {exc}".strip())


@dataclass
class Drill:
    server: TempPostgres
    dsn: str
    workbench: Workbench
    job: RegrantJob
    seeded: dict
    workdir: Path
    exposed_since: datetime  # when the seed's grants were committed: the drill's exposure start
    evidence_logs: list[str] = field(default_factory=list)  # pgaudit's log directory; empty without pgaudit
    reads: dict = field(default_factory=dict)  # table -> role -> reads the employees made


@contextmanager
def drill(*, tables: int, regrant_after: timedelta, say: Say) -> Iterator[Drill]:
    """Server, seed, store, config and sync job; all cleaned up on the way out, also on Ctrl-C or SIGTERM."""
    workdir = Path(tempfile.mkdtemp(prefix="sevtool-demo-"))
    audited = pgaudit_library(find_bindir()) is not None
    server = TempPostgres(settings=PGAUDIT_SETTINGS if audited else None)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, _exit_on_signal)
    job = None
    try:
        say("starting a throwaway PostgreSQL server…")
        server.start()
        dsn = server.create_database("drill")
        # No CREATE EXTENSION pgaudit: READ and ROLE logging come from shared_preload_libraries alone; the extension
        # only adds DDL event triggers, whose SECURITY DEFINER functions the scan would rightly report as a path no
        # revoke of the drill closes, so the re-checks would never come back clean.
        if not audited:
            say(
                f"pgaudit is not installed for {server.bindir}: the drill runs without audit logs, so evidence (who read what) "
                "is unavailable (Debian: apt-get install postgresql-NN-pgaudit)"
            )
        say(f"seeding the drill scenario ({tables:,} tables)…")
        started = time.perf_counter()
        seeded = seed_drill(dsn, tables=tables)
        exposed_since = utcnow()
        say(f"seeded in {time.perf_counter() - started:.1f} s")
        reads, logs = {}, []
        if audited:
            reads = drill_reads(dsn)
            logs = [str(server.log_dir)]
            say(f"employees read {len(reads)} exposed table(s) while all_employees could (pgaudit logs to {logs[0]})")
        config = workdir / "config.toml"
        offsets = ", ".join(f'"{o}"' for o in recheck_offsets(regrant_after))
        # The pgaudit log directory goes in the demo's team config: `evidence` (CLI and TUI) reads it when no --log is given.
        evidence = f"\n[evidence]\nlogs = [{', '.join(_toml_string(p) for p in logs)}]\n" if logs else ""
        config.write_text(
            f'[targets.{TARGET}]\ndsn = "{dsn}"\n\n'
            f"# Drill only: re-checks seconds apart instead of minutes and hours.\n[sev.{SEV}]\nrecheck = [{offsets}]\n"
            + evidence
            + GUARD_POLICY.format(target=TARGET, principal=PRINCIPAL, sev=SEV),
            encoding="utf-8",
        )
        store = os.environ.get("SEVTOOL_DB") or f"sqlite:///{workdir / 'sevtool.db'}"
        wb = Workbench(Settings(db=store, config=config))
        job = RegrantJob(dsn, regrant_after, say=say).start()
        yield Drill(server, dsn, wb, job, seeded, workdir, exposed_since, logs, reads)
    finally:
        if job is not None:
            job.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("demo server stopped and removed")


# A standing policy the drill violates, so the Guard screen (g on the incident list) has something to show and
# `sevtool guard --once` opens the incident itself.
GUARD_POLICY = """
[[policy]]
name = "no-broad-sensitive"
target = "{target}"
principals = ["{principal}", "PUBLIC"]
min_dss = 3
sev = {sev}
playbook = "data-exposure"
"""


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)


# --- interactive -------------------------------------------------------------------------------------


def run_interactive(*, tables: int, regrant_after: timedelta, say: Say) -> None:
    from sevtool.tui.app import create_app

    with drill(tables=tables, regrant_after=regrant_after, say=say) as d:
        banner = (
            f"Drill ready: target '{TARGET}' has {tables:,} employee-data tables readable by {PRINCIPAL}. "
            f"Press n to declare (SEV {SEV}, playbook data-exposure), then s to scan. A sync job re-grants part of the access "
            f"{int(regrant_after.total_seconds())} s after your first fix; the scheduled re-checks run here. "
            + (
                "Employees read some tables meanwhile: tab 6 (g) shows who, from the server's pgaudit log."
                if d.evidence_logs
                else "Evidence is unavailable: the server has no pgaudit."
            )
        )
        d.job.say = lambda _: None  # stderr belongs to the TUI now; the checks are what should reveal the job
        create_app(d.workbench, banner=banner, auto_recheck=True).run()


# --- headless ----------------------------------------------------------------------------------------


def run_headless(
    *, tables: int, regrant_after: timedelta, output: Path, say: Say, timeout: timedelta = timedelta(minutes=15)
) -> int:
    """The whole response, scripted through the services. Returns the incident id; raises if any step fails."""
    with drill(tables=tables, regrant_after=regrant_after, say=say) as d:
        wb = d.workbench
        deadline = time.monotonic() + timeout.total_seconds()
        detected_at = utcnow()
        incident = wb.incidents.declare(f"{TITLE} (drill)", SEV, commander=wb.settings.who, playbook="data-exposure")
        ref = incident.ref
        say(f"{ref}: declared SEV {SEV}")
        _record_response_roles(wb, incident.id, exposed_since=d.exposed_since, detected_at=detected_at)
        outcome = wb.scanning.scan(incident.id, TARGET, [PRINCIPAL])
        s = outcome.summary
        say(
            f"{ref}: scan v{outcome.version}: {s.objects:,} objects readable by {PRINCIPAL} ({s.findings:,} findings; "
            + ", ".join(f"{k}: {v:,}" for k, v in s.by_path.items())
            + ")"
        )
        wb.incidents.note(
            incident.id, f"First update: {s.objects:,} tables readable by every employee; revoking now.", kind="update"
        )
        _revoke(wb, incident.id, ref, say)
        _grant_investigator(wb, incident.id, ref, d, say)

        caught = False
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the drill did not finish within {timeout}")
            report = wb.verification.watch(incident.id, once=True)
            for check in report.checks:
                out = check.outcome
                say(
                    f"{ref}: check {check.number}: "
                    + (
                        "clean"
                        if out.clean
                        else f"EXPOSED, {out.exposed_objects:,} object(s), {len(out.regressions):,} regression(s)"
                    )
                )
                if out.regressions:
                    caught = True
                    say(f"{ref}: REGRESSION caught: {out.regressions[0].cause}")
                    _record_regression_findings(wb, incident.id)
                    rescan = wb.scanning.scan(incident.id, TARGET, [PRINCIPAL])
                    say(f"{ref}: re-scan v{rescan.version}: {rescan.summary.objects:,} objects readable again")
                    _revoke(wb, incident.id, ref, say)
            if report.finished and caught:
                break
            if report.finished:
                raise RuntimeError("the re-check schedule finished without catching the sync job's re-grant")
            wait = max(0.5, min(5.0, (report.next_due - utcnow()).total_seconds())) if report.next_due else 1.0
            time.sleep(wait)

        resolved = wb.incidents.set_status(incident.id, Status.RESOLVED)
        say(f"{ref}: {resolved.status.value}: the last scheduled re-checks were clean")
        _record_review_inputs(wb, incident.id)
        _evidence(wb, incident.id, ref, d, say)
        markdown, _ = wb.postmortem.export(incident.id, output)
        say(f"{ref}: postmortem written to {output} ({len(markdown.encode()):,} bytes)")
        return incident.id


def _grant_investigator(wb: Workbench, incident_id: int, ref: str, d: Drill, say: Say) -> None:
    """After lock-down the privacy team still needs one table: a short exception, which the re-checks let end."""
    exc = wb.access.grant(
        incident_id,
        d.seeded["investigator"],
        ["hr.salaries"],
        INVESTIGATION_WINDOW,
        "privacy review: who was paid what, to size the notification",
        approver=wb.settings.who,
    )
    say(f"{ref}: exception {exc.number}: {exc.role} may read hr.salaries until {format_utc(exc.until)}")


def _record_response_roles(wb: Workbench, incident_id: int, *, exposed_since: datetime, detected_at: datetime) -> None:
    """What a responder types in the first minutes: when it started, who does what, how it was found."""
    wb.incidents.set_time(incident_id, "exposure_started_at", exposed_since)
    wb.incidents.set_time(incident_id, "detected_at", detected_at)
    wb.incidents.assign(incident_id, "scribe", "drill-scribe")
    wb.incidents.assign(incident_id, "comms", "drill-comms")
    wb.incidents.note(
        incident_id,
        "An engineer noticed telemetry tables answering queries from a role with no business reading them "
        "and reported it to security on-call.",
        kind="detection",
    )


def _record_regression_findings(wb: Workbench, incident_id: int) -> None:
    """The first fix did not stick: what the responders learned, with the regression marked key."""
    regression = next(e for e in reversed(wb.incidents.timeline(incident_id)) if e.kind == "regression")
    wb.incidents.mark_key(incident_id, regression.seq)
    wb.incidents.note(
        incident_id, "A grant-sync job re-applied SELECT to all_employees after the first fix.", kind="root-cause"
    )
    wb.incidents.note(
        incident_id, "The sync job's next run after the revoke re-granted from its stale desired state.", kind="trigger"
    )


def _record_review_inputs(wb: Workbench, incident_id: int) -> None:
    """The postmortem sections a review meeting fills in, entered the way responders do (notes and action items)."""
    notes = {
        "summary": "Sensitive employee telemetry was readable by every employee through a broad grant to all_employees. "
        "The first revoke was undone by a grant-sync job; scheduled re-checks caught it and the second fix held.",
        "contributing": "Grants were managed in two places (the sync job and by hand), and nothing alerted on grants to all_employees.",
        "went-well": "Scheduled re-checks over the whole scope caught the re-grant within one check interval.",
        "went-wrong": "The first fix was declared done before the sync job's desired state was changed.",
        "lucky": "The sync job re-granted only part of the tables.",
    }
    for kind, text in notes.items():
        wb.incidents.note(incident_id, text, kind=kind)
    due = (utcnow() + timedelta(days=14)).date().isoformat()
    wb.postmortem.add_item(
        incident_id,
        "Remove all_employees from the grant-sync job's desired state",
        owner="data-platform",
        type="prevent",
        due=due,
    )
    wb.postmortem.add_item(
        incident_id,
        "Alert on any GRANT to all_employees or PUBLIC on DSS 3-4 tables",
        owner="security",
        type="detect",
        due=due,
    )
    wb.postmortem.add_item(
        incident_id,
        "Require a clean re-check schedule before resolving data-exposure SEVs",
        owner="incident-program",
        type="process",
    )


def _evidence(wb: Workbench, incident_id: int, ref: str, d: Drill, say: Say) -> None:
    """Who read the exposed tables during the window, from the drill server's pgaudit log (the team config names it)."""
    if not d.evidence_logs:
        say(f"{ref}: evidence unavailable: the drill server has no pgaudit")
        return
    report = wb.evidence.evidence(incident_id)
    counts = report.counts
    say(
        f"{ref}: evidence: {counts['reads']} object(s) read during the exposure, {counts['no_reads']} no reads, "
        f"{counts['unknown']} unknown; members: "
        + (", ".join(f"{r} ({n})" for r, n in report.readers(True).items()) or "none")
        + "; not members: "
        + (", ".join(f"{r} ({n})" for r, n in report.readers(False).items()) or "none")
    )


def _revoke(wb: Workbench, incident_id: int, ref: str, say: Say) -> None:
    plan = wb.revocation.plan(incident_id)
    say(f"{ref}: plan {plan.plan_version}: {len(plan.actions):,} actions")
    reported = [0]

    def progress(p) -> None:
        """One line per thousand actions, not per batch: a plan has many small batches (one per grantee and kind)."""
        if p.done // 1000 > reported[0] // 1000:
            say(f"{ref}: {p.done:,}/{p.total:,} actions done")
        reported[0] = p.done

    report = wb.revocation.apply(incident_id, progress=progress)
    if report.held:
        # The drill shows the safe default, then plays the responder who reviewed the blast radius and accepts it.
        say(
            f"{ref}: {report.held:,} action(s) held back: they would take access from {', '.join(report.held_roles)}; "
            "accepted after review"
        )
        report = wb.revocation.apply(incident_id, progress=progress, accept_collateral=True)
    if not report.ok:
        raise RuntimeError(f"{len(report.failures)} action(s) failed: {report.failures[0]['message']}")
    say(
        f"{ref}: revoked: "
        + ", ".join(f"{n:,} {k}" for k, n in report.counts.items())
        + f"; incident is {report.status}"
    )
