"""Unity Catalog target against a real loopback server that implements (and validates) the contract."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from datetime import UTC

import httpx
import pytest
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.core.exposure import AccessPath, Scope, Securable
from sevtool.core.plan import ActionStatus
from sevtool.describe import via
from sevtool.errors import ConfigError, TargetError, TargetRejected, TargetUnreachable
from sevtool.targets.unity.plugin import REVOKE_SECURABLE
from sevtool.targets.unity.privileges import normalise_privilege, select_sources
from sevtool.targets.unity.target import UnityCatalogTarget, parse_spec

P = "account users"


def dss_from_comment(schema: str, name: str, comment: str | None) -> int | None:
    return int(comment.split()[1]) if comment and comment.startswith("DSS") else None


@pytest.fixture
def uc():
    server = FakeUnityCatalog(page_size=1, empty_pages=True).start()
    seed_drill(server, P)
    yield server
    server.stop()
    assert server.violations == [], "requests or responses broke the OpenAPI contract"


class Sleeps(list):
    """Records the back-off waits instead of sleeping them, so retry tests are exact and fast."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def target(uc, sleeps):
    t = UnityCatalogTarget(uc.url, sleep=sleeps, timeout=5)
    yield t
    t.close()


def scope(**kw) -> Scope:
    return Scope(target="uc", principals=[P], **kw)


def test_scan_sees_direct_and_inherited_access_and_agrees_with_the_catalogs_rule(uc, target):
    result = target.scan(scope(), dss_from_comment)
    found = {(f.object_fqn, f.path, via(f)) for f in result.findings}
    assert found == {
        ("main.telemetry.keystrokes", AccessPath.DIRECT, "granted on table main.telemetry.keystrokes"),
        ("main.chats.private_messages", AccessPath.INHERITED, "granted on schema main.chats"),
        ("main.chats.channel_index", AccessPath.INHERITED, "granted on schema main.chats"),
    }
    readable = {t for t in uc.tables if uc.can_read(P, t)}
    assert {f.object_fqn for f in result.findings} == readable
    # payroll has a SELECT grant but no USE SCHEMA: not readable, not a finding, still an object in scope.
    assert "main.finance.payroll" in result.objects and result.objects["main.finance.payroll"] == 4
    assert result.objects_in_scope == 5
    assert any("main.chats" in n for n in result.notices)


def test_scope_filters_by_schema_glob_and_dss(target):
    only_chats = target.scan(scope(schemas=["main.chats"]), dss_from_comment)
    assert {f.object_fqn for f in only_chats.findings} == {"main.chats.private_messages", "main.chats.channel_index"}
    dss4 = target.scan(scope(min_dss=4), dss_from_comment)
    assert {f.object_fqn for f in dss4.findings} == {"main.chats.private_messages", "main.telemetry.keystrokes"}
    glob = target.scan(scope(table_glob="key*"), dss_from_comment)
    assert {f.object_fqn for f in glob.findings} == {"main.telemetry.keystrokes"}


def test_catalog_level_select_is_found_and_revoked_on_the_catalog(uc, target):
    uc.grant("catalog", "main", P, "USE SCHEMA", "SELECT")
    result = target.scan(scope(), dss_from_comment)
    by_catalog = {f.object_fqn for f in result.findings if f.granted_on == Securable("catalog", "main")}
    assert by_catalog == set(uc.tables)  # every table, payroll included: USE SCHEMA now comes from the catalog
    actions = target.plan(result.findings, scope())
    assert next((a.object_kind, a.object_fqn) for a in actions) == ("catalog", "main")
    results = []
    target.apply(actions, results.extend)
    assert {r.status for r in results} == {ActionStatus.APPLIED}
    assert not any(uc.can_read(P, t) for t in uc.tables)


