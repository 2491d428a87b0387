"""verify and watch: did the fix stick, now and on the SEV re-check schedule."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated

import typer

from sevtool.cli.main import IdArg, JsonOpt, command, parse_id, workbench
from sevtool.cli.output import say, to_jsonable, write_json
from sevtool.core.timeparse import format_duration, format_utc, utcnow
from sevtool.errors import ExitCode

ProbeOpt = Annotated[str | None, typer.Option(
    "--probe-role", metavar="ROLE",
    help="Also probe live as this canary login (a member of the principal): SELECT ... LIMIT 0, never a row read.")]


def _say_check(report) -> None:
    out = report.outcome
    if out.clean:
        say(f"check {report.number}: clean - no in-scope principal can read any of {report.objects_in_scope} object(s) "
            f"({report.duration_ms} ms); incident is {report.status.value}")
    else:
        say(f"check {report.number}: ACCESS REMAINS on {out.exposed_objects} of {report.objects_in_scope} object(s), "
            f"{len(out.findings)} finding(s) ({report.duration_ms} ms); incident is {report.status.value}")
    if out.regressions:
        say(f"REGRESSION: {len(out.regressions)} object x principal pair(s) closed before are readable again (vs {report.baseline})")
    if report.slot and report.slot["delay_seconds"] >= 60:
        say(f"  scheduled re-check ran {format_duration(timedelta(seconds=report.slot['delay_seconds']))} late"
            + (f"; it also covers {len(report.slot['covered'])} earlier overdue re-check(s)" if report.slot["covered"] else ""))
    probe = report.probe
    if probe:
        say(f"  probe as {probe['role']}: {probe['probed']} object(s) tried, {len(probe['readable_but_closed'])} readable that the catalog "
            f"calls closed, {len(probe['denied_but_exposed'])} denied that the catalog calls exposed, {len(probe['inconclusive'])} inconclusive")


def _emit_check_tables(report) -> None:
    out = report.outcome
    if out.regressions:
        _emit_text_table([(r.object_fqn, r.principal, r.path.value, r.cause) for r in out.regressions],
                         ["regressed object", "principal", "path", "cause"])
    if out.findings:
        if out.regressions:
            sys.stdout.write("\n")
        from sevtool.describe import via

        _emit_text_table([(f.object_fqn + (f".{f.column}" if f.column else ""), f.principal, f.path.value, via(f), f.dss_label)
                          for f in out.findings], ["object", "principal", "path", "via", "dss"])
    for fqn in out.probe_readable:
        sys.stdout.write(f"{fqn}\treadable by the live probe although the catalog calls it closed\n")
    for fqn in out.probe_inconclusive:
        sys.stdout.write(f"{fqn}\tthe live probe could not tell whether it is readable: not clean until it can\n")


@command(bulk=True, help="Re-check the incident's scope now (new tables included). Exit 0: no access remains; 3: access remains.")
def verify(incident_id: IdArg, probe_role: ProbeOpt = None, json_out: JsonOpt = False):
    report = workbench().verification.verify(parse_id(incident_id), probe_role)
    if json_out:
        _emit_line(report.as_dict(), pretty=True)
    else:
        _say_check(report)
        _emit_check_tables(report)
    return ExitCode.OK if report.clean else ExitCode.EXPOSED


@command(bulk=True, help="Run the SEV re-check schedule (e.g. now, +15m, +1h, +4h, +24h from containment) until it is done. "
              "Restart-safe: overdue re-checks run at once. With --json, one JSON object per line: each check, then a summary.")
def watch(incident_id: IdArg,
          once: Annotated[bool, typer.Option("--once", help="Run only what is due now, then exit (for cron).")] = False,
          probe_role: ProbeOpt = None, json_out: JsonOpt = False):
    wb = workbench()
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
            say(f"next re-check (round {slot['round']}, #{slot['idx'] + 1}) due {format_utc(slot['due_at'])}, "
                f"in {format_duration(slot['due_at'] - utcnow())}")

    result = wb.verification.watch(ident, once=once, probe_role=probe_role, on_check=on_check, on_wait=on_wait)
    if json_out:
        _emit_line({"event": "done", "checks": len(result.checks), "finished": result.finished,
                    "next_due": format_utc(result.next_due) if result.next_due else None, "resolution_gate": result.gate,
                    "exposed": result.exposed})
    else:
        if not result.checks:
            say("nothing due now" + (f"; next re-check due {format_utc(result.next_due)}" if result.next_due else ""))
        if result.finished:
            say("re-check schedule done" + (f"; resolving is still refused: {result.gate}" if result.gate else
                                            f"; the incident can be resolved (`sevtool status {ident} resolved`)"))
    return ExitCode.EXPOSED if result.exposed else ExitCode.OK


def _emit_text_table(rows: list[tuple[str, ...]], headers: list[str]) -> None:
    """The layout of `emit_table` (tabulate's "simple") for text cells, written directly: tabulate infers a
    type for every cell, which took about 3 s for the 45,000 rows of an incident still exposed."""
    widths = [max([len(h) + 2, *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]   # tabulate pads headers by 2

    def line(cells) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    sys.stdout.write("\n".join([line(headers), line("-" * w for w in widths), *(line(row) for row in rows)]) + "\n")


def _emit_line(data: dict, *, pretty: bool = False) -> None:
    if pretty:
        write_json(data)
    else:
        sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False) + "\n")
    sys.stdout.flush()
