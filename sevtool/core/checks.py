"""Did the fix stick? Compare a check with what was closed before it, and say why anything came back.

A check re-runs the incident's scope, so it sees tables created after the fix. Its findings are
compared, per object x in-scope principal ("pair"), with a baseline: the previous check, or before
any check the scan the plan was made from. A pair is a **regression** when it is readable now and
was closed before: absent from the baseline, new since the baseline (a table created after the
fix), or closed by a ledger action applied since the baseline. A pair that was readable at the
baseline and still is, without a fix in between, is not a regression: it simply remains.

The cause is read from the finding that makes the pair readable (grant re-added and by whom, new
PUBLIC grant, grant-option holder, default privileges on a new table, new membership, ...): that is
`causes.py`. The findings' JSON and digests are in `digests.py`, the re-check schedule and the resolution
gate in `schedule.py`; their names are importable from here too, where verification has always found them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple, TypedDict

from sevtool.core.causes import Cause, attribute, default_privileges_for, primary_finding, route_roles
from sevtool.core.digests import findings_digest, findings_json, objects_digest
from sevtool.core.exposure import AccessPath, Finding, dss_label
from sevtool.core.schedule import (
    REGRESSION_SLOT,
    CheckState,
    DueDecision,
    PlannedSlot,
    SlotState,
    due,
    gate_reason,
    next_pending,
    regression_round,
    schedule,
)

# The causes', digests' and schedule's names stay importable from here, where verification has always found them.
__all__ = [
    "REGRESSION_SLOT",
    "Baseline",
    "Cause",
    "CheckOutcome",
    "CheckState",
    "DueDecision",
    "LedgerChange",
    "PlannedSlot",
    "Regression",
    "SlotState",
    "attribute",
    "compare",
    "due",
    "findings_digest",
    "findings_json",
    "gate_reason",
    "group_regressions",
    "next_pending",
    "objects_digest",
    "pairs_of",
    "regression_round",
    "route_roles",
    "schedule",
]

Pair = tuple[str, str]  # (object fqn, in-scope principal)


@dataclass(frozen=True)
class Baseline:
    """What the previous observation saw, as much as a comparison needs.

    `grants`: each pair readable then -> the grantees it was readable through (a ledger action closes a
    grant by grantee and object). `reach`: the (principal, role) pairs its ROLE findings went through.
    `objects` is None when it did not record them (a scan). `pairs_readable` is set instead of `grants`
    when nothing is readable now: every pair readable then has closed, and only their number matters.
    """

    label: str  # "check 3", "scan v2"
    at: datetime | None
    grants: Mapping[Pair, AbstractSet[str]] = field(default_factory=dict)
    reach: frozenset[tuple[str, str]] = frozenset()
    objects: frozenset[str] | None = None
    pairs_readable: int | None = None

    @classmethod
    def of(
        cls, label: str, at: datetime | None, findings: Iterable[Finding], objects: Iterable[str] | None = None
    ) -> Baseline:
        return cls.of_rows(
            label, at, ((f.schema_name, f.object_name, f.principal, f.grantee, f.path) for f in findings), objects
        )

    @classmethod
    def of_rows(
        cls,
        label: str,
        at: datetime | None,
        rows: Iterable[tuple[str, str, str, str, str]],
        objects: Iterable[str] | None = None,
    ) -> Baseline:
        """From (schema, object name, principal, grantee, path) rows: what a store can read without rebuilding findings."""
        grants: dict[Pair, set[str]] = defaultdict(set)
        reach = set()
        for schema, name, principal, grantee, path in rows:
            grants[(f"{schema}.{name}", principal)].add(grantee)
            if path == AccessPath.ROLE:
                reach.add((principal, grantee))
        return cls(
            label=label,
            at=at,
            grants=dict(grants),
            reach=frozenset(reach),
            objects=frozenset(objects) if objects is not None else None,
        )


@dataclass(frozen=True)
class LedgerChange:
    """A ledger action that changed a grant since the baseline.

    `object_fqn` None = every object (a membership). `container`: the object is a catalog or schema
    whose grant every table under it inherits (Unity Catalog), so it covers `object_fqn.*` too.
    """

    grantee: str
    object_fqn: str | None
    undone: bool = False
    container: bool = False


class RegressionDict(TypedDict):
    object: str
    principal: str
    path: str
    cause_kind: str
    cause: str
    grantee: str
    grantor: str
    dss: int | None
    paths: list[str]
    route: list[str]


class Regression(NamedTuple):
    object_fqn: str
    principal: str
    path: AccessPath
    cause_kind: Cause
    cause: str
    grantee: str
    grantor: str
    dss: int | None
    paths: tuple[str, ...]  # every path that makes the pair readable now
    route: tuple[str, ...] = ()  # the roles from the principal to the grantee (see `Finding.route`)

    @property
    def group(self) -> tuple[str, str, str]:
        """Regressions with one cause (e.g. a job re-granting 45,000 tables) are reported together."""
        return (self.cause_kind.value, self.grantee, self.grantor)

    def as_dict(self) -> RegressionDict:
        return {
            "object": self.object_fqn,
            "principal": self.principal,
            "path": self.path.value,
            "cause_kind": self.cause_kind.value,
            "cause": self.cause,
            "grantee": self.grantee,
            "grantor": self.grantor,
            "dss": self.dss,
            "paths": list(self.paths),
            "route": list(self.route),
        }


@dataclass
class CheckOutcome:
    findings: list[Finding]
    regressions: list[Regression]
    readable: set[Pair]  # every object x principal readable now
    remaining: int  # pairs readable at the baseline and still readable
    closed_since: int  # pairs readable at the baseline, closed now
    new_objects: list[str]  # in scope now, not at the baseline (when the baseline recorded its objects)
    probe_readable: list[str] = field(default_factory=list)
    probe_inconclusive: list[str] = field(default_factory=list)  # closed by the catalog, but the probe could not say
    # Reads by an access exception's role that the exception does not explain (it ended, or a privilege beyond
    # SELECT): new ones are in `regressions` too, these are all of them, open or not (core/access_exceptions.py).
    exception_breaches: list[Regression] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing in scope is readable by an in-scope principal, by the catalog or by the live probe, the probe
        answered for every object it tried (an unanswered question is never a clean answer), and no exception's
        role reads beyond its exception."""
        return (
            not self.findings
            and not self.probe_readable
            and not self.probe_inconclusive
            and not self.exception_breaches
        )

    @cached_property
    def exposed_objects(self) -> int:
        return len({obj for obj, _principal in self.readable} | set(self.probe_readable))

    @cached_property
    def by_path(self) -> dict[str, int]:
        """Findings per access path, most common first (as a scan summary counts them)."""
        # Counted by member, named once per path: `.value` is a descriptor call, 45,000 of them on a large check.
        return {path.value: count for path, count in Counter(f.path for f in self.findings).most_common()}

    @cached_property
    def by_dss(self) -> dict[str, int]:
        """Exposed objects per sensitivity label; an object counts with the rating of its first finding."""
        dss: dict[str, int | None] = {}
        for f in self.findings:
            dss.setdefault(f.object_fqn, f.dss)
        labels: Counter[str] = Counter()
        for rating, objects in Counter(dss.values()).items():  # a label per rating, not per object
            labels[dss_label(rating)] += objects
        return dict(sorted(labels.items()))


