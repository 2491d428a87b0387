"""One seed of the differential test: build the world, ask the oracle and sevtool, revoke, undo, compare.

Shared by tests/differential/test_differential.py (a few seeds in CI) and tests/perf/differential.py (many).
A run never stops at the first disagreement: it records every one, by stage, so a single failing seed tells
the whole story (object level, member level, after apply, after undo), with the SQL that rebuilds the world.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import psycopg

from differential import oracle
from differential.snapshot import differences, snapshot
from differential.world import World, build
from sevtool.core.exposure import BEYOND_PRIVILEGE_CHECKS, AccessPath, Scope
from sevtool.core.plan import Action, ActionStatus
from sevtool.describe import via
from sevtool.targets.postgres.target import PostgresTarget

PRINCIPAL = "emp_all"


def unrated(schema, name, comment):
    return None


@dataclass
class SeedOutcome:
    seed: int
    major: int
    world: World
    objects: int = 0  # relations compared at object level
    object_agreements: int = 0
    pairs: int = 0  # (member, relation) pairs compared at member level (0: sevtool has no per-member answer)
    pair_agreements: int = 0
    false_exposures: list[str] = field(default_factory=list)  # sevtool says exposed, the server says not
    missed_exposures: list[str] = field(default_factory=list)  # the server says exposed, sevtool does not
    left_readable: list[str] = field(default_factory=list)  # exposed (member, object) pairs after apply
    collateral: list[str] = field(default_factory=list)  # outsiders' losses no action lists, and any gains
    undo_mismatches: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failed actions, exceptions, oracle disagreements
    member_level: bool = False
    seconds: float = 0.0

    @property
    def disagreements(self) -> int:
        return sum(
            map(
                len,
                (
                    self.false_exposures,
                    self.missed_exposures,
                    self.left_readable,
                    self.collateral,
                    self.undo_mismatches,
                    self.errors,
                ),
            )
        )

    def report(self) -> str:
        head = (
            f"{self.world.label} on PostgreSQL {self.major}: {self.disagreements} disagreement(s); "
            f"objects {self.object_agreements}/{self.objects} agree, "
            + (
                f"pairs {self.pair_agreements}/{self.pairs} agree"
                if self.member_level
                else "member level not compared (PostgresTarget.exposure_by_member does not exist yet)"
            )
        )
        parts = [head]
        for title, lines in (
            ("false exposures (sevtool: exposed; server: not)", self.false_exposures),
            ("missed exposures (server: exposed; sevtool: not)", self.missed_exposures),
            ("still exposed after apply (member, object)", self.left_readable),
            ("outsiders' access changed by apply, not listed in any action's collateral", self.collateral),
            ("undo did not restore the prior state", self.undo_mismatches),
            ("errors", self.errors),
        ):
            if lines:
                parts.append(f"--- {title}: {len(lines)}\n  " + "\n  ".join(lines))
        parts.append(f"--- the world (replay in psql to reproduce):\n{self.world.sql()}")
        return "\n".join(parts)


def run_seed(dsn: str, seed: int, principal: str = PRINCIPAL) -> SeedOutcome:
    """Build the seed's world in the (fresh, empty) database `dsn`, compare, revoke, undo; drop the world's roles after."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        world = build(seed, oracle.major(conn))
    return run_world(dsn, world, principal)


