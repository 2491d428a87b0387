"""Read-only queries that gather a postmortem's facts: aggregated in SQL, so 45,000 tables stay cheap.

Each function takes an open session and an incident id and returns core models; nothing here
writes, and nothing reads a target.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from sqlalchemy import Text, case, cast, distinct, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from sevtool.core.exposure import dss_label
from sevtool.core.postmortem import (
    ActionItemFacts,
    CheckFacts,
    ExposureFacts,
    LedgerFacts,
    PathFacts,
    PrincipalFacts,
    RegressionFacts,
)
from sevtool.core.timeparse import as_utc
from sevtool.core.timeline import Event
from sevtool.store.models import ActionItemRow, ActionRow, CheckRow, EventRow, FindingRow, RegressionRow, ScopeRow

REGRESSION_EXAMPLES = 3
_EVENT = EventRow.__table__.c


def chain(s: Session) -> list[Event]:
    """Every event of the store in seq order, read as plain tuples: the audit needs the whole chain, and
    skipping ORM instances and unused columns makes reading 10,000 events several times cheaper.

    The data column is read as text and each distinct text decoded once (10,000 notes carry the same
    `{"note_kind": "note"}`), so events with equal data share one dict: read it, never change it.
    """
    rows = s.connection().execute(
        sa_select(_EVENT.seq, _EVENT.incident_id, _EVENT.at, _EVENT.kind, _EVENT.actor, _EVENT.summary, cast(_EVENT.data, Text),
                  _EVENT.prev_hash, _EVENT.hash).order_by(_EVENT.seq)).all()
    decoded: dict[str, dict] = {}
    events = []
    for seq, incident_id, at, kind, actor, summary, data_text, prev_hash, hash_ in rows:
        data = decoded.get(data_text)
        if data is None:
            data = decoded[data_text] = json.loads(data_text) or {}
        events.append(Event(seq=seq, incident_id=incident_id, at=as_utc(at), kind=kind, actor=actor, summary=summary, data=data,
                            prev_hash=prev_hash, hash=hash_))
    return events


def exposure_facts(s: Session, incident_id: int) -> ExposureFacts:
    """Everything any scope version of the incident found exposed: each finding and each object counted once.

    One query, counted in Python: a single pass, where per-dimension GROUP BYs re-read the table. It
    selects only the columns counted, as plain tuples: 45,000 findings through the ORM cost more than
    the counting.
    """
    scopes = s.exec(select(ScopeRow).where(ScopeRow.incident_id == incident_id).order_by(ScopeRow.version)).all()
    if not scopes:
        return ExposureFacts()
    counted = (FindingRow.schema_name, FindingRow.object_name, FindingRow.principal, FindingRow.path, FindingRow.dss)
    in_scopes = FindingRow.scope_id.in_([sc.id for sc in scopes])
    # One scan's findings are already distinct; across scope versions the same finding recurs: one row per finding.
    # DISTINCT, not GROUP BY: SQLite dedups 90,000 rows in a quarter less time than it sorts them into groups.
    if len(scopes) > 1:
        distinct = sa_select(*counted, FindingRow.column_name, FindingRow.grantee, FindingRow.grantor, FindingRow.privilege) \
            .where(in_scopes).distinct().subquery()
        query = sa_select(*(distinct.c[column.key] for column in counted))
    else:
        query = sa_select(*counted).where(in_scopes)
    rows = s.connection().execute(query).all()
    dss_of: dict[tuple, int | None] = {}
    path_findings: Counter[str] = Counter()
    path_objects: dict[str, set] = defaultdict(set)
    principal_objects: dict[str, set] = defaultdict(set)
    for schema, name, principal, path, dss in rows:
        obj = (schema, name)
        if dss is not None and (dss_of.get(obj) or 0) < dss:
            dss_of[obj] = dss
        else:
            dss_of.setdefault(obj, dss)
        path_findings[path] += 1
        path_objects[path].add(obj)
        principal_objects[principal].add(obj)
    by_dss = Counter(dss_of.values())
    principals = sorted({p for sc in scopes for p in sc.principals} | set(principal_objects))
    return ExposureFacts(
        targets=sorted({sc.target for sc in scopes}),
        scope_versions=len(scopes),
        objects=len(dss_of),
        findings=len(rows),
        by_dss={dss_label(d): by_dss[d] for d in sorted(by_dss, key=lambda d: (d is None, -(d or 0)))},
        by_path=[PathFacts(path=p, findings=path_findings[p], objects=len(path_objects[p]))
                 for p in sorted(path_findings, key=lambda p: (-len(path_objects[p]), p))],
        principals=[PrincipalFacts(name=p, objects=len(principal_objects.get(p, ()))) for p in principals],
    )


def ledger_facts(s: Session, incident_id: int) -> LedgerFacts:
    mine = ActionRow.incident_id == incident_id
    by_status = dict(s.exec(select(ActionRow.status, func.count()).where(mine).group_by(ActionRow.status)).all())
    plans = s.exec(select(func.count(distinct(ActionRow.plan_version))).where(mine)).one()
    objects = s.exec(select(func.count(distinct(ActionRow.object_fqn))).where(mine)).one()
    return LedgerFacts(plan_versions=plans, actions=sum(by_status.values()), objects=objects,
                       by_status=dict(sorted(by_status.items())))


def check_facts(s: Session, incident_id: int) -> list[CheckFacts]:
    """The counts of each check, selected as columns: a whole CheckRow carries its summary and probe JSON,
    which can hold a 45,000-table check's objects."""
    rows = s.exec(select(CheckRow.number, CheckRow.scheduled_at, CheckRow.ran_at, CheckRow.clean, CheckRow.exposed_objects,
                         CheckRow.findings, CheckRow.regressions)
                  .where(CheckRow.incident_id == incident_id).order_by(CheckRow.number)).all()
    return [CheckFacts(number=number, scheduled_at=as_utc(scheduled_at), ran_at=as_utc(ran_at), clean=clean,
                       exposed_objects=exposed, findings=findings, regressions=regressions)
            for number, scheduled_at, ran_at, clean, exposed, findings, regressions in rows]