def pairs_of(findings: list[Finding]) -> dict[Pair, list[Finding]]:
    by_pair: dict[Pair, list[Finding]] = defaultdict(list)
    for f in findings:
        by_pair[(f"{f.schema_name}.{f.object_name}", f.principal)].append(f)
    return by_pair


class _LedgerIndex:
    """Ledger changes by grantee, so a 45,000-object check asks in constant time whether a grant was closed or restored."""

    def __init__(self, changes: list[LedgerChange]):
        self._objects: dict[str, set[str | None]] = defaultdict(set)
        self._containers: dict[str, set[str | None]] = defaultdict(set)
        for c in changes:
            (self._containers if c.container else self._objects)[c.grantee].add(c.object_fqn)

    def __bool__(self) -> bool:
        return bool(self._objects) or bool(self._containers)

    def covers(self, grantee: str, object_fqn: str) -> bool:
        objects = self._objects.get(grantee)
        if objects and (None in objects or object_fqn in objects):
            return True
        containers = self._containers.get(grantee)
        if not containers:
            return False
        return any(object_fqn[:i] in containers for i, char in enumerate(object_fqn) if char == ".")


def _closed_by_ledger(object_fqn: str, grantees: AbstractSet[str], applied: _LedgerIndex) -> bool:
    """True when applied ledger actions closed every grant this pair was readable through."""
    return all(applied.covers(grantee, object_fqn) for grantee in grantees)


def _reopened_by_undo(pair_findings: list[Finding], undone: _LedgerIndex) -> bool:
    """An undone grant, or for access through roles an undone membership of any role on the route: the plan
    revokes the first hop, which is rarely the role that holds the grant."""
    return any(
        undone.covers(role, f.object_fqn)
        for f in pair_findings
        for role in (route_roles(f) if f.path == AccessPath.ROLE else (f.grantee,))
    )