def run_world(dsn: str, world: World, principal: str = PRINCIPAL) -> SeedOutcome:
    """Run `world.statements` in the (fresh, empty) database `dsn`, compare, revoke, undo; drop the world's roles after."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        leftovers = conn.execute(
            "SELECT array_agg(rolname) FROM pg_roles WHERE rolname = ANY(%s)", [world.roles]
        ).fetchone()[0]
        if leftovers:
            raise RuntimeError(
                f"roles of an earlier world still exist on this server: {leftovers} (roles are cluster-wide)"
            )
        try:
            for stmt in world.statements:
                try:
                    conn.execute(stmt)
                except psycopg.Error as exc:  # a generator bug, not a finding: say which statement, on which server
                    raise RuntimeError(
                        f"{world.label} does not build on PostgreSQL {world.major}: {stmt}: {exc}"
                    ) from exc
            out = SeedOutcome(world.seed, world.major, world)
            try:
                _compare(dsn, world, principal, out)
            except oracle.OracleDisagreement as exc:
                out.errors.append(f"ORACLE: {exc}")
            except Exception:  # sevtool raised: the rest of this world cannot be judged, the traceback says where
                out.errors.append("exception:\n" + traceback.format_exc())
        finally:
            conn.execute("RESET ROLE")
            existing = [
                r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [world.roles])
            ]
            for stmt in world.teardown_sql(existing):
                conn.execute(stmt)
    out.seconds = time.perf_counter() - started
    return out


def _compare(dsn: str, world: World, principal: str, out: SeedOutcome) -> None:
    scope = Scope(target="t", principals=[principal])
    expected = oracle.exposure(dsn, principal, world.roles)
    target = PostgresTarget(dsn)
    try:
        findings = target.scan(scope, unrated).findings
        _object_level(expected, findings, out)
        if hasattr(target, "exposure_by_member"):
            out.member_level = True
            got = target.exposure_by_member(scope)
            if principal == oracle.PUBLIC:  # every role of the cluster is a member of PUBLIC: judge the world's roles
                got = {role: objects for role, objects in got.items() if role in world.roles}
            _member_level(expected, got, out)
        _revoke_and_undo(dsn, world, principal, expected, target, target.plan(findings, scope), out)
    finally:
        target.close()


def _who(expected: oracle.Exposure, fqn: str) -> str:
    now = sorted(m for m in expected.members if fqn in expected.now[m])
    without = sorted(m for m in expected.members if fqn in expected.without[m])
    exposed = sorted(set(now) - set(without))
    return f"members reading it now {now}, without {expected.principal} {without}, exposed {exposed}"


def _object_level(expected: oracle.Exposure, findings, out: SeedOutcome) -> None:
    """sevtool's exposed objects against objects with an exposed member. Not compared: default privileges (future
    tables), paths the server's privilege functions cannot see (BEYOND_PRIVILEGE_CHECKS), and a base table's grant
    named because its rows are read through a view (its base_object is itself; the view is the exposed object)."""
    said: dict[str, set[str]] = {}
    for f in findings:
        through_a_view = f.path == AccessPath.VIEW and f.base_object == f.object_fqn  # the base of an exposed view
        if f.path != AccessPath.DEFAULT_PRIVILEGES and f.path not in BEYOND_PRIVILEGE_CHECKS and not through_a_view:
            said.setdefault(f.object_fqn, set()).add(f"{f.path.value}: {via(f)}")
    relations = set(expected.relations)
    out.objects = len(relations | set(said))
    for fqn in sorted(set(said) - expected.objects):
        out.false_exposures.append(f"object {fqn}: sevtool {sorted(said[fqn])}; server: {_who(expected, fqn)}")
    for fqn in sorted(expected.objects - set(said)):
        out.missed_exposures.append(f"object {fqn}: sevtool no finding; server: {_who(expected, fqn)}")
    out.object_agreements = out.objects - len(set(said) ^ expected.objects)


def _member_level(expected: oracle.Exposure, got: dict[str, set[str]], out: SeedOutcome) -> None:
    """sevtool's per-member answer, pair by pair (the principal itself is one of the members). A key that is not a
    member with a non-empty set is a false exposure too."""
    want = expected.by_member()
    out.pairs = len(expected.members) * len(expected.relations)
    wrong = 0
    for m in expected.members:
        for fqn in sorted(got.get(m, set()) - want.get(m, set())):
            wrong += 1
            out.false_exposures.append(f"pair ({m}, {fqn}): sevtool exposed; server: {_who(expected, fqn)}")
        for fqn in sorted(want.get(m, set()) - got.get(m, set())):
            wrong += 1
            out.missed_exposures.append(f"pair ({m}, {fqn}): sevtool not exposed; server: {_who(expected, fqn)}")
    for key in sorted(set(got) - set(expected.members)):
        for fqn in sorted(got[key]):
            out.false_exposures.append(
                f"pair ({key}, {fqn}): sevtool exposed, but {key} is not a member of {expected.principal} "
                f"(the oracle's members: roles with pg_has_role(r, '{expected.principal}', 'MEMBER'), no superuser)"
            )
    out.pair_agreements = out.pairs - wrong


def _member_of(dsn: str, roles: list[str]) -> dict[str, set[str]]:
    """role -> every role it is a member of (pg_has_role MEMBER), itself included."""
    with oracle.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT m.rolname, r.rolname FROM pg_roles m, pg_roles r
                               WHERE m.rolname = ANY(%s) AND pg_has_role(m.oid, r.oid, 'MEMBER')""",
            [roles],
        ).fetchall()
    out: dict[str, set[str]] = {r: {r} for r in roles}
    for m, r in rows:
        out[m].add(r)
    return out


