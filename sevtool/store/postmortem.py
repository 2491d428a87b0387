"""Read-only queries that gather a postmortem's facts: aggregated in SQL, so 45,000 tables stay cheap.

Each function takes an open session and an incident id and returns core models; nothing here
writes, and nothing reads a target.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy import case, distinct, func
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
from sevtool.store.repository import event_from_row

REGRESSION_EXAMPLES = 3


def chain(s: Session) -> list[Event]:
    """Every event of the store in seq order, read as plain rows: the audit needs the whole chain, and
    skipping ORM instances makes reading 10,000 events several times cheaper."""
    return [event_from_row(row) for row in s.connection().execute(sa_select(EventRow.__table__).order_by(EventRow.seq))]


def exposure_facts(s: Session, incident_id: int, members: dict[str, int] | None = None) -> ExposureFacts:
    """Everything any scope version of the incident found exposed: each finding and each object counted once.

    One DISTINCT query, counted in Python: a single pass, where per-dimension GROUP BYs re-read the table.
    """
    scopes = s.exec(select(ScopeRow).where(ScopeRow.incident_id == incident_id).order_by(ScopeRow.version)).all()
    if not scopes:
        return ExposureFacts()
    query = (select(FindingRow.schema_name, FindingRow.object_name, FindingRow.column_name, FindingRow.principal,
                    FindingRow.path, FindingRow.grantee, FindingRow.grantor, FindingRow.privilege, FindingRow.dss)
             .where(FindingRow.scope_id.in_([sc.id for sc in scopes])))
    # One scan's findings are already distinct; across scope versions the same finding recurs.
    rows = s.exec(query.distinct() if len(scopes) > 1 else query).all()
    dss_of: dict[tuple, int | None] = {}
    path_findings: Counter[str] = Counter()
    path_objects: dict[str, set] = defaultdict(set)
    principal_objects: dict[str, set] = defaultdict(set)
    for schema, name, _column, principal, path, _grantee, _grantor, _privilege, dss in rows:
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
        principals=[PrincipalFacts(name=p, objects=len(principal_objects.get(p, ())), members=(members or {}).get(p)) for p in principals],
    )


def ledger_facts(s: Session, incident_id: int) -> LedgerFacts:
    mine = ActionRow.incident_id == incident_id
    by_status = dict(s.exec(select(ActionRow.status, func.count()).where(mine).group_by(ActionRow.status)).all())
    plans = s.exec(select(func.count(distinct(ActionRow.plan_version))).where(mine)).one()
    objects = s.exec(select(func.count(distinct(ActionRow.object_fqn))).where(mine)).one()
    return LedgerFacts(plan_versions=plans, actions=sum(by_status.values()), objects=objects,
                       by_status=dict(sorted(by_status.items())))


def check_facts(s: Session, incident_id: int) -> list[CheckFacts]:
    rows = s.exec(select(CheckRow).where(CheckRow.incident_id == incident_id).order_by(CheckRow.number)).all()
    return [CheckFacts(number=r.number, scheduled_at=as_utc(r.scheduled_at), ran_at=as_utc(r.ran_at), clean=r.clean,
                       exposed_objects=r.exposed_objects, findings=r.findings, regressions=r.regressions) for r in rows]


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
