"""`sevtool guard --once` through the real entry point, on the drill's database (sevtool.scenario.seed_drill).

A violated policy opens exactly one incident (declared by guard, pre-scoped, webhooks told); a second run attaches
to it; once its revoke is applied the guard holds (exit 0); re-granting one DSS 4 table breaks the policy again,
and since the incident is still open (contained), the run attaches to that same incident.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from fakes.webhook_receiver import WebhookReceiver

from sevtool.scenario import seed_drill

pytestmark = pytest.mark.postgres

POLICY = "no-broad-sensitive"


@pytest.fixture
def drill(pg_db) -> str:
    seed_drill(pg_db, tables=120, employees=4)
    return pg_db


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def guarded(cli, drill, config_path, receiver) -> str:
    config_path.write_text(f"""
[targets.warehouse]
kind = "postgresql"
dsn = "{drill}"

[webhooks.ops]
url = "{receiver.url()}"

[[policy]]
name = "{POLICY}"
target = "warehouse"
principals = ["all_employees", "PUBLIC"]
min_dss = 3
sev = 2
playbook = "data-exposure"

[[policy]]
name = "loader-reads-nothing"
target = "warehouse"
principals = ["etl_loader"]
schemas = ["ml_features"]      # granted to all_employees only (PUBLIC reads chat.*)
min_dss = 1
sev = 3
""")
    return drill


def runs_by_policy(out: dict) -> dict[str, dict]:
    return {run["policy"]: run for run in out["runs"]}


def wait_for(predicate, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_guard_opens_one_incident_attaches_holds_after_revoke_and_catches_a_regrant(cli, guarded, receiver):
    first = runs_by_policy(cli.json("guard", "--once", expect=3))
    violated, holding = first[POLICY], first["loader-reads-nothing"]
    assert (violated["state"], violated["action"]) == ("violated", "opened") and violated["objects"] > 0
    assert (holding["state"], holding["incident"], holding["action"]) == ("holds", None, None)
    ident = str(violated["incident"])
    [incident] = cli.json("list")
    assert incident["id"] == violated["incident"] and incident["sev"] == 2 and incident["playbook"] == "data-exposure"

    timeline = cli.json("timeline", ident)
    kinds = [e["kind"] for e in timeline]
    assert kinds[:3] == ["declared", "scan", "guard_violation"], kinds
    declared, scan, seen = timeline[:3]
    assert (
        declared["actor"] == "guard"
        and declared["data"]["declared_by"] == "guard"
        and declared["data"]["policy"] == POLICY
    )
    assert scan["data"]["findings"] == violated["findings"] and scan["data"]["scope"]["principals"] == [
        "all_employees",
        "PUBLIC",
    ]
    assert (
        seen["data"]["policy"] == POLICY
        and seen["data"]["objects"] == violated["objects"]
        and POLICY in seen["summary"]
    )
    wait_for(
        lambda: any(
            p["body"]["kind"] == "declared" and p["body"]["incident"]["id"] == int(ident)
            for p in receiver.accepted.values()
        ),
        "the webhook heard of the incident the guard opened",
    )

    second = runs_by_policy(cli.json("guard", "--once", expect=3))[POLICY]
    assert (second["action"], second["incident"]) == ("attached", int(ident))
    assert len(cli.json("list")) == 1, "a second run attaches instead of opening another incident"
    assert [e["kind"] for e in cli.json("timeline", ident)].count("declared") == 1

    applied = cli("revoke", ident, "--apply", "--yes", "--json")
    assert applied.returncode == 0, applied.stderr
    clean = runs_by_policy(cli.json("guard", "--once"))
    assert {name: run["state"] for name, run in clean.items()} == {POLICY: "holds", "loader-reads-nothing": "holds"}
    assert cli.json("verify", ident)["clean"] is True, "the incident's own verify agrees: its pre-scope is the policy's"

    with psycopg.connect(guarded, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON telemetry.keystrokes_00001 TO all_employees")
    again = runs_by_policy(cli.json("guard", "--once", expect=3))[POLICY]
    # The rule: the incident is still open (contained, not resolved), so the violation attaches to it.
    assert (again["state"], again["action"], again["incident"], again["objects"]) == (
        "violated",
        "attached",
        int(ident),
        1,
    )
    assert len(cli.json("list")) == 1
    last = [e for e in cli.json("timeline", ident) if e["kind"] == "guard_violation"][-1]
    assert last["data"]["sample"] == ["telemetry.keystrokes_00001"] and last["data"]["action"] == "attached"


def test_an_unreachable_target_is_reported_for_its_policy_and_the_others_still_run(cli, drill, config_path):
    config_path.write_text(f"""
[targets.warehouse]
kind = "postgresql"
dsn = "{drill}"

[targets.gone]
kind = "postgresql"
dsn = "host=127.0.0.1 port=1 dbname=nothing"
connect_timeout = 2

[[policy]]
name = "gone-is-checked"
target = "gone"
principals = ["all_employees"]

[[policy]]
name = "loader-reads-nothing"
target = "warehouse"
principals = ["etl_loader"]
schemas = ["ml_features"]
""")
    out = runs_by_policy(cli.json("guard", "--once", expect=1))
    assert (
        out["gone-is-checked"]["state"] == "error" and out["gone-is-checked"]["error"]["error"] == "target_unreachable"
    )
    assert out["loader-reads-nothing"]["state"] == "holds"
    human = cli("guard", "--once")
    assert (
        human.returncode == 1
        and "gone-is-checked on gone: ERROR" in human.stderr
        and "loader-reads-nothing on warehouse: holds" in human.stderr
    )


def test_guard_needs_once_or_every_and_a_policy(cli, config_path):
    neither = cli("guard")
    assert neither.returncode == 2 and "pass one of --once and --every" in neither.stderr
    assert cli("guard", "--once", "--every", "5m").returncode == 2
    none = cli("guard", "--once", "--json")
    assert none.returncode == 2 and "no [[policy]]" in none.stderr
    config_path.write_text('[[policy]]\nname = "p"\ntarget = "nowhere"\nprincipals = ["x"]\n')
    unknown = cli("guard", "--once")
    assert unknown.returncode == 2 and f"{config_path}:3: policy.0.target: no target named 'nowhere'" in unknown.stderr