def test_plan_targets_the_securable_that_holds_the_grant_and_says_why(uc, target):
    findings = target.scan(scope(), dss_from_comment).findings
    actions = target.plan(findings, scope())
    assert [(a.kind, a.object_kind, a.object_fqn, a.grantee, a.privileges) for a in actions] == [
        (REVOKE_SECURABLE, "schema", "main.chats", P, ["SELECT"]),
        (REVOKE_SECURABLE, "table", "main.telemetry.keystrokes", P, ["SELECT"]),
    ]
    schema_action = actions[0]
    assert "a revoke on the table would not close access" in schema_action.reason
    assert "main.chats.private_messages" in schema_action.reason
    assert schema_action.sql.startswith("PATCH /permissions/schema/main.chats ")
    prior = json.loads(schema_action.prior_state)
    assert (
        prior["securable_type"] == "schema"
        and {"principal": P, "privileges": ["USE SCHEMA", "SELECT"]} in prior["privilege_assignments"]
    )
    # Why the securable matters: removing SELECT on the table itself leaves the schema grant in force.
    uc.grant("table", "main.chats.private_messages", P, "SELECT")
    with httpx.Client() as client:
        client.patch(
            f"{uc.url}/permissions/table/main.chats.private_messages",
            json={"changes": [{"principal": P, "add": [], "remove": ["SELECT"]}]},
        ).raise_for_status()
    assert uc.can_read(P, "main.chats.private_messages")


def test_apply_closes_everything_and_undo_restores_the_exact_prior_grants(uc, target):
    before = copy.deepcopy(uc.grants)
    findings = target.scan(scope(), dss_from_comment).findings
    actions = target.plan(findings, scope())
    batches: list[list] = []
    target.apply(actions, batches.append, batch_size=1)
    assert len(batches) == 2 and all(r.status == ActionStatus.APPLIED for b in batches for r in b)
    assert "re-read confirms" in batches[0][0].message
    assert target.scan(scope(), dss_from_comment).findings == []
    assert not any(uc.can_read(P, t) for t in uc.tables)
    assert uc.privileges("schema", "main.chats", P) == {"USE SCHEMA"}  # only SELECT went
    again: list = []
    target.apply(actions, again.extend)
    assert {r.status for r in again} == {ActionStatus.SKIPPED}
    undone: list = []
    target.undo(actions, undone.extend)
    assert {r.status for r in undone} == {ActionStatus.UNDONE}
    assert {k: {p: set(v) for p, v in g.items() if v} for k, g in uc.grants.items()} == {
        k: {p: set(v) for p, v in g.items() if v} for k, g in before.items()
    }
    assert len(target.scan(scope(), dss_from_comment).findings) == 3


def test_a_patch_the_reread_does_not_confirm_is_failed_not_applied(uc, target):
    actions = target.plan(target.scan(scope(), dss_from_comment).findings, scope())
    uc.ignore_patches = True
    results: list = []
    target.apply(actions, results.extend)
    assert {r.status for r in results} == {ActionStatus.FAILED}
    assert "still shows SELECT" in results[0].message


def test_databricks_underscore_privileges_are_normalised_and_written_back_as_spelled(sleeps):
    server = FakeUnityCatalog(dialect="databricks").start()
    try:
        seed_drill(server, P)
        target = UnityCatalogTarget(server.url, sleep=sleeps)
        findings = target.scan(scope(), dss_from_comment).findings
        assert len(findings) == 3
        actions = target.plan(findings, scope())
        target.apply(actions, lambda results: None)
        assert server.grants[("schema", "main.chats")][P] == ["USE_SCHEMA"]
        target.undo(actions, lambda results: None)
        assert server.grants[("schema", "main.chats")][P] == ["USE_SCHEMA", "SELECT"]
        assert server.violations == []
    finally:
        server.stop()


def test_privilege_normalisation_and_the_effective_access_rule():
    assert normalise_privilege("use_schema") == normalise_privilege("USE  SCHEMA") == "USE SCHEMA"
    assert select_sources(["USE CATALOG"], ["USE_SCHEMA", "SELECT"], []) == [("schema", "SELECT")]
    assert select_sources(["USE CATALOG"], [], ["SELECT"]) == []  # no USE SCHEMA anywhere
    assert select_sources([], ["USE SCHEMA"], ["SELECT"]) == []  # no USE CATALOG
    assert select_sources(["ALL_PRIVILEGES"], [], []) == [("catalog", "ALL_PRIVILEGES")]


