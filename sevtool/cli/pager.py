"""A pager for long text output, as git does it: only for a person at a terminal, never for a script.

`SEVTOOL_PAGER`, else `PAGER`, else `less -FRX` (-F quits at once when the text fits one screen, -R keeps
colours, -X leaves the text on the screen after quitting). An empty value or `cat` turns paging off, as does
`--no-pager`. Machine output (--json, --jsonl) and a stdout that is not a terminal are never paged.

The pager starts only once the command has its answer, so a long scan does not sit behind an empty pager,
and errors raised before then reach stderr as usual.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress

from sevtool.cli import output

DEFAULT = "less -FRX"
OFF = ("", "cat")


def choose(env: Mapping[str, str], *, stdout_tty: bool, no_pager: bool = False, machine: bool = False) -> str | None:
    """The pager command to run, or None to write straight to stdout."""
    if machine or no_pager or not stdout_tty:
        return None
    for name in ("SEVTOOL_PAGER", "PAGER"):
        if name in env:  # set but empty means "no pager", as GIT_PAGER= does
            command = env[name].strip()
            return None if command in OFF else command
    return DEFAULT


class _PagerStream(io.TextIOBase):
    """stdout while paging. A reader who quits the pager early closes the pipe: the rest is dropped quietly
    and the command still finishes (it may have recorded a scope, and its exit code still counts)."""

    def __init__(self, pipe, encoding: str):
        self._pipe = pipe
        self._encoding = encoding
        self.closed_by_reader = False

    @property
    def encoding(self) -> str:
        return self._encoding

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                self._pipe.write(text.encode(self._encoding, "replace"))
            except (BrokenPipeError, ValueError):
                self.closed_by_reader = True
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self._pipe.flush()
            except (BrokenPipeError, ValueError):
                self.closed_by_reader = True


def _runnable(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:
        return True  # let the shell judge it
    return bool(words) and ("=" in words[0] or shutil.which(words[0]) is not None)


@contextmanager
def paged(no_pager: bool = False, machine: bool = False) -> Iterator[None]:
    """Inside: stdout (and the human messages of `output.say`, when stderr is the same terminal) go to the pager."""
    command = choose(os.environ, stdout_tty=sys.stdout.isatty(), no_pager=no_pager, machine=machine)
    if command is not None and not _runnable(command):
        output.say(
            f"note: pager {command!r} not found; printing without it (set SEVTOOL_PAGER or PAGER, or pass --no-pager)"
        )
        command = None
    if command is None:
        yield
        return
    sys.stdout.flush()
    proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE)
    real_stdout = sys.stdout
    stream = _PagerStream(proc.stdin, real_stdout.encoding or "utf-8")
    sys.stdout = stream
    # On one terminal, messages written to stderr while the pager draws would land inside its screen.
    previous = output.route_messages(stream if sys.stderr.isatty() else None)
    try:
        yield
    finally:
        output.route_messages(previous)
        sys.stdout = real_stdout
        stream.flush()
        with suppress(BrokenPipeError):
            proc.stdin.close()
        while True:
            try:
                proc.wait()  # the reader is still reading; Ctrl-C belongs to the pager, as in git
                break
            except KeyboardInterrupt:
                continue
