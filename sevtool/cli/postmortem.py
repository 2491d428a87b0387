"""postmortem, notes, edit-note, action add|list|edit, playbook list|show|validate."""

from pathlib import Path
from typing import Annotated

import typer

from sevtool.cli.main import IdArg, JsonOpt, app, command, parse_id, workbench
from sevtool.cli.output import emit_json, emit_table, emit_text, say
from sevtool.core.postmortem_inputs import (
    ACTION_ITEM_STATUSES,
    ACTION_ITEM_TYPES,
    NOTE_SECTIONS,
)
from sevtool.errors import UsageError

_TYPES = ", ".join(ACTION_ITEM_TYPES)
_STATUSES = ", ".join(ACTION_ITEM_STATUSES)


@command(
    bulk=True,
    help="Compile the postmortem (markdown) from the incident, timeline, ledger, checks and notes. "
    "The export is recorded on the timeline with the document's sha256.",
)
def postmortem(
    incident_id: IdArg,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")] = None,
    json_out: JsonOpt = False,
):
    markdown, event = workbench().postmortem.export(parse_id(incident_id), output)
    if json_out:
        emit_json(
            {
                "incident_id": event.incident_id,
                "file": str(output) if output else None,
                "sha256": event.data["sha256"],
                "event": event.seq,
                "markdown": markdown,
            }
        )
    elif output:
        emit_text(str(output))
        say(f"postmortem written to {output} (event {event.seq}, sha256 {event.data['sha256'][:12]})")
    else:
        emit_text(markdown)


@command(help="List the current postmortem notes (latest text of each) with the event that holds it.")
def notes(
    incident_id: IdArg,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only this kind: " + ", ".join(NOTE_SECTIONS) + ", note.")
    ] = None,
    json_out: JsonOpt = False,
):
    from sevtool.core.timeparse import format_utc

    found = workbench().postmortem.notes(parse_id(incident_id), kind)
    if json_out:
        emit_json(found)
        return
    emit_table(
        [(n.seq, n.latest_seq, format_utc(n.at), n.kind, n.actor, n.revisions, n.text) for n in found],
        ["note", "latest event", "utc", "kind", "who", "edits", "text"],
    )


@command(
    name="edit-note",
    help="Replace a note's text. The edit is a new timeline event; the old text stays in the timeline.",
)
def edit_note(
    incident_id: IdArg,
    seq: Annotated[int, typer.Argument(metavar="EVENT", help="The note's event number (see `sevtool notes ID`).")],
    text: Annotated[str, typer.Argument(metavar="TEXT")],
    json_out: JsonOpt = False,
):
    event = workbench().postmortem.edit_note(parse_id(incident_id), seq, text)
    emit_json(event) if json_out else say(f"note {seq} superseded by event {event.seq}")


action_app = typer.Typer(help="Postmortem action items: add, list, edit.", no_args_is_help=True)
app.add_typer(action_app, name="action")


def _item_id(value: str) -> int:
    text = value.strip().upper().removeprefix("AI-")
    if not text.isdigit():
        raise UsageError(
            f"{value!r} is not an action item id", hint="ids look like 3 or AI-3; `sevtool action list ID` shows them"
        )
    return int(text)


def _emit_items(items, json_out: bool) -> None:
    if json_out:
        emit_json(items)
        return
    emit_table(
        [(f"AI-{a.id}", a.type, a.status, a.owner or "-", a.due or "-", a.title) for a in items],
        ["id", "type", "status", "owner", "due", "title"],
    )


@command(group=action_app, name="add", help="Add an action item.")
def action_add(
    incident_id: IdArg,
    title: Annotated[str, typer.Option("--title", help="What will be done.")],
    owner: Annotated[str | None, typer.Option("--owner", help="Who owns it.")] = None,
    item_type: Annotated[str, typer.Option("--type", help=f"One of: {_TYPES}.")] = "prevent",
    due: Annotated[str | None, typer.Option("--due", help="Due date, YYYY-MM-DD.")] = None,
    json_out: JsonOpt = False,
):
    item = workbench().postmortem.add_item(parse_id(incident_id), title, owner=owner, type=item_type, due=due)
    if json_out:
        emit_json(item)
    else:
        emit_text(f"AI-{item.id}")
        say(f"added AI-{item.id} ({item.type}) for {item.owner or 'no owner yet'}")


@command(group=action_app, name="list", help="List the incident's action items.")
def action_list(incident_id: IdArg, json_out: JsonOpt = False):
    _emit_items(workbench().postmortem.items(parse_id(incident_id)), json_out)


@command(group=action_app, name="edit", help="Change an action item; each change is a timeline event.")
def action_edit(
    incident_id: IdArg,
    item: Annotated[str, typer.Argument(metavar="ITEM", help="Item id, e.g. 3 or AI-3.")],
    title: Annotated[str | None, typer.Option("--title")] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    item_type: Annotated[str | None, typer.Option("--type", help=f"One of: {_TYPES}.")] = None,
    due: Annotated[str | None, typer.Option("--due", help="YYYY-MM-DD.")] = None,
    status: Annotated[str | None, typer.Option("--status", help=f"One of: {_STATUSES}.")] = None,
    json_out: JsonOpt = False,
):
    updated = workbench().postmortem.edit_item(
        parse_id(incident_id), _item_id(item), title=title, owner=owner, type=item_type, due=due, status=status
    )
    if json_out:
        emit_json(updated)
    else:
        _emit_items([updated], json_out=False)


playbook_app = typer.Typer(help="Playbooks: list, show, validate.", no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")


@command(group=playbook_app, name="list", help="List the playbooks found in ./playbooks and shipped with sevtool.")
def playbook_list(json_out: JsonOpt = False):
    found = workbench().playbooks.list()
    if json_out:
        emit_json([f.as_dict() for f in found])
    else:
        emit_table(
            [
                (
                    f.name,
                    len(f.playbook.steps) if f.playbook else "-",
                    f.playbook.title if f.playbook else f"INVALID: {f.error}",
                    str(f.path),
                )
                for f in found
            ],
            ["name", "steps", "title", "file"],
        )


@command(
    group=playbook_app, name="show", help="Show a playbook's steps, which SEV levels require them, and what to do."
)
def playbook_show(name: Annotated[str, typer.Argument(metavar="NAME")], json_out: JsonOpt = False):
    playbook = workbench().playbooks.get(name)
    if json_out:
        emit_json(playbook)
        return
    say(f"{playbook.name}: {playbook.title}")
    emit_table(
        [
            (i, s.id, s.kind.value, _levels(s.required_at), s.title, s.text, s.command or "")
            for i, s in enumerate(playbook.steps, start=1)
        ],
        ["#", "step", "kind", "required at", "title", "what to do", "command"],
    )


@command(
    group=playbook_app, name="validate", help="Validate a playbook file; errors name the file, line and field (exit 2)."
)
def playbook_validate(path: Annotated[Path, typer.Argument(metavar="FILE")], json_out: JsonOpt = False):
    playbook = workbench().playbooks.load(path)
    if json_out:
        emit_json({"file": str(path), "valid": True, "name": playbook.name, "steps": len(playbook.steps)})
    else:
        emit_text(str(path))
        say(f"{path}: valid playbook {playbook.name!r} with {len(playbook.steps)} steps")


def _levels(levels: list[int]) -> str:
    return "SEV " + ",".join(str(n) for n in levels) if levels else "never (optional)"
