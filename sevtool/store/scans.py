"""Scope versions and their findings: written inside the scan's store transaction, read back as domain objects.

Findings go in and out through the driver (COPY or one executemany, plain tuples back): 45,000 ORM
objects, or even SQLAlchemy core's per-row parameter handling, would cost more than the scan itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator

from sqlalchemy import func, select
from sqlmodel import Session

from sevtool.core.exposure import HOW_FIELDS, ExposureSummary, Finding, Scope, dss_label
from sevtool.core.timeparse import utcnow
from sevtool.store import bulk
from sevtool.store.models import FindingRow, ScopeRow

_COLUMNS = (
    "object_kind",
    "schema_name",
    "object_name",
    "principal",
    "path",
    "privilege",
    "grantee",
    "grantor",
    "column_name",
    "dss",
    "base_object",
    "detail",
)
_build_finding = Finding.__pydantic_validator__.validate_python
_to_json = Finding.__pydantic_serializer__.to_json
_HOW = set(HOW_FIELDS)


def next_version(session: Session, incident_id: int) -> int:
    current = session.execute(select(func.max(ScopeRow.version)).where(ScopeRow.incident_id == incident_id)).scalar()
    return (current or 0) + 1


def add_scope(
    session: Session, incident_id: int, version: int, scope: Scope, *, finding_count: int, object_count: int
) -> int:
    row = ScopeRow(
        incident_id=incident_id,
        version=version,
        target=scope.target,
        principals=list(scope.principals),
        schemas=list(scope.schemas),
        table_glob=scope.table_glob,
        min_dss=scope.min_dss,
        finding_count=finding_count,
        object_count=object_count,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row.id


def add_findings(session: Session, scope_id: int, findings: Iterable[Finding]) -> None:
    """Through the driver (see `bulk`): 45,000 findings through the ORM would take longer than the scan."""
    bulk.insert_rows(
        session,
        "finding",
        ("scope_id", *_COLUMNS),
        (
            (
                scope_id,
                f.object_kind,
                f.schema_name,
                f.object_name,
                f.principal,
                str(f.path),
                f.privilege,
                f.grantee,
                f.grantor,
                f.column,
                f.dss,
                f.base_object,
                _detail(f),
            )
            for f in findings
        ),
    )


def _detail(f: Finding) -> str | None:
    """The finding's set `HOW_FIELDS` as JSON text (the route as a list, the securable as an object), or None."""
    text = _to_json(f, include=_HOW)
    return None if text == b"{}" else text.decode()


def scope_row(session: Session, incident_id: int, version: int | None = None) -> ScopeRow | None:
    """The given version, or the latest when version is None."""
    query = select(ScopeRow).where(ScopeRow.incident_id == incident_id)
    query = (
        query.where(ScopeRow.version == version)
        if version is not None
        else query.order_by(ScopeRow.version.desc()).limit(1)
    )
    return session.execute(query).scalars().first()


def scope_rows(session: Session, incident_id: int) -> list[ScopeRow]:
    return list(
        session.execute(
            select(ScopeRow).where(ScopeRow.incident_id == incident_id).order_by(ScopeRow.version)
        ).scalars()
    )


def scope_from_row(row: ScopeRow) -> Scope:
    return Scope(
        target=row.target,
        principals=list(row.principals),
        schemas=list(row.schemas or []),
        table_glob=row.table_glob,
        min_dss=row.min_dss,
    )


_SHARED = frozenset(("object_kind", "schema_name", "principal", "path", "privilege", "grantee", "grantor"))
_FETCH = 5000


def findings_of(session: Session, scope_id: int) -> list[Finding]:
    return list(iter_findings(session, scope_id, share_strings=True))


def iter_findings(session: Session, scope_id: int, *, share_strings: bool = False) -> Iterator[Finding]:
    """Findings in scan order, read through the driver cursor (for the same reason as `add_findings`) a few
    thousand rows at a time, so a caller that consumes them as they come never holds 45,000 at once.

    The driver makes a new string per row and column. `share_strings`, for a caller that keeps them all: the
    columns that repeat (schema, principal, path, grantor ...) share one string per distinct value, a
    fifth less memory for a large exposure, for about a quarter more time to read.
    """
    mark = "%s" if session.get_bind().dialect.name == "postgresql" else "?"
    keys = tuple("column" if name == "column_name" else name for name in _COLUMNS[:-1])
    shared = [name in _SHARED for name in keys]
    seen: dict[str, str] = {}
    driver = session.connection().connection.driver_connection
    cur = driver.cursor()
    try:
        cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM finding WHERE scope_id = {mark} ORDER BY id", (scope_id,))
        while rows := cur.fetchmany(_FETCH):
            for *row, detail in rows:
                fields = (
                    {
                        key: seen.setdefault(value, value) if share and value is not None else value
                        for key, share, value in zip(keys, shared, row, strict=False)
                    }
                    if share_strings
                    else dict(zip(keys, row, strict=False))
                )
                if detail is not None:  # SQLite hands JSON back as text, psycopg already decoded
                    fields.update(json.loads(detail) if isinstance(detail, str) else detail)
                yield _build_finding(fields)
    finally:
        cur.close()


def exposure_summary(session: Session, scope_id: int) -> ExposureSummary:
    """`ExposureSummary.of(findings_of(session, scope_id))`, counted by the database instead of from 45,000 rows
    read back into Python: an object's DSS is its first finding's, paths tie in first-seen order, as `of` has them."""
    scoped = FindingRow.scope_id == scope_id
    fqn = FindingRow.schema_name + "." + FindingRow.object_name
    first_of_each_object = select(func.min(FindingRow.id).label("id")).where(scoped).group_by(fqn).subquery()
    by_dss: Counter[str] = Counter()
    for dss, objects in session.execute(
        select(FindingRow.dss, func.count())
        .join(first_of_each_object, FindingRow.id == first_of_each_object.c.id)
        .group_by(FindingRow.dss)
    ):
        by_dss[dss_label(dss)] += objects
    paths = session.execute(
        select(FindingRow.path, func.count(), func.min(FindingRow.id)).where(scoped).group_by(FindingRow.path)
    ).all()
    principals = session.execute(
        select(FindingRow.principal, func.count(func.distinct(fqn))).where(scoped).group_by(FindingRow.principal)
    ).all()
    return ExposureSummary(
        findings=sum(count for _, count, _ in paths),
        objects=sum(by_dss.values()),
        by_dss=dict(sorted(by_dss.items())),
        by_path={path: count for path, count, _ in sorted(paths, key=lambda row: (-row[1], row[2]))},
        by_principal=dict(sorted((principal, objects) for principal, objects in principals)),
        unrated=by_dss.get("unrated", 0),
    )
