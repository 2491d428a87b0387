"""TUI fixtures: a fixed clock so ages and countdowns on screen do not change between runs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

FIXED_NOW = datetime(2026, 6, 18, 18, 0, tzinfo=timezone.utc)


@pytest.fixture
def fixed_clock():
    return lambda: FIXED_NOW


def _screen_text(app) -> str:
    """Everything currently painted, as plain text: what a person would read on the terminal."""
    import io

    from rich.console import Console

    console = Console(width=app.size.width, record=True, file=io.StringIO(), color_system=None)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


@pytest.fixture
def screen_text():
    return _screen_text