def test_429_waits_as_long_as_retry_after_says(uc, target, sleeps):
    uc.fail_next(1, 429, retry_after="2", path="/catalogs")
    assert target.scan(scope(), dss_from_comment).findings
    assert sleeps == [2.0]


def test_5xx_backs_off_exponentially_then_gives_up_with_a_clear_error(uc, sleeps):
    target = UnityCatalogTarget(uc.url, sleep=sleeps, max_retries=3)
    uc.fail_next(2, 503, path="/catalogs")
    target.scan(scope(), dss_from_comment)
    assert sleeps == [0.5, 1.0]
    sleeps.clear()
    uc.fail_next(10, 500, path="/catalogs")
    with pytest.raises(TargetUnreachable, match="after 4 attempts: HTTP 500"):
        target.scan(scope(), dss_from_comment)
    assert sleeps == [0.5, 1.0, 2.0]
    uc.faults.clear()


def test_a_slow_answer_is_a_timeout_retried_then_reported_as_unreachable(uc, sleeps):
    target = UnityCatalogTarget(uc.url, sleep=sleeps, timeout=0.3, max_retries=1)
    uc.slow_next(1, 1.5, path="/catalogs")
    assert target.scan(scope(), dss_from_comment).findings  # second attempt is served
    uc.slow_next(2, 1.5, path="/catalogs")
    with pytest.raises(TargetUnreachable, match=r"no answer within 0\.3s"):
        target.scan(scope(), dss_from_comment)


def test_connection_refused_is_unreachable(sleeps):
    server = FakeUnityCatalog().start()
    url = server.url
    server.stop()
    with pytest.raises(TargetUnreachable, match="could not connect"):
        UnityCatalogTarget(url, sleep=sleeps, max_retries=1).scan(scope(), dss_from_comment)


def test_bearer_token_comes_from_the_environment_and_never_shows(monkeypatch, sleeps):
    server = FakeUnityCatalog(token="s3cret-token").start()
    try:
        seed_drill(server, P)
        monkeypatch.setenv("UC_TEST_TOKEN", "s3cret-token")
        target = UnityCatalogTarget(server.url, token_env="UC_TEST_TOKEN", sleep=sleeps)
        assert len(target.scan(scope(), dss_from_comment).findings) == 3
        actions = target.plan(target.scan(scope(), dss_from_comment).findings, scope())
        assert "s3cret" not in target.display + json.dumps([asdict(a) for a in actions])
        monkeypatch.setenv("UC_TEST_TOKEN", "stale-token-42")
        with pytest.raises(TargetRejected, match="HTTP 401") as err:
            UnityCatalogTarget(server.url, token_env="UC_TEST_TOKEN", sleep=sleeps).scan(scope(), dss_from_comment)
        assert "token_env" in err.value.hint and "stale-token-42" not in str(err.value)
        monkeypatch.delenv("UC_TEST_TOKEN")
        with pytest.raises(ConfigError, match="UC_TEST_TOKEN is not set"):
            UnityCatalogTarget(server.url, token_env="UC_TEST_TOKEN")
    finally:
        server.stop()


def test_no_per_table_permission_reads_where_nobody_in_scope_can_enter_the_schema(uc, sleeps):
    paths: list[str] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request):
            paths.append(request.url.path)
            return super().handle_request(request)

    UnityCatalogTarget(uc.url, transport=Counting(), sleep=sleeps).scan(scope(), dss_from_comment)
    assert not any(p.endswith("/permissions/table/main.finance.payroll") for p in paths)
    assert any(p.endswith("/permissions/table/main.telemetry.keystrokes") for p in paths)


def test_a_listing_that_repeats_its_page_token_is_refused_instead_of_looping(sleeps):
    def loops(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"catalogs": [], "next_page_token": "same"})

    target = UnityCatalogTarget(
        "http://uc.invalid/api/2.1/unity-catalog", transport=httpx.MockTransport(loops), sleep=sleeps
    )
    with pytest.raises(TargetRejected, match="page token 'same' twice"):
        target.scan(scope(), dss_from_comment)


