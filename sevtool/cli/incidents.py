"""declare, list, show, sev, status, assign, time, note, mark, timeline, audit verify."""

from typing import Annotated

import typer
from typer.core import TyperCommand

from sevtool.cli.main import AtOpt, IdArg, JsonOpt, app, command, parse_id, workbench
from sevtool.cli.output import emit_json, emit_table, emit_text, say


def declare_help() -> str:
    from sevtool.core.severity import DEFAULT_LEVELS, RUBRIC

    sev_lines = "\n".join(f"  SEV {n}: {lvl.meaning}" for n, lvl in DEFAULT_LEVELS.items())
    return f"""Declare an incident.

\b
{RUBRIC}

\b
Default SEV levels (a team can override them in its config):
{sev_lines}
"""


class DeclareCommand(TyperCommand):
    """`declare --help` shows the SEV rubric and levels, read from the SEV policy only then: the policy
    is built with pydantic, which would otherwise slow every command's start-up, `sevtool --help` included."""

    def format_help_text(self, ctx, formatter) -> None:
        self.help = declare_help()
        super().format_help_text(ctx, formatter)


def _incident_json(incident, wb) -> dict:
    data = incident.model_dump(mode="json")
    data["ref"] = incident.ref
    data["policy"] = wb.policy.level(incident.sev).model_dump(mode="json")
    return data


@command(help="Declare an incident.", cls=DeclareCommand)
def declare(
    sev: Annotated[int, typer.Option("--sev", help="0 (most critical) to 5. If unsure, pick the more severe level.")],
    title: Annotated[str, typer.Option("--title", help="What is exposed to whom.")],
    commander: Annotated[str | None, typer.Option("--commander", help="Incident commander.")] = None,
    playbook: Annotated[str | None, typer.Option("--playbook", help="Playbook name, e.g. data-exposure.")] = None,
    at: AtOpt = None,
    exposure_started: Annotated[
        str | None, typer.Option("--exposure-started", help="When exposure began, if known.")
    ] = None,
    detected: Annotated[str | None, typer.Option("--detected", help="When it was detected.")] = None,
    json_out: JsonOpt = False,
):
    wb = workbench()
    svc = wb.incidents
    declared_at = svc.parse_time(at)
    started, detected_at = svc.parse_time(exposure_started), svc.parse_time(detected)
    if playbook:
        wb.playbooks.get(playbook)  # an unknown or malformed playbook is refused before anything is written
    incident = svc.declare(title, sev, commander=commander, playbook=playbook, at=declared_at)
    if started:
        incident = svc.set_time(incident.id, "exposure_started_at", started)
    if detected_at:
        incident = svc.set_time(incident.id, "detected_at", detected_at)
    if json_out:
        emit_json(_incident_json(incident, wb))
    else:
        level = wb.policy.level(incident.sev)
        emit_text(str(incident.id))
        say(f"Declared {incident.ref} {level.label}: {incident.title}")
        say(
            f"Updates every {level.update_every}; page: {', '.join(level.page) or 'nobody'}; re-checks at {', '.join(level.recheck)}"
        )


@command(name="list", help="List incidents, newest first.")
def list_incidents(json_out: JsonOpt = False):
    from sevtool.core.timeparse import utcnow

    wb = workbench()
    incidents = sorted(wb.incidents.all(), key=lambda i: i.id, reverse=True)
    if json_out:
        emit_json([_incident_json(i, wb) for i in incidents])
        return
    now = utcnow()
    emit_table(
        [
            (
                i.ref,
                f"SEV {i.sev}",
                i.status.value,
                _age(now - i.declared_at) if i.declared_at else "",
                i.commander or "",
                i.title,
            )
            for i in incidents
        ],
        ["id", "sev", "status", "age", "commander", "title"],
    )


def _age(delta) -> str:
    from sevtool.core.timeparse import format_duration

    return format_duration(delta).split(" ")[0]


@command(help="Show one incident: SEV history, status, roles, key timestamps, policy.")
def show(incident_id: IdArg, json_out: JsonOpt = False):
    from sevtool.core.timeparse import format_local

    wb = workbench()
    incident = wb.incidents.get(parse_id(incident_id))
    details = wb.incidents.details(incident.id)
    if json_out:
        emit_json({**_incident_json(incident, wb), **details})
        return
    level = wb.policy.level(incident.sev)
    zone = wb.zone
    rows = [
        ("incident", f"{incident.ref}: {incident.title}"),
        ("sev", f"{level.label} (first SEV {incident.first_sev}, highest SEV {incident.highest_sev})"),
        ("status", incident.status.value),
        *[(role, person or "-") for role, person in incident.roles.items()],
        ("playbook", incident.playbook or "-"),
        *[
            (name.removesuffix("_at").replace("_", " "), format_local(getattr(incident, name), zone))
            for name in (
                "exposure_started_at",
                "detected_at",
                "declared_at",
                "contained_at",
                "verified_at",
                "resolved_at",
                "closed_at",
            )
        ],
        ("updates", f"every {level.update_every}; page {', '.join(level.page) or 'nobody'}"),
    ]
    rows += [(k.replace("_", " "), v) for k, v in details.items() if isinstance(v, (str, int))]
    emit_table(rows, ["field", "value"])
    emit_text("")
    emit_table(
        [
            (format_local(c.at, zone), "-" if c.from_sev is None else f"SEV {c.from_sev}", f"SEV {c.to_sev}", c.reason)
            for c in incident.sev_history
        ],
        ["when", "from", "to", "why"],
    )


