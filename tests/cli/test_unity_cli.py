"""scan -> plan -> apply -> verify -> undo on a Unity Catalog target, through the same commands as PostgreSQL.

The catalog is the loopback server that implements the REST contract; the target is named in the team
config with its token in an environment variable, and a webhook receiver listens for notifications.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fakes.uc_server import FakeUnityCatalog, seed_drill
from fakes.webhook_receiver import WebhookReceiver

P = "account users"
TOKEN = "uc-token-Zq81"


@pytest.fixture
def lake(config_path):
    server = FakeUnityCatalog(page_size=2, empty_pages=True, token=TOKEN).start()
    seed_drill(server, P)
    receiver = WebhookReceiver().start()
    config_path.write_text(
        f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\ntoken_env = "LAKE_TOKEN"\n\n'
        f'[webhooks.ops]\nurl = "{receiver.url()}"\n'
    )
    yield server, receiver
    receiver.stop()
    server.stop()
    assert server.violations == []


def test_the_full_response_on_unity_catalog_with_a_schema_level_regression(cli, lake, cli_env):
    server, receiver = lake
    env = {"LAKE_TOKEN": TOKEN}
    before = {k: {p: list(v) for p, v in g.items()} for k, g in server.grants.items()}
    incident = cli.json("declare", "--sev", "2", "--title", "telemetry lake readable by all employees", env=env)["id"]

    scan = cli.json("scan", incident, "--target", "lake", "--principal", P, env=env)
    assert {(f["schema_name"] + "." + f["object_name"], f["path"], f["via"]) for f in scan["findings"]} == {
        ("main.telemetry.keystrokes", "direct", "granted on table main.telemetry.keystrokes"),
        ("main.chats.private_messages", "inherited", "granted on schema main.chats"),
        ("main.chats.channel_index", "inherited", "granted on schema main.chats"),
    }

    plan = cli.json("revoke", incident, "--plan", env=env)
    actions = plan["actions"] if isinstance(plan, dict) else plan
    schema_action = next(a for a in actions if a["object_kind"] == "schema")
    assert schema_action["schema_name"] + "." + schema_action["object_name"] == "main.chats"
    assert "a revoke on the table would not close access" in schema_action["reason"]

    cli.json("revoke", incident, "--apply", "--yes", env=env)
    assert not any(server.can_read(P, t) for t in server.tables)
    clean = cli.json("verify", incident, env=env)
    assert clean["clean"] is True

    # A job re-applies the schema grant: the next check must blame the schema, not the tables.
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        client.patch(
            f"{server.url}/permissions/schema/main.chats",
            json={"changes": [{"principal": P, "add": ["SELECT"], "remove": []}]},
        ).raise_for_status()
    check = cli.json("verify", incident, env=env, expect=3)
    assert {r["object"] for r in check["regressions"]} == {"main.chats.private_messages", "main.chats.channel_index"}
    assert all(r["path"] == "inherited" and "granted on schema main.chats" in r["cause"] for r in check["regressions"])

    cli.json("revoke", incident, "--undo", "--yes", env=env)
    assert {k: {p: list(v) for p, v in g.items()} for k, g in server.grants.items()} == before

    kinds = [a["body"]["kind"] for a in receiver.accepted.values()]
    assert "declared" in kinds and "regression" in kinds
    regression = next(a["body"] for a in receiver.accepted.values() if a["body"]["kind"] == "regression")
    assert "granted on schema main.chats" in regression["event"]["summary"]

    db = Path(cli_env["SEVTOOL_DB"].removeprefix("sqlite:///"))
    for file in (db, db.with_name(db.name + "-wal")):
        assert not file.exists() or TOKEN.encode() not in file.read_bytes(), "the bearer token never reaches the store"


def _ledger(cli_env) -> dict[str, tuple[str, str]]:
    import sqlite3

    with sqlite3.connect(cli_env["SEVTOOL_DB"].removeprefix("sqlite:///")) as conn:
        return {
            fqn: (status, message)
            for fqn, status, message in conn.execute("SELECT object_fqn, status, message FROM action")
        }


def test_a_schema_revoke_that_takes_an_out_of_scope_table_is_held_until_accepted(cli, lake, cli_env):
    server, _ = lake
    env = {"LAKE_TOKEN": TOKEN}
    incident = cli.json("declare", "--sev", "2", "--title", "DSS 3+ chats readable by all employees", env=env)["id"]
    # Tables named k* or p*: channel_index is out of scope, but the schema-wide SELECT covers it too.
    cli.json("scan", incident, "--target", "lake", "--principal", P, "--table", "[kp]*", env=env)
    plan = cli.json("revoke", incident, "--plan", env=env)
    schema_action = next(a for a in plan["actions"] if a["object_kind"] == "schema")
    assert schema_action["review"] is True and schema_action["alternative"]
    assert schema_action["collateral"] == [
        {"role": P, "objects": ["main.chats.channel_index"], "login_members": 0, "cause": "container_revoke"}
    ]
    assert plan["blast"] == {"actions": 1, "roles": [P], "objects": 1, "login_members": 0}
    assert plan["blast_actions"] == [
        {
            "seq": schema_action["seq"],
            "object": "main.chats",
            "roles": [P],
            "objects": 1,
            "login_members": 0,
            "causes": ["container_revoke"],
        }
    ]
    text = cli("revoke", incident, "--plan", env=env)
    assert text.returncode == 0 and "blast radius" in text.stdout and "1 role, 1 obj, 0 login" in text.stdout
    assert f"1 action(s) also take access beyond the incident's scope: 1 role(s) ({P}) lose 1 object(s)" in text.stderr
    assert "main.chats.channel_index" in text.stderr and "alternative:" in text.stderr

    held = cli("revoke", incident, "--apply", "--yes", "--json", env=env)
    assert held.returncode == 3, held.stderr
    report = json.loads(held.stdout)
    assert report["held"] == 1 and report["held_roles"] == [P] and report["counts"]["applied"] == 1
    assert report["held_actions"][0]["object"] == "main.chats" and report["status"] == "declared"
    assert "--accept-collateral" in report["hint"] and P in report["hint"] and held.stderr == ""
    assert server.can_read(P, "main.chats.private_messages") and server.can_read(P, "main.chats.channel_index")
    assert not server.can_read(P, "main.telemetry.keystrokes")
    status, message = _ledger(cli_env)["main.chats"]
    assert status == "planned" and message.startswith("held:") and "--accept-collateral" in message
    event = [e for e in cli.json("timeline", incident, env=env) if e["kind"] == "apply"][-1]
    assert event["data"]["held"]["held"] == 1 and event["data"]["held"]["roles"] == [P]
    assert "1 action(s) held" in event["summary"] and "--accept-collateral" in event["summary"]

    again = cli("revoke", incident, "--apply", "--yes", "--json", env=env)  # still held: --yes alone never accepts
    assert again.returncode == 3 and json.loads(again.stdout)["counts"]["applied"] == 0

    accepted = cli("revoke", incident, "--apply", "--yes", "--accept-collateral", "--json", env=env)
    assert accepted.returncode == 0, accepted.stderr
    body = json.loads(accepted.stdout)
    assert body["held"] == 0 and body["counts"]["applied"] == 1 and body["status"] == "contained"
    assert not server.can_read(P, "main.chats.private_messages") and not server.can_read(P, "main.chats.channel_index")
    assert _ledger(cli_env)["main.chats"][0] == "applied"


def test_without_yes_the_collateral_is_listed_and_asked_for_separately(cli, lake):
    server, _ = lake
    env = {"LAKE_TOKEN": TOKEN}
    incident = cli.json("declare", "--sev", "2", "--title", "t", env=env)["id"]
    cli.json("scan", incident, "--target", "lake", "--principal", P, "--table", "[kp]*", env=env)
    declined = cli("revoke", incident, "--apply", input="y\nn\n", env=env)
    assert declined.returncode == 3, declined.stderr
    assert "takes 1 object(s) from account users" in declined.stderr and "Run those too?" in declined.stderr
    assert "1 action(s) held back" in declined.stderr and "--accept-collateral" in declined.stderr
    assert server.can_read(P, "main.chats.channel_index") and not server.can_read(P, "main.telemetry.keystrokes")
    accepted = cli("revoke", incident, "--apply", input="y\ny\n", env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert not server.can_read(P, "main.chats.channel_index")


def test_a_plan_larger_than_the_sev_limit_is_refused_unless_raised(cli, lake, config_path):
    env = {"LAKE_TOKEN": TOKEN}
    config_path.write_text(config_path.read_text() + "\n[sev.2]\nmax_actions = 1\n")
    incident = cli.json("declare", "--sev", "2", "--title", "t", env=env)["id"]
    cli.json("scan", incident, "--target", "lake", "--principal", P, env=env)
    refused = cli("revoke", incident, "--plan", "--json", env=env)
    assert refused.returncode == 2, refused.stderr
    error = json.loads(refused.stderr)
    assert "2 actions, more than the limit of 1" in error["message"] and "--max-actions 2" in error["hint"]
    assert cli("revoke", incident, "--apply", "--yes", "--json", env=env).returncode == 2
    assert cli.json("timeline", incident, env=env)[-1]["kind"] == "scan"  # nothing journaled
    plan = cli.json("revoke", incident, "--plan", "--max-actions", "2", env=env)
    assert len(plan["actions"]) == 2
    refused = cli("revoke", incident, "--apply", "--yes", env=env)  # the journaled plan is still too large to apply
    assert refused.returncode == 2 and "max_actions" in refused.stderr and "--max-actions" in refused.stderr
    assert cli.json("revoke", incident, "--apply", "--yes", "--max-actions", "2", env=env)["counts"]["applied"] == 2


def test_a_probe_is_refused_before_the_check_where_the_kind_cannot_probe_live(cli, lake):
    env = {"LAKE_TOKEN": TOKEN}
    incident = cli.json("declare", "--sev", "2", "--title", "t", env=env)["id"]
    cli.json("scan", incident, "--target", "lake", "--principal", P, env=env)
    refused = cli("verify", incident, "--probe-role", "canary", env=env)
    assert (
        refused.returncode == 2
        and "lake cannot be probed live" in refused.stderr
        and "without --probe-role" in refused.stderr
    )
    assert cli.json("timeline", incident, env=env)[-1]["kind"] == "scan"  # no check recorded
