"""Why a pair is readable again: the cause of a regression, in words a responder can act on.

`checks.compare` (or a check's comparison in the store) decides which pairs may have regressed; this module
says why, from the finding that makes each pair readable (grant re-added and by whom, new PUBLIC grant,
grant-option holder, default privileges on a new table, new membership, an undone fix, ...), and makes the
`Regression` (`Attribution`). The text never names the object, so one cause shared by 45,000 tables reads,
groups and counts as one cause.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple, TypedDict

from sevtool.core.exposure import AccessPath, Finding


class Cause(StrEnum):
    DEFAULT_PRIVILEGES_NEW_TABLE = (
        "default_privileges_new_table"  # created after the fix, granted by ALTER DEFAULT PRIVILEGES
    )
    NEW_TABLE = "new_table"  # created after the fix and granted some other way
    DEFAULT_PRIVILEGES_READDED = "default_privileges_readded"
    GRANT_OPTION_REGRANT = "grant_option_regrant"
    PUBLIC_GRANT = "public_grant"
    GRANT_READDED = "grant_readded"
    COLUMN_GRANT = "column_grant"
    NEW_MEMBERSHIP = "new_membership"
    PREDEFINED_ROLE = "predefined_role"
    VIEW = "view"
    PARTITION = "partition"
    FIX_UNDONE = "fix_undone"
    EXCEPTION_LAPSED = (
        "exception_lapsed"  # a just-in-time exception ended, and its role reads the object still or again
    )
    BEYOND_EXCEPTION = "beyond_exception"  # an active exception's role holds more than the SELECT it grants


def default_privileges_for(finding: Finding, default_privileges: list[Finding], *, strict: bool) -> Finding | None:
    """The ALTER DEFAULT PRIVILEGES finding that explains a grant on a table in its schema.

    `strict` (when we cannot tell whether the table is new) also requires the same grantee and grantor:
    default privileges grant as the table owner, to the role they name.
    """
    same_schema = [
        d for d in default_privileges if d.schema_name in ("", finding.schema_name)
    ]  # "" = database-wide defaults
    matching = [
        d
        for d in same_schema
        if d.grantee == finding.grantee and (not d.grantor or not finding.grantor or d.grantor == finding.grantor)
    ]
    candidates = matching or ([] if strict else same_schema)
    return candidates[0] if candidates else None


# Which finding explains a regression best: the most specific cause first.
_PATH_PRIORITY = [
    AccessPath.GRANT_OPTION,
    AccessPath.DEFAULT_PRIVILEGES,
    AccessPath.PUBLIC,
    AccessPath.DIRECT,
    AccessPath.COLUMN,
    AccessPath.ROLE,
    AccessPath.PREDEFINED_ROLE,
    AccessPath.VIEW,
    AccessPath.PARTITION,
    AccessPath.INHERITED,
]


_PATH_RANK = {path: rank for rank, path in enumerate(_PATH_PRIORITY)}


def primary_finding(findings: list[Finding]) -> Finding:
    if len(findings) == 1:
        return findings[0]
    return min(findings, key=lambda f: (_PATH_RANK.get(f.path, len(_PATH_PRIORITY)), f.grantee, f.grantor))


def _by(grantor: str) -> str:
    return f"by {grantor}" if grantor else "(grantor unknown)"


def _chain(finding: Finding) -> str:
    """The roles walked from the principal to the grantee, each name whole: "emp -> analysts -> readers"."""
    return " -> ".join((finding.principal, *finding.route))


def _how(finding: Finding) -> str:
    """Where the grant is: on a REST catalog's securable, reached through roles, or held by the principal (or PUBLIC)."""
    if finding.granted_on is not None:
        return f"granted on {finding.granted_on.kind} {finding.granted_on.name}"
    return (
        f"via role {finding.grantee}: {_chain(finding)}"
        if finding.route
        else f"granted to {finding.grantee or finding.principal}"
    )


