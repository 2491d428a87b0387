"""Bulk work at 45,000-object scale: Python's cyclic garbage collector paused during it, freed memory handed back after.

A scan, plan, apply or check allocates tens of thousands of objects that all stay alive until the work
is recorded; the collector would walk them again and again and free nothing. Reference counting still
frees everything that is dropped.

What is freed stays mapped, though: glibc keeps it in the per-thread arenas the worker threads used and in
holes below each heap's top, so a process running several bulk steps would start each from a higher resident
size. `malloc_trim` returns those pages once the outermost bulk call ends. (What each measured:
docs/benchmark.md, "Why the code is so".)

Only where the process does nothing else: the collector is process-wide, and pausing it while other threads
of the process allocate (the TUI's event loop and workers) would stop collection for them too. So
`gc_paused` pauses only inside `bulk_run()`, which the CLI's bulk commands (scan, revoke, verify, watch,
postmortem) enter, and only on the main thread; the threads a bulk call starts for itself
run inside its pause. Anywhere else, the TUI included, `gc_paused` changes nothing.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_bulk = False  # a bulk command is running on the main thread, and the process serves nothing else meanwhile


@contextmanager
def bulk_run() -> Iterator[None]:
    """The block is one bulk command of a CLI process: inside it, `gc_paused` on the main thread pauses the collector."""
    global _bulk
    was = _bulk
    _bulk = True
    try:
        yield
    finally:
        _bulk = was


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collector off for the block (or, as `@gc_paused()`, the call); back on after unless it was already off,
    and then (the outermost bulk call has ended) freed memory goes back to the system.

    Only in a `bulk_run()`, on the main thread; elsewhere the block runs with the collector as it is."""
    pause = _bulk and threading.current_thread() is threading.main_thread() and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()
            _trim()


def hand_back_freed() -> None:
    """Freed memory back to the system now, between two bulk steps of one call: the second starts from what the
    first left alive, not from its peak (an apply's pages before the statistics snapshot that follows it)."""
    _trim()


def _trim() -> None:
    release = _malloc_trim()
    if release is not None:
        release(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS, Windows).

    Looked up among the symbols the process has loaded already (its C library among them), not with
    ctypes.util.find_library, which runs ldconfig."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError):  # TypeError: Windows has no "the process itself" handle
        return None
