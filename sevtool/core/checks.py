"""Did the fix stick? Compare a check with what was closed before it, and say why anything came back.

A check re-runs the incident's scope, so it sees tables created after the fix. Its findings are
compared, per object x in-scope principal ("pair"), with a baseline: the previous check, or before
any check the scan the plan was made from. A pair is a **regression** when it is readable now and
was closed before: absent from the baseline, new since the baseline (a table created after the
fix), or closed by a ledger action applied since the baseline. A pair that was readable at the
baseline and still is, without a fix in between, is not a regression: it simply remains.

The cause is read from the finding that makes the pair readable (grant re-added and by whom, new
PUBLIC grant, grant-option holder, default privileges on a new table, new membership, ...): that is
`causes.py`. `compare` decides over findings in memory; a check over 200,000 tables makes the same decisions
in the store's SQL (store/check_compare.py) and asks `Attribution` only about the pairs that may have
regressed. The findings' JSON and digests are in `digests.py`, the re-check schedule and the resolution
gate in `schedule.py`; their names are importable from here too, where verification has always found them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sevtool.core.causes import (
    Attribution,
    Cause,
    Regression,
    attribute,
    group_regressions,
    regression_order,
    route_roles,
    undo_keys,
)
from sevtool.core.digests import FindingsDigest, finding_json, objects_digest
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
    "Attribution",
    "Baseline",
    "Cause",
    "CheckOutcome",
    "CheckState",
    "DueDecision",
    "FindingsDigest",
    "LedgerChange",
    "LedgerIndex",
    "PlannedSlot",
    "Regression",
    "SlotState",
    "attribute",
    "compare",
    "due",
    "finding_json",
    "gate_reason",
    "group_regressions",
    "next_pending",
    "objects_digest",
    "regression_order",
    "regression_round",
    "route_roles",
    "schedule",
    "undo_keys",
]

Pair = tuple[str, str]  # (object fqn, in-scope principal)


class Findings(Protocol):
    """What a check reads its findings through: counted, and iterated as often as needed (a scan's findings at
    200,000 tables are decoded afresh at each pass rather than all held as objects)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Finding]: ...


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


@dataclass
class CheckOutcome:
    findings: Findings
    regressions: list[Regression]
    readable_pairs: int  # object x principal pairs readable now
    exposed_objects: int  # objects readable now, by the catalog or the live probe
    remaining: int  # pairs readable at the baseline and still readable
    closed_since: int  # pairs readable at the baseline, closed now
    new_objects: list[str]  # in scope now, not at the baseline (when the baseline recorded its objects)
    by_path: dict[str, int] = field(default_factory=dict)  # findings per access path, most common first
    by_dss: dict[str, int] = field(default_factory=dict)  # exposed objects per sensitivity label
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


def by_path(paths: Counter[AccessPath]) -> dict[str, int]:
    """Findings per access path, most common first (as a scan summary counts them)."""
    return {path.value: count for path, count in paths.most_common()}


def by_dss(ratings: Counter[int | None]) -> dict[str, int]:
    """Exposed objects per sensitivity label, from how many objects have each rating (an object counts with the
    rating of its first finding)."""
    labels: Counter[str] = Counter()
    for rating, objects in ratings.items():  # a label per rating, not per object
        labels[dss_label(rating)] += objects
    return dict(sorted(labels.items()))


class LedgerIndex:
    """Ledger changes by grantee, so a 45,000-object check asks in constant time whether a grant was closed or restored."""

    def __init__(self, changes: Iterable[LedgerChange]):
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


def _closed_by_ledger(object_fqn: str, grantees: AbstractSet[str], applied: LedgerIndex) -> bool:
    """True when applied ledger actions closed every grant this pair was readable through."""
    return all(applied.covers(grantee, object_fqn) for grantee in grantees)


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
    """Decide what this check found against the baseline, in memory.

    `ledger` holds the grant changes the ledger made since the baseline (applied, or undone);
    `known_reach` the (principal, role) pairs seen in earlier findings, which tells a re-added grant
    on a role the principal always reached from a membership that is new. Without a baseline
    nothing was ever closed, so nothing can regress.
    """
    now_pairs: dict[Pair, list[Finding]] = defaultdict(list)
    for f in findings:
        now_pairs[(f"{f.schema_name}.{f.object_name}", f.principal)].append(f)
    counted = baseline.pairs_readable if baseline is not None else None  # set: the baseline was read without its grants
    if baseline is not None and counted is not None and now_pairs:
        raise ValueError(
            f"{baseline.label} was read without its grants, but this check found access: compare needs them"
        )
    before = baseline.grants if baseline else {}
    default_privileges: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.path == AccessPath.DEFAULT_PRIVILEGES:
            default_privileges[f.principal].append(f)
    applied = LedgerIndex(c for c in ledger if not c.undone)
    undone = LedgerIndex(c for c in ledger if c.undone)
    baseline_objects = baseline.objects if baseline is not None else None
    new_set = set(objects) - baseline_objects if baseline_objects is not None else set()
    attribution = Attribution(
        default_privileges=default_privileges,
        objects_known=baseline_objects is not None,
        known_reach=set(known_reach or ()) | (baseline.reach if baseline else frozenset()),
        membership_revoked={c.grantee for c in ledger if c.object_fqn is None and not c.undone},
    )
    regressions: list[Regression] = []
    remaining = 0
    for (obj, principal), current in now_pairs.items():
        previous = before.get((obj, principal))
        is_new = obj in new_set
        if baseline is None or (
            previous and not is_new and not (applied and _closed_by_ledger(obj, previous, applied))
        ):
            remaining += 1
            continue
        reopened = bool(undone) and any(undone.covers(role, o) for role, o in undo_keys(current))
        regressions.append(
            attribution.regression(obj, principal, current, previous=bool(previous), is_new=is_new, reopened=reopened)
        )
    closed_since = counted if counted is not None else sum(1 for pair in before if pair not in now_pairs)
    regressions.sort(key=regression_order)
    first_dss: dict[str, int | None] = {}
    for f in findings:
        first_dss.setdefault(f.object_fqn, f.dss)
    return CheckOutcome(
        findings=findings,
        regressions=regressions,
        readable_pairs=len(now_pairs),
        exposed_objects=len({obj for obj, _principal in now_pairs} | set(probe_readable)),
        remaining=remaining,
        closed_since=closed_since,
        new_objects=sorted(new_set),
        by_path=by_path(Counter(f.path for f in findings)),
        by_dss=by_dss(Counter(first_dss.values())),
        probe_readable=sorted(probe_readable),
        probe_inconclusive=sorted(probe_inconclusive),
    )
