"""Read-only queries that gather a postmortem's facts: aggregated in SQL, so 45,000 tables stay cheap.

Each function takes an open session and an incident id and returns core models; nothing here
writes, and nothing reads a target.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import (
    Integer,
    Text,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from sevtool.core.exposure import dss_label
from sevtool.core.postmortem_facts import (
    ActionItemFacts,
    CheckFacts,
    ExposureFacts,
    LedgerFacts,
    PathFacts,
    PrincipalFacts,
    RegressionFacts,
)
from sevtool.core.timeline import Event
from sevtool.core.timeparse import as_utc
from sevtool.store.models import (
    ActionItemRow,
    ActionRow,
    CheckRow,
    EventRow,
    FindingRow,
    RegressionRow,
    ScopeRow,
)

REGRESSION_EXAMPLES = 3
_EVENT = EventRow.__table__.c


def chain(s: Session) -> list[Event]:
    """Every event of the store in seq order, read as plain tuples: the audit needs the whole chain, and
    skipping ORM instances and unused columns makes reading 10,000 events several times cheaper.

    The data column is read as text and each distinct text decoded once (10,000 notes carry the same
    `{"note_kind": "note"}`), so events with equal data share one dict: read it, never change it.

    SQLite keeps times as text, which SQLAlchemy parses in Python row by row: read as text, they are parsed by
    `datetime.fromisoformat` in C (the format SQLAlchemy writes, `YYYY-MM-DD HH:MM:SS.ffffff`, is ISO 8601).
    """
    as_text = s.connection().dialect.name == "sqlite"
    rows = (
        s.connection()
        .execute(
            sa_select(
                _EVENT.seq,
                _EVENT.incident_id,
                cast(_EVENT.at, Text) if as_text else _EVENT.at,
                _EVENT.kind,
                _EVENT.actor,
                _EVENT.summary,
                cast(_EVENT.data, Text),
                _EVENT.prev_hash,
                _EVENT.hash,
            ).order_by(_EVENT.seq)
        )
        .all()
    )
    decoded: dict[str, dict] = {}
    events = []
    for seq, incident_id, at, kind, actor, summary, data_text, prev_hash, hash_ in rows:
        data = decoded.get(data_text)
        if data is None:
            data = decoded[data_text] = json.loads(data_text) or {}
        events.append(
            Event(
                seq=seq,
                incident_id=incident_id,
                at=as_utc(datetime.fromisoformat(at) if as_text else at),
                kind=kind,
                actor=actor,
                summary=summary,
                data=data,
                prev_hash=prev_hash,
                hash=hash_,
            )
        )
    return events


def exposure_facts(s: Session, incident_id: int) -> ExposureFacts:
    """Everything any scope version of the incident found exposed: each finding and each object counted once.

    Counted by the database in one statement that returns a few dozen rows: the findings of every scope
    version, made distinct once (the same finding recurs across versions), then grouped four ways. The
    database does all of it without Python's GIL, so it overlaps the chain's audit (see the service); read
    back row by row, 45,000 findings held the GIL for most of their count.
    """
    scopes = s.exec(select(ScopeRow).where(ScopeRow.incident_id == incident_id).order_by(ScopeRow.version)).all()
    if not scopes:
        return ExposureFacts()
    found = sa_select(
        FindingRow.schema_name,
        FindingRow.object_name,
        FindingRow.principal,
        FindingRow.path,
        FindingRow.dss,
        FindingRow.column_name,
        FindingRow.grantee,
        FindingRow.grantor,
        FindingRow.privilege,
    ).where(FindingRow.scope_id.in_([sc.id for sc in scopes]))
    # One scan's findings are already distinct; across scope versions the same finding recurs.
    found = (found.distinct() if len(scopes) > 1 else found).cte("found")  # used four times: computed once
    obj = (found.c.schema_name, found.c.object_name)
    dss_of_object = sa_select(func.max(found.c.dss).label("dss")).group_by(*obj).subquery()
    path_objects = sa_select(found.c.path, *obj).distinct().subquery()
    principal_objects = sa_select(found.c.principal, *obj).distinct().subquery()
    no_name, no_dss = cast(null(), Text), cast(null(), Integer)
    rows = (
        s.connection()
        .execute(
            union_all(
                sa_select(literal("dss"), no_name, dss_of_object.c.dss, func.count()).group_by(dss_of_object.c.dss),
                sa_select(literal("path findings"), found.c.path, no_dss, func.count()).group_by(found.c.path),
                sa_select(literal("path objects"), path_objects.c.path, no_dss, func.count()).group_by(
                    path_objects.c.path
                ),
                sa_select(literal("principal objects"), principal_objects.c.principal, no_dss, func.count()).group_by(
                    principal_objects.c.principal
                ),
            )
        )
        .all()
    )
    by_dss: dict[int | None, int] = {}
    counts: dict[str, dict[str, int]] = {"path findings": {}, "path objects": {}, "principal objects": {}}
    for kind, name, dss, count in rows:
        if kind == "dss":
            by_dss[dss] = count
        else:
            counts[kind][name] = count
    path_findings, path_objects_count, principal_objects_count = counts.values()
    principals = sorted({p for sc in scopes for p in sc.principals} | set(principal_objects_count))
    return ExposureFacts(
        targets=sorted({sc.target for sc in scopes}),
        scope_versions=len(scopes),
        objects=sum(by_dss.values()),
        findings=sum(path_findings.values()),
        by_dss={dss_label(d): by_dss[d] for d in sorted(by_dss, key=lambda d: (d is None, -(d or 0)))},
        by_path=[
            PathFacts(path=p, findings=path_findings[p], objects=path_objects_count[p])
            for p in sorted(path_findings, key=lambda p: (-path_objects_count[p], p))
        ],
        principals=[PrincipalFacts(name=p, objects=principal_objects_count.get(p, 0)) for p in principals],
    )


def ledger_facts(s: Session, incident_id: int) -> LedgerFacts:
    mine = ActionRow.incident_id == incident_id
    by_status = dict(s.exec(select(ActionRow.status, func.count()).where(mine).group_by(ActionRow.status)).all())
    plans = s.exec(select(func.count(distinct(ActionRow.plan_version))).where(mine)).one()
    objects = s.exec(select(func.count(distinct(ActionRow.object_fqn))).where(mine)).one()
    return LedgerFacts(
        plan_versions=plans, actions=sum(by_status.values()), objects=objects, by_status=dict(sorted(by_status.items()))
    )


def check_facts(s: Session, incident_id: int) -> list[CheckFacts]:
    """The counts of each check, selected as columns: a whole CheckRow carries its summary and probe JSON,
    which can hold a 45,000-table check's objects."""
    rows = s.exec(
        select(
            CheckRow.number,
            CheckRow.scheduled_at,
            CheckRow.ran_at,
            CheckRow.clean,
            CheckRow.exposed_objects,
            CheckRow.findings,
            CheckRow.regressions,
        )
        .where(CheckRow.incident_id == incident_id)
        .order_by(CheckRow.number)
    ).all()
    return [
        CheckFacts(
            number=number,
            scheduled_at=as_utc(scheduled_at),
            ran_at=as_utc(ran_at),
            clean=clean,
            exposed_objects=exposed,
            findings=findings,
            regressions=regressions,
        )
        for number, scheduled_at, ran_at, clean, exposed, findings, regressions in rows
    ]


