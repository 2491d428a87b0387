"""The revocation ledger's queries: plans written as `planned` rows, statuses updated batch by batch.

An action's `status` and `message` (ActionRow) are the authoritative outcome, recorded for a batch with a
few set-based UPDATEs; the Action itself (SQL, prior state, review flag) is its ActionDetailRow, written
once beside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator

from pydantic import TypeAdapter
from pydantic_core import from_json
from sqlalchemy import Text, and_, cast, func, or_
from sqlmodel import Session, select

from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.core.timeparse import utcnow
from sevtool.store import bulk
from sevtool.store.models import DETAIL_OF_ACTION, ActionDetailRow, ActionRow
from sevtool.store.repository import Store

_DETAIL_EXCLUDE = {"status", "message"}
_TABLE = ActionRow.__table__  # Core statements: the ORM's per-row bookkeeping costs seconds at 45,000 rows
_INSERT_COLUMNS = (
    "incident_id",
    "plan_version",
    "scope_version",
    "seq",
    "kind",
    "target",
    "object_fqn",
    "status",
    "message",
    "updated_at",
)
_DETAIL_COLUMNS = ("incident_id", "plan_version", "seq", "detail")
_CHUNK = 900  # SQLite allows 999 bound parameters per statement
_MAX_RANGES = 20  # a batch's seqs are nearly always one contiguous run; past this many runs, list them
_ACTIONS = TypeAdapter(
    list[Action]
)  # decodes thousands of stored actions in one call, three times faster than one by one
_DECODE = 5000  # stored actions read and decoded at a time
_to_json = Action.__pydantic_serializer__.to_json  # model_dump_json without its Python wrapper, called 45,000 times


def next_plan_version(session: Session, incident_id: int) -> int:
    current = session.exec(select(func.max(ActionRow.plan_version)).where(ActionRow.incident_id == incident_id)).one()
    return (current or 0) + 1


def insert_plan(
    session: Session, incident_id: int, plan_version: int, scope_version: int, target: str, actions: list[Action]
) -> None:
    """Journal first: every action lands as `planned`, with its prior state, before anything runs.

    Through the driver (see `bulk`): the detail as JSON text, the time as the dialect stores it.
    """
    now = bulk.stamp(session, _TABLE.c.updated_at, utcnow())
    planned = ActionStatus.PLANNED.value
    bulk.insert_rows(
        session,
        ActionRow.__tablename__,
        _INSERT_COLUMNS,
        (
            (
                incident_id,
                plan_version,
                scope_version,
                a.seq,
                a.kind,
                target,
                a.object_fqn if a.column is None else f"{a.object_fqn}.{a.column}",
                planned,
                "",
                now,
            )
            for a in actions
        ),
    )
    # A generator: 45,000 rows of JSON text held at once were ~30 MB of the plan's peak memory.
    bulk.insert_rows(
        session,
        ActionDetailRow.__tablename__,
        _DETAIL_COLUMNS,
        ((incident_id, plan_version, a.seq, _to_json(a, exclude=_DETAIL_EXCLUDE).decode()) for a in actions),
    )


def latest_plan(store: Store, incident_id: int) -> tuple[int, int, str] | None:
    """(plan_version, scope_version, target) of the newest plan, or None."""
    with store.read() as s:
        row = s.exec(
            select(ActionRow.plan_version, ActionRow.scope_version, ActionRow.target)
            .where(ActionRow.incident_id == incident_id)
            .order_by(ActionRow.plan_version.desc())
            .limit(1)
        ).first()
    return tuple(row) if row else None


def _detail_query():
    # The detail as stored text, decoded by pydantic in one pass (the JSON column type would parse it row by row first).
    return select(
        ActionRow.plan_version,
        ActionRow.target,
        ActionRow.status,
        ActionRow.message,
        cast(ActionDetailRow.detail, Text),
        ActionRow.seq,
    ).join(ActionDetailRow, DETAIL_OF_ACTION)


def _decoded(rows, targets: dict[str, str]) -> Iterator[tuple[int, str, Action]]:
    decoded = _ACTIONS.validate_json("[" + ",".join(row[4] for row in rows) + "]")
    for action, (version, target, status, message, *_) in zip(decoded, rows, strict=False):
        action.status, action.message = ActionStatus(status), message
        yield version, targets.setdefault(target, target), action  # one string per target, not one per row


def actions(store: Store, incident_id: int, plan_version: int | None = None) -> list[tuple[int, str, Action]]:
    """(plan_version, target, action) in plan order; all plan versions when none is given."""
    query = _detail_query().where(ActionRow.incident_id == incident_id)
    if plan_version is not None:
        query = query.where(ActionRow.plan_version == plan_version)
    out: list[tuple[int, str, Action]] = []
    targets: dict[str, str] = {}
    with store.read() as s:
        # Read and decoded _DECODE rows at a time: 45,000 rows and their JSON joined into one document were
        # held at once beside the actions made from them (150 MB of an apply's peak).
        result = s.execute(query.order_by(ActionRow.plan_version, ActionRow.seq).execution_options(yield_per=_DECODE))
        for rows in result.partitions():
            out += _decoded(rows, targets)
    return out


def pages(
    store: Store,
    incident_id: int,
    plan_version: int,
    statuses: Iterable[ActionStatus],
    page: int = _DECODE,
    *,
    kinds: Collection[str] | None = None,
    other_kinds: bool = False,
) -> Iterator[list[Action]]:
    """A plan's actions in these statuses (and of these `kinds`, or with `other_kinds` of any other), in plan
    order, `page` at a time.

    Keyset pagination on seq, each page its own short read: a run holds one page of a 200,000-action plan, not
    all of it, and may record outcomes between pages (a page's rows moving on does not shift the next page).
    """
    where = [
        ActionRow.incident_id == incident_id,
        ActionRow.plan_version == plan_version,
        ActionRow.status.in_([ActionStatus(s).value for s in statuses]),
    ]
    if kinds is not None:
        where.append(ActionRow.kind.not_in(list(kinds)) if other_kinds else ActionRow.kind.in_(list(kinds)))
    after = 0
    targets: dict[str, str] = {}
    while True:
        with store.read() as s:
            rows = s.execute(
                _detail_query().where(*where, ActionRow.seq > after).order_by(ActionRow.seq).limit(page)
            ).all()
        if not rows:
            return
        yield [action for _, _, action in _decoded(rows, targets)]
        after = rows[-1][5]


def plain_pages(store: Store, incident_id: int, plan_version: int, page: int = _DECODE) -> Iterator[list[dict]]:
    """A plan's actions as the plain JSON an Action dumps to, in plan order, `page` at a time (keyset on seq).

    For writing a plan out: its stored detail is that JSON already (but for status and message, the last fields),
    so it is parsed, not validated into Actions and dumped again.
    """
    after = 0
    while True:
        with store.read() as s:
            rows = s.execute(
                select(ActionRow.seq, ActionRow.status, ActionRow.message, cast(ActionDetailRow.detail, Text))
                .join(ActionDetailRow, DETAIL_OF_ACTION)
                .where(
                    ActionRow.incident_id == incident_id, ActionRow.plan_version == plan_version, ActionRow.seq > after
                )
                .order_by(ActionRow.seq)
                .limit(page)
            ).all()
        if not rows:
            return
        plain = from_json("[" + ",".join(row[3] for row in rows) + "]")
        for action, (_seq, status, message, _detail) in zip(plain, rows, strict=True):
            action["status"], action["message"] = status, message
        yield plain
        after = rows[-1][0]


def mark(session: Session, incident_id: int, plan_version: int, seqs: list[int], status: ActionStatus) -> None:
    """Set one status on many actions (e.g. `applying` for a batch about to be sent)."""
    _update(session, incident_id, plan_version, seqs, status=status.value, message="")


def _update(session: Session, incident_id: int, plan_version: int, seqs: list[int], **values) -> None:
    """One UPDATE per contiguous run of seqs (a batch is usually one run); chunked IN lists otherwise."""
    values["updated_at"] = utcnow()
    plan = (_TABLE.c.incident_id == incident_id, _TABLE.c.plan_version == plan_version)
    runs = _runs(sorted(seqs))
    if len(runs) <= _MAX_RANGES:
        session.execute(
            _TABLE.update()
            .where(*plan, or_(*(and_(_TABLE.c.seq >= lo, _TABLE.c.seq <= hi) for lo, hi in runs)))
            .values(**values)
        )
        return
    for start in range(0, len(seqs), _CHUNK):
        session.execute(_TABLE.update().where(*plan, _TABLE.c.seq.in_(seqs[start : start + _CHUNK])).values(**values))


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted seqs -> (first, last) of each contiguous run."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def moved_on(store: Store, incident_id: int, plan_version: int) -> dict[int, tuple[ActionStatus, str]]:
    """seq -> (status, message) of a plan's actions that are no longer `planned`. An action never returns to
    `planned`, so every other one still is: before a first apply this reads 0 rows instead of 45,000."""
    with store.read() as s:
        rows = s.exec(
            select(ActionRow.seq, ActionRow.status, ActionRow.message).where(
                ActionRow.incident_id == incident_id,
                ActionRow.plan_version == plan_version,
                ActionRow.status != ActionStatus.PLANNED.value,
            )
        ).all()
    decode = {s.value: s for s in ActionStatus}
    return {seq: (decode[status], message) for seq, status, message in rows}


def versions_with(store: Store, incident_id: int, status: ActionStatus) -> list[tuple[int, str]]:
    """(plan_version, target) of every plan that has an action in this status, oldest first."""
    with store.read() as s:
        return [
            tuple(row)
            for row in s.exec(
                select(ActionRow.plan_version, ActionRow.target)
                .distinct()
                .where(ActionRow.incident_id == incident_id, ActionRow.status == status.value)
                .order_by(ActionRow.plan_version)
            ).all()
        ]


def status_counts(store: Store, incident_id: int, plan_version: int | None = None) -> dict[str, int]:
    query = (
        select(ActionRow.status, func.count()).where(ActionRow.incident_id == incident_id).group_by(ActionRow.status)
    )
    if plan_version is not None:
        query = query.where(ActionRow.plan_version == plan_version)
    counts = {s.value: 0 for s in ActionStatus}
    with store.read() as s:
        for status, n in s.exec(query).all():
            counts[status] = n
    return counts


def sharing_an_object(store: Store, incident_id: int, plan_version: int, status: ActionStatus) -> set[int]:
    """Seqs of a plan's actions in this status whose object (schema and name) another such action also names.

    A run that goes page by page keeps these together: an object's actions are restored as one (undo merges
    its ACL once), and they may lie far apart in plan order (one per statement shape).
    """
    detail = ActionDetailRow.__table__.c.detail
    named = (detail["schema_name"].as_string(), detail["object_name"].as_string())
    counted = (
        select(ActionRow.seq, func.count().over(partition_by=named).label("n"))
        .join(ActionDetailRow, DETAIL_OF_ACTION)
        .where(
            ActionRow.incident_id == incident_id,
            ActionRow.plan_version == plan_version,
            ActionRow.status == status.value,
        )
        .subquery()
    )
    with store.read() as s:
        return set(s.exec(select(counted.c.seq).where(counted.c.n > 1)).all())


def kind_counts(
    store: Store, incident_id: int, plan_version: int | None = None, status: ActionStatus | None = None
) -> dict[str, int]:
    """Actions by kind (of one plan, or of every plan; in one status, or all), counted by the store."""
    query = select(ActionRow.kind, func.count()).where(ActionRow.incident_id == incident_id).group_by(ActionRow.kind)
    if plan_version is not None:
        query = query.where(ActionRow.plan_version == plan_version)
    if status is not None:
        query = query.where(ActionRow.status == status.value)
    with store.read() as s:
        return dict(s.exec(query).all())


def record(session: Session, incident_id: int, plan_version: int, results: list[ActionResult]) -> None:
    """Write one batch's outcomes: one UPDATE per distinct (status, message) and run of seqs."""
    by_outcome: dict[tuple[ActionStatus, str], list[int]] = defaultdict(list)
    for r in results:
        by_outcome[(r.status, r.message)].append(r.seq)
    for (status, message), seqs in by_outcome.items():
        _update(session, incident_id, plan_version, seqs, status=ActionStatus(status).value, message=message)
