"""revoke ID --plan | --apply [--yes] [--accept-collateral] [--batch-size N] | --undo [--yes]; [--max-actions N]."""

import sys
from collections import Counter
from typing import Annotated

import typer

from sevtool.cli.main import IdArg, JsonOpt, NoPagerOpt, command, machine_mode, parse_id, workbench
from sevtool.cli.output import emit_json, emit_jsonl, emit_table, emit_text, say
from sevtool.errors import ExitCode, UsageError

HELP = """Close the exposure found by the latest scan, or put it back exactly.

\b
--plan   journal a fresh plan from the latest findings (each action's SQL and prior ACL) and show it:
         counts and the actions to review first (--all: every action, --jsonl: one per line)
--apply  run the plan in bounded batches, reading each grant back; resumes after a crash
--undo   restore every applied action's object to its recorded prior ACL

Without --yes, --apply and --undo show what they will do and ask. Role memberships are marked REVIEW:
removing one may also remove legitimate access. Exit 1 when any action failed.

\b
Blast radius: an action that would also take access beyond the incident's scope (a role outside the
principal losing access through grant-option CASCADE, a PUBLIC revoke or a membership removal; or a
schema- or catalog-wide revoke reaching tables outside the scope) is shown with the roles, objects and
login members it harms, and is held back by --apply --yes: it stays planned, and the run exits 3
(exposure remains, by the responder's choice). --accept-collateral runs it; without --yes you are asked.

\b
Size guard: a plan larger than the SEV level's max_actions (default 50,000) is refused with exit 2;
--max-actions N raises the limit for this run.
"""


def _plan_rows(actions):
    # here, not at the top: `sevtool --help` loads no pydantic
    from sevtool.core import blast

    return [
        (
            a.seq,
            a.kind,
            a.object_fqn + (f" ({a.column})" if a.column else ""),
            a.grantee,
            a.grantor,
            "REVIEW" if a.review else "",
            blast.cell(a),
            a.status.value,
            a.sql,
        )
        for a in actions
    ]


PLAN_HEADERS = ["#", "kind", "object", "grantee", "grantor", "review", "blast radius", "status", "sql"]
PENDING_STATUSES = ("planned", "applying", "failed")


def _summary(plan, review_limit: int | None = None) -> list[str]:
    """The plan in words: its size, each pending REVIEW action with what it takes from whom (the first
    `review_limit` of them, then how many more), and the blast radius of the whole."""
    from sevtool.core import blast

    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(plan.by_kind.items())) or "no actions"
    pending = sum(plan.counts.get(s, 0) for s in PENDING_STATUSES)
    lines = [
        (
            f"Plan {plan.plan_version} for INC-{plan.incident_id} on {plan.target}: {sum(plan.counts.values())} actions "
            f"({kinds}); {pending} still to apply"
        )
    ]
    review = [a for a in plan.notable if a.review and a.status.value in PENDING_STATUSES]
    for a in review[:review_limit]:
        lines.append(f"  REVIEW #{a.seq}: {a.sql} -- {a.reason}")
        lines += [
            f"    takes {len(c.objects)} object(s) from {c.role} ({c.login_members} login member(s), {c.cause}): "
            + ", ".join(c.objects[:5])
            + (f" and {len(c.objects) - 5} more" if len(c.objects) > 5 else "")
            for c in a.collateral
        ]
        if a.alternative:
            lines.append(f"    alternative: {a.alternative}")
    if review_limit is not None and len(review) > review_limit:
        lines.append(f"  ... {len(review) - review_limit:,} more REVIEW actions not shown: add --all to list them all")
    lines.append(f"Blast radius: {blast.summary_text(plan.blast)}")
    return lines


def _review_first(a) -> tuple:
    """The summary's order: actions a human must review first, the largest blast radius first; then plan order."""
    return (not a.review, -sum(len(c.objects) for c in a.collateral), a.seq)


def _emit_plan(made, actions, all_rows: bool) -> None:
    """Every action in plan order with --all; otherwise, for a plan too long to read, its counts and the
    actions to look at first. `actions()` reads the plan back from the ledger; only the rows shown are made
    into text."""
    import heapq

    from sevtool.cli import summary as s

    limit = s.limit_for(all_rows)
    if limit is None or made.count <= limit:
        emit_table(_plan_rows(actions()), PLAN_HEADERS)
        return
    by_kind: Counter = Counter()
    grantees: Counter = Counter()

    def counted():
        for a in actions():
            by_kind[(a.kind, a.review)] += 1
            grantees[a.grantee] += 1
            yield a

    shown = heapq.nsmallest(limit, counted(), key=_review_first)
    emit_table(
        [(kind, n, "REVIEW" if review else "") for (kind, review), n in by_kind.most_common()],
        ["kind", "actions", "review"],
    )
    emit_text("")
    s.emit_counts(dict(grantees.most_common()), ["grantee", "actions"])
    s.emit_counts({status: n for status, n in made.counts.items() if n}, ["status", "actions"])
    emit_table(_plan_rows(shown), PLAN_HEADERS)
    s.emit_more(len(shown), made.count, "actions", "--jsonl for one JSON object per action")


class _LedgerActions:
    """A journaled plan's actions for `emit_json`: counted, and read back from the ledger a page at a time as
    they are written."""

    def __init__(self, count: int, actions):
        self._count, self._actions = count, actions

    def __len__(self) -> int:
        return self._count

    def __iter__(self):
        return self._actions()


def _collateral_pending(outline) -> list:
    return [a for a in outline.notable if a.collateral and a.status.value in PENDING_STATUSES]


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
    say(
        f"  {progress.done}/{progress.total}: {c.get('applied', 0)} applied, {c.get('skipped', 0)} already absent, "
        f"{c.get('undone', 0)} undone, {c.get('failed', 0)} failed"
    )


