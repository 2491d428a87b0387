"""Webhook notifications through an outbox in the store.

Why an outbox: a notification must exist if and only if its event does, and a slow or dead receiver
must never block or fail the response work. So the store's event hook writes one outbox row per
matching webhook *inside* the transaction that appends the event; delivery happens after commit (a
background attempt when the command's transaction commits, and `sevtool notify flush`), with failed
attempts retried on an exponential backoff. Delivery is at-least-once; every payload carries an
idempotency key (also in the `Idempotency-Key` header) so a receiver that was down sees each
notification exactly once.

Which events notify: declared, sev_changed, regression, status_changed and resolved (a status change
to `resolved`), filtered per webhook by `events` and by the incident's current SEV (`sev`).

What a payload holds: the incident's id, title, SEV, status and commander, and the event's kind,
time, actor and one-line summary. Never event data beyond from/to, never a target DSN, URL or token,
never table contents. Webhook URLs are secrets too (Slack's are): the outbox stores the webhook's
*name* and the URL is looked up in the config at delivery time; `url = "env:VAR"` reads it from the
environment so it need not sit in the config file either.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import event as sa_event

from sevtool.core.timeline import Event
from sevtool.core.timeparse import as_utc, utcnow
from sevtool.errors import ConfigError, SevtoolError
from sevtool.settings import WebhookConfig
from sevtool.store import outbox
from sevtool.store.models import OutboxRow

if TYPE_CHECKING:
    import httpx

    from sevtool.services import Workbench

BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 15  # ~7 hours of retries with the cap, then dead (revive with `notify flush --retry-dead`)
LEASE = timedelta(minutes=2)  # a claimed row becomes due again if its sender died mid-post
EXIT_WAIT_SECONDS = 3.0  # how long a finishing command waits for its background delivery
BACKGROUND_TIMEOUT = 2.0  # per post in that background attempt; `notify flush` uses the full timeout
KEY_HEADER = "Idempotency-Key"


def notification_kind(event: Event) -> str | None:
    if event.kind == "status_changed":
        return "resolved" if event.data.get("to") == "resolved" else "status_changed"
    return event.kind if event.kind in ("declared", "sev_changed", "regression") else None


def subscribed(hook: WebhookConfig, kind: str, sev: int) -> bool:
    kinds = set(hook.events)
    return sev in hook.sev and (kind in kinds or (kind == "resolved" and "status_changed" in kinds))


def idempotency_key(event_hash: str, webhook: str) -> str:
    """Stable across retries and processes: the event's chain hash and the webhook's name."""
    return hashlib.sha256(f"{event_hash}:{webhook}".encode()).hexdigest()[:32]


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_payload(fmt: str, kind: str, key: str, event: Event, incident: dict) -> dict:
    """The generic JSON document, or a Slack-compatible `{"text", "blocks"}` message."""
    ref = f"INC-{incident['id']}"
    change = {
        k: event.data[k]
        for k in ("from", "to")
        if k in event.data and kind in ("sev_changed", "status_changed", "resolved")
    }
    if fmt == "json":
        return {
            "idempotency_key": key,
            "type": f"sevtool.incident.{kind}",
            "kind": kind,
            "incident": {"ref": ref, **incident},
            "event": {
                "seq": event.seq,
                "at": event.at.isoformat(),
                "actor": event.actor,
                "summary": event.summary,
                **({"change": change} if change else {}),
            },
        }
    headline = f"[SEV {incident['sev']}] {ref} {kind.replace('_', ' ')}: {incident['title']}"
    fields = [
        ("SEV", str(incident["sev"])),
        ("Status", incident["status"]),
        ("Commander", incident.get("commander") or "unassigned"),
        ("When", event.at.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    return {
        "text": headline,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _mrkdwn(event.summary)[:3000]},
                "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{_mrkdwn(value)}"} for name, value in fields],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"sevtool · {ref} · event {event.seq} · by {_mrkdwn(event.actor)} · key {key}",
                    }
                ],
            },
        ],
    }


@dataclass
class FlushReport:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    claimed_elsewhere: int = 0
    errors: list[str] = field(default_factory=list)


class NotifyService:
    def __init__(self, wb: Workbench, *, transport: httpx.BaseTransport | None = None, timeout: float = 5.0):
        self.wb = wb
        self.transport = transport
        self.timeout = timeout
        self.deliver_after_commit = True  # tests that drive delivery themselves turn this off
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._exit_hook = False

    @property
    def webhooks(self) -> dict[str, WebhookConfig]:
        return self.wb.settings.team.webhooks

    # --- writing: called by the store inside the event's transaction -----------------------------

    def on_event(self, tx, event: Event) -> None:
        kind = notification_kind(event)
        if kind is None or event.incident_id is None or not self.webhooks:
            return
        row = tx.incident_row(event.incident_id)
        incident = {"id": row.id, "title": row.title, "sev": row.sev, "status": row.status, "commander": row.commander}
        added = False
        for name, hook in sorted(self.webhooks.items()):
            if not subscribed(hook, kind, row.sev):
                continue
            key = idempotency_key(event.hash, name)
            tx.session.add(
                OutboxRow(
                    incident_id=event.incident_id,
                    event_seq=event.seq,
                    endpoint=name,
                    format=hook.format,
                    payload=build_payload(hook.format, kind, key, event, incident),
                    status=outbox.PENDING,
                    attempts=0,
                    next_attempt_at=utcnow(),
                )
            )
            added = True
        if (
            added
            and self.deliver_after_commit
            and not sa_event.contains(tx.session, "after_commit", self._after_commit)
        ):
            sa_event.listen(tx.session, "after_commit", self._after_commit, once=True)

    def _after_commit(self, session) -> None:
        self.flush_in_background()

    # --- delivering ------------------------------------------------------------------------------

    def flush_in_background(self) -> None:
        """Try to deliver what is due without holding up the caller; a finishing process waits a little."""
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker = threading.Thread(target=self._quiet_flush, name="sevtool-notify", daemon=True)
            self._worker.start()
            if not self._exit_hook:
                atexit.register(self.wait_for_background, EXIT_WAIT_SECONDS)
                self._exit_hook = True

    def _quiet_flush(self) -> None:
        # On failure the rows stay pending; `sevtool notify status` shows them, the next flush retries.
        with contextlib.suppress(SevtoolError):
            self.flush(timeout=BACKGROUND_TIMEOUT)

    def wait_for_background(self, seconds: float) -> None:
        worker = self._worker
        if worker is not None:
            worker.join(seconds)

    def flush(
        self,
        *,
        now: datetime | None = None,
        limit: int = 200,
        ignore_backoff: bool = False,
        timeout: float | None = None,
    ) -> FlushReport:
        """Attempt every due row once (every pending row with `ignore_backoff`: a responder asked for it now).
        `now` lets tests step through the backoff without sleeping."""
        now = now or utcnow()
        report = FlushReport()
        rows = outbox.due(self.wb.store, now, limit, ignore_backoff=ignore_backoff)
        if not rows:
            return report
        timeout = timeout or self.timeout
        import httpx  # here: every command that writes an event loads this module, few of them post anything

        with httpx.Client(timeout=timeout, transport=self.transport, follow_redirects=False) as client:
            for row, event_hash in rows:
                if not outbox.claim(self.wb.store, row, now, LEASE):
                    report.claimed_elsewhere += 1
                    continue
                self._deliver(
                    client, row, idempotency_key(event_hash, row.endpoint), row.attempts + 1, now, timeout, report
                )
        return report

    def _deliver(
        self,
        client: httpx.Client,
        row: OutboxRow,
        key: str,
        attempt: int,
        now: datetime,
        timeout: float,
        report: FlushReport,
    ) -> None:
        hook = self.webhooks.get(row.endpoint)
        if hook is None:
            outbox.failed(self.wb.store, row.id, f"webhook {row.endpoint!r} is no longer in the config", None)
            report.dead += 1
            return
        import httpx

        retry_after: float | None = None
        try:
            url = resolve_url(row.endpoint, hook.url)
            response = client.post(url, json=row.payload, headers={KEY_HEADER: key, "User-Agent": "sevtool"})
        except ConfigError as exc:
            error, permanent = exc.message, True
        except httpx.TimeoutException:
            error, permanent = f"no answer within {timeout:g}s", False
        except httpx.TransportError as exc:
            error, permanent = f"could not connect ({type(exc).__name__})", False
        else:
            if response.is_success:
                outbox.delivered(self.wb.store, row.id, utcnow())
                report.delivered += 1
                return
            error = f"HTTP {response.status_code}"
            # 4xx other than 408/429 means the receiver will never take this payload: retrying cannot help.
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
            header = response.headers.get("Retry-After", "")
            retry_after = float(header) if header.isdigit() else None
        if permanent or attempt >= MAX_ATTEMPTS:
            outbox.failed(self.wb.store, row.id, f"{error} (attempt {attempt}, giving up)", None)
            report.dead += 1
        else:
            wait = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
            if retry_after is not None:
                wait = max(wait, timedelta(seconds=retry_after))
            outbox.failed(self.wb.store, row.id, f"{error} (attempt {attempt})", now + wait)
            report.retrying += 1
        report.errors.append(f"{row.endpoint}: event {row.event_seq}: {error}")

    # --- reporting -------------------------------------------------------------------------------

    def status(self) -> dict:
        stats = outbox.stats(self.wb.store)
        recent = [
            {
                "id": r.id,
                "incident": r.incident_id,
                "event": r.event_seq,
                "webhook": r.endpoint,
                "format": r.format,
                "status": r.status,
                "attempts": r.attempts,
                "next_attempt_at": as_utc(r.next_attempt_at),
                "last_error": r.last_error,
                "delivered_at": as_utc(r.delivered_at),
            }
            for r in outbox.rows(self.wb.store, limit=20)
        ]
        return {
            "webhooks": sorted(self.webhooks),
            "counts": stats.counts,
            "next_attempt_at": stats.next_attempt_at,
            "recent": recent,
        }

    def retry_dead(self) -> int:
        return outbox.revive_dead(self.wb.store, utcnow())


def resolve_url(name: str, url: str) -> str:
    if url.startswith("env:"):
        value = os.environ.get(url[4:])
        if not value:
            raise ConfigError(f"webhook {name!r}: environment variable {url[4:]} is not set")
        return value
    return url
