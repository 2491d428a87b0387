"""evidence ID --log PATH ...: who read the exposed objects during the exposure window, and what the logs cover."""

from typing import Annotated

import typer

from sevtool.cli.main import IdArg, JsonOpt, command, parse_id, workbench
from sevtool.cli.output import emit_json, emit_text, say

HELP = """Who read the in-scope objects during the exposure window, from PostgreSQL server logs with pgaudit.

\b
Reads (SELECT, COPY ... TO) come from pgaudit's SESSION READ class or OBJECT audit (pgaudit.role). A window runs
from the exposure start (recorded on the incident, else the earliest GRANT to the principal in the logs) to the
apply that closed the object, plus each regression window. For each object: reads by role, split into members
of the principal and others; the part of the window the logs cover; `unknown` for time they do not cover.
`no reads` only when the whole window is covered and pgaudit logged READ. Statement text is never shown or kept.

Unity Catalog incidents read a JSON Lines export of Databricks' system.access.audit instead (--uc-audit): a read is a
successful getTable or generateTemporaryTableCredential on the table; rows of another metastore are ignored.

\b
--log takes csvlog (.csv), jsonlog (.json) and stderr files, directories and .gz files; stderr needs --line-prefix.
Without --log or --uc-audit, the team config's `[evidence] logs = [...]` is read (`sevtool demo` writes its own).
"""


@command(help=HELP)
def evidence(
    incident_id: IdArg,
    log: Annotated[
        list[str] | None, typer.Option("--log", help="PostgreSQL: a log file, .gz or directory. Repeatable.")
    ] = None,
    uc_audit: Annotated[
        list[str] | None,
        typer.Option(
            "--uc-audit", help="Unity Catalog: a JSON Lines export of system.access.audit (.gz too). Repeatable."
        ),
    ] = None,
    line_prefix: Annotated[
        str | None,
        typer.Option("--line-prefix", help="The server's log_line_prefix, for stderr logs, e.g. '%m [%p] %q%u@%d '."),
    ] = None,
    max_gap: Annotated[
        str, typer.Option("--max-gap", help="A silence in the logs longer than this is not covered (e.g. 30m, 1h).")
    ] = "1h",
    json_out: JsonOpt = False,
):
    from sevtool.core.timeparse import parse_duration

    report = workbench().evidence.evidence(
        parse_id(incident_id), log, uc_audit=uc_audit, line_prefix=line_prefix, max_gap=parse_duration(max_gap)
    )
    if json_out:
        emit_json(report.as_dict())
        return
    emit_text(render(report))
    t = report.logs
    if "denied" in t:
        say(
            f"read {t['files']} audit export(s): {t['entries']} rows, {t['audit']} table reads; ignored {t['other_database']} of other "
            f"metastores, {t['denied']} refused request(s), {t['duplicates']} duplicate event(s); {t['corrupt']} malformed row(s) "
            "(not covered around them)"
        )
    else:
        say(
            f"read {t['files']} log file(s): {t['entries']} entries, {t['audit']} pgaudit entries of {report.database}; ignored "
            f"{t['other_database']} of other databases; {t['corrupt']} corrupt and {t['other_format']} other-format line(s) "
            f"(not covered around them); {t['skipped_duplicate_format']} duplicate-format file(s) skipped"
        )
    for line in report.logs["unreadable"]:
        say(f"unreadable: {line}")
    for note in report.notes:
        say(f"note: {note}")
    counts = report.counts
    say(
        f"INC-{report.incident_id}: {counts['reads']} object(s) read, {counts['no_reads']} no reads, {counts['unknown']} unknown "
        f"(recorded as timeline event {report.event_seq})"
    )


def render(report) -> str:
    from sevtool.core.timeparse import format_utc

    def span(a, b) -> str:
        return f"{format_utc(a) if a else '(unknown start)'} -> {format_utc(b)}"

    label = {"reads": "READ", "no_reads": "no reads", "unknown": "UNKNOWN"}
    lines = []
    for o in report.objects:
        lines.append(f"{o.object_fqn}: {label[o.answer]} - {o.reason}")
        for w in o.windows:
            lines.append(f"  window ({w['kind']}): {w['start'] or '(unknown start)'} -> {w['end']}")
        lines.append(f"  window start: {o.start_source}")
        for a, b in o.covered:
            lines.append(f"  covered: {span(a, b)}")
        for a, b in o.uncovered:
            lines.append(f"  unknown: {span(a, b)} (not covered by the logs)")
        lines.append(f"  pgaudit READ logged: {o.read_logged or 'no sign of it'}")
        if o.stats is not None:
            between = f"between {format_utc(o.stats.start)} and {format_utc(o.stats.end)}"
            lines.append(
                f"  table statistics: reset {between}, no count"
                if o.stats.reads is None
                else f"  table statistics: read {o.stats.reads} time(s) {between} (no reader identity)"
            )
        for member in (True, False):
            readers = [r for r in o.readers if r.member == member]
            who = f"members of {', '.join(report.principals)}" if member else "not members"
            if readers:
                lines.append(f"  {who}:")
                lines += [
                    f"    {r.role}: {r.reads} read(s), first {format_utc(r.first)}, last {format_utc(r.last)}"
                    for r in readers
                ]
            else:
                lines.append(f"  {who}: none found")
    return "\n".join(lines) if lines else "(no objects in scope)"
