"""One contract, every registered target: scan finds the seeded exposure, the plan closes it with actions its
plug-in declares, apply + re-scan is clean, a second apply changes nothing, undo restores the exact prior state.

The suite runs once per plug-in in the `sevtool.targets` entry-point group, each in a throw-away world:
PostgreSQL on the session's real server (seeded by `sevtool.scenario`), Unity Catalog on the loopback server
that implements and validates the REST contract. Any other kind brings its own world through the
`sevtool.contract_worlds` entry-point group (docs/adding-a-target.md); a kind with none fails here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

import pytest
from acl_snapshot import acl_snapshot
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.core.exposure import Scope
from sevtool.core.plan import ActionStatus
from sevtool.targets.base import Target
from sevtool.targets.plugin import plugins

WORLDS = "sevtool.contract_worlds"  # kind -> a function of pytest's `request` returning a World


@dataclass
class World:
    target: Target
    scope: Scope
    exposed: set[str]  # objects the seed made readable by the scope's principals
    unexposed: set[str]  # objects in scope that nobody in scope can read
    snapshot: Callable[[], object]  # every grant the target could change, comparable with ==


def unrated(schema, name, comment):
    return None


def postgres_world(request) -> World:
    from sevtool.scenario import PRINCIPAL, seed_access_paths
    from sevtool.targets.postgres.target import PostgresTarget

    dsn = request.getfixturevalue("pg_db")
    info = seed_access_paths(dsn)
    target = PostgresTarget(dsn)
    request.addfinalizer(target.close)
    exposed = {
        e["fqn"] for entries in info["paths"].values() for e in entries if "fqn" in e and not e.get("future_tables")
    }
    return World(
        target,
        Scope(target=target.display, principals=[PRINCIPAL]),
        exposed,
        set(info["unexposed"]),
        lambda: acl_snapshot(dsn),
    )


def unity_world(request) -> World:
    from sevtool.targets.unity.target import UnityCatalogTarget

    server = FakeUnityCatalog(page_size=2, empty_pages=True).start()
    seed_drill(server, "account users")

    def stop():
        server.stop()
        assert server.violations == []

    request.addfinalizer(stop)
    target = UnityCatalogTarget(server.url, sleep=lambda seconds: None)
    request.addfinalizer(target.close)
    readable = {t for t in server.tables if server.can_read("account users", t)}
    return World(
        target,
        Scope(target=target.display, principals=["account users"]),
        readable,
        set(server.tables) - readable,
        lambda: {k: {p: sorted(v) for p, v in g.items() if v} for k, g in copy.deepcopy(server.grants).items()},
    )


BUILT_IN_WORLDS = {"postgresql": postgres_world, "unity-catalog": unity_world}


def world_of(kind: str) -> Callable:
    if kind in BUILT_IN_WORLDS:
        return BUILT_IN_WORLDS[kind]
    declared = {point.name: point for point in entry_points(group=WORLDS)}
    if kind not in declared:
        pytest.fail(
            f"target kind {kind!r} has no contract world: register one as {kind} in the {WORLDS} entry-point group"
        )
    return declared[kind].load()


@pytest.fixture(params=sorted(plugins()))
def backend(request) -> World:
    return world_of(request.param)(request)


def collect(run) -> tuple[dict[int, object], list[list]]:
    results, batches = {}, []

    def on_batch(batch):
        batches.append(batch)
        results.update({r.seq: r for r in batch})

    run(on_batch)
    return results, batches


def test_it_is_a_target_of_its_plug_in_kind(backend, request):
    assert isinstance(backend.target, Target)
    assert backend.target.kind == request.node.callspec.params["backend"] and backend.target.display


def test_scan_finds_the_seeded_exposure_and_nothing_else(backend):
    result = backend.target.scan(backend.scope, unrated)
    found = {f.object_fqn for f in result.findings}
    assert backend.exposed <= found
    assert not (found & backend.unexposed)
    assert set(backend.scope.principals) == {f.principal for f in result.findings}
    assert backend.exposed | backend.unexposed <= set(result.objects) | {f.object_fqn for f in result.findings}


def test_plan_closes_it_apply_is_clean_again_is_a_no_op_and_undo_restores_exactly(backend):
    target, scope = backend.target, backend.scope
    before = backend.snapshot()
    findings = target.scan(scope, unrated).findings
    actions = target.plan(findings, scope)
    assert actions and all(a.prior_state for a in actions), "every action journals its prior state"
    assert [a.seq for a in actions] == list(range(1, len(actions) + 1))
    declared = {spec.name for spec in plugins()[target.kind].action_kinds}
    assert {a.kind for a in actions} <= declared, "the store learns what an action closes from its declared kind"

    applied, batches = collect(lambda cb: target.apply(actions, cb, batch_size=1))
    assert set(applied) == {a.seq for a in actions}
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}, [
        r for r in applied.values() if r.status != ActionStatus.APPLIED
    ]
    assert len(batches) > 1 and all(len(b) <= 1 for b in batches), "bounded batches, each reported after its read-back"
    assert target.scan(scope, unrated).findings == []

    again, _ = collect(lambda cb: target.apply(actions, cb))
    assert {r.status for r in again.values()} == {ActionStatus.SKIPPED}

    undone, _ = collect(lambda cb: target.undo(actions, cb))
    assert {r.status for r in undone.values()} == {ActionStatus.UNDONE}
    assert backend.snapshot() == before
    assert {f.key for f in target.scan(scope, unrated).findings} == {f.key for f in findings}
