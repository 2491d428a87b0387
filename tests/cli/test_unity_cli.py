"""scan -> plan -> apply -> verify -> undo on a Unity Catalog target, through the same commands as PostgreSQL.

The catalog is the loopback server that implements the REST contract; the target is named in the team
config with its token in an environment variable, and a webhook receiver listens for notifications.
"""

from __future__ import annotations

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
    config_path.write_text(f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\ntoken_env = "LAKE_TOKEN"\n\n'
                           f'[webhooks.ops]\nurl = "{receiver.url()}"\n')
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
        client.patch(f"{server.url}/permissions/schema/main.chats",
                     json={"changes": [{"principal": P, "add": ["SELECT"], "remove": []}]}).raise_for_status()
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