@command(help="Change the SEV level; the reason is kept on the timeline.")
def sev(
    incident_id: IdArg,
    level: Annotated[int, typer.Argument(metavar="N", help="New SEV, 0-5.")],
    why: Annotated[str, typer.Option("--why", help="Why the level changed.")],
    at: AtOpt = None,
    json_out: JsonOpt = False,
):
    wb = workbench()
    incident = wb.incidents.change_sev(parse_id(incident_id), level, why, at=wb.incidents.parse_time(at))
    emit_json(_incident_json(incident, wb)) if json_out else say(f"{incident.ref} is now SEV {incident.sev}")


@command(help="Move the incident along declared -> contained -> verifying -> resolved -> closed.")
def status(
    incident_id: IdArg,
    new_status: Annotated[str, typer.Argument(metavar="STATUS")],
    at: AtOpt = None,
    why: Annotated[str | None, typer.Option("--why", help="Reason; required with --force.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Resolve before the re-check schedule is done (needs --why).")
    ] = False,
    json_out: JsonOpt = False,
):
    from sevtool.core.incident import parse_status

    wb = workbench()
    incident = wb.incidents.set_status(
        parse_id(incident_id), parse_status(new_status), at=wb.incidents.parse_time(at), why=why, force=force
    )
    emit_json(_incident_json(incident, wb)) if json_out else say(f"{incident.ref} is now {incident.status.value}")


@command(help="Assign a role: commander, scribe or comms.")
def assign(
    incident_id: IdArg,
    role: Annotated[str, typer.Argument(metavar="ROLE")],
    person: Annotated[str, typer.Argument(metavar="WHO")],
    json_out: JsonOpt = False,
):
    wb = workbench()
    incident = wb.incidents.assign(parse_id(incident_id), role, person)
    emit_json(_incident_json(incident, wb)) if json_out else say(f"{incident.ref}: {role} is {person}")


@command(
    name="time",
    help="Set a key timestamp: exposure-started, detected, declared, contained, verified, resolved, closed.",
)
def set_time(
    incident_id: IdArg,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    at: Annotated[str, typer.Option("--at", help="ISO, '2026-06-18 14:05 PDT' or relative like -4h.")],
    json_out: JsonOpt = False,
):
    wb = workbench()
    incident = wb.incidents.set_time(parse_id(incident_id), name, wb.incidents.parse_time(at))
    emit_json(_incident_json(incident, wb)) if json_out else say(f"{incident.ref}: {name} set")


@command(help="Add a note to the timeline (kinds feed the postmortem: note, root-cause, trigger, went-well, ...).")
def note(
    incident_id: IdArg,
    text: Annotated[str, typer.Argument(metavar="TEXT")],
    at: AtOpt = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="note, detection, summary, root-cause, trigger, contributing, went-well, went-wrong, lucky."
        ),
    ] = "note",
    key: Annotated[bool, typer.Option("--key", help="Mark as a key event for the postmortem.")] = False,
    json_out: JsonOpt = False,
):
    wb = workbench()
    event = wb.incidents.note(parse_id(incident_id), text, at=wb.incidents.parse_time(at), kind=kind, key=key)
    emit_json(event) if json_out else say(f"noted as event {event.seq}")


@command(help="Mark (or with --unmark, unmark) a timeline event as key for the postmortem.")
def mark(
    incident_id: IdArg,
    seq: Annotated[int, typer.Argument(metavar="EVENT")],
    unmark: Annotated[bool, typer.Option("--unmark")] = False,
    json_out: JsonOpt = False,
):
    event = workbench().incidents.mark_key(parse_id(incident_id), seq, key=not unmark)
    emit_json(event) if json_out else say(event.summary)


@command(help="Show the timeline, in UTC and in your zone (SEVTOOL_TZ).")
def timeline(incident_id: IdArg, json_out: JsonOpt = False):
    from sevtool.core.timeparse import format_local, format_utc

    wb = workbench()
    events = wb.incidents.timeline(parse_id(incident_id))
    keys = wb.incidents.key_events(events)
    if json_out:
        emit_json([{**e.__dict__, "at": format_utc(e.at), "key": e.seq in keys} for e in events])
        return
    emit_table(
        [
            (
                e.seq,
                format_utc(e.at),
                format_local(e.at, wb.zone),
                "*" if e.seq in keys else "",
                e.kind,
                e.actor,
                e.summary,
            )
            for e in events
        ],
        ["#", "utc", "local", "key", "kind", "who", "what"],
    )


audit_app = typer.Typer(help="Check the timeline's hash chain.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@command(
    group=audit_app,
    name="verify",
    help="Recompute the hash chain; exit 1 naming the first edited, deleted or reordered event.",
)
def audit_verify(json_out: JsonOpt = False):
    from sevtool.errors import ExitCode

    report = workbench().incidents.audit()
    if json_out:
        emit_json(report.as_dict())
    elif report.ok:
        emit_text(report.head)
        say(f"chain ok: {report.events} events, head {report.head}")
    else:
        say(f"chain broken at event {report.broken_seq}: {report.problem}")
    return ExitCode.OK if report.ok else ExitCode.ERROR
