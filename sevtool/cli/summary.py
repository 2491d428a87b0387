"""Summaries for people: counts, then the worst rows, for lists too long to read at 3 a.m.

The worst rows are picked by plain sort keys and only they are made into text: formatting all 45,000
findings to show 50 would cost more than the --json output the summary is meant to undercut.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sevtool.cli.output import emit_table, emit_text
from sevtool.core.exposure import AccessPath, Finding, dss_label

LIMIT = 50
T = TypeVar("T")

# Broadest first: how far one such path reaches. PUBLIC is every role; a superuser or predefined role reads
# every table; default privileges reach every table yet to be created, a catalog or schema grant everything
# under it; a membership reaches what the role reads; ... a column grant exposes one column.
_BROADEST_FIRST = (
    AccessPath.PUBLIC,
    AccessPath.SUPERUSER,
    AccessPath.PREDEFINED_ROLE,
    AccessPath.SERVER_FILES,
    AccessPath.DEFAULT_PRIVILEGES,
    AccessPath.INHERITED,
    AccessPath.CREATEROLE,
    AccessPath.ROLE,
    AccessPath.DIRECT,
    AccessPath.GRANT_OPTION,
    AccessPath.OWNER,
    AccessPath.SECURITY_DEFINER,
    AccessPath.VIEW,
    AccessPath.INHERITS_PARENT,
    AccessPath.PARTITION,
    AccessPath.COLUMN,
)
BREADTH = {path: rank for rank, path in enumerate(_BROADEST_FIRST)}
_UNRATED = dss_label(None)


def sensitivity_rank(dss: int | None) -> int:
    """Most sensitive first: unrated (it could be anything, so it counts as the worst, as scans keep it under
    --min-dss), then DSS 4, ..., DSS 1."""
    return -dss if dss else -5


def label_rank(label: str) -> int:
    """`sensitivity_rank` of a label made by `dss_label` ("DSS 3", "unrated")."""
    return -5 if label == _UNRATED else -int(label.split()[-1])


def finding_key(f: Finding) -> tuple:
    """Worst first: the most sensitive, then the broadest path; then by name, so the order is stable."""
    return (
        sensitivity_rank(f.dss),
        BREADTH.get(f.path, len(BREADTH)),
        f.schema_name,
        f.object_name,
        f.column or "",
        f.principal,
    )


def worst(rows: Iterable[T], key: Callable[[T], Any], limit: int | None) -> tuple[list[T], int]:
    """The first `limit` rows by `key` (every row, sorted, when `limit` is None) and how many rows there are."""
    rows = rows if isinstance(rows, Sequence) else list(rows)
    if limit is None or len(rows) <= limit:
        return sorted(rows, key=key), len(rows)
    return heapq.nsmallest(limit, rows, key=key), len(rows)


def limit_for(all_rows: bool) -> int | None:
    return None if all_rows else LIMIT


def emit_more(shown: int, total: int, noun: str, machine: str) -> None:
    """Under a table cut short: how many rows are left out and how to see them (`machine`: the JSON way)."""
    if total > shown:
        emit_text(
            f"... {total - shown:,} more {noun} not shown (the worst come first): add --all to print every row, or {machine}"
        )


def emit_counts(counts: Mapping[str, int], headers: Sequence[str], *, by_sensitivity: bool = False) -> None:
    items = sorted(counts.items(), key=lambda item: label_rank(item[0])) if by_sensitivity else list(counts.items())
    emit_table(items, headers)
    emit_text("")
