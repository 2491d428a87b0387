"""A check's comparison in the store's SQL: its findings, its baseline's and the ledger's changes as temporary tables.

At 200,000 tables a check's pairs, its baseline's grants and the ledger's actions held as Python sets and dicts
were more memory than the scan itself. Here they stream into temporary tables of the check's write transaction
(the findings' JSON among them, so storing them is one INSERT ... SELECT), the counts are the database's, and
only the pairs that may have regressed come back, grouped by pair, for `core.checks.Attribution` to name.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from sqlalchemy import (
    Table,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.sql import Select
from sqlmodel import Session

from sevtool.core.checks import Findings, FindingsDigest, LedgerChange, LedgerIndex, finding_json
from sevtool.core.exposure import AccessPath, Finding
from sevtool.core.plan import Closes
from sevtool.store import bulk
from sevtool.store.check_tables import INDEXES, LEDGER, NEW, NOW, NOW_PAIRS, TABLES, THEN, THEN_PAIRS
from sevtool.store.models import (
    DETAIL_OF_ACTION,
    ActionDetailRow,
    ActionRow,
    CheckFindingRow,
    FindingRow,
    RegressionRow,
    ScopeRow,
)

_FINDINGS = TypeAdapter(list[Finding])
_CHUNK = 500  # pairs attributed together, and objects per IN (...)
_FETCH = 2000  # rows fetched from the store at a time


class Candidate(NamedTuple):
    """A pair that may have regressed."""

    obj: str
    principal: str
    findings: list[Finding]  # what makes it readable now, in the order they came
    previous: bool  # readable at the baseline (through grants the ledger closed since)
    new_object: bool  # in scope now and not at the baseline
    restored: bool  # an undo restored the grant of one of its findings (their grantee's, on the object)


def _decoded(pending: list[tuple[str, str, list[Row[Any]]]]) -> list[Candidate]:
    """The pairs with their findings, decoded in one pass (one at a time took most of a regressed check's time)."""
    findings = iter(_FINDINGS.validate_json("[" + ",".join(row[2] for _o, _p, rows in pending for row in rows) + "]"))
    return [
        Candidate(
            obj,
            principal,
            [next(findings) for _row in rows],
            bool(rows[0][3]),
            bool(rows[0][4]),
            any(row[5] for row in rows),
        )
        for obj, principal, rows in pending
    ]


@dataclass
class Staged:
    """What one pass over the findings gave besides the rows: their digest, paths and default privileges."""

    digest: str
    paths: Counter[AccessPath]
    default_privileges: dict[str, list[Finding]] = field(default_factory=dict)


@dataclass(frozen=True)
class Ledger:
    """What the comparison needs of the ledger in Python; the exact grants stay in the store."""

    applied: bool
    undone: bool
    membership_revoked: set[str]
    undone_broad: LedgerIndex  # undone memberships and containers: few, asked per pair


class Comparison:
    """The temporary tables of one check's comparison, on the connection of `session`'s write transaction."""

    def __init__(self, session: Session):
        self.session = session
        self.conn = session.connection()
        for table in TABLES:  # gone again with the transaction if the check fails (DDL is transactional in both)
            table.create(self.conn)

    def _indexed(self, table: Table) -> None:
        self.conn.execute(text(INDEXES[table]))

    def drop(self) -> None:
        for table in reversed(TABLES):
            table.drop(self.conn)

    # --- staging ----------------------------------------------------------------------------------

    def stage_findings(self, findings: Findings) -> Staged:
        """One pass over the findings: each written with its JSON, digested and counted as it goes by."""
        digest = FindingsDigest()
        paths: Counter[AccessPath] = Counter()
        default_privileges: dict[str, list[Finding]] = defaultdict(list)

        def rows() -> Iterator[tuple]:
            for seq, f in enumerate(findings):
                as_json = finding_json(f)
                digest.add(as_json)
                paths[f.path] += 1
                if f.path == AccessPath.DEFAULT_PRIVILEGES:
                    default_privileges[f.principal].append(f)
                yield (
                    seq,
                    f"{f.schema_name}.{f.object_name}",
                    f.principal,
                    f.grantee,
                    f.path.value,
                    f.dss,
                    as_json.decode(),
                )

        bulk.insert_rows(self.session, NOW.name, tuple(NOW.c.keys()), rows())
        self._indexed(NOW)
        self.conn.execute(
            insert(NOW_PAIRS).from_select(["obj", "principal"], select(NOW.c.obj, NOW.c.principal).distinct())
        )
        self._indexed(NOW_PAIRS)
        return Staged(digest.hexdigest(), paths, dict(default_privileges))

    def stage_scan(self, incident_id: int, version: int) -> None:
        """The baseline is a scope version's scan."""
        rows = (
            select(
                FindingRow.schema_name + "." + FindingRow.object_name,
                FindingRow.principal,
                FindingRow.grantee,
                FindingRow.path,
            )
            .join(ScopeRow, ScopeRow.id == FindingRow.scope_id)
            .where(ScopeRow.incident_id == incident_id, ScopeRow.version == version)
        )
        self._stage_then(rows)

    def stage_check(self, check_id: int) -> None:
        """The baseline is the findings stored with a check (pass `findings_check_id`)."""
        detail = CheckFindingRow.detail
        schema, name, principal, grantee, path = (
            detail[key].as_string() for key in ("schema_name", "object_name", "principal", "grantee", "path")
        )
        rows = select(schema + "." + name, principal, grantee, path).where(CheckFindingRow.check_id == check_id)
        self._stage_then(rows)

    def stage_same(self) -> None:
        """The baseline found exactly what this check found."""
        rows = select(NOW.c.obj, NOW.c.principal, NOW.c.grantee, NOW.c.path)
        self._stage_then(rows)

    def _stage_then(self, rows: Select[Any]) -> None:
        self.conn.execute(insert(THEN).from_select(["obj", "principal", "grantee", "path"], rows))
        self._indexed(THEN)

    def stage_new_objects(self, objects: Iterable[str]) -> None:
        bulk.insert_rows(self.session, NEW.name, ("obj",), ((o,) for o in objects))
        self._indexed(NEW)

    def baseline_reach(self) -> set[tuple[str, str]]:
        """The (principal, role) pairs the baseline's ROLE findings went through."""
        rows = select(THEN.c.principal, THEN.c.grantee).distinct().where(THEN.c.path == AccessPath.ROLE.value)
        return {(principal, role) for principal, role in self.conn.execute(rows)}

    def stage_ledger(self, incident_id: int, since: datetime | None, closes: Callable[[str, str], Closes]) -> Ledger:
        """Grants the ledger closed (applied) or restored (undone) after `since`.

        `closes(action kind, object kind)`: what an action closes, as the target plug-in that planned it declares;
        asked once per kind of action, the grants themselves are copied by the database.
        """
        detail = ActionDetailRow.detail
        object_kind, grantee = detail["object_kind"].as_string(), detail["grantee"].as_string()
        schema, name = detail["schema_name"].as_string(), detail["object_name"].as_string()
        actions = (
            select()
            .select_from(ActionRow)
            .join(ActionDetailRow, DETAIL_OF_ACTION)
            .where(ActionRow.incident_id == incident_id, ActionRow.status.in_(("applied", "undone")))
        )
        if since is not None:
            actions = actions.where(ActionRow.updated_at > since)
        undone = case((ActionRow.status == "undone", 1), else_=0)
        kinds = self.conn.execute(actions.add_columns(ActionRow.kind, object_kind).distinct()).all()
        for kind, of_kind in kinds:
            closed = closes(kind, of_kind or "")
            these = actions.where(
                ActionRow.kind == kind, object_kind.is_(None) if of_kind is None else object_kind == of_kind
            )
            if closed is Closes.ROLE:
                # A membership removed: the role (the finding's grantee) no longer reaches anything through that member.
                columns = (func.coalesce(name, ""), null(), undone, literal(0))
            elif closed is Closes.CONTAINER:
                # A container (a catalog or schema securable), named as the target names it (a catalog has no parent).
                fqn = case(
                    (func.coalesce(schema, "") != "", schema + "." + func.coalesce(name, "")),
                    else_=func.coalesce(name, ""),
                )
                columns = (func.coalesce(grantee, ""), fqn, undone, literal(1))
            else:
                # Named as findings name objects (schema.object, no column).
                fqn = func.coalesce(schema, "") + "." + func.coalesce(name, "")
                columns = (func.coalesce(grantee, ""), fqn, undone, literal(0))
            self.conn.execute(
                insert(LEDGER).from_select(
                    ["grantee", "obj", "undone", "container"], these.add_columns(*columns).distinct()
                )
            )
        self._indexed(LEDGER)
        flags = self.conn.execute(select(LEDGER.c.undone).distinct()).scalars().all()
        revoked = select(LEDGER.c.grantee).distinct().where(LEDGER.c.obj.is_(None), LEDGER.c.undone == 0)
        broad = select(LEDGER.c.grantee, LEDGER.c.obj, LEDGER.c.container).where(
            LEDGER.c.undone == 1, or_(LEDGER.c.obj.is_(None), LEDGER.c.container == 1)
        )
        return Ledger(
            applied=0 in flags,
            undone=1 in flags,
            membership_revoked=set(self.conn.execute(revoked).scalars()),
            undone_broad=LedgerIndex(
                LedgerChange(grantee=g, object_fqn=o, undone=True, container=bool(c))
                for g, o, c in self.conn.execute(broad)
            ),
        )

    # --- the comparison ---------------------------------------------------------------------------

    def close_pairs(self, applied: bool) -> None:
        """The baseline's pairs, each `closed` when applied ledger actions closed every grant it was readable through."""
        if applied:
            t, ledger = THEN, LEDGER.alias("l")
            applied_to = and_(ledger.c.undone == 0, ledger.c.grantee == t.c.grantee)
            covered = or_(
                exists().where(applied_to, ledger.c.container == 0, ledger.c.obj == t.c.obj),
                exists().where(applied_to, ledger.c.container == 0, ledger.c.obj.is_(None)),
                exists().where(
                    applied_to,
                    ledger.c.container == 1,
                    func.substr(t.c.obj, 1, func.length(ledger.c.obj) + 1) == ledger.c.obj + ".",
                ),
            )
            closed = func.min(case((covered, 1), else_=0))
        else:
            closed = literal(0)
        rows = select(THEN.c.obj, THEN.c.principal, closed).group_by(THEN.c.obj, THEN.c.principal)
        self.conn.execute(insert(THEN_PAIRS).from_select(["obj", "principal", "closed"], rows))
        self._indexed(THEN_PAIRS)

    def _same_pair(self, a: Table, b: Table):
        return and_(a.c.obj == b.c.obj, a.c.principal == b.c.principal)

    def remaining(self) -> int:
        """Pairs readable at the baseline and still readable, not closed by the ledger in between nor on a new object."""
        rows = (
            select(func.count())
            .select_from(NOW_PAIRS.join(THEN_PAIRS, self._same_pair(NOW_PAIRS, THEN_PAIRS)))
            .where(THEN_PAIRS.c.closed == 0, NOW_PAIRS.c.obj.not_in(select(NEW.c.obj)))
        )
        return self.conn.execute(rows).scalar_one()

    def closed_since(self) -> int:
        """Pairs readable at the baseline that are not now."""
        gone = ~exists().where(self._same_pair(NOW_PAIRS, THEN_PAIRS))
        return self.conn.execute(select(func.count()).select_from(THEN_PAIRS).where(gone)).scalar_one()

    def readable_pairs(self) -> int:
        return self.conn.execute(select(func.count()).select_from(NOW_PAIRS)).scalar_one()

    def pairs_readable(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (few) pairs this check's findings make readable."""
        return {
            (obj, principal)
            for obj, principal in pairs
            if self.conn.execute(
                select(literal(1)).where(NOW_PAIRS.c.obj == obj, NOW_PAIRS.c.principal == principal).limit(1)
            ).first()
        }

    def exposed_objects(self, others: set[str]) -> int:
        """Objects readable now: those of the findings, and `others` (few: read by the probe or an exception's role)."""
        count = self.conn.execute(select(func.count(NOW_PAIRS.c.obj.distinct()))).scalar_one()
        known = {
            o for o in others if self.conn.execute(select(literal(1)).where(NOW_PAIRS.c.obj == o).limit(1)).first()
        }
        return count + len(others - known)

    def dss_ratings(self) -> Counter[int | None]:
        """How many exposed objects have each rating: an object counts with the rating of its first finding."""
        first = select(func.min(NOW.c.seq).label("seq")).group_by(NOW.c.obj).subquery()
        rows = select(NOW.c.dss, func.count()).join(first, first.c.seq == NOW.c.seq).group_by(NOW.c.dss)
        return Counter(dict(self.conn.execute(rows).all()))

    def candidates(self) -> Iterator[list[Candidate]]:
        """Each pair that is not simply still readable (absent from the baseline, closed by the ledger since, or on a
        new object) with its findings now, a few hundred pairs at a time."""
        then = THEN_PAIRS
        is_new = NOW.c.obj.in_(select(NEW.c.obj))
        # Whether an undo restored the finding's own grant: every finding's first question about an undo.
        restored = exists().where(
            LEDGER.c.undone == 1, LEDGER.c.container == 0, LEDGER.c.obj == NOW.c.obj, LEDGER.c.grantee == NOW.c.grantee
        )
        rows = (
            select(NOW.c.obj, NOW.c.principal, cast(NOW.c.detail, Text), then.c.obj.is_not(None), is_new, restored)
            .select_from(NOW.outerjoin(then, self._same_pair(NOW, then)))
            .where(or_(then.c.obj.is_(None), then.c.closed == 1, is_new))
            .order_by(NOW.c.obj, NOW.c.principal, NOW.c.seq)
        )
        pending: list[tuple[str, str, list[Row[Any]]]] = []
        for (obj, principal), group in groupby(
            self.conn.execute(rows.execution_options(yield_per=_FETCH)), key=lambda row: (row[0], row[1])
        ):
            pending.append((obj, principal, list(group)))
            if len(pending) == _CHUNK:
                yield _decoded(pending)
                pending = []
        if pending:
            yield _decoded(pending)

    def undone_exact(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (grantee, object) grants among `keys` the ledger restored by an undo (the roles on a route besides
        the finding's grantee: few)."""
        found: set[tuple[str, str]] = set()
        objects = sorted({obj for _grantee, obj in keys})
        for start in range(0, len(objects), _CHUNK):
            rows = select(LEDGER.c.grantee, LEDGER.c.obj).where(
                LEDGER.c.undone == 1, LEDGER.c.container == 0, LEDGER.c.obj.in_(objects[start : start + _CHUNK])
            )
            found.update(key for grantee, obj in self.conn.execute(rows) if (key := (grantee, obj)) in keys)
        return found

    # --- recording ----------------------------------------------------------------------------------

    def store_findings(self, check_id: int) -> None:
        """This check's findings, in the order they came, as the check's stored findings."""
        rows = select(literal(check_id), NOW.c.detail).order_by(NOW.c.seq)
        self.conn.execute(insert(CheckFindingRow.__table__).from_select(["check_id", "detail"], rows))

    def close_regressions(self, incident_id: int, still: set[tuple[str, str]], at: datetime, closed_by: str) -> int:
        """Open regressions whose pair is no longer readable (neither by the findings nor in `still`) are closed."""
        reg = RegressionRow.__table__
        gone = ~exists().where(NOW_PAIRS.c.obj == reg.c.object_fqn, NOW_PAIRS.c.principal == reg.c.principal)
        rows = select(reg.c.id, reg.c.object_fqn, reg.c.principal).where(
            reg.c.incident_id == incident_id, reg.c.closed_at.is_(None), gone
        )
        closing = [row_id for row_id, obj, principal in self.conn.execute(rows) if (obj, principal) not in still]
        for start in range(0, len(closing), _CHUNK):
            self.conn.execute(
                update(reg)
                .where(reg.c.id.in_(closing[start : start + _CHUNK]))
                .values(closed_at=at, closed_by=closed_by)
            )
        return len(closing)
