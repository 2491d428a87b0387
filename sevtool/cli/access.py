"""access grant | list | end | expire: just-in-time read access after lock-down, time-boxed and recorded."""

from typing import Annotated

import typer

from sevtool.cli.main import IdArg, JsonOpt, app, command, parse_id, workbench
from sevtool.cli.output import emit_json, emit_table, say
from sevtool.errors import ExitCode

access_app = typer.Typer(
    help="Just-in-time access after lock-down: a role may read named objects for a while, with a reason and (as the "
    "SEV requires) an approver. verify reports such reads as authorized; expiry is enforced by `access expire`, "
    "`watch` and `guard`. Limits per SEV: [sev.N] access_max = '8h', access_approver = true (defaults: SEV 0-2 at "
    "most 8h with an approver; SEV 3-5 at most 24h).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(access_app, name="access")


def _when(value) -> str:
    from sevtool.core.timeparse import format_utc

    return format_utc(value) if value else ""


def _say_ended(ended) -> None:
    exc = ended.exception
    say(f"exception {exc.number} ({exc.role} on {', '.join(exc.objects)}): {exc.ending}, grants revoked and read back")
    if ended.still_readable:
        say(f"  {exc.role} STILL READS {', '.join(ended.still_readable)} by other means: verify reports it")


@command(
    access_app,
    name="grant",
    help="Let ROLE read the objects (SELECT, and the schema usage it needs) for DURATION, read it back and record "
    "the exception. Refused with exit 2 over the SEV's limit, without a required approver, when the role already "
    "reads an object, or when the schema or catalog usage it needs would open other tables to it.",
)
def access_grant(
    incident_id: IdArg,
    to: Annotated[str, typer.Option("--to", metavar="ROLE", help="The role (person or team) that needs the data.")],
    objects: Annotated[
        list[str],
        typer.Option("--object", metavar="NAME", help="An object to read, named as `scan` lists it; repeat for more."),
    ],
    duration: Annotated[str, typer.Option("--for", metavar="DURATION", help="How long, e.g. 2h (SEV limit applies).")],
    why: Annotated[str, typer.Option("--why", help="Why the access is needed: kept in the record and postmortem.")],
    approver: Annotated[
        str | None, typer.Option("--approver", metavar="WHO", help="Who approved it (required at SEV 0-2 by default).")
    ] = None,
    json_out: JsonOpt = False,
):
    from sevtool.core.timeparse import format_duration, parse_duration, utcnow
    from sevtool.services.access import exception_dict

    exc = workbench().access.grant(parse_id(incident_id), to, objects, parse_duration(duration), why, approver)
    if json_out:
        emit_json(exception_dict(exc, utcnow()))
        return ExitCode.OK
    say(
        f"exception {exc.number}: {exc.role} may read {', '.join(exc.objects)} until {_when(exc.until)} "
        f"({format_duration(exc.until - exc.granted_at)}); granted and read back"
    )
    for g in exc.grants:
        say(f"  granted {g.privilege} on {g.securable.kind} {g.securable.name}")
    return ExitCode.OK


@command(access_app, name="list", help="The incident's exceptions: who, what, why, approver, until, how they ended.")
def access_list(incident_id: IdArg, json_out: JsonOpt = False):
    from sevtool.core.timeparse import format_duration, utcnow
    from sevtool.services.access import exception_dict

    now = utcnow()
    exceptions = workbench().access.list(parse_id(incident_id))
    if json_out:
        emit_json({"exceptions": [exception_dict(e, now) for e in exceptions]})
        return ExitCode.OK
    emit_table(
        [
            (
                e.number,
                e.role,
                ", ".join(e.objects),
                e.why,
                e.approver or "",
                _when(e.granted_at),
                _when(e.until),
                e.state(now) + (f" ({format_duration(e.remaining(now))} left)" if e.active(now) else ""),
            )
            for e in exceptions
        ],
        ["#", "role", "objects", "why", "approver", "granted", "until", "state"],
    )
    return ExitCode.OK


@command(access_app, name="end", help="End exception N now: revoke its grants and read them back.")
def access_end(
    incident_id: IdArg,
    number: Annotated[int, typer.Argument(metavar="N", help="The exception's number (`sevtool access list`).")],
    json_out: JsonOpt = False,
):
    ended = workbench().access.end(parse_id(incident_id), number)
    if json_out:
        emit_json(ended.as_dict())
    else:
        _say_ended(ended)
    return ExitCode.EXPOSED if ended.still_readable else ExitCode.OK


@command(
    access_app,
    name="expire",
    help="Revoke every exception past its end (of one incident, or of all): for cron. Restart-safe; each revoke "
    "is read back. Exit 0 done (or nothing due), 3 when a role still reads an object by other means, 1 when a "
    "revoke failed (the exception stays due).",
)
def access_expire(
    incident_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="Only this incident.")] = None,
    json_out: JsonOpt = False,
):
    ended = workbench().access.expire(parse_id(incident_id) if incident_id else None)
    if json_out:
        emit_json(
            {"ended": [e.as_dict() for e in ended if e.recorded], "failed": [e.as_dict() for e in ended if e.error]}
        )
    elif not ended:
        say("no exception is past its end")
    for e in ended:
        if json_out:
            continue
        if e.error:
            say(f"exception {e.exception.number} of INC-{e.exception.incident_id}: NOT REVOKED: {e.error}")
        elif e.recorded:
            _say_ended(e)
    if any(e.error for e in ended):
        return ExitCode.ERROR
    return ExitCode.EXPOSED if any(e.still_readable for e in ended) else ExitCode.OK