def _run(method, actions: list[Action]) -> dict[int, object]:
    results: dict[int, object] = {}
    method(actions, lambda batch: results.update({r.seq: r for r in batch}))
    return results


def _revoke_and_undo(
    dsn: str,
    world: World,
    principal: str,
    expected: oracle.Exposure,
    target: PostgresTarget,
    actions: list[Action],
    out: SeedOutcome,
) -> None:
    roles = world.roles
    people_before, roles_before = oracle.people_reads(dsn, roles), oracle.role_reads(dsn, roles)
    member_of, before = _member_of(dsn, roles), snapshot(dsn)

    results = _run(target.apply, actions)
    for a in actions:
        if a.seq not in results:
            out.errors.append(f"apply reported nothing for action #{a.seq} {a.kind}: {a.sql}")
            continue
        a.status, a.message = results[a.seq].status, results[a.seq].message
        if a.status == ActionStatus.FAILED:
            out.errors.append(f"apply failed #{a.seq} {a.kind}: {a.sql} -- {a.message}")
    applied = [a for a in actions if a.status == ActionStatus.APPLIED]

    after = oracle.exposure(dsn, principal, roles, members=expected.members)
    out.left_readable = [f"({m}, {o}): {_who(after, o)}" for m, o in sorted(after.pairs)]

    people_after = oracle.people_reads(dsn, roles)
    listed = {(c.role, o) for a in applied for c in a.collateral for o in c.objects}
    outsiders = [r for r in roles if r not in expected.members and r != principal]
    for r in outsiders:
        for o in sorted(people_before[r] - people_after[r]):
            if not any((who, o) in listed for who in {r, "PUBLIC", *member_of[r]}):
                out.collateral.append(
                    f"{r} lost {o}; applied actions naming it, and membership revokes: {_actions_on(applied, o)}"
                )
        for o in sorted(people_after[r] - people_before[r]):
            out.collateral.append(f"{r} gained {o}")

    undone = _run(target.undo, applied)
    for a in applied:
        result = undone.get(a.seq)
        if result is None or result.status != ActionStatus.UNDONE:
            out.undo_mismatches.append(
                f"undo of #{a.seq} {a.kind} {a.sql}: "
                + (f"{result.status.value}: {result.message}" if result else "no result reported")
            )
        else:
            a.status = ActionStatus.UNDONE
    restored = snapshot(dsn)
    out.undo_mismatches += differences(before, restored)
    roles_restored = oracle.role_reads(dsn, roles)
    for r in roles:
        if roles_restored[r] != roles_before[r]:
            out.undo_mismatches.append(
                f"{r} reads {sorted(roles_restored[r])} after undo, {sorted(roles_before[r])} before apply"
            )

    _run(target.undo, applied)
    out.undo_mismatches += [f"a second undo changed {line}" for line in differences(restored, snapshot(dsn))]


def _actions_on(actions: list[Action], fqn: str) -> list[str]:
    """The applied actions on this object, and every membership revoke (which can take any object away)."""
    return [f"#{a.seq} {a.sql}" for a in actions if a.object_fqn == fqn or a.kind == "revoke_membership"]