def regression_facts(s: Session, incident_id: int) -> list[RegressionFacts]:
    """Regressions grouped by the check that found them, cause, principal and path."""
    group = (RegressionRow.check_id, RegressionRow.cause, RegressionRow.principal, RegressionRow.path)
    rows = s.exec(
        select(
            *group,
            func.count(),
            func.min(RegressionRow.first_seen_at),
            func.max(RegressionRow.closed_at),
            func.sum(case((RegressionRow.closed_at.is_(None), 1), else_=0)),
            func.max(RegressionRow.closed_by),
        )
        .where(RegressionRow.incident_id == incident_id)
        .group_by(*group)
        .order_by(RegressionRow.check_id, func.min(RegressionRow.first_seen_at))
    ).all()
    if not rows:
        return []
    numbers = dict(s.exec(select(CheckRow.id, CheckRow.number).where(CheckRow.incident_id == incident_id)).all())
    out = []
    for check_id, cause, principal, path, count, first_seen, closed_at, still_open, closed_by in rows:
        examples = s.exec(
            select(RegressionRow.object_fqn)
            .where(
                RegressionRow.incident_id == incident_id,
                RegressionRow.check_id == check_id,
                RegressionRow.cause == cause,
                RegressionRow.principal == principal,
                RegressionRow.path == path,
            )
            .order_by(RegressionRow.object_fqn)
            .limit(REGRESSION_EXAMPLES)
        ).all()
        out.append(
            RegressionFacts(
                check_number=numbers.get(check_id),
                principal=principal,
                path=path,
                cause=cause,
                objects=count,
                examples=list(examples),
                first_seen_at=as_utc(first_seen),
                still_open=int(still_open or 0),
                closed_at=as_utc(closed_at),
                closed_by=closed_by,
            )
        )
    return out


def action_items(s: Session, incident_id: int) -> list[ActionItemFacts]:
    rows = s.exec(
        select(ActionItemRow).where(ActionItemRow.incident_id == incident_id).order_by(ActionItemRow.id)
    ).all()
    return [
        ActionItemFacts(id=r.id, title=r.title, owner=r.owner, type=r.type, due=r.due, status=r.status) for r in rows
    ]