def attribute(
    finding: Finding,
    *,
    new_object: bool,
    default_privileges: Finding | None,
    known_reach: set[tuple[str, str]],
    undone: bool,
    membership_revoked: set[str],
) -> tuple[Cause, str]:
    """Why this finding makes its pair readable again, in words a responder can act on.

    The text does not repeat the object (it sits beside it), so one cause shared by 45,000 tables
    reads, groups and counts as one cause.
    """
    grantee, grantor = finding.grantee, finding.grantor
    if undone and finding.path == AccessPath.ROLE:  # the plan revoked a membership on the route, and undo put it back
        return (
            Cause.FIX_UNDONE,
            f"the fix was undone (sevtool revoke --undo restored the route to role {grantee}: {_chain(finding)})",
        )
    if undone:
        return Cause.FIX_UNDONE, f"the fix was undone (sevtool revoke --undo restored the grant to {grantee})"
    if default_privileges is not None and finding.path != AccessPath.DEFAULT_PRIVILEGES:
        dp = default_privileges
        return (
            Cause.DEFAULT_PRIVILEGES_NEW_TABLE,
            f"created after the fix; default privileges of {dp.grantor or 'its owner'} in schema "
            f"{finding.schema_name} granted {dp.privilege} to {dp.grantee} ({_how(finding)})",
        )
    if new_object:
        return Cause.NEW_TABLE, f"created after the fix and readable {_describe(finding)}"
    if finding.path == AccessPath.DEFAULT_PRIVILEGES:
        return (
            Cause.DEFAULT_PRIVILEGES_READDED,
            f"default privileges re-added {_by(grantor)} in schema {finding.schema_name}: tables created later will be readable by {grantee}",
        )
    if finding.path == AccessPath.GRANT_OPTION:
        return (
            Cause.GRANT_OPTION_REGRANT,
            f"grant-option holder {grantor or '(unknown)'} granted {finding.privilege} to {grantee} "
            "(a REVOKE by the owner or a superuser leaves such grants in place)",
        )
    if finding.path == AccessPath.PUBLIC:
        return Cause.PUBLIC_GRANT, f"new PUBLIC grant of {finding.privilege} {_by(grantor)}"
    if finding.path == AccessPath.DIRECT:
        return Cause.GRANT_READDED, f"grant of {finding.privilege} to {grantee} re-added {_by(grantor)}"
    if finding.path == AccessPath.COLUMN:
        return (
            Cause.COLUMN_GRANT,
            f"column grant of {finding.privilege} on column {finding.column} to {grantee} {_by(grantor)}",
        )
    if finding.path == AccessPath.ROLE:
        if membership_revoked & route_roles(finding) or (finding.principal, grantee) not in known_reach:
            return (
                Cause.NEW_MEMBERSHIP,
                f"new role membership: {finding.principal} reaches {grantee} ({_chain(finding)}), which holds {finding.privilege} {_by(grantor)}",
            )
        return (
            Cause.GRANT_READDED,
            f"grant of {finding.privilege} to role {grantee} re-added {_by(grantor)} ({_chain(finding)})",
        )
    if finding.path == AccessPath.PREDEFINED_ROLE:
        return (
            Cause.PREDEFINED_ROLE,
            f"{finding.principal} is a member of predefined role {grantee} ({_chain(finding)})",
        )
    if finding.path == AccessPath.VIEW:
        return Cause.VIEW, f"view over {finding.base_object or 'a sensitive table'} is readable {_describe(finding)}"
    if finding.path == AccessPath.PARTITION:
        return (
            Cause.PARTITION,
            f"partition of {finding.base_object or 'a revoked parent'} is readable {_describe(finding)}",
        )
    return Cause.GRANT_READDED, f"readable again {_describe(finding)}"


def route_roles(finding: Finding) -> set[str]:
    """The roles a ROLE finding passes through: every role on its route, the grantee included."""
    return {finding.grantee, *finding.route}


def _describe(finding: Finding) -> str:
    return f"({_how(finding)}, granted {_by(finding.grantor)})" if finding.grantor else f"({_how(finding)})"


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


def undo_keys(pair_findings: Iterable[Finding]) -> set[tuple[str, str]]:
    """The (grantee, object) grants whose undo would re-open this pair: an undone grant, or for access through
    roles an undone membership of any role on the route (the plan revokes the first hop, which is rarely the role
    that holds the grant)."""
    return {
        (role, f.object_fqn)
        for f in pair_findings
        for role in (route_roles(f) if f.path == AccessPath.ROLE else (f.grantee,))
    }


class Attribution:
    """Names each regression: a pair readable now that was closed at the baseline, or is new since.

    `default_privileges`: this check's ALTER DEFAULT PRIVILEGES findings by principal; `known_reach` the
    (principal, role) pairs seen before; `membership_revoked` the roles whose membership the ledger revoked.
    Causes are kept by what their text is made of, so a job re-granting 45,000 tables is attributed once.
    """

    def __init__(
        self,
        *,
        default_privileges: Mapping[str, list[Finding]],
        objects_known: bool,
        known_reach: set[tuple[str, str]],
        membership_revoked: set[str],
    ):
        self.default_privileges = default_privileges
        self.objects_known = objects_known
        self.known_reach = known_reach
        self.membership_revoked = membership_revoked
        self._causes: dict[tuple[object, ...], tuple[Cause, str]] = {}
        self._shared: dict[Any, Any] = {}

    def regression(
        self, obj: str, principal: str, current: list[Finding], *, previous: bool, is_new: bool, reopened: bool
    ) -> Regression:
        """`current`: the findings making the pair readable now; `previous`: whether it was readable at the
        baseline (through grants the ledger closed since); `reopened`: whether an undo re-opened it."""
        primary = primary_finding(current)
        # A new table, or (when the baseline did not list its objects) one whose grant matches the default privileges.
        dp = (
            default_privileges_for(primary, self.default_privileges.get(principal, []), strict=not is_new)
            if (is_new or not self.objects_known) and not previous
            else None
        )
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
        if signature not in self._causes:
            self._causes[signature] = attribute(
                primary,
                new_object=is_new,
                default_privileges=dp,
                known_reach=self.known_reach,
                undone=reopened,
                membership_revoked=self.membership_revoked,
            )
        kind, cause = self._causes[signature]
        paths = (str(primary.path),) if len(current) == 1 else tuple(sorted({str(f.path) for f in current}))
        # The names a job re-granting 200,000 tables repeats in each regression are kept once.
        share = self._shared.setdefault
        return Regression(
            obj,
            share(principal, principal),
            primary.path,
            kind,
            cause,
            share(primary.grantee, primary.grantee),
            share(primary.grantor, primary.grantor),
            primary.dss,
            share(paths, paths),
            share(primary.route, primary.route),
        )


def regression_order(r: Regression) -> tuple[str, str, str]:
    return (str(r.cause_kind), r.object_fqn, r.principal)


def group_regressions(regressions: list[Regression]) -> list[tuple[Regression, int]]:
    """One entry per cause (kind, grantee, grantor): the first regression as the example, and how many share it."""
    counts = Counter(r.group for r in regressions)
    seen: dict[tuple[str, str, str], Regression] = {}
    for r in regressions:
        seen.setdefault(r.group, r)
    return [(r, counts[g]) for g, r in seen.items()]
