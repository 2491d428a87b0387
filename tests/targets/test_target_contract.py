"""One contract, every target: scan finds the seeded exposure, the plan closes it, apply + re-scan is
clean, a second apply changes nothing, undo restores the exact prior state.

PostgreSQL runs on the session's real server (seeded by `sevtool.scenario`), Unity Catalog on the
loopback server that implements and validates the REST contract.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from acl_snapshot import acl_snapshot
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.core.exposure import Scope
from sevtool.core.plan import ActionStatus
from sevtool.targets.base import Target


@dataclass
class Backend:
    target: Target
    scope: Scope
    exposed: set[str]              # objects the seed made readable by the scope's principals
    unexposed: set[str]            # objects in scope that nobody in scope can read
    snapshot: Callable[[], object]  # every grant the target could change, comparable with ==


def unrated(schema, name, comment):
    return None


def postgres_backend(request) -> Backend:
    from sevtool.scenario import PRINCIPAL, seed_access_paths
    from sevtool.targets.postgres.target import PostgresTarget

    dsn = request.getfixturevalue("pg_db")
    info = seed_access_paths(dsn)
    target = PostgresTarget(dsn)
    request.addfinalizer(target.close)
    exposed = {e["fqn"] for entries in info["paths"].values() for e in entries if "fqn" in e and not e.get("future_tables")}
    return Backend(target, Scope(target=target.display, principals=[PRINCIPAL]), exposed, set(info["unexposed"]),
                   lambda: acl_snapshot(dsn))


def unity_backend(request) -> Backend:
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
    return Backend(target, Scope(target=target.display, principals=["account users"]), readable, set(server.tables) - readable,
                   lambda: {k: {p: sorted(v) for p, v in g.items() if v} for k, g in copy.deepcopy(server.grants).items()})


@pytest.fixture(params=["postgresql", "unity-catalog"])
def backend(request) -> Backend:
    return {"postgresql": postgres_backend, "unity-catalog": unity_backend}[request.param](request)


def collect(run) -> tuple[dict[int, object], list[list]]:
    results, batches = {}, []

    def on_batch(batch):
        batches.append(batch)
        results.update({r.seq: r for r in batch})

    run(on_batch)
    return results, batches


def test_it_is_a_target(backend):
    assert isinstance(backend.target, Target)
    assert backend.target.kind in ("postgresql", "unity-catalog") and backend.target.display


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

    applied, batches = collect(lambda cb: target.apply(actions, cb, batch_size=1))
    assert set(applied) == {a.seq for a in actions}
    assert {r.status for r in applied.values()} == {ActionStatus.APPLIED}, [r for r in applied.values() if r.status != ActionStatus.APPLIED]
    assert len(batches) > 1 and all(len(b) <= 1 for b in batches), "bounded batches, each reported after its read-back"
    assert target.scan(scope, unrated).findings == []

    again, _ = collect(lambda cb: target.apply(actions, cb))
    assert {r.status for r in again.values()} == {ActionStatus.SKIPPED}

    undone, _ = collect(lambda cb: target.undo(actions, cb))
    assert {r.status for r in undone.values()} == {ActionStatus.UNDONE}
    assert backend.snapshot() == before
    assert {f.key for f in target.scan(scope, unrated).findings} == {f.key for f in findings}
