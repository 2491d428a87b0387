"""The postmortem's "Access during exposure": what `sevtool evidence` found, as the review and a regulator ask it;
and its "Access exceptions": who was let back in after lock-down, and how that ended.

Was the exposed data read, by whom, and when? The facts come from the latest evidence event (counts, roles and
times only: statement text is never recorded). Time the logs did not cover is said to be unknown, never "no reads".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from sevtool.core.access_exceptions import AccessException
from sevtool.core.markdown import table
from sevtool.core.timeparse import format_utc

EVIDENCE_EVENT = "evidence"
_ANSWERS = ("reads", "no_reads", "unknown")


class EvidenceFacts(BaseModel):
    at: str  # when the evidence was gathered (UTC text)
    by_dss: dict[str, dict[str, int]] = Field(default_factory=dict)  # label -> exposed / reads / no_reads / unknown
    member_readers: dict[str, int] = Field(default_factory=dict)  # role -> reads
    non_member_readers: dict[str, int] = Field(default_factory=dict)
    reads: int = 0
    most_read: list[dict[str, Any]] = Field(default_factory=list)
    coverage: list[list[str]] = Field(default_factory=list)
    summary: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def of_event(cls, at: str, data: dict[str, Any]) -> EvidenceFacts:
        known = {k: data[k] for k in cls.model_fields if k in data and k != "at"}
        return cls(at=at, **known)


def access_during_exposure(evidence: EvidenceFacts | None, incident_ref: str) -> list[str]:
    if evidence is None:
        return [
            f"_No evidence gathered: whether the exposed data was read is unknown. Run `sevtool evidence {incident_ref}"
            " --log PATH` with the server's pgaudit logs (or `--uc-audit FILE` for Unity Catalog)._",
            "",
        ]
    counts = {answer: evidence.summary.get(answer, 0) for answer in _ANSWERS}
    members, others = evidence.member_readers, evidence.non_member_readers
    lines = [
        f"From the audit logs, as gathered at {evidence.at}: **{counts['reads']}** exposed object(s) read during their "
        f"exposure window, {counts['no_reads']} with no reads in fully covered windows, **{counts['unknown']} unknown** "
        f"(the logs do not cover the whole window, or did not log reads of them). {evidence.reads} read(s) in all, by "
        f"{len(members)} member role(s) of the principal and **{len(others)} role(s) that are not members**.",
        "",
    ]
    if evidence.by_dss:
        rows = [
            [label, c.get("exposed", 0), c.get("reads", 0), c.get("no_reads", 0), c.get("unknown", 0)]
            for label, c in evidence.by_dss.items()
        ]
        lines += [table(rows, ["sensitivity", "objects exposed", "read", "no reads", "unknown"]), ""]
    if members or others:
        readers = [[role, "member", n] for role, n in sorted(members.items(), key=lambda i: -i[1])[:10]]
        readers += [[role, "not a member", n] for role, n in sorted(others.items(), key=lambda i: -i[1])[:10]]
        lines += [table(readers, ["reader", "", "reads"]), ""]
    if evidence.most_read:
        rows = [[o["object"], o["reads"], o["readers"], o["non_members"]] for o in evidence.most_read]
        lines += ["Most-read objects:", "", table(rows, ["object", "reads", "readers", "of them not members"]), ""]
    spans = "; ".join(f"{a} to {b}" for a, b in evidence.coverage) or "none"
    lines += [f"Log coverage: {spans}. Outside it, reads are unknown.", ""]
    return lines


def access_exceptions(exceptions: list[AccessException], now: datetime) -> list[str]:
    """Every just-in-time exception granted after lock-down: who, what, why, on whose approval, and how it ended."""
    if not exceptions:
        return ["No just-in-time access was granted after lock-down (`sevtool access grant`).", ""]
    rows = [
        [
            e.number,
            e.role,
            ", ".join(e.objects),
            e.why,
            e.approver or "none",
            e.requested_by,
            format_utc(e.granted_at),
            format_utc(e.until),
            format_utc(e.ended_at) if e.ended_at else "not yet",
            e.state(now),
        ]
        for e in exceptions
    ]
    headers = ["#", "who", "what", "why", "approver", "requested by", "granted", "until", "ended", "how it ended"]
    return [table(rows, headers), ""]
