"""The broadening digest and its diff: counts by principal and DSS, roles read through, PUBLIC grants per schema."""

from __future__ import annotations

from sevtool.core.broadening import BroadeningRule, broadened, digest
from sevtool.core.exposure import AccessPath, Finding


def f(fqn: str, dss: int | None, path: AccessPath = AccessPath.DIRECT, route: tuple[str, ...] = ()) -> Finding:
    schema, name = fqn.split(".")
    return Finding(
        object_kind="table",
        schema_name=schema,
        object_name=name,
        principal="all_employees",
        path=path,
        grantee="PUBLIC" if path == AccessPath.PUBLIC else (route[-1] if route else "all_employees"),
        dss=dss,
        route=route,
    )


def test_the_digest_counts_objects_once_per_dss_and_names_roles_and_public_schemas():
    findings = [
        f("a.x", 4),
        f("a.x", 4, AccessPath.PUBLIC),
        f("a.y", None, AccessPath.ROLE, ("readers", "hr")),
        f("b.z", 1),
    ]
    assert digest(findings) == {
        "objects": {"all_employees": {"1": 1, "4": 1, "unrated": 1}},
        "roles": {"all_employees": ["hr", "readers"]},
        "public": {"a": 1},
    }


def test_a_jump_by_share_counts_only_objects_at_the_rule_s_sensitivity():
    def world(sensitive: int, low: int = 50):
        return digest([f(f"s.t{i}", 4) for i in range(sensitive)] + [f(f"s.low{i}", 1) for i in range(low)])

    rule = BroadeningRule(objects=0, percent=20, min_dss=3)
    assert broadened(world(10), world(11), rule) == [], "+10% is under the 20% rule"
    [change] = broadened(world(10), world(12), rule)
    assert (change["before"], change["after"], change["by_dss"]) == (10, 12, {"4": [10, 12]}), "+20% reaches it"
    assert broadened(world(10), world(10, low=500), rule) == [], "DSS 1 objects are below this rule's sensitivity"
    assert broadened(None, world(12), rule) == [], "no digest yet: the first run is the baseline"
    [by_count] = broadened(world(1000), world(1100), BroadeningRule(objects=100, percent=0, min_dss=3))
    assert by_count["after"] - by_count["before"] == 100


def test_public_grants_are_watched_only_in_the_listed_schemas():
    before = digest([])
    after = digest([f("chat.m1", 3, AccessPath.PUBLIC), f("tmp.scratch", 1, AccessPath.PUBLIC)])
    changes = broadened(before, after, BroadeningRule(objects=0, percent=0, public_schemas=["chat"]))
    assert changes == [{"kind": "public", "schema": "chat", "before": 0, "after": 1}]
