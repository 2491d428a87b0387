"""scan: scope an exposure on a target and record it on the incident."""

from typing import Annotated

import typer

from sevtool.cli.main import AllOpt, IdArg, JsonlOpt, JsonOpt, NoPagerOpt, command, machine_mode, parse_id, workbench
from sevtool.cli.output import emit_json, emit_jsonl, say, streamed


@command(
    bulk=True,
    help="Find every in-scope object a member of the principals can read, by access path, and record it on the incident. "
    "Prints counts by DSS, path and principal and the worst findings (most sensitive, then broadest path) first; "
    "--all prints every finding, --json the whole scan, --jsonl one finding per line.",
)
def scan(
    incident_id: IdArg,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="A target name from the team config ([targets.NAME]), or a spec such as a DSN or URL that an installed target kind recognises (one that none does is answered with each kind's form). Keep passwords and tokens out of it.",
        ),
    ],
    principal: Annotated[
        list[str], typer.Option("--principal", help="Who must lose access, e.g. all_employees or PUBLIC. Repeatable.")
    ],
    schema: Annotated[list[str] | None, typer.Option("--schema", help="Only these schemas. Repeatable.")] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="Glob over table or schema.table, e.g. 'keystrokes_*'.")
    ] = None,
    min_dss: Annotated[
        int | None,
        typer.Option(
            "--min-dss", min=1, max=4, help="Only objects rated at least this DSS (unrated objects are always kept)."
        ),
    ] = None,
    all_rows: AllOpt = False,
    no_pager: NoPagerOpt = False,
    json_out: JsonOpt = False,
    jsonl_out: JsonlOpt = False,
):
    machine_mode(json_out, jsonl_out)
    from sevtool.describe import as_json

    wb = workbench()
    try:
        outcome = wb.scanning.scan(
            parse_id(incident_id), target, principal, schemas=schema, table_glob=table, min_dss=min_dss
        )
    finally:
        wb.scanning.close()
    result, summary = outcome.result, outcome.summary
    if json_out:
        emit_json(
            {
                "incident_id": outcome.incident_id,
                "version": outcome.version,
                "scope": outcome.scope,
                "summary": summary,
                "objects_in_scope": result.objects_in_scope,
                "readable_in_scope": outcome.readable_in_scope,
                "principal_members": result.principal_members,
                "notices": result.notices,
                "duration_ms": result.duration_ms,
                "findings": streamed(result.findings, as_json),
            }
        )
        return
    if jsonl_out:
        emit_jsonl(as_json(f) for f in result.findings)
        return
    from sevtool.cli.pager import paged

    with paged(no_pager):
        _emit_summary(outcome, all_rows)
        for notice in result.notices:
            say(f"note: {notice}")
        others = summary.objects - outcome.readable_in_scope
        say(
            f"Scope v{outcome.version} recorded on INC-{outcome.incident_id}: {outcome.readable_in_scope} of {result.objects_in_scope} tables "
            f"in scope readable"
            + (f", plus {others} views or future-table defaults" if others else "")
            + f"; {summary.findings} findings, scanned in {result.duration_ms} ms"
        )


def _emit_summary(outcome, all_rows: bool) -> None:
    """Counts, then the worst findings: only the rows shown are made into text."""
    from sevtool.cli import summary as s
    from sevtool.cli.output import emit_table, emit_text, emit_text_table
    from sevtool.describe import via

    result, summary = outcome.result, outcome.summary
    s.emit_counts(summary.by_dss, ["sensitivity", "objects"], by_sensitivity=True)
    s.emit_counts(summary.by_path, ["access path", "findings"])
    emit_table(
        [(p, summary.by_principal.get(p, 0), result.principal_members.get(p, 0)) for p in outcome.scope.principals],
        ["principal", "objects readable", "members"],
    )
    emit_text("")
    shown, total = s.worst(result.findings, s.finding_key, s.limit_for(all_rows))
    emit_text_table(
        [(f.schema_name, f.object_name, f.object_kind, f.dss_label, f.principal, f.path.value, via(f)) for f in shown],
        ["schema", "object", "kind", "dss", "principal", "path", "via"],
    )
    s.emit_more(len(shown), total, "findings", "--jsonl for one JSON object per finding")
