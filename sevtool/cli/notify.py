"""notify status | flush: the webhook outbox (deliveries are retried with backoff, never block a command)."""

from typing import Annotated

import typer

from sevtool.cli.main import JsonOpt, app, command, workbench
from sevtool.cli.output import emit_json, emit_table, say

notify_app = typer.Typer(
    help="Webhook notifications (declare, SEV change, regression, status change, resolve). Configure them per SEV "
    'level in the config\'s [webhooks.NAME] tables: url (or url = "env:VAR"), format = json|slack, sev = [0, 1, 2], events = [...].',
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(notify_app, name="notify")


@command(
    notify_app,
    name="status",
    help="What the outbox holds: pending, delivered and dead notifications, most recent first.",
)
def notify_status(json_out: JsonOpt = False):
    from sevtool.core.timeparse import format_utc

    status = workbench().notify.status()
    if json_out:
        emit_json(status)
        return
    emit_table(
        [
            (
                r["id"],
                f"INC-{r['incident']}",
                r["event"],
                r["webhook"],
                r["status"],
                r["attempts"],
                format_utc(r["next_attempt_at"]) if r["next_attempt_at"] else "",
                r["last_error"] or "",
            )
            for r in status["recent"]
        ],
        ["id", "incident", "event", "webhook", "status", "attempts", "next attempt", "last error"],
    )
    counts = status["counts"]
    say(
        f"{counts['pending'] + counts['sending']} pending, {counts['delivered']} delivered, {counts['dead']} dead; webhooks: {', '.join(status['webhooks']) or 'none configured'}"
    )


@command(
    notify_app,
    name="flush",
    help="Deliver every pending notification now, without waiting for its backoff. Exit 1 if any delivery failed (it stays queued).",
)
def notify_flush(
    retry_dead: Annotated[
        bool,
        typer.Option(
            "--retry-dead", help="Queue dead notifications again first (after fixing the receiver or the config)."
        ),
    ] = False,
    json_out: JsonOpt = False,
):
    svc = workbench().notify
    revived = svc.retry_dead() if retry_dead else 0
    report = svc.flush(ignore_backoff=True)
    if json_out:
        emit_json({"revived": revived, **report.__dict__})
    else:
        say(
            f"delivered {report.delivered}, retrying later {report.retrying}, dead {report.dead}"
            + (f", revived {revived}" if revived else "")
            + (f", {report.claimed_elsewhere} taken by another sender" if report.claimed_elsewhere else "")
        )
        for error in report.errors:
            say(f"  {error}")
    return 1 if report.errors else 0
