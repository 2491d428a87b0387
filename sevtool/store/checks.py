"""Store queries for verification: checks and what each found, regressions (the re-check schedule: store.schedule;
a check's comparison: store.check_compare).

Writes take the `Tx` of a `Store.write()`, so a check, its regressions, the timeline events and the
status change commit together. Findings and regressions are written through the driver (COPY on
PostgreSQL, one executemany on SQLite): a check over 45,000 exposed tables must not pay for one ORM
object, or SQLAlchemy's per-row parameter processing, per row. A check's comparison with its baseline and the
ledger is made in SQL (store.check_compare), never by rebuilding models.

A check's summary stays small: the objects it saw are kept as a digest, and as a compressed list
(`objects_packed`) only in the check that first saw that set; later checks point at it (`objects_of_check`).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import TypeAdapter
from sqlalchemy import Text, cast, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from sevtool.core.checks import CheckState
from sevtool.core.exposure import Finding
from sevtool.core.timeparse import as_utc
from sevtool.store import bulk
from sevtool.store.models import (
    ActionRow,
    CheckFindingRow,
    CheckRow,
    FindingRow,
    RegressionRow,
    ScopeRow,
)
from sevtool.store.repository import Store

if TYPE_CHECKING:
    from sevtool.store.check_compare import Comparison

# Summary keys this module owns.
FINDINGS_OF = "findings_of_check"  # findings unchanged since that check, stored there
FINDINGS_DIGEST = "findings_digest"
OBJECTS_DIGEST = "objects_digest"
READABLE_PAIRS = "readable_pairs"  # object x principal pairs readable at the check
OBJECTS_PACKED = "objects_packed"  # the objects in scope: sorted, newline-joined, zlib, base64
OBJECTS_OF = "objects_of_check"  # the same objects as that check, which holds them packed
LEGACY_OBJECTS = "objects"  # checks recorded before the list was packed kept it as a JSON list

_CHUNK = 900  # ids per IN (...): SQLite's default limit is 999 bound parameters


# --- checks -----------------------------------------------------------------------------------


def next_check_number(session: Session, incident_id: int) -> int:
    current = session.exec(select(func.max(CheckRow.number)).where(CheckRow.incident_id == incident_id)).one()
    return (current or 0) + 1


def add_check(
    session: Session,
    row: CheckRow,
    findings: Comparison,
    objects: Iterable[str],
    *,
    same_as: int | None = None,
    objects_in: int | None = None,
) -> CheckRow:
    """Store a check and what remained (the findings its comparison staged).

    `same_as`: an earlier check whose stored findings are exactly these, so a watch over an incident still
    exposed on 45,000 tables does not write them again at every check. `objects_in`: an earlier check
    holding exactly these objects packed; otherwise they are packed into this check's summary.
    """
    extra = {FINDINGS_OF: same_as} if same_as is not None else {}
    extra.update({OBJECTS_OF: objects_in} if objects_in is not None else {OBJECTS_PACKED: pack_objects(objects)})
    row.summary = {**row.summary, **extra}
    session.add(row)
    session.flush()
    if row.findings and same_as is None:
        findings.store_findings(row.id)
    return row


def pack_objects(objects: Iterable[str]) -> str:
    return base64.b64encode(zlib.compress("\n".join(sorted(objects)).encode())).decode("ascii")


def _unpack_objects(packed: str) -> frozenset[str]:
    text = zlib.decompress(base64.b64decode(packed)).decode()
    return frozenset(text.split("\n")) if text else frozenset()


def objects_check_id(row: CheckRow) -> int | None:
    """The check holding this check's objects packed, or None when it predates packing."""
    if OBJECTS_PACKED in row.summary:
        return row.id
    return row.summary.get(OBJECTS_OF)


def check_objects(store: Store, row: CheckRow) -> frozenset[str] | None:
    """The objects in scope at a check (None when it did not record them)."""
    if LEGACY_OBJECTS in row.summary:
        return frozenset(row.summary[LEGACY_OBJECTS])
    holder = objects_check_id(row)
    if holder is None:
        return None
    summary = row.summary
    if holder != row.id:
        with store.read() as s:
            summary = s.exec(select(CheckRow.summary).where(CheckRow.id == holder)).one()
    return _unpack_objects(summary[OBJECTS_PACKED])


def latest_check(store: Store, incident_id: int) -> CheckRow | None:
    with store.read() as s:
        return s.exec(
            select(CheckRow).where(CheckRow.incident_id == incident_id).order_by(CheckRow.number.desc()).limit(1)
        ).first()


