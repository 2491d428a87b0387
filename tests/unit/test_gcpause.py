"""gc_paused: the collector off during bulk work, and freed memory handed back once, when the outermost call ends."""

import gc
import platform

import pytest

from sevtool import gcpause


def test_nested_bulk_calls_trim_once_at_the_end_and_restore_the_collector(monkeypatch):
    trims = []
    monkeypatch.setattr(gcpause, "_trim", lambda: trims.append(gc.isenabled()))
    assert gc.isenabled()
    with gcpause.gc_paused():
        with gcpause.gc_paused():   # a plan made inside an apply
            assert not gc.isenabled()
        assert trims == [] and not gc.isenabled()
    assert trims == [True] and gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off_and_nothing_is_trimmed(monkeypatch):
    trims = []
    monkeypatch.setattr(gcpause, "_trim", lambda: trims.append(True))
    gc.disable()
    try:
        with gcpause.gc_paused():
            pass
        assert not gc.isenabled() and trims == []
    finally:
        gc.enable()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_malloc_trim_is_found_on_this_glibc_machine():
    assert gcpause._malloc_trim() is not None
    gcpause._trim()
