"""The `sevtool` command: app factory, error handling and exit codes shared by every command."""

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from sevtool.cli.output import emit_error
from sevtool.errors import ExitCode, SevtoolError, UsageError

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output on stdout; errors as JSON on stderr.")]
JsonlOpt = Annotated[
    bool,
    typer.Option(
        "--jsonl",
        help="Machine output as it is made: one JSON object per line (see the command's help); errors as JSON on stderr.",
    ),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Print every row, not the summary and the worst rows.")]
NoPagerOpt = Annotated[
    bool,
    typer.Option(
        "--no-pager", help="Do not page the text on a terminal (SEVTOOL_PAGER, else PAGER, else 'less -FRX')."
    ),
]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="Incident id (e.g. 3 or INC-3).")]
AtOpt = Annotated[
    str | None, typer.Option("--at", help="When it happened: ISO, '2026-06-18 14:05 PDT' or relative like -4h.")
]

app = typer.Typer(
    name="sevtool",
    help="Incident-response workbench for data-exposure incidents. With no command, opens the TUI.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_workbench = None


def workbench():
    """One Workbench per process, created on first use so `--help` stays fast."""
    global _workbench
    if _workbench is None:
        from sevtool.services import Workbench

        _workbench = Workbench()
    return _workbench


def parse_id(value: str) -> int:
    text = value.strip().upper().removeprefix("INC-")
    if not text.isdigit():
        raise UsageError(f"{value!r} is not an incident id", hint="ids look like 3 or INC-3; `sevtool list` shows them")
    return int(text)


def machine_mode(json_out: bool, jsonl_out: bool) -> bool:
    if json_out and jsonl_out:
        raise UsageError("--json and --jsonl are two forms of the same output: pass one")
    return json_out or jsonl_out


def command(group: typer.Typer = app, name: str | None = None, *, bulk: bool = False, **kwargs) -> Callable:
    """Register a command whose SevtoolErrors become a one-line (or JSON) error and the right exit code.

    `bulk`: the command works through tens of thousands of objects and the process does nothing else meanwhile,
    so it runs in `gcpause.bulk_run()`, the only place the collector is paused (never in the TUI).
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kw: Any):
            json_mode = bool(kw.get("json_out") or kw.get("jsonl_out"))
            try:
                if bulk:
                    from sevtool.gcpause import bulk_run

                    with bulk_run():
                        code = func(*args, **kw)
                else:
                    code = func(*args, **kw)
            except SevtoolError as exc:
                emit_error(exc.as_dict(), json_mode)
                raise typer.Exit(int(exc.exit_code)) from None
            except KeyboardInterrupt:
                emit_error(
                    {
                        "error": "interrupted",
                        "message": "interrupted; the ledger keeps what finished, run the command again to resume",
                    },
                    json_mode,
                )
                raise typer.Exit(130) from None
            if code:
                raise typer.Exit(int(code))

        return group.command(name=name, **kwargs)(wrapper)

    return decorate


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        from sevtool.cli.tui_launch import launch_tui

        launch_tui(workbench())


# Importing a command module registers its commands on `app`; keep one line per module.
# Every `sevtool` run, `--help` included, imports them all, so a command module imports at its top only
# typer and what it needs to declare its options; services, stores, pydantic models, tabulate and dates
# are imported inside the command. Command modules also skip `from __future__ import annotations`:
# typer would evaluate each string annotation, typer.Option(...) included, twice per command per run.
from sevtool.cli import demo  # noqa: E402,F401,I001  (registration order is the order `--help` lists them)
from sevtool.cli import access  # noqa: E402,F401
from sevtool.cli import evidence  # noqa: E402,F401
from sevtool.cli import guard  # noqa: E402,F401
from sevtool.cli import incidents  # noqa: E402,F401
from sevtool.cli import postmortem  # noqa: E402,F401
from sevtool.cli import notify  # noqa: E402,F401
from sevtool.cli import revoke  # noqa: E402,F401
from sevtool.cli import scan  # noqa: E402,F401
from sevtool.cli import tui_launch  # noqa: E402,F401
from sevtool.cli import verify  # noqa: E402,F401


def run() -> None:
    try:
        app(prog_name="sevtool")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (ExitCode.ERROR if exc.code else ExitCode.OK)
        sys.exit(code)
