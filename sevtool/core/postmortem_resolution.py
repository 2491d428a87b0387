"""The postmortem's "Resolution and verification": the revocation ledger, every check, every regression."""

from __future__ import annotations

from sevtool.core.markdown import table
from sevtool.core.postmortem_facts import PostmortemData, RegressionFacts
from sevtool.core.timeparse import format_utc


def resolution(data: PostmortemData) -> list[str]:
    out: list[str] = ["### Revocation ledger", ""]
    ledger = data.ledger
    if ledger is None or ledger.actions == 0:
        out += ["_No revocation plan recorded._", ""]
    else:
        out += [
            f"{ledger.actions:,} actions over {ledger.objects:,} objects in {ledger.plan_versions} plan version(s); "
            f"first applied {format_utc(data.first_apply_at)}.",
            "",
        ]
        out += [
            table([[status, f"{count:,}"] for status, count in ledger.by_status.items()], ["status", "actions"]),
            "",
        ]
    out += ["### Checks", ""]
    if data.checks:
        out += [
            table(
                [
                    [
                        f"#{c.number}",
                        format_utc(c.scheduled_at) if c.scheduled_at else "on demand",
                        format_utc(c.ran_at),
                        "clean" if c.clean else "EXPOSED",
                        f"{c.exposed_objects:,}",
                        f"{c.findings:,}",
                        str(c.regressions),
                    ]
                    for c in data.checks
                ],
                ["check", "scheduled (UTC)", "ran (UTC)", "result", "objects exposed", "findings", "regressions"],
            ),
            "",
        ]
    else:
        out += ["_No check recorded: the fix is unverified._", ""]
    out += ["### Regressions", ""]
    if data.regressions:
        out += [
            table(
                [
                    [
                        f"#{r.check_number}" if r.check_number else "",
                        r.cause,
                        r.principal,
                        r.path,
                        _objects_text(r),
                        format_utc(r.first_seen_at),
                        _closed_text(r),
                    ]
                    for r in data.regressions
                ],
                ["found by check", "cause", "principal", "access path", "objects", "first seen (UTC)", "closed"],
            ),
            "",
        ]
    else:
        out += ["None." if data.checks else "_Unknown: no check recorded._", ""]
    return out


def _objects_text(r: RegressionFacts) -> str:
    shown = ", ".join(r.examples)
    more = r.objects - len(r.examples)
    return f"{r.objects:,}: {shown}" + (f" and {more:,} more" if more > 0 else "")


def _closed_text(r: RegressionFacts) -> str:
    if r.still_open:
        return f"OPEN ({r.still_open:,} not closed)"
    return f"{format_utc(r.closed_at)} by {r.closed_by or 'unknown'}"
