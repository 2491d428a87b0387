"""guard: the team's standing exposure policies ([[policy]] in the config), checked once or every interval."""

import json
import sys
from typing import Annotated

import typer

from sevtool.cli.main import JsonOpt, command, workbench
from sevtool.cli.output import emit_json, emit_table, say, to_jsonable
from sevtool.errors import ExitCode, UsageError


def _say_run(run) -> None:
    where = f"{run.policy.name} on {run.policy.target}"
    if run.state == "error":
        say(f"{where}: ERROR: {run.error['message']}" + (f" ({run.error['hint']})" if run.error.get("hint") else ""))
    elif run.state == "violated":
        verb = {"opened": "opened", "attached": "still open:", "reopened": "re-opened"}[run.action]
        say(
            f"{where}: VIOLATED: {run.objects} object(s) readable by {', '.join(run.policy.principals)}; {verb} INC-{run.incident_id}"
        )
    else:
        say(f"{where}: holds" + (f" ({run.exempted} finding(s) exempt by exceptions)" if run.exempted else ""))
    for e in run.expired:
        say(
            f"  expired exception no longer exempts {', '.join(e.objects)} (owner {e.owner}, expired {e.expires_at:%Y-%m-%d})"
        )
    for change in run.broadened:
        say(f"  access broadened: {json.dumps(to_jsonable(change), ensure_ascii=False)}")


def _exit_code(runs) -> int:
    """1 if any policy could not be checked (its error wins: a violation may hide behind it), else 3 on a violation, else 0."""
    if any(r.state == "error" for r in runs):
        return ExitCode.ERROR
    return ExitCode.EXPOSED if any(r.state == "violated" for r in runs) else ExitCode.OK


@command(
    help="Check the standing exposure policies ([[policy]] in the config). A violation opens an incident declared by "
    "guard and pre-scoped with what it found (or attaches to the policy's open one; re-opens a resolved one as a "
    "regression; after a closed one opens a new one). --once: every policy now, exit 0 all hold, 3 a violation, "
    "1 a policy could not be checked. --every 5m: keep going, sharing the runs with other guard workers on the same store."
)
def guard(
    once: Annotated[bool, typer.Option("--once", help="Check every policy now, then exit.")] = False,
    every: Annotated[
        str | None, typer.Option("--every", metavar="INTERVAL", help="Check each policy once per interval, e.g. 5m.")
    ] = None,
    lease: Annotated[
        str,
        typer.Option(
            "--lease",
            metavar="DURATION",
            help="How long a worker's claim on a run lasts without renewal (it renews while it runs): "
            "a killed worker's runs are taken over after this.",
        ),
    ] = "60s",
    json_out: JsonOpt = False,
):
    from sevtool.core.timeparse import parse_duration

    if once == (every is not None):
        raise UsageError(
            "pass one of --once and --every INTERVAL", hint="sevtool guard --once, or sevtool guard --every 5m"
        )
    wb = workbench()
    if once:
        runs = wb.guard.run_once()
        if json_out:
            emit_json({"runs": [r.as_dict() for r in runs], "exit": int(_exit_code(runs))})
        else:
            emit_table(
                [
                    (
                        r.policy.name,
                        r.policy.target,
                        r.state,
                        r.objects,
                        f"INC-{r.incident_id}" if r.incident_id else "",
                        r.action or "",
                    )
                    for r in runs
                ],
                ["policy", "target", "state", "objects", "incident", "action"],
            )
            for r in runs:
                _say_run(r)
        return _exit_code(runs)
    interval, held = parse_duration(every or ""), parse_duration(lease)
    if interval.total_seconds() <= 0 or held.total_seconds() <= 0:
        raise UsageError("--every and --lease must be longer than zero")

    def on_run(run) -> None:
        if json_out:
            sys.stdout.write(json.dumps(to_jsonable(run.as_dict()), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            _say_run(run)

    wb.guard.serve(interval, lease=held, on_run=on_run, poll=min(1.0, interval.total_seconds() / 4))
    return ExitCode.OK
