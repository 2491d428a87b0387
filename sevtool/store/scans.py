"""Scope versions and their findings: written inside the scan's store transaction, read back as domain objects.

Findings are inserted and read with SQLAlchemy core (one executemany, plain row tuples back):
45,000 ORM objects would cost more than the scan itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, insert, select
from sqlmodel import Session

from sevtool.core.exposure import Finding, Scope
from sevtool.core.timeparse import utcnow
from sevtool.store.models import FindingRow, ScopeRow

_FINDINGS = FindingRow.__table__
_COLUMNS = ("object_kind", "schema_name", "object_name", "principal", "path", "via", "privilege", "grantee", "grantor",
            "column_name", "dss", "base_object")
_build_finding = Finding.__pydantic_validator__.validate_python


def next_version(session: Session, incident_id: int) -> int:
    current = session.execute(select(func.max(ScopeRow.version)).where(ScopeRow.incident_id == incident_id)).scalar()
    return (current or 0) + 1


def add_scope(session: Session, incident_id: int, version: int, scope: Scope, *, finding_count: int, object_count: int) -> int:
    row = ScopeRow(incident_id=incident_id, version=version, target=scope.target, principals=list(scope.principals),
                   schemas=list(scope.schemas), table_glob=scope.table_glob, min_dss=scope.min_dss,
                   finding_count=finding_count, object_count=object_count, created_at=utcnow())
    session.add(row)
    session.flush()
    return row.id


def add_findings(session: Session, scope_id: int, findings: Iterable[Finding]) -> None:
    rows = [{"scope_id": scope_id, "object_kind": f.object_kind, "schema_name": f.schema_name, "object_name": f.object_name,
             "principal": f.principal, "path": f.path.value, "via": f.via, "privilege": f.privilege, "grantee": f.grantee,
             "grantor": f.grantor, "column_name": f.column, "dss": f.dss, "base_object": f.base_object} for f in findings]
    if rows:
        session.execute(insert(_FINDINGS), rows)


def scope_row(session: Session, incident_id: int, version: int | None = None) -> ScopeRow | None:
    """The given version, or the latest when version is None."""
    query = select(ScopeRow).where(ScopeRow.incident_id == incident_id)
    query = query.where(ScopeRow.version == version) if version is not None else query.order_by(ScopeRow.version.desc()).limit(1)
    return session.execute(query).scalars().first()


def scope_rows(session: Session, incident_id: int) -> list[ScopeRow]:
    return list(session.execute(select(ScopeRow).where(ScopeRow.incident_id == incident_id).order_by(ScopeRow.version)).scalars())


def scope_from_row(row: ScopeRow) -> Scope:
    return Scope(target=row.target, principals=list(row.principals), schemas=list(row.schemas or []),
                 table_glob=row.table_glob, min_dss=row.min_dss)


def findings_of(session: Session, scope_id: int) -> list[Finding]:
    columns = [_FINDINGS.c[name] for name in _COLUMNS]
    rows = session.execute(select(*columns).where(_FINDINGS.c.scope_id == scope_id).order_by(_FINDINGS.c.id)).all()
    return [_build_finding({"object_kind": r[0], "schema_name": r[1], "object_name": r[2], "principal": r[3], "path": r[4],
                            "via": r[5], "privilege": r[6], "grantee": r[7], "grantor": r[8], "column": r[9], "dss": r[10],
                            "base_object": r[11]}) for r in rows]