def test_probe_says_live_probes_are_not_supported(target):
    with pytest.raises(TargetError, match="live probes are not supported"):
        target.probe(P, ["main.chats.private_messages"])


def test_spec_parsing_and_display():
    assert parse_spec("uc+https://dbc.example.com/api/2.1/unity-catalog/?token_env=DATABRICKS_TOKEN") == (
        "https://dbc.example.com/api/2.1/unity-catalog",
        "DATABRICKS_TOKEN",
    )
    assert (
        UnityCatalogTarget("http://user:pw@localhost:8080/api/2.1/unity-catalog").display
        == "uc+http://localhost:8080/api/2.1/unity-catalog"
    )
    with pytest.raises(ConfigError):
        parse_spec("postgresql://x")


def test_retry_after_accepts_seconds_and_http_dates():
    from datetime import datetime, timedelta
    from email.utils import format_datetime

    from sevtool.targets.unity.client import retry_after_seconds

    assert retry_after_seconds("3") == 3.0
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 50 <= retry_after_seconds(in_a_minute) <= 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: retry now
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_when_the_catalog_stops_answering_mid_batch_what_finished_is_still_reported(uc, sleeps):
    target = UnityCatalogTarget(uc.url, sleep=sleeps, max_retries=1)
    actions = target.plan(target.scan(scope(), dss_from_comment).findings, scope())
    uc.fail_next(2, 503, path="/permissions/table/main.telemetry.keystrokes", method="PATCH")
    batches: list[list] = []
    with pytest.raises(
        TargetUnreachable, match=r"PATCH /permissions/table/main\.telemetry\.keystrokes failed after 2 attempts"
    ):
        target.apply(actions, batches.append)
    assert [(r.seq, r.status) for b in batches for r in b] == [(1, ActionStatus.APPLIED)]  # the schema action finished
    resumed: list = []
    target.apply(actions, resumed.extend)
    assert [(r.seq, r.status) for r in resumed] == [(1, ActionStatus.SKIPPED), (2, ActionStatus.APPLIED)]


def _oracle_collateral(uc, target, action, in_scope: set[str]) -> set[str]:
    """What the catalog's own rule says this one action takes outside the scope: apply it, compare, undo it."""
    before = {t for t in uc.tables if uc.can_read(P, t)}
    target.apply([action], lambda results: None)
    after = {t for t in uc.tables if uc.can_read(P, t)}
    target.undo([action], lambda results: None)
    assert {t for t in uc.tables if uc.can_read(P, t)} == before
    return before - after - in_scope


@pytest.mark.parametrize("scoped", [{"min_dss": 4}, {"table_glob": "private_*"}, {"schemas": ["main.chats"]}])
def test_a_container_revoke_names_the_out_of_scope_tables_it_takes_as_collateral(uc, target, scoped):
    uc.grant("catalog", "main", P, "SELECT")  # a catalog-wide grant too: its revoke reaches every schema
    uc.add_table(
        "main", "chats", "bots", comment="DSS 1", grants={P: ["SELECT"]}
    )  # also granted on the table: keeps access
    findings = target.scan(scope(**scoped), dss_from_comment).findings
    in_scope = {f.object_fqn for f in findings}
    actions = target.plan(findings, scope(**scoped))
    containers = [a for a in actions if a.object_kind in ("catalog", "schema")]
    assert {a.object_fqn for a in containers} >= {"main"}
    for action in actions:
        expected = _oracle_collateral(uc, target, action, in_scope) if action in containers else set()
        got = {o for c in action.collateral for o in c.objects}
        assert got == expected, f"{action.object_kind} {action.object_fqn}"
        assert all(c.role == P and c.cause == "container_revoke" for c in action.collateral)
        assert bool(action.alternative) == bool(expected)
    assert "main.chats.bots" not in {o for a in actions for c in a.collateral for o in c.objects}
    assert any(a.collateral for a in actions), "the scenario has collateral to find"


def test_a_schema_revoke_inside_the_scope_has_no_collateral(uc, target):
    actions = target.plan(target.scan(scope(), dss_from_comment).findings, scope())
    assert [a.collateral for a in actions] == [[], []]
