"""verify and watch: did the fix stick, now and on the SEV re-check schedule."""

import json
import sys
from datetime import timedelta
from typing import Annotated

import typer

from sevtool.cli.main import AllOpt, IdArg, JsonlOpt, JsonOpt, NoPagerOpt, command, machine_mode, parse_id, workbench
from sevtool.cli.output import emit_jsonl, emit_text_table, say, streamed, to_jsonable, write_json
from sevtool.core.timeparse import format_duration, format_utc, utcnow
from sevtool.errors import ExitCode, UsageError

ProbeOpt = Annotated[
    str | None,
    typer.Option(
        "--probe-role",
        metavar="ROLE",
        help="Also probe live as this canary login (a member of the principal): SELECT ... LIMIT 0, never a row read.",
    ),
]


def _say_check(report) -> None:
    out = report.outcome
    if out.clean:
        say(
            f"check {report.number}: clean - no in-scope principal can read any of {report.objects_in_scope} object(s) "
            f"({report.duration_ms} ms); incident is {report.status.value}"
        )
    else:
        say(
            f"check {report.number}: ACCESS REMAINS on {out.exposed_objects} of {report.objects_in_scope} object(s), "
            f"{len(out.findings)} finding(s) ({report.duration_ms} ms); incident is {report.status.value}"
        )
    if out.regressions:
        say(
            f"REGRESSION: {len(out.regressions)} object x principal pair(s) closed before are readable again (vs {report.baseline})"
        )
    for a in report.authorized:
        say(
            f"  authorized by exception {a['exception']} until {a['until']}: {a['role']} reads {a['object']} ({a['why']})"
        )
    for b in out.exception_breaches:
        say(f"  EXCEPTION BREACHED: {b.object_fqn} readable by {b.principal}: {b.cause}")
    if report.slot and report.slot["delay_seconds"] >= 60:
        say(
            f"  scheduled re-check ran {format_duration(timedelta(seconds=report.slot['delay_seconds']))} late"
            + (
                f"; it also covers {len(report.slot['covered'])} earlier overdue re-check(s)"
                if report.slot["covered"]
                else ""
            )
        )
    probe = report.probe
    if probe:
        say(
            f"  probe as {probe['role']}: {probe['probed']} object(s) tried, {len(probe['readable_but_closed'])} readable that the catalog "
            f"calls closed, {len(probe['denied_but_exposed'])} denied that the catalog calls exposed, {len(probe['inconclusive'])} inconclusive"
        )


def _emit_check_tables(report, limit: int | None) -> None:
    """Regressions (their causes, then the pairs), what remains, and what the live probe saw. Lists longer
    than `limit` are cut to their worst rows, with counts of the whole; the probe's lines are always all shown."""
    from sevtool.cli import summary as s
    from sevtool.core.checks import group_regressions
    from sevtool.describe import via

    out = report.outcome
    if out.regressions:
        groups = group_regressions(out.regressions)
        if len(out.regressions) > len(groups):
            # One line per cause (e.g. a job re-granting every table), largest first, before the pairs themselves.
            emit_text_table(
                [
                    (str(n), r.cause_kind.value, r.grantee, r.grantor, r.cause)
                    for r, n in sorted(groups, key=lambda g: -g[1])
                ],
                ["regressions", "cause", "grantee", "grantor", "e.g."],
            )
            sys.stdout.write("\n")
        shown, total = s.worst(out.regressions, _regression_key, limit)
        emit_text_table(
            [(r.object_fqn, r.principal, r.path.value, r.cause) for r in shown],
            ["regressed object", "principal", "path", "cause"],
        )
        s.emit_more(len(shown), total, "regressions", "--json for every regression")
    if out.findings:
        if out.regressions:
            sys.stdout.write("\n")
        if limit is not None and len(out.findings) > limit:
            from sevtool.core.exposure import ExposureSummary

            counts = ExposureSummary.of(out.findings)
            s.emit_counts(counts.by_dss, ["sensitivity", "objects"], by_sensitivity=True)
            s.emit_counts(out.by_path, ["access path", "findings"])
            s.emit_counts(counts.by_principal, ["principal", "objects readable"])
        shown, total = s.worst(out.findings, s.finding_key, limit)
        emit_text_table(
            [
                (f.object_fqn + (f".{f.column}" if f.column else ""), f.principal, f.path.value, via(f), f.dss_label)
                for f in shown
            ],
            ["object", "principal", "path", "via", "dss"],
        )
        s.emit_more(len(shown), total, "remaining findings", "--jsonl for one JSON object per remaining finding")
    for fqn in out.probe_readable:
        sys.stdout.write(f"{fqn}\treadable by the live probe although the catalog calls it closed\n")
    for fqn in out.probe_inconclusive:
        sys.stdout.write(f"{fqn}\tthe live probe could not tell whether it is readable: not clean until it can\n")


def _regression_key(r) -> tuple:
    from sevtool.cli.summary import BREADTH, sensitivity_rank

    return (sensitivity_rank(r.dss), BREADTH.get(r.path, len(BREADTH)), r.object_fqn, r.principal)


