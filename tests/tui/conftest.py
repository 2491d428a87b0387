"""TUI fixtures: a fixed clock so ages and countdowns on screen do not change between runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

FIXED_NOW = datetime(2026, 6, 18, 18, 0, tzinfo=UTC)


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


async def _until(pilot, condition, *, timeout: float = 20.0, what: str = "") -> None:
    """Wait until `condition()` holds: workers finish and screens repaint at their own pace on a busy machine."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what or condition}; focus on {pilot.app.focused!r}; the screen shows:\n{_screen_text(pilot.app)}"
            )
        await pilot.pause(0.1)


@pytest.fixture
def until():
    return _until
