"""stdout carries data only (a table or JSON); messages and errors go to stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO

_messages: TextIO | None = None  # where `say` writes while a pager shows stdout on the same terminal


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from models, dataclasses and datetimes.

    Pydantic models are recognised by `model_dump` rather than by class, so the CLI does not import
    pydantic just to start.
    """
    if isinstance(value, _Streamed):
        return value  # made plain item by item as it is written
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


STREAM_FROM = 1000  # items in a list from which its items are made plain and encoded one at a time as they are written
_WRITE_EVERY = 8192  # encoded pieces joined per write to stdout
_ITEMS_PER_WRITE = 1000  # a long list's items, encoded, joined per write to stdout


class _Streamed(list):
    """A list whose items are made plain one at a time as they are encoded: a plan's 200,000 actions are never all
    held as dicts, nor their JSON as one string."""

    def __init__(self, items: Sequence[Any], convert: Callable[[Any], Any]):
        super().__init__()
        self._items, self._convert = items, convert

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return map(self._convert, self._items)


def streamed(items: Sequence[Any], convert: Callable[[Any], Any]) -> list:
    """`[convert(i) for i in items]` as `emit_json` writes it, without making the list first; `convert` gives plain
    JSON types (as `describe.as_json` does)."""
    return _Streamed(items, convert)


def _plain_streaming(value: Any) -> Any:
    """`to_jsonable(value)`, except that a model's long lists of models are made plain item by item as they are written."""
    fields = getattr(type(value), "model_fields", None)
    if fields is None or not callable(getattr(value, "model_dump", None)):
        return to_jsonable(value)
    long = {
        name
        for name in fields
        if not fields[name].exclude
        and isinstance(items := getattr(value, name), list)
        and len(items) >= STREAM_FROM
        and hasattr(items[0], "__pydantic_serializer__")  # models and pydantic dataclasses (plan actions)
    }
    if not long:
        return to_jsonable(value)
    rest = value.model_dump(mode="json", exclude=long)
    ordered = {
        name: (_Streamed(getattr(value, name), _as_is) if name in long else rest.pop(name))
        for name in fields
        if name in long or name in rest
    }
    return {**ordered, **rest}  # what is left: computed fields, which model_dump puts after the fields


def _as_is(item: Any) -> Any:
    """A model or pydantic dataclass goes to `_write_list` whole: its own serializer writes it, never a dict first."""
    return item


def write_json(data: Any, *, indent: int = 2) -> None:
    """`json.dumps(to_jsonable(data), indent=indent, ensure_ascii=False)` and a newline, written as it is encoded,
    without holding the whole of a 45,000-finding document (and its millions of pieces) at once.

    json's encoder is pure Python when it indents; the long lists (`_Streamed`, at the top level as `scan` and
    `_plain_streaming` put them) are encoded item by item by pydantic-core's, which writes the same text (floats
    aside: it spells 1e-05 as 0.00001) in under half the time."""
    plain = _plain_streaming(data)
    if not isinstance(plain, dict) or not any(isinstance(v, _Streamed) and v for v in plain.values()):
        _write_pieces(json.JSONEncoder(ensure_ascii=False, indent=indent).iterencode(plain))
        return
    marks = {
        f"\x00streamed {n}\x00": v for n, v in enumerate(v for v in plain.values() if isinstance(v, _Streamed) and v)
    }
    by_list = {id(v): mark for mark, v in marks.items()}
    outline = json.dumps({k: by_list.get(id(v), v) for k, v in plain.items()}, ensure_ascii=False, indent=indent)
    for mark, items in marks.items():
        before, outline = outline.split(json.dumps(mark), 1)
        sys.stdout.write(before)
        _write_list(items, indent)
    sys.stdout.write(outline + "\n")


def _write_list(items: Iterable[Any], indent: int) -> None:
    """A list one level below the top, as json.dumps indents it there, encoded an item at a time."""
    from pydantic_core import to_json

    inner = "\n" + " " * (2 * indent)
    pieces = ["["]
    separator = ""
    for item in items:
        # A model's own serializer (its exclusions included) rather than to_json's inference over its fields.
        serializer = getattr(item, "__pydantic_serializer__", None)
        text = serializer.to_json(item, indent=indent) if serializer is not None else to_json(item, indent=indent)
        pieces.append(separator + inner + text.decode().replace("\n", inner))
        separator = ","
        if len(pieces) >= _ITEMS_PER_WRITE:
            sys.stdout.write("".join(pieces))
            pieces.clear()
    pieces.append("\n" + " " * indent + "]")
    sys.stdout.write("".join(pieces))


def _write_pieces(pieces_made: Iterable[str]) -> None:
    pieces: list[str] = []
    for piece in pieces_made:
        pieces.append(piece)
        if len(pieces) >= _WRITE_EVERY:
            sys.stdout.write("".join(pieces))
            pieces.clear()
    pieces.append("\n")
    sys.stdout.write("".join(pieces))


def emit_json(data: Any) -> None:
    write_json(data)


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
    widths = [
        max([len(h) + 2, *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)
    ]  # tabulate pads headers by 2

    def line(cells) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()

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
