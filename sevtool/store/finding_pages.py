"""One page of a scope version's findings, filtered and ordered by the database.

The TUI shows 200,000 findings a screenful at a time: reading them all back into Python to show forty lines
costs seconds and hundreds of megabytes, where the database counts, filters and sorts them in a fraction of that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import String, case, cast, func, literal, select
from sqlmodel import Session

from sevtool.core.exposure import Finding
from sevtool.store.models import FindingRow

_build_finding = Finding.__pydantic_validator__.validate_python
_FIELDS = (
    ("object_kind", FindingRow.object_kind),
    ("schema_name", FindingRow.schema_name),
    ("object_name", FindingRow.object_name),
    ("principal", FindingRow.principal),
    ("path", FindingRow.path),
    ("privilege", FindingRow.privilege),
    ("grantee", FindingRow.grantee),
    ("grantor", FindingRow.grantor),
    ("column", FindingRow.column_name),
    ("dss", FindingRow.dss),
    ("base_object", FindingRow.base_object),
)
# Most sensitive first, as the scope summary lists them: unrated (nobody knows), then DSS 4 down to 1.
_WORST_FIRST = (case((FindingRow.dss.is_(None), 5), else_=FindingRow.dss).desc(), FindingRow.id)


def _searchable():
    """What a filter word may match: the columns the findings table shows (object, DSS, principal, path,
    privilege) and what its 'via' column is made of (grantee, grantor, base object, route)."""
    dss = case((FindingRow.dss.is_(None), literal("unrated")), else_=literal("dss ") + cast(FindingRow.dss, String))
    parts = [
        FindingRow.schema_name + "." + FindingRow.object_name + func.coalesce("." + FindingRow.column_name, ""),
        dss,
        FindingRow.principal,
        FindingRow.path,
        FindingRow.privilege,
        FindingRow.grantee,
        FindingRow.grantor,
        func.coalesce(FindingRow.base_object, ""),
        func.coalesce(cast(FindingRow.detail, String), ""),
    ]
    text = parts[0]
    for part in parts[1:]:
        text = text + " " + part
    return text


def _matching(session: Session, scope_id: int, words: Sequence[str]):
    """Every word somewhere in the finding, in any case, as the filter box promises; LIKE's wildcards in a word
    match themselves. SQLite's LIKE ignores case already: lower-casing 200,000 rows again would double the work."""
    conditions = [FindingRow.scope_id == scope_id]
    if words:
        text = _searchable()
        sqlite = session.get_bind().dialect.name == "sqlite"
        for word in words:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(text.like(pattern, escape="\\") if sqlite else text.ilike(pattern, escape="\\"))
    return conditions


def count(session: Session, scope_id: int, words: Sequence[str]) -> int:
    return session.execute(
        select(func.count()).select_from(FindingRow).where(*_matching(session, scope_id, words))
    ).scalar_one()


def page(
    session: Session, scope_id: int, words: Sequence[str], offset: int, limit: int
) -> tuple[int | None, list[Finding]]:
    """(how many match, findings `offset` to `offset + limit` of them, most sensitive first).

    With a filter the count rides on the rows, from the same pass over the scope; it is None when the page is
    past the end and has no row to carry it, and without a filter (the scope row knows how many it has)."""
    columns = [column for _, column in _FIELDS]
    counted = func.count().over() if words else literal(None)
    rows = session.execute(
        select(*columns, FindingRow.detail, counted)
        .where(*_matching(session, scope_id, words))
        .order_by(*_WORST_FIRST)
        .offset(offset)
        .limit(limit)
    ).all()
    findings = []
    for *values, detail, _ in rows:
        fields = dict(zip((name for name, _ in _FIELDS), values, strict=True))
        if detail is not None:
            fields.update(json.loads(detail) if isinstance(detail, str) else detail)
        findings.append(_build_finding(fields))
    return (rows[0][-1] if rows else None), findings