def regression_facts(s: Session, incident_id: int) -> list[RegressionFacts]:
    """Regressions grouped by the check that found them, cause, principal and path."""
    group = (RegressionRow.check_id, RegressionRow.cause, RegressionRow.principal, RegressionRow.path)
    rows = s.exec(
        select(*group, func.count(), func.min(RegressionRow.first_seen_at), func.max(RegressionRow.closed_at),
               func.sum(case((RegressionRow.closed_at.is_(None), 1), else_=0)),
               func.max(RegressionRow.closed_by))
        .where(RegressionRow.incident_id == incident_id).group_by(*group)
        .order_by(RegressionRow.check_id, func.min(RegressionRow.first_seen_at))
    ).all()
    if not rows:
        return []
    numbers = dict(s.exec(select(CheckRow.id, CheckRow.number).where(CheckRow.incident_id == incident_id)).all())
    out = []
    for check_id, cause, principal, path, count, first_seen, closed_at, still_open, closed_by in rows:
        examples = s.exec(select(RegressionRow.object_fqn)
                          .where(RegressionRow.incident_id == incident_id, RegressionRow.check_id == check_id,
                                 RegressionRow.cause == cause, RegressionRow.principal == principal, RegressionRow.path == path)
                          .order_by(RegressionRow.object_fqn).limit(REGRESSION_EXAMPLES)).all()
        out.append(RegressionFacts(check_number=numbers.get(check_id), principal=principal, path=path, cause=cause, objects=count,
                                   examples=list(examples), first_seen_at=as_utc(first_seen), still_open=int(still_open or 0),
                                   closed_at=as_utc(closed_at), closed_by=closed_by))
    return out


def action_items(s: Session, incident_id: int) -> list[ActionItemFacts]:
    rows = s.exec(select(ActionItemRow).where(ActionItemRow.incident_id == incident_id).order_by(ActionItemRow.id)).all()
    return [ActionItemFacts(id=r.id, title=r.title, owner=r.owner, type=r.type, due=r.due, status=r.status) for r in rows]