def compare(
    findings: list[Finding],
    objects: set[str] | frozenset[str],
    baseline: Baseline | None,
    *,
    ledger: Sequence[LedgerChange] = (),
    known_reach: set[tuple[str, str]] | None = None,
    probe_readable: Iterable[str] = (),
    probe_inconclusive: Iterable[str] = (),
) -> CheckOutcome:
    """Decide what this check found against the baseline.

    `ledger` holds the grant changes the ledger made since the baseline (applied, or undone);
    `known_reach` the (principal, role) pairs seen in earlier findings, which tells a re-added grant
    on a role the principal always reached from a membership that is new. Without a baseline
    nothing was ever closed, so nothing can regress.
    """
    now_pairs = pairs_of(findings)
    counted = baseline.pairs_readable if baseline is not None else None  # set: the baseline was read without its grants
    counted_only = counted is not None
    if baseline is not None and counted_only and now_pairs:
        raise ValueError(
            f"{baseline.label} was read without its grants, but this check found access: compare needs them"
        )
    before = baseline.grants if baseline else {}
    known_reach = set(known_reach or ()) | (baseline.reach if baseline else frozenset())
    default_privileges: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.path == AccessPath.DEFAULT_PRIVILEGES:
            default_privileges[f.principal].append(f)
    applied = _LedgerIndex([c for c in ledger if not c.undone])
    undone = _LedgerIndex([c for c in ledger if c.undone])
    membership_revoked = {c.grantee for c in ledger if c.object_fqn is None and not c.undone}
    baseline_objects = baseline.objects if baseline is not None else None
    objects_known = baseline_objects is not None
    new_set = set(objects) - baseline_objects if baseline_objects is not None else set()

    regressions: list[Regression] = []
    causes: dict[tuple[object, ...], tuple[Cause, str]] = {}  # keyed by what the cause text is made of
    remaining = 0
    for pair, current in now_pairs.items():
        obj, principal = pair
        previous = before.get(pair)
        is_new = obj in new_set
        if baseline is None or (
            previous and not is_new and not (applied and _closed_by_ledger(obj, previous, applied))
        ):
            remaining += 1
            continue
        primary = primary_finding(current)
        # A new table, or (when the baseline did not list its objects) one whose grant matches the default privileges.
        dp = (
            default_privileges_for(primary, default_privileges.get(principal, []), strict=not is_new)
            if (is_new or not objects_known) and not previous
            else None
        )
        reopened = bool(undone) and _reopened_by_undo(current, undone)
        # The cause text never names the object, so a job re-granting 45,000 tables is attributed once.
        signature = (
            primary.path,
            primary.principal,
            primary.grantee,
            primary.grantor,
            primary.route,
            primary.granted_on,
            primary.privilege,
            primary.schema_name,
            primary.column,
            primary.base_object,
            is_new,
            dp,
            reopened,
        )
        if signature not in causes:
            causes[signature] = attribute(
                primary,
                new_object=is_new,
                default_privileges=dp,
                known_reach=known_reach,
                undone=reopened,
                membership_revoked=membership_revoked,
            )
        kind, cause = causes[signature]
        paths = (str(primary.path),) if len(current) == 1 else tuple(sorted({str(f.path) for f in current}))
        regressions.append(
            Regression(
                obj,
                principal,
                primary.path,
                kind,
                cause,
                primary.grantee,
                primary.grantor,
                primary.dss,
                paths,
                primary.route,
            )
        )
    closed_since = counted if counted is not None else sum(1 for pair in before if pair not in now_pairs)
    regressions.sort(key=lambda r: (str(r.cause_kind), r.object_fqn, r.principal))
    return CheckOutcome(
        findings=findings,
        regressions=regressions,
        readable=set(now_pairs),
        remaining=remaining,
        closed_since=closed_since,
        new_objects=sorted(new_set),
        probe_readable=sorted(probe_readable),
        probe_inconclusive=sorted(probe_inconclusive),
    )


def group_regressions(regressions: list[Regression]) -> list[tuple[Regression, int]]:
    """One entry per cause (kind, grantee, grantor): the first regression as the example, and how many share it."""
    counts = Counter(r.group for r in regressions)
    seen: dict[tuple[str, str, str], Regression] = {}
    for r in regressions:
        seen.setdefault(r.group, r)
    return [(r, counts[g]) for g, r in seen.items()]