def _report(report, json_out: bool) -> int:
    if json_out:
        emit_json(report.model_dump(mode="json"))
    else:
        counts = ", ".join(f"{n} {status}" for status, n in report.counts.items())
        for e in report.exceptions_ended:
            say(f"ended access exception {e['number']} ({e['role']} on {', '.join(e['objects'])}) before restoring")
        say(f"{report.mode}: {counts}; INC-{report.incident_id} is {report.status} ({report.duration_ms} ms)")
        if report.failures:
            emit_table([(f["seq"], f["object"], f["message"]) for f in report.failures], ["#", "object", "failure"])
            say(
                "some actions failed: fix the cause shown and run the same command again; finished actions are not repeated"
            )
        if report.held:
            say(report.hint)
    if report.failures:
        return ExitCode.ERROR
    # Held actions leave access in place by the responder's choice: to a script that is "exposure remains".
    return ExitCode.EXPOSED if report.held else ExitCode.OK


@command(bulk=True, help=HELP)
def revoke(
    incident_id: IdArg,
    plan: Annotated[bool, typer.Option("--plan", help="Make and show a fresh plan.")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Apply the plan (resumes an interrupted run).")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="Restore the prior ACL of everything applied.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=20000,
            help="Objects per transaction (default: revoke_batch_size in the team config, 1000).",
        ),
    ] = None,
    accept_collateral: Annotated[
        bool,
        typer.Option(
            "--accept-collateral",
            help="Also run actions that take access beyond the incident's scope (their blast radius, shown by --plan).",
        ),
    ] = False,
    max_actions: Annotated[
        int | None,
        typer.Option(
            "--max-actions",
            min=1,
            help="Allow a plan this large (default: max_actions of the incident's SEV level, 50,000).",
        ),
    ] = None,
    all_rows: Annotated[
        bool, typer.Option("--all", help="With --plan: print every action in plan order, not the summary.")
    ] = False,
    no_pager: NoPagerOpt = False,
    json_out: JsonOpt = False,
    jsonl_out: Annotated[
        bool,
        typer.Option("--jsonl", help="With --plan: one action per line, as it is written; errors as JSON on stderr."),
    ] = False,
):
    machine_mode(json_out, jsonl_out)
    if jsonl_out and not plan:
        raise UsageError("--jsonl is for --plan (one action per line); --apply and --undo report with --json")
    if sum((plan, apply, undo)) != 1:
        raise UsageError("say what to do: exactly one of --plan, --apply or --undo")
    ident = parse_id(incident_id)
    svc = workbench().revocation
    from sevtool.core import blast

    if plan:
        # Journaled a chunk at a time as it is made, then read back from the ledger a page at a time as it is written.
        made = svc.journal_plan(ident, max_actions=max_actions)

        def actions():
            return (action for page in svc.plan_pages(made) for action in page)

        def plain():
            return (action for page in svc.plain_plan_pages(made) for action in page)

        if json_out:
            # The document a plan in hand writes, byte for byte: under the writer's threshold as one document, above
            # it with the actions written one at a time as they are read from the ledger.
            from sevtool.cli.output import STREAM_FROM, streamed

            if made.count < STREAM_FROM:
                emit_json(made.with_actions(list(actions())))
            else:
                emit_json(made.document(streamed(_LedgerActions(made.count, plain), lambda a: a)))
        elif jsonl_out:
            emit_jsonl(plain())
        else:
            from sevtool.cli.pager import paged
            from sevtool.cli.summary import limit_for

            with paged(no_pager):
                _emit_plan(made, actions, all_rows)
                for line in _summary(made.outline(), limit_for(all_rows)):
                    say(line)
        return ExitCode.OK
    if apply:
        # JSON output is unattended (it never asks): the counts are enough, the plan is not read for a summary.
        to_apply = svc.plan_to_apply(ident, max_actions=max_actions, notable=not json_out)
        if to_apply.pending and not json_out:
            for line in _summary(to_apply):
                say(line)
        if to_apply.pending and not _confirm(f"Apply {to_apply.pending} actions?", yes, json_out):
            say("nothing applied")
            return ExitCode.ERROR
        harmful = _collateral_pending(to_apply)
        if harmful and not accept_collateral and not yes:
            # Asked apart from the plan as a whole: saying yes to the fix is not saying yes to harming others.
            accept_collateral = _confirm(
                f"{len(harmful)} of them also take access beyond the incident's scope "
                f"({', '.join(blast.totals(harmful)['roles'])}). Run those too?",
                yes,
                json_out,
            )
        return _report(
            svc.apply(
                ident,
                plan_version=to_apply.plan_version,
                batch_size=batch_size,
                accept_collateral=accept_collateral,
                max_actions=max_actions,
                progress=None if json_out else _progress,
            ),
            json_out,
        )
    kinds = svc.undo_outline(ident)
    applied = sum(kinds.values())
    if applied and not json_out:
        say(
            f"Undo restores the prior ACL of {applied} applied actions: "
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        )
        open_exceptions = [e for e in workbench().access.list(ident) if e.ended_at is None]
        if open_exceptions:
            say(
                f"and first ends {len(open_exceptions)} access exception(s) ("
                + ", ".join(f"{e.number}: {e.role}" for e in open_exceptions)
                + "): their grants are revoked"
            )
    if applied and not _confirm(f"Undo {applied} actions?", yes, json_out):
        say("nothing undone")
        return ExitCode.ERROR
    return _report(svc.undo(ident, progress=None if json_out else _progress), json_out)
