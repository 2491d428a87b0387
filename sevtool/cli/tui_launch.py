"""`sevtool tui`: the only place the CLI reaches for Textual, and only when asked to."""

from __future__ import annotations

from sevtool.cli.main import command, workbench


def launch_tui(wb) -> None:
    from sevtool.tui.app import create_app

    create_app(wb).run()


@command(name="tui", help="Open the terminal UI (same as `sevtool` with no command).")
def tui():
    launch_tui(workbench())
