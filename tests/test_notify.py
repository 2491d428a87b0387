"""Webhook notifications through the outbox, against a real local HTTP receiver."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from fakes.webhook_receiver import WebhookReceiver, free_port
from sqlmodel import select

from sevtool.core.incident import Status
from sevtool.core.timeparse import utcnow
from sevtool.services.notify import LEASE
from sevtool.store.models import EventRow, OutboxRow


def write_config(path, hooks: dict[str, dict]) -> None:
    lines = []
    for name, hook in hooks.items():
        lines.append(f"[webhooks.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in hook.items()]
    path.write_text("\n".join(lines) + "\n")


def outbox_rows(wb) -> list[OutboxRow]:
    with wb.store.read() as s:
        return list(s.exec(select(OutboxRow).order_by(OutboxRow.id)).all())


@pytest.fixture
def quiet(wb):
    """Deliveries driven by the test, not by the background attempt after each commit."""
    wb.notify.deliver_after_commit = False
    return wb


def run_incident(wb) -> int:
    """declare, SEV change, a regression, status changes and a resolve: five kinds of notification."""
    inc = wb.incidents.declare("telemetry readable by all employees", 2, commander="ana")
    wb.incidents.change_sev(inc.id, 1, "45k tables, DSS 4 included")
    wb.incidents.set_status(inc.id, Status.CONTAINED)
    with wb.store.write() as tx:
        tx.append(
            inc.id,
            "regression",
            "REGRESSION at check 2: main.chats.private_messages readable by account users again",
            {"check": 2, "count": 1},
        )
    wb.incidents.note(inc.id, "notes do not notify")
    wb.incidents.set_status(inc.id, Status.VERIFYING)
    wb.incidents.set_status(inc.id, Status.RESOLVED, force=True, why="drill")
    return inc.id


def test_receiver_down_for_three_attempts_gets_every_notification_exactly_once(quiet, config_path):
    wb = quiet
    port = free_port()
    write_config(
        config_path,
        {
            "ops": {"url": f"http://127.0.0.1:{port}/hook"},
            "chat": {"url": f"http://127.0.0.1:{port}/slack", "format": "slack"},
        },
    )
    run_incident(wb)
    rows = outbox_rows(wb)
    kinds = [r.payload["kind"] for r in rows if r.format == "json"]
    assert kinds == ["declared", "sev_changed", "status_changed", "regression", "status_changed", "resolved"]
    assert len(rows) == 12

    t0 = utcnow()
    # Attempt 1: nobody listens (connection refused). The responders' work above was never held up.
    first = wb.notify.flush(now=t0)
    assert (first.delivered, first.retrying) == (0, 12) and "could not connect" in first.errors[0]
    # Backoff is respected: nothing is due 5 seconds later.
    assert wb.notify.flush(now=t0 + timedelta(seconds=5)).retrying == 0

    receiver = WebhookReceiver(port, fail_first=2).start()  # attempts 2 and 3 get HTTP 500
    try:
        now = t0
        for _ in range(6):
            now += timedelta(hours=2)
            wb.notify.flush(now=now)
        keys = set(receiver.accepted)
        assert len(keys) == 12, "every notification arrived"
        assert receiver.duplicates == []
        assert all(receiver.posts_for(k) == 3 for k in keys), "two 500s, then exactly one successful post each"
        assert {r.status for r in outbox_rows(wb)} == {"delivered"}
        assert all(r.attempts == 4 for r in outbox_rows(wb))
        posts = len(receiver.posts)
        wb.notify.flush(now=now + timedelta(days=1), ignore_backoff=True)
        assert len(receiver.posts) == posts, "nothing is sent again once delivered"
        slack = [a["body"] for a in receiver.accepted.values() if a["path"] == "/slack"]
        assert len(slack) == 6 and all(set(b) == {"text", "blocks"} for b in slack)
        generic = sorted(
            (a["body"] for a in receiver.accepted.values() if a["path"] == "/hook"), key=lambda b: b["event"]["seq"]
        )
        assert [b["kind"] for b in generic] == kinds
        assert generic[1]["event"]["change"] == {"from": 2, "to": 1}
        assert all(b["idempotency_key"] in keys for b in generic)
    finally:
        receiver.stop()


def test_a_delivery_whose_answer_was_lost_is_resent_and_deduplicated_by_key(quiet, config_path):
    wb = quiet
    receiver = WebhookReceiver(slow_first=1, slow_seconds=1.5).start()
    try:
        write_config(config_path, {"ops": {"url": receiver.url()}})
        wb.notify.timeout = 0.3
        wb.incidents.declare("lost answer", 2)
        assert wb.notify.flush().retrying == 1  # the receiver took it but answered too late
        wb.notify.timeout = 5
        assert wb.notify.flush(now=utcnow() + timedelta(minutes=1)).delivered == 1
        (key,) = receiver.accepted
        assert receiver.posts_for(key) == 2 and receiver.duplicates == [key]
    finally:
        receiver.stop()


def test_webhooks_are_filtered_by_sev_and_event(quiet, config_path):
    wb = quiet
    write_config(
        config_path,
        {
            "sev01": {"url": "http://127.0.0.1:9/a", "sev": [0, 1]},
            "resolves": {"url": "http://127.0.0.1:9/b", "events": ["resolved"]},
        },
    )
    inc = wb.incidents.declare("sev filter", 2)
    assert outbox_rows(wb) == []
    wb.incidents.change_sev(inc.id, 1, "worse than thought")
    wb.incidents.set_status(inc.id, Status.CONTAINED)
    wb.incidents.set_status(inc.id, Status.VERIFYING)
    wb.incidents.set_status(inc.id, Status.RESOLVED, force=True, why="drill")
    assert [(r.endpoint, r.payload["kind"]) for r in outbox_rows(wb)] == [
        ("sev01", "sev_changed"),
        ("sev01", "status_changed"),
        ("sev01", "status_changed"),
        ("resolves", "resolved"),
        ("sev01", "resolved"),
    ]


def test_outbox_rows_exist_only_with_their_event(quiet, config_path):
    wb = quiet
    write_config(config_path, {"ops": {"url": "http://127.0.0.1:9/hook"}})
    inc = wb.incidents.declare("atomic", 2)
    with pytest.raises(RuntimeError), wb.store.write() as tx:
        tx.append(inc.id, "sev_changed", "SEV 2 -> SEV 1", {"from": 2, "to": 1})
        raise RuntimeError("the command failed after appending")
    assert [r.payload["kind"] for r in outbox_rows(wb)] == ["declared"]
    with wb.store.read() as s:
        assert [e.kind for e in s.exec(select(EventRow)).all()] == ["declared"]


def test_no_secret_reaches_the_store_or_a_payload(quiet, config_path, monkeypatch):
    wb = quiet
    receiver = WebhookReceiver().start()
    try:
        monkeypatch.setenv("SLACK_HOOK_URL", receiver.url("/services/T000/B000/XSECRETX"))
        write_config(
            config_path,
            {
                "chat": {"url": "env:SLACK_HOOK_URL", "format": "slack"},
                "ops": {"url": receiver.url("/hook?token=QSECRETQ")},
            },
        )
        wb.incidents.declare("secrets stay out", 2)
        assert wb.notify.flush().delivered == 2
        with wb.store.read() as s:
            stored = json.dumps([r.model_dump(mode="json") for r in s.exec(select(OutboxRow)).all()])
            stored += json.dumps([e.model_dump(mode="json") for e in s.exec(select(EventRow)).all()])
        sent = json.dumps([p["body"] for p in receiver.posts])
        for secret in ("XSECRETX", "QSECRETQ"):
            assert secret not in stored and secret not in sent
        assert {p["path"] for p in receiver.posts} == {"/services/T000/B000/XSECRETX", "/hook?token=QSECRETQ"}
    finally:
        receiver.stop()


def test_a_payload_the_receiver_refuses_is_dead_and_can_be_revived(quiet, config_path):
    wb = quiet
    receiver = WebhookReceiver(fail_first=1, fail_status=400).start()
    try:
        write_config(config_path, {"ops": {"url": receiver.url()}})
        wb.incidents.declare("refused", 2)
        assert wb.notify.flush().dead == 1
        assert wb.notify.status()["counts"]["dead"] == 1
        assert wb.notify.retry_dead() == 1
        assert wb.notify.flush().delivered == 1
    finally:
        receiver.stop()


def test_a_sender_that_died_mid_post_leaves_a_row_that_is_due_again_after_the_lease(quiet, config_path):
    from sevtool.store import outbox

    wb = quiet
    write_config(config_path, {"ops": {"url": "http://127.0.0.1:9/hook"}})
    wb.incidents.declare("lease", 2)
    now = utcnow()
    ((row, _hash),) = outbox.due(wb.store, now, 10)
    assert outbox.claim(wb.store, row, now, LEASE)
    assert not outbox.claim(wb.store, row, now, LEASE), "a second sender cannot take a claimed row"
    assert outbox.due(wb.store, now, 10, ignore_backoff=True) == []
    assert len(outbox.due(wb.store, now + LEASE, 10)) == 1


def test_cli_delivers_after_the_command_and_flush_catches_up(cli, config_path):
    port = free_port()
    write_config(config_path, {"ops": {"url": f"http://127.0.0.1:{port}/hook"}})
    started = time.monotonic()
    assert cli.json("declare", "--sev", "2", "--title", "receiver down")["id"] == 1
    elapsed_down = time.monotonic() - started
    status = cli.json("notify", "status")
    assert status["counts"]["pending"] == 1 and "could not connect" in status["recent"][0]["last_error"]
    receiver = WebhookReceiver(port).start()
    try:
        assert cli.json("notify", "flush")["delivered"] == 1
        cli.json("declare", "--sev", "1", "--title", "receiver up")
        assert sorted(a["body"]["incident"]["title"] for a in receiver.accepted.values()) == [
            "receiver down",
            "receiver up",
        ]
        assert cli.json("notify", "status")["counts"] == {"pending": 0, "sending": 0, "delivered": 2, "dead": 0}
    finally:
        receiver.stop()
    print(f"declare with the receiver down took {elapsed_down:.2f}s")
