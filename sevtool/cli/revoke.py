"""revoke ID --plan | --apply [--yes] [--batch-size N] | --undo [--yes]."""

import sys
from collections import Counter
from typing import Annotated

import typer

from sevtool.cli.main import IdArg, JsonOpt, command, parse_id, workbench
from sevtool.cli.output import emit_json, emit_table, say
from sevtool.errors import ExitCode, UsageError

HELP = """Close the exposure found by the latest scan, or put it back exactly.

\b
--plan   journal a fresh plan from the latest findings (each action's SQL and prior ACL) and show it
--apply  run the plan in bounded batches, reading each grant back; resumes after a crash
--undo   restore every applied action's object to its recorded prior ACL

Without --yes, --apply and --undo show what they will do and ask. Role memberships are marked REVIEW:
removing one may also remove legitimate access. Exit 1 when any action failed.
"""


def _plan_rows(actions):
    return [(a.seq, a.kind.value, a.object_fqn + (f" ({a.column})" if a.column else ""), a.grantee, a.grantor,
             "REVIEW" if a.review else "", a.status.value, a.sql) for a in actions]


def _summary(plan) -> list[str]:
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(plan.by_kind.items())) or "no actions"
    lines = [(f"Plan {plan.plan_version} for INC-{plan.incident_id} on {plan.target}: {len(plan.actions)} actions ({kinds}); "
              f"{len(plan.pending)} still to apply")]
    for a in plan.actions:
        if a.review and a.status.value in ("planned", "applying", "failed"):
            lines.append(f"  REVIEW #{a.seq}: {a.sql} -- {a.reason}")
    return lines


def _confirm(question: str, yes: bool, json_out: bool) -> bool:
    if yes:
        return True
    if json_out:
        raise UsageError("--json cannot ask for confirmation", hint="add --yes to run it unattended")
    # Asked on stderr and read from stdin ourselves: click's prompt writes a stray space to stdout.
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        raise UsageError("no answer to the confirmation (stdin closed)", hint="add --yes to run it unattended")
    return answer.strip().lower() in ("y", "yes")


def _progress(progress) -> None:
    c = progress.counts
    say(f"  {progress.done}/{progress.total}: {c.get('applied', 0)} applied, {c.get('skipped', 0)} already absent, "
        f"{c.get('undone', 0)} undone, {c.get('failed', 0)} failed")


def _report(report, json_out: bool) -> int:
    if json_out:
        emit_json(report.model_dump(mode="json"))
    else:
        counts = ", ".join(f"{n} {status}" for status, n in report.counts.items())
        say(f"{report.mode}: {counts}; INC-{report.incident_id} is {report.status} ({report.duration_ms} ms)")
        if report.failures:
            emit_table([(f["seq"], f["object"], f["message"]) for f in report.failures], ["#", "object", "failure"])
            say("some actions failed: fix the cause shown and run the same command again; finished actions are not repeated")
    return ExitCode.ERROR if report.failures else ExitCode.OK


@command(help=HELP)
def revoke(incident_id: IdArg,
           plan: Annotated[bool, typer.Option("--plan", help="Make and show a fresh plan.")] = False,
           apply: Annotated[bool, typer.Option("--apply", help="Apply the plan (resumes an interrupted run).")] = False,
           undo: Annotated[bool, typer.Option("--undo", help="Restore the prior ACL of everything applied.")] = False,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
           batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, max=20000,
                                                          help="Objects per transaction (default: revoke_batch_size in the team config, 1000).")] = None,
           json_out: JsonOpt = False):
    if sum((plan, apply, undo)) != 1:
        raise UsageError("say what to do: exactly one of --plan, --apply or --undo")
    ident = parse_id(incident_id)
    svc = workbench().revocation
    if plan:
        made = svc.plan(ident)
        if json_out:
            emit_json(made.model_dump(mode="json"))
        else:
            emit_table(_plan_rows(made.actions), ["#", "kind", "object", "grantee", "grantor", "review", "status", "sql"])
            for line in _summary(made):
                say(line)
        return ExitCode.OK
    if apply:
        to_apply = svc.plan_to_apply(ident)
        if to_apply.pending and not json_out:
            for line in _summary(to_apply):
                say(line)
        if to_apply.pending and not _confirm(f"Apply {len(to_apply.pending)} actions?", yes, json_out):
            say("nothing applied")
            return ExitCode.ERROR
        return _report(svc.apply(ident, plan_version=to_apply.plan_version, batch_size=batch_size,
                                 progress=None if json_out else _progress), json_out)
    applied = svc.undoable(ident)
    if applied and not json_out:
        kinds = Counter(a.kind.value for _, _, a in applied)
        say(f"Undo restores the prior ACL of {len(applied)} applied actions: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    if applied and not _confirm(f"Undo {len(applied)} actions?", yes, json_out):
        say("nothing undone")
        return ExitCode.ERROR
    return _report(svc.undo(ident, progress=None if json_out else _progress), json_out)
