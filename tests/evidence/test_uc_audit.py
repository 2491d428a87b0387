"""`sevtool evidence --uc-audit` on a Unity Catalog incident: the loopback catalog, a generated system.access.audit export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fakes.uc_audit_export import heartbeats, row, write
from fakes.uc_server import FakeUnityCatalog, seed_drill

from sevtool.evidence.uc_audit import UcAuditReader

UTC = UTC
TOKEN = "uc-token-Ev24"
OTHER_METASTORE = "ms-99999999-0000"


@pytest.fixture
def lake(config_path):
    server = FakeUnityCatalog(page_size=2, token=TOKEN).start()
    config_path.write_text(f'[targets.lake]\nkind = "unity-catalog"\nurl = "{server.url}"\ntoken_env = "LAKE_TOKEN"\n')
    yield server
    server.stop()
    assert server.violations == []


ENV = {"LAKE_TOKEN": TOKEN}


def declare_scan_apply(cli, server, principal: str, *extra_principals: str) -> tuple[str, datetime]:
    seed_drill(server, principal)
    t0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    ident = str(
        cli.json("declare", "--sev", "2", "--title", "lake readable", "--exposure-started", t0.isoformat(), env=ENV)[
            "id"
        ]
    )
    args = ["--principal", principal] + [a for p in extra_principals for a in ("--principal", p)]
    scan = cli.json("scan", ident, "--target", "lake", *args, env=ENV)
    assert {f["schema_name"] + "." + f["object_name"] for f in scan["findings"]} == {
        "main.telemetry.keystrokes",
        "main.chats.private_messages",
        "main.chats.channel_index",
    }
    assert cli.json("revoke", ident, "--apply", "--yes", env=ENV)["counts"]["failed"] == 0
    return ident, t0


def by_object(report: dict) -> dict:
    return {o["object"]: o for o in report["objects"]}


def test_reads_during_the_window_by_members_from_a_gz_export(cli, lake, tmp_path):
    ident, t0 = declare_scan_apply(cli, lake, "account users")
    after = datetime.now(UTC) + timedelta(seconds=30)
    keystrokes_id = lake.tables["main.telemetry.keystrokes"]["table_id"]
    mid = t0 + timedelta(minutes=61)
    rows = [
        *heartbeats(t0 - timedelta(minutes=45), after),
        row(t0 - timedelta(minutes=30), "carol@corp.com", table="main.telemetry.keystrokes"),  # before the window
        row(t0 + timedelta(minutes=30), "alice@corp.com", table="main.chats.private_messages", event="dup-1"),
        row(
            t0 + timedelta(minutes=30), "alice@corp.com", table="main.chats.private_messages", event="dup-1"
        ),  # exported twice
        row(t0 + timedelta(minutes=40), "alice@corp.com", "generateTemporaryTableCredential", table_id=keystrokes_id),
        row(mid, "bob@corp.com", table="MAIN.TELEMETRY.KEYSTROKES", event="bob-1"),
        row(mid, "bob@corp.com", "getTableSummaries", table="main.telemetry.keystrokes"),  # not a table read
        row(t0 + timedelta(minutes=70), "mallory@corp.com", table="main.telemetry.keystrokes", status=403),  # refused
        row(t0 + timedelta(minutes=80), "eve@corp.com", table="main.telemetry.keystrokes", metastore=OTHER_METASTORE),
        row(after, "dave@corp.com", table="main.telemetry.keystrokes"),
    ]  # after the apply
    rows.sort(key=lambda r: r["event_time"])  # exported ORDER BY event_time
    bob = next(i for i, r in enumerate(rows) if r["event_id"] == "bob-1")
    rows.insert(bob + 1, '{"event_time": "2026-')  # a row truncated in the middle: counted, coverage cut around it
    export = write(tmp_path / "audit.jsonl.gz", rows, gz=True)

    result = cli("evidence", ident, "--uc-audit", str(export), "--json", env=ENV)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    objects = by_object(report)
    keystrokes, messages, index = (
        objects[f"main.{n}"] for n in ("telemetry.keystrokes", "chats.private_messages", "chats.channel_index")
    )
    assert keystrokes["answer"] == "reads" and keystrokes["uncovered"] == []
    assert {r["role"]: r["reads"] for r in keystrokes["members"]} == {"alice@corp.com": 1, "bob@corp.com": 1}
    assert keystrokes["non_members"] == []
    assert messages["answer"] == "reads" and [(r["role"], r["reads"]) for r in messages["members"]] == [
        ("alice@corp.com", 1)
    ]
    assert index["answer"] == "no_reads", index["reason"]
    assert report["member_readers"] == {"alice@corp.com": 2, "bob@corp.com": 1} and report["non_member_readers"] == {}
    logs = report["logs"]
    assert (logs["other_database"], logs["denied"], logs["duplicates"], logs["corrupt"]) == (1, 1, 1, 1)
    assert any("account users" in n for n in report["notes"])
    event = [e for e in cli.json("timeline", ident, env=ENV) if e["kind"] == "evidence"][-1]
    assert event["data"]["member_readers"] == {"alice@corp.com": 2, "bob@corp.com": 1}

    text = cli("evidence", ident, "--uc-audit", str(export), env=ENV)
    assert text.returncode == 0 and "1 refused request(s)" in text.stderr and "1 malformed row(s)" in text.stderr


def test_members_of_an_unlisted_group_are_not_guessed_and_a_half_covered_window_is_unknown(cli, lake, tmp_path):
    # `analysts` is a group the catalog cannot list; bob is in the scope by name, so he is the one known member.
    ident, t0 = declare_scan_apply(cli, lake, "analysts", "bob@corp.com")
    after = datetime.now(UTC) + timedelta(seconds=30)
    late = t0 + timedelta(minutes=90)  # the export starts halfway through the window
    rows = [
        *heartbeats(late, after),
        row(late + timedelta(minutes=5), "alice@corp.com", table="main.telemetry.keystrokes"),
        row(late + timedelta(minutes=6), "bob@corp.com", table="main.telemetry.keystrokes"),
    ]
    report = json.loads(
        cli("evidence", ident, "--uc-audit", str(write(tmp_path / "a.jsonl", rows)), "--json", env=ENV).stdout
    )
    objects = by_object(report)
    keystrokes = objects["main.telemetry.keystrokes"]
    assert keystrokes["answer"] == "reads" and "uncovered time is unknown" in keystrokes["reason"]
    assert [r["role"] for r in keystrokes["members"]] == ["bob@corp.com"]
    assert [r["role"] for r in keystrokes["non_members"]] == ["alice@corp.com"]
    assert keystrokes["uncovered"][0][0] == t0.isoformat()
    for name in ("main.chats.private_messages", "main.chats.channel_index"):
        assert (
            objects[name]["answer"] == "unknown"
            and objects[name]["reason"] == "the logs do not cover all of the window"
        )
    assert any("does not say who is in analysts" in n for n in report["notes"])


def test_log_and_uc_audit_go_with_their_target_kind(cli, lake, tmp_path):
    ident, _ = declare_scan_apply(cli, lake, "account users")
    wrong = cli("evidence", ident, "--log", str(tmp_path), env=ENV)
    assert wrong.returncode != 0 and "--uc-audit" in wrong.stderr


def test_reader_counts_bad_rows_and_never_fails(tmp_path):
    at = datetime(2026, 6, 18, 14, 0, tzinfo=UTC)
    as_pairs = row(at + timedelta(minutes=1), "a@x.com", table="c.s.t")
    as_pairs["request_params"] = [[k, v] for k, v in as_pairs["request_params"].items()]  # map exported as pairs
    rows = [
        row(at, "a@x.com", table="c.s.t"),
        "not json",
        "[1, 2]",
        {"event_time": "yesterday"},
        as_pairs,
        row(at + timedelta(hours=3), "b@x.com", "generateTemporaryTableCredential", table_id="unknown-id"),
        row(at + timedelta(hours=3, minutes=1), "", table="c.s.t"),
    ]
    reader = UcAuditReader(
        [write(tmp_path / "x.jsonl", rows), tmp_path / "missing.jsonl"],
        metastore_id="ms-11111111-2222",
        max_gap=timedelta(hours=1),
    )
    records = list(reader.records())
    assert [(r.user, r.object_name) for r in records] == [("a@x.com", "c.s.t"), ("a@x.com", "c.s.t")]
    stats = reader.sources[0]
    assert (stats.corrupt, stats.unresolved, stats.entries) == (4, 1, 4)
    quiet_from = (at + timedelta(minutes=1)).timestamp()
    assert stats.gaps == [(quiet_from, quiet_from + 3 * 3600 - 60)]
    assert len(stats.holes) == 1 and reader.unreadable == [str(tmp_path / "missing.jsonl")]


def test_an_export_without_any_table_read_answers_unknown_not_no_reads(cli, lake, tmp_path):
    """Covered time alone is not enough: an export filtered to other events (logins) cannot say nobody read a table."""
    ident, t0 = declare_scan_apply(cli, lake, "account users")
    rows = heartbeats(t0 - timedelta(minutes=10), datetime.now(UTC) + timedelta(minutes=10), step=timedelta(minutes=5))
    report = json.loads(
        cli("evidence", ident, "--uc-audit", str(write(tmp_path / "logins.jsonl", rows)), "--json", env=ENV).stdout
    )
    assert {o["answer"] for o in report["objects"]} == {"unknown"}
    assert [(o["uncovered"], o["reason"]) for o in report["objects"]] == [
        (
            [],
            "no sign in the logs that the audit system table logged READ for this object (no table read of any object in it)",
        )
    ] * 3
