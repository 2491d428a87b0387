"""gc_paused: the collector off during a CLI bulk command's work on the main thread, never in the TUI, and freed
memory handed back once, when the outermost bulk call ends."""

import gc
import platform
import threading

import pytest

from sevtool import gcpause


@pytest.fixture
def trims(monkeypatch):
    done = []
    monkeypatch.setattr(gcpause, "_trim", lambda: done.append(gc.isenabled()))
    return done


def test_outside_a_bulk_run_the_collector_is_left_alone(trims):
    with gcpause.gc_paused():
        assert gc.isenabled()
    assert trims == []


def test_nested_bulk_calls_trim_once_at_the_end_and_restore_the_collector(trims):
    assert gc.isenabled()
    with gcpause.bulk_run():
        with gcpause.gc_paused():
            with gcpause.gc_paused():  # a plan made inside an apply
                assert not gc.isenabled()
            assert trims == [] and not gc.isenabled()
        assert trims == [True] and gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off_and_nothing_is_trimmed(trims):
    gc.disable()
    try:
        with gcpause.bulk_run(), gcpause.gc_paused():
            pass
        assert not gc.isenabled() and trims == []
    finally:
        gc.enable()


def test_in_a_bulk_run_only_the_main_thread_pauses(trims):
    seen = []

    def worker():
        with gcpause.gc_paused():
            seen.append(gc.isenabled())

    with gcpause.bulk_run():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen == [True] and trims == []


def test_cli_commands_marked_bulk_run_in_a_bulk_run_and_the_others_do_not(trims):
    import typer
    from typer.testing import CliRunner

    from sevtool.cli.main import command

    group = typer.Typer()
    paused = {}

    def record(name: str) -> None:
        with gcpause.gc_paused():
            paused[name] = not gc.isenabled()

    @command(group=group, name="bulk", bulk=True)
    def bulk_command():
        record("bulk")

    @command(group=group, name="small")
    def small_command():
        record("small")

    for name in ("bulk", "small"):
        assert CliRunner().invoke(group, [name]).exit_code == 0
    assert paused == {"bulk": True, "small": False} and gc.isenabled()


async def test_the_tui_never_pauses_the_collector(sqlite_wb, monkeypatch):
    """The postmortem tab renders through PostmortemService.render, a bulk call, in a TUI worker thread."""
    from sevtool.tui.app import create_app
    from sevtool.tui.widgets.postmortem_pane import PostmortemPane

    disabled = []
    real_disable = gc.disable
    monkeypatch.setattr(gc, "disable", lambda: (disabled.append(threading.current_thread().name), real_disable()))
    incident = sqlite_wb.incidents.declare("telemetry readable by all_employees", 2)
    app = create_app(sqlite_wb, open_incident=incident.id)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("5")
        for _ in range(200):
            if app.screen.query(PostmortemPane) and app.screen.query_one(PostmortemPane).markdown:
                break
            await pilot.pause(0.1)
        assert app.screen.query_one(PostmortemPane).markdown.startswith("# Postmortem INC-1")
    assert disabled == [] and gc.isenabled()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_malloc_trim_is_found_on_this_glibc_machine():
    assert gcpause._malloc_trim() is not None
    gcpause._trim()