@command(
    bulk=True,
    help="Re-check the incident's scope now (new tables included). Exit 0: no access remains; 3: access remains. "
    "Prints the regressions and the worst of what remains (most sensitive, then broadest path) with counts; "
    "--all prints every row, --json the whole check, --jsonl one remaining finding per line.",
)
def verify(
    incident_id: IdArg,
    probe_role: ProbeOpt = None,
    all_rows: AllOpt = False,
    no_pager: NoPagerOpt = False,
    json_out: JsonOpt = False,
    jsonl_out: JsonlOpt = False,
):
    machine_mode(json_out, jsonl_out)
    report = workbench().verification.verify(parse_id(incident_id), probe_role)
    if json_out:
        _emit_line(report.as_dict(rows=streamed), pretty=True)
    elif jsonl_out:
        from sevtool.services.verification_report import remains_json

        emit_jsonl(remains_json(f) for f in report.outcome.findings)
    else:
        from sevtool.cli.pager import paged
        from sevtool.cli.summary import limit_for

        with paged(no_pager):
            _say_check(report)
            _emit_check_tables(report, limit_for(all_rows))
    return ExitCode.OK if report.clean else ExitCode.EXPOSED


@command(
    bulk=True,
    help="Run the SEV re-check schedule (e.g. now, +15m, +1h, +4h, +24h from containment) until it is done. "
    "Restart-safe: overdue re-checks run at once. With --json, one JSON object per line: each check, then a summary. "
    "--all serves every contained or verifying incident, shared with the other `watch --all` workers on this store.",
)
def watch(
    incident_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="Incident id (e.g. 3 or INC-3); none with --all.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run only what is due now, then exit (for cron).")] = False,
    every_incident: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Serve every contained or verifying incident, sharing them with the other `watch --all` workers "
            "on this store, until stopped.",
        ),
    ] = False,
    lease: Annotated[
        str,
        typer.Option(
            "--lease",
            metavar="DURATION",
            help="With --all: how long a claim on an incident lasts without renewal "
            "(a killed worker's incidents are taken over after it).",
        ),
    ] = "60s",
    probe_role: ProbeOpt = None,
    json_out: JsonOpt = False,
):
    wb = workbench()
    if every_incident:
        return _watch_all(wb, incident_id, once, lease, probe_role, json_out)
    if incident_id is None:
        raise UsageError("name the incident to watch, or pass --all", hint="sevtool watch 3, or sevtool watch --all")
    ident = parse_id(incident_id)
    announced = set()

    def on_check(report) -> None:
        if json_out:
            _emit_line({"event": "check", **report.as_dict()})
        else:
            _say_check(report)

    def on_wait(slot: dict) -> None:
        key = (slot["round"], slot["idx"])
        if key not in announced and not json_out:
            announced.add(key)
            say(
                f"next re-check (round {slot['round']}, #{slot['idx'] + 1}) due {format_utc(slot['due_at'])}, "
                f"in {format_duration(slot['due_at'] - utcnow())}"
            )

    result = wb.verification.watch(ident, once=once, probe_role=probe_role, on_check=on_check, on_wait=on_wait)
    if json_out:
        _emit_line(
            {
                "event": "done",
                "checks": len(result.checks),
                "finished": result.finished,
                "next_due": format_utc(result.next_due) if result.next_due else None,
                "resolution_gate": result.gate,
                "exposed": result.exposed,
            }
        )
    else:
        if not result.checks:
            say("nothing due now" + (f"; next re-check due {format_utc(result.next_due)}" if result.next_due else ""))
        if result.finished:
            say(
                "re-check schedule done"
                + (
                    f"; resolving is still refused: {result.gate}"
                    if result.gate
                    else f"; the incident can be resolved (`sevtool status {ident} resolved`)"
                )
            )
    return ExitCode.EXPOSED if result.exposed else ExitCode.OK


def _watch_all(wb, incident_id, once: bool, lease: str, probe_role, json_out: bool):
    from sevtool.core.timeparse import parse_duration

    if incident_id is not None or once:
        raise UsageError("--all serves every open incident until stopped: pass no ID and no --once")
    held = parse_duration(lease)

    def on_check(report) -> None:
        if json_out:
            _emit_line({"event": "check", "incident": report.incident_id, **report.as_dict()})
        else:
            say(f"INC-{report.incident_id}:")
            _say_check(report)

    def on_error(ident: int, exc) -> None:
        if json_out:
            _emit_line({"event": "error", "incident": ident, **exc.as_dict()})
        else:
            say(f"INC-{ident}: {exc}")

    wb.watch_fleet.serve(
        lease=held, probe_role=probe_role, on_check=on_check, on_error=on_error, poll=min(1.0, held.total_seconds() / 4)
    )
    return ExitCode.OK


def _emit_line(data: dict, *, pretty: bool = False) -> None:
    if pretty:
        write_json(data)
    else:
        sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False) + "\n")
    sys.stdout.flush()
