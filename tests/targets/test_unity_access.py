"""Just-in-time access exceptions on Unity Catalog, against the loopback server that follows the REST contract.

Every verdict comes from the fake catalog's own oracle (`can_read`, its grant table), never from sevtool's read-back:
an exception lets one user read one DSS 4 table after the fix, verify stays clean and names it, ending or expiry
takes back the SELECT and the USE SCHEMA / USE CATALOG it added, a re-grant by hand afterwards is a lapsed exception,
and a grant whose USE privileges would open other tables is refused before anything changes.
"""

from __future__ import annotations

import time

import pytest
from dateutil.parser import parse
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.core.timeparse import utcnow
from sevtool.errors import TargetRejected
from sevtool.targets.unity.target import UnityCatalogTarget

P = "account users"
ALICE = "alice@example.com"  # an investigator: no grants of her own
TABLE = "main.telemetry.keystrokes"  # DSS 4


def grants_to(uc: FakeUnityCatalog, principal: str) -> dict[tuple[str, str], set[str]]:
    """Everything the catalog grants the principal, by securable, in one spelling."""
    return {key: uc.privileges(*key, principal) for key in uc.grants if uc.privileges(*key, principal)}


@pytest.fixture
def lake(config_path):
    server = FakeUnityCatalog(page_size=2).start()
    seed_drill(server, P)
    config_path.write_text(f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\n')
    yield server
    server.stop()
    assert server.violations == [], "requests or responses broke the OpenAPI contract"


@pytest.fixture
def fixed(cli, lake) -> str:
    """A SEV 2 incident on the lake, scanned and fixed: nobody in `account users` reads a table any more."""
    ident = str(cli.json("declare", "--sev", "2", "--title", "telemetry lake readable by all employees")["id"])
    cli.json("scan", ident, "--target", "lake", "--principal", P)
    cli.json("revoke", ident, "--apply", "--yes")
    assert not any(lake.can_read(P, t) for t in lake.tables)
    return ident


def test_an_exception_is_authorized_then_expires_and_a_regrant_is_a_lapsed_exception(cli, lake, fixed):
    exc = cli.json(
        "access", "grant", fixed, "--to", ALICE, "--object", TABLE, "--for", "20s", "--why", "leak scope",
        "--approver", "ic-dana",
    )  # fmt: skip
    assert {(g["on"], g["name"], g["privilege"]) for g in exc["grants"]} == {
        ("catalog", "main", "USE CATALOG"),
        ("schema", "main.telemetry", "USE SCHEMA"),
        ("table", TABLE, "SELECT"),
    }
    assert lake.can_read(ALICE, TABLE)
    assert [t for t in lake.tables if lake.can_read(ALICE, t)] == [TABLE]  # that table and nothing else
    assert not lake.can_read(P, TABLE)

    check = cli.json("verify", fixed)
    assert check["clean"] is True and check["regressions"] == []
    assert [(a["exception"], a["object"], a["role"]) for a in check["authorized_by_exception"]] == [(1, TABLE, ALICE)]

    time.sleep(max(0.0, (parse(exc["until"]) - utcnow()).total_seconds()) + 0.2)
    assert lake.can_read(ALICE, TABLE)  # expiry is a run that revokes, not a hope
    due = cli.json("verify", fixed, expect=3)
    assert [r["cause_kind"] for r in due["exception_breaches"]] == ["exception_lapsed"]
    expired = cli.json("access", "expire")
    assert [(e["number"], e["ending"], e["still_readable"]) for e in expired["ended"]] == [(1, "expired", [])]
    assert not lake.can_read(ALICE, TABLE)
    assert grants_to(lake, ALICE) == {}  # the USE SCHEMA and USE CATALOG it added went with the SELECT
    assert cli.json("verify", fixed)["clean"] is True

    for stype, name, privilege in (("catalog", "main", "USE CATALOG"), ("schema", "main.telemetry", "USE SCHEMA")):
        lake.grant(stype, name, ALICE, privilege)  # someone re-grants by hand after the window
    lake.grant("table", TABLE, ALICE, "SELECT")
    assert lake.can_read(ALICE, TABLE)
    regressed = cli.json("verify", fixed, expect=3)
    [breach] = regressed["regressions"]
    assert (breach["object"], breach["principal"], breach["cause_kind"]) == (TABLE, ALICE, "exception_lapsed")
    assert "exception 1 ended at" in breach["cause"]


def test_ending_early_takes_back_only_what_the_exception_added(cli, lake, fixed):
    lake.grant("catalog", "main", ALICE, "USE CATALOG")  # she held this before: it stays
    cli.json(
        "access", "grant", fixed, "--to", ALICE, "--object", TABLE, "--for", "1h", "--why", "audit", "--approver", "ic"
    )
    assert lake.can_read(ALICE, TABLE)
    lake.grant("table", TABLE, ALICE, "MODIFY")  # more than the exception grants
    broader = cli.json("verify", fixed, expect=3)
    assert [r["cause_kind"] for r in broader["regressions"]] == ["beyond_exception"]
    lake.grants[("table", TABLE)][ALICE].remove("MODIFY")
    assert cli.json("verify", fixed)["clean"] is True
    ended = cli.json("access", "end", fixed, "1")
    assert ended["ending"] == "ended early" and ended["still_readable"] == []
    assert not lake.can_read(ALICE, TABLE)
    assert grants_to(lake, ALICE) == {("catalog", "main"): {"USE CATALOG"}}


def test_undo_ends_the_exception_first_and_restores_exactly_the_prior_grants(cli, lake):
    before = {k: {p: list(v) for p, v in g.items()} for k, g in lake.grants.items()}
    ident = str(cli.json("declare", "--sev", "2", "--title", "telemetry lake readable by all employees")["id"])
    cli.json("scan", ident, "--target", "lake", "--principal", P)
    cli.json("revoke", ident, "--apply", "--yes")
    cli.json(
        "access", "grant", ident, "--to", ALICE, "--object", TABLE, "--for", "1h", "--why", "x", "--approver", "ic"
    )
    undone = cli.json("revoke", ident, "--undo", "--yes")
    assert [(e["number"], e["ending"]) for e in undone["exceptions_ended"]] == [(1, "ended by undo")]
    assert not lake.can_read(ALICE, TABLE) and lake.can_read(P, TABLE)
    assert {k: {p: list(v) for p, v in g.items() if v} for k, g in lake.grants.items()} == {
        k: {p: v for p, v in g.items() if v} for k, g in before.items()
    }


def test_usage_that_would_open_other_tables_is_refused_before_anything_changes(cli, lake, fixed):
    # A table grant left behind the closed schema: USE SCHEMA on main.telemetry would open mouse_moves too.
    lake.grant("table", "main.telemetry.mouse_moves", ALICE, "SELECT")
    before = grants_to(lake, ALICE)
    refused = cli(
        "access", "grant", fixed, "--to", ALICE, "--object", TABLE, "--for", "1h", "--why", "x", "--approver", "ic"
    )
    assert refused.returncode == 2
    assert "needs USE CATALOG on catalog main, USE SCHEMA on schema main.telemetry" in refused.stderr
    assert "would also let it read 1 other object(s): main.telemetry.mouse_moves" in refused.stderr
    assert grants_to(lake, ALICE) == before and not lake.can_read(ALICE, TABLE)
    assert cli.json("access", "list", fixed)["exceptions"] == []


def test_unknown_and_already_readable_tables_are_refused(cli, lake, fixed):
    missing = cli(
        "access", "grant", fixed, "--to", ALICE, "--object", "main.telemetry.nope", "--for", "1h", "--why", "x",
        "--approver", "ic",
    )  # fmt: skip
    assert missing.returncode == 2 and "no such table or view: main.telemetry.nope" in missing.stderr
    already = cli(
        "access", "grant", fixed, "--to", "data-eng", "--object", TABLE, "--for", "1h", "--why", "x", "--approver", "ic"
    )
    assert already.returncode == 2 and f"data-eng already reads {TABLE}" in already.stderr


# --- the target on its own: collateral through the catalog, a failed grant, a dropped table, Databricks spelling ---


@pytest.fixture
def target(lake):
    t = UnityCatalogTarget(lake.url, timeout=5)
    yield t
    t.close()


def test_use_catalog_opening_a_schema_is_collateral(lake, target):
    # bob reads main.chats through the schema's grants, but the catalog kept him out.
    lake.grant("schema", "main.chats", "bob", "USE SCHEMA", "SELECT")
    plan = target.plan_exception("bob", [TABLE])
    assert plan.collateral == ("main.chats.channel_index", "main.chats.private_messages")
    assert not any(lake.can_read("bob", t) for t in lake.tables)


def test_a_grant_refused_midway_removes_what_it_added(lake, target):
    plan = target.plan_exception(ALICE, [TABLE])
    assert plan.collateral == () and len(plan.grants) == 3
    lake.fail_next(1, 403, path="/permissions/table", method="PATCH")  # catalog and schema go through, then no
    with pytest.raises(TargetRejected) as refused:
        target.grant_exception(ALICE, list(plan.grants))
    assert f"permissions/table/{TABLE}" in refused.value.message
    assert "what was added has been removed again" in refused.value.message
    assert "MANAGE" in (refused.value.hint or "")
    assert grants_to(lake, ALICE) == {} and not lake.can_read(ALICE, TABLE)


def test_a_grant_that_does_not_read_back_is_an_error(lake, target):
    plan = target.plan_exception(ALICE, [TABLE])
    lake.ignore_patches = True  # the catalog answers 200 and changes nothing
    with pytest.raises(TargetRejected) as refused:
        target.grant_exception(ALICE, list(plan.grants))
    assert "a re-read lacks USE CATALOG on catalog main" in refused.value.message
    assert not lake.can_read(ALICE, TABLE)


def test_revoking_on_a_dropped_table_leaves_nothing(lake, target):
    plan = target.plan_exception(ALICE, [TABLE])
    target.grant_exception(ALICE, list(plan.grants))
    assert lake.can_read(ALICE, TABLE)
    del lake.tables[TABLE]
    assert target.revoke_exception(ALICE, list(plan.grants)) == []
    assert grants_to(lake, ALICE) == {("table", TABLE): {"SELECT"}}  # only the dropped table's stale entry
    assert [a.readable for a in target.role_access(ALICE, [TABLE])] == [False]


def test_databricks_spelling_is_written_and_removed():
    uc = FakeUnityCatalog(dialect="databricks").start()
    try:
        seed_drill(uc, P)
        sent: list[dict] = []
        t = UnityCatalogTarget(uc.url, timeout=5)
        original = t.client.patch
        t.client.patch = lambda path, body: sent.append(body) or original(path, body)  # type: ignore[method-assign]
        plan = t.plan_exception(ALICE, [TABLE])
        t.grant_exception(ALICE, list(plan.grants))
        assert uc.can_read(ALICE, TABLE)
        assert {p for body in sent for c in body["changes"] for p in c["add"]} == {
            "USE_CATALOG",
            "USE_SCHEMA",
            "SELECT",
        }
        access = t.role_access(ALICE, [TABLE])
        assert [(a.readable, a.privileges) for a in access] == [(True, ("SELECT",))]
        assert t.revoke_exception(ALICE, list(plan.grants)) == []
        assert not uc.can_read(ALICE, TABLE) and grants_to(uc, ALICE) == {}
        t.close()
    finally:
        uc.stop()
    assert uc.violations == []
