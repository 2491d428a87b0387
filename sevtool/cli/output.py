"""stdout carries data only (a table or JSON); messages and errors go to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


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
    # tabulate's import costs about 50 ms: only commands that print a table pay it.
    from tabulate import tabulate

    rows = list(rows)
    sys.stdout.write((tabulate(rows, headers=headers, tablefmt="simple") if rows else "(none)") + "\n")


def emit_text(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")


def say(text: str) -> None:
    """Progress and confirmations for people: stderr, so stdout stays parseable."""
    sys.stderr.write(text.rstrip("\n") + "\n")


def emit_error(error: dict, json_mode: bool) -> None:
    if json_mode:
        sys.stderr.write(json.dumps(error, ensure_ascii=False) + "\n")
    else:
        line = f"error: {error['message']}"
        if error.get("hint"):
            line += f" ({error['hint']})"
        sys.stderr.write(line.replace("\n", " ") + "\n")