def checked(store: Store, incident_id: int, version: int) -> bool:
    """Whether any check has looked at this scope version yet (the first one compares with the scan)."""
    with store.read() as s:
        return (
            s.exec(
                select(CheckRow.id)
                .where(CheckRow.incident_id == incident_id, CheckRow.scope_version == version)
                .limit(1)
            ).first()
            is not None
        )


def checks(store: Store, incident_id: int) -> list[CheckRow]:
    with store.read() as s:
        return list(s.exec(select(CheckRow).where(CheckRow.incident_id == incident_id).order_by(CheckRow.number)).all())


def check_states(store: Store, incident_id: int) -> list[CheckState]:
    with store.read() as s:
        rows = s.exec(
            select(CheckRow.id, CheckRow.number, CheckRow.ran_at, CheckRow.clean, CheckRow.regressions)
            .where(CheckRow.incident_id == incident_id)
            .order_by(CheckRow.number)
        ).all()
    return [CheckState(id=r[0], number=r[1], ran_at=as_utc(r[2]), clean=r[3], regressions=r[4]) for r in rows]


_FINDINGS = TypeAdapter(list[Finding])


def findings_check_id(row: CheckRow) -> int:
    """The check whose rows hold this check's findings (itself, unless they were unchanged)."""
    return row.summary.get(FINDINGS_OF, row.id)


def check_findings(store: Store, check_id: int) -> list[Finding]:
    """What remained at a check (pass `findings_check_id`). The JSON texts are parsed and validated in one
    pass: decoding row by row took seconds at 45,000."""
    with store.read() as s:
        texts = s.exec(
            select(cast(CheckFindingRow.detail, Text))
            .where(CheckFindingRow.check_id == check_id)
            .order_by(CheckFindingRow.id)
        ).all()
    return _FINDINGS.validate_json("[" + ",".join(texts) + "]")


def scan_pair_count(store: Store, incident_id: int, version: int) -> int:
    """How many object x principal pairs a scope version found readable."""
    pairs = (
        sa_select(FindingRow.schema_name, FindingRow.object_name, FindingRow.principal)
        .distinct()
        .join(ScopeRow, ScopeRow.id == FindingRow.scope_id)
        .where(ScopeRow.incident_id == incident_id, ScopeRow.version == version)
    )
    with store.read() as s:
        return s.connection().execute(sa_select(func.count()).select_from(pairs.subquery())).scalar_one()


# --- regressions ------------------------------------------------------------------------------


def regressions(store: Store, incident_id: int) -> list[RegressionRow]:
    with store.read() as s:
        return list(
            s.exec(
                select(RegressionRow).where(RegressionRow.incident_id == incident_id).order_by(RegressionRow.id)
            ).all()
        )


def open_regression_pairs(store: Store, incident_id: int) -> set[tuple[str, str]]:
    """(object, principal) of the regressions no check has closed yet."""
    with store.read() as s:
        rows = s.exec(
            select(RegressionRow.object_fqn, RegressionRow.principal).where(
                RegressionRow.incident_id == incident_id,
                RegressionRow.closed_at.is_(None),  # type: ignore[union-attr]
            )
        ).all()
        return {(obj, principal) for obj, principal in rows}


_REGRESSION_COLUMNS = ("incident_id", "check_id", "object_fqn", "principal", "path", "cause", "first_seen_at")


def add_regressions(
    session: Session,
    incident_id: int,
    check_id: int,
    first_seen_at: datetime,
    regressions: Iterable[tuple[str, str, str, str]],
) -> None:
    """(object, principal, path, cause) of each regression a check found."""
    seen = bulk.stamp(session, RegressionRow.__table__.c.first_seen_at, first_seen_at)
    rows = [(incident_id, check_id, obj, principal, path, cause, seen) for obj, principal, path, cause in regressions]
    if rows:
        bulk.insert_rows(session, RegressionRow.__table__.name, _REGRESSION_COLUMNS, rows)


# --- the ledger, as verification needs it ----------------------------------------------------------


def role_reach(store: Store, incident_id: int, version: int) -> set[tuple[str, str]]:
    """(principal, role) pairs the scan of this scope version saw ROLE findings through."""
    with store.read() as s:
        rows = s.exec(
            select(FindingRow.principal, FindingRow.grantee)
            .distinct()
            .join(ScopeRow, ScopeRow.id == FindingRow.scope_id)
            .where(ScopeRow.incident_id == incident_id, ScopeRow.version == version, FindingRow.path == "role")
        ).all()
    return {(principal, grantee) for principal, grantee in rows}


def first_applied_at(store: Store, incident_id: int) -> datetime | None:
    with store.read() as s:
        value = s.exec(
            select(func.min(ActionRow.updated_at)).where(
                ActionRow.incident_id == incident_id, ActionRow.status == "applied"
            )
        ).one()
    return as_utc(value)
