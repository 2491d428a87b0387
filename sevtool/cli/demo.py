"""`sevtool demo`: the drill on a throwaway PostgreSQL, in the TUI or headless for CI and evaluators."""

from pathlib import Path
from typing import Annotated

import typer

from sevtool.cli.main import command
from sevtool.cli.output import emit_json, emit_text, say
from sevtool.errors import UsageError


@command(
    help="Start a throwaway PostgreSQL seeded with the drill (a fix that does not stick) and open the TUI on it. "
    "--headless runs the whole response without a terminal and writes the postmortem."
)
def demo(
    headless: Annotated[
        bool, typer.Option("--headless", help="Run the drill end to end through the services; progress on stderr.")
    ] = False,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where --headless writes the postmortem.")] = Path(
        "sevtool-demo-postmortem.md"
    ),
    regrant_after: Annotated[
        str,
        typer.Option("--regrant-after", help="How long after the first fix the sync job re-grants part of the access."),
    ] = "60s",
    tables: Annotated[int, typer.Option("--tables", help="Tables in the drill scenario.")] = 3000,
    json_out: Annotated[bool, typer.Option("--json", help="With --headless: the result as JSON on stdout.")] = False,
):
    from sevtool.core.timeparse import parse_duration
    from sevtool.demo import run_headless, run_interactive

    delay = parse_duration(regrant_after)
    if tables < 10:
        raise UsageError(f"--tables {tables} is too small for the drill", hint="use 10 or more (default 3000)")
    if not headless:
        run_interactive(tables=tables, regrant_after=delay, say=say)
        return
    incident_id = run_headless(tables=tables, regrant_after=delay, output=output, say=say)
    if json_out:
        emit_json({"incident_id": incident_id, "postmortem": str(output.resolve())})
    else:
        emit_text(str(output.resolve()))
