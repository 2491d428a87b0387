"""stdout carries data only (a table or JSON); messages and errors go to stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

_messages: TextIO | None = None    # where `say` writes while a pager shows stdout on the same terminal


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from models, dataclasses and datetimes.

    Pydantic models are recognised by `model_dump` rather than by class, so the CLI does not import
    pydantic just to start.
    """
    if callable(getattr(value, "model_dump", None)):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def emit_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    # Imported here: only commands that print a table pay for tabulate's import.
    from tabulate import tabulate

    rows = list(rows)
    sys.stdout.write((tabulate(rows, headers=headers, tablefmt="simple") if rows else "(none)") + "\n")


def emit_text_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> None:
    """The layout of `emit_table` (tabulate's "simple") for text cells, written directly: tabulate infers a
    type for every cell, which `--all` over a large incident cannot afford."""
    if not rows:
        sys.stdout.write("(none)\n")
        return
    widths = [max([len(h) + 2, *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]   # tabulate pads headers by 2

    def line(cells) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    sys.stdout.write("\n".join([line(headers), line("-" * w for w in widths), *(line(row) for row in rows)]) + "\n")


def emit_jsonl(items: Iterable[dict], every: int = 500) -> None:
    """One JSON object (already made of plain JSON types) per line, written and flushed in groups of `every` lines as they are made, so a pipeline
    starts on the first ones and the whole document never exists in memory. A reader that stops early
    (`| head`) ends the output, not the command."""
    batch: list[str] = []
    try:
        for item in items:
            batch.append(json.dumps(item, ensure_ascii=False))
            if len(batch) >= every:
                sys.stdout.write("\n".join(batch) + "\n")
                sys.stdout.flush()
                batch.clear()
        if batch:
            sys.stdout.write("\n".join(batch) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's last flush does not fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def emit_text(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")


def say(text: str) -> None:
    """Progress and confirmations for people: stderr, so stdout stays parseable (or the pager, see `route_messages`)."""
    (_messages or sys.stderr).write(text.rstrip("\n") + "\n")


def route_messages(stream: TextIO | None) -> TextIO | None:
    """Send `say` to `stream` (None: stderr again); returns where it went before. Errors always go to stderr."""
    global _messages
    previous, _messages = _messages, stream
    return previous


def emit_error(error: dict, json_mode: bool) -> None:
    if json_mode:
        sys.stderr.write(json.dumps(error, ensure_ascii=False) + "\n")
    else:
        line = f"error: {error['message']}"
        if error.get("hint"):
            line += f" ({error['hint']})"
        sys.stderr.write(line.replace("\n", " ") + "\n")
