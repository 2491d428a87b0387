"""GitHub-flavoured markdown tables and prose: cells escaped (`|`, newlines, `<`) and redacted."""

from __future__ import annotations

import re
from typing import Any

from tabulate import tabulate

from sevtool.core.redaction import redact

_NEEDS_ESCAPE = re.compile(r"[<\\|\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def cell(value: object) -> str:
    """One table cell: redacted, `<` escaped (no HTML), `|` escaped, newlines as <br>, so the row stays one row."""
    if value is None:
        return ""
    text = redact(str(value))
    if not _NEEDS_ESCAPE.search(text):
        return text.strip()
    text = text.replace("<", "&lt;")
    text = _CONTROL.sub("", text).replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"\r\n|\r|\n", "<br>", text.strip())


def prose(value: str) -> str:
    """Free text outside tables: redacted, and `<` escaped so a stray tag cannot swallow the rest."""
    return _CONTROL.sub("", redact(value)).replace("<", "&lt;").strip()


def table(rows: list[list[Any]], headers: list[str], *, escaped: bool = False, pad: bool = True) -> str:
    """A GitHub table; `escaped=True` when the caller already passed every cell through `cell`.

    `pad=False` skips column padding: markdown does not need it, and a 10,000-row timeline is then
    written directly instead of through tabulate.
    """
    body = rows if escaped else [[cell(v) for v in row] for row in rows]
    head = [cell(h) for h in headers]
    if not pad:
        return _unpadded_table(body, head)
    return tabulate(body, headers=head, tablefmt="github", disable_numparse=True, stralign="left")


def _unpadded_table(rows: list[list[str]], headers: list[str]) -> str:
    """The text tabulate's github format gives for unaligned cells, without its per-cell type deduction,
    which took most of a 10,000-event render: cells as they are, a rule as wide as each column
    (at least its header plus two)."""
    widths = [len(h) + 2 for h in headers]
    for i, column in enumerate(zip(*rows, strict=False)):
        widths[i] = max(widths[i], max(map(len, column)))
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
