"""Standing exposure policies: who must never read what, and whether a scan says the rule holds.

A policy names a target, the principals that must not read sensitive objects there (rated at least
`min_dss`; unrated objects count as sensitive, as everywhere in sevtool) and the SEV of the incident
a violation opens. An exception lets named objects stay readable until it expires: an expired
exception exempts nothing, so what it covered is a violation again. Time comes in as an argument.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sevtool.core.exposure import PUBLIC, Finding
from sevtool.core.severity import MAX_SEV, MIN_SEV

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class PolicyException(BaseModel):
    """`[[policy.exception]]`: objects (globs over schema.table) a principal may read, for a while, on someone's word."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objects: list[str] = Field(min_length=1, description="globs over schema.table, e.g. 'ml_features.*'")
    principals: list[str] = Field(
        default_factory=list, description="the principals it covers; every principal of the policy when empty"
    )
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: date | datetime

    @property
    def expires_at(self) -> datetime:
        """A bare date expires at the start of that day, UTC: the exception covers the days before it."""
        value = self.expires
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.combine(value, time.min, tzinfo=UTC)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def covers(self, finding: Finding) -> bool:
        if self.principals and finding.principal not in self.principals:
            return False
        return any(fnmatch.fnmatchcase(finding.object_fqn, glob) for glob in self.objects)


class Policy(BaseModel):
    """`[[policy]]` in the team config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    target: str = Field(min_length=1, description="a target named in [targets.NAME]")
    principals: list[str] = Field(min_length=1)
    min_dss: int = Field(default=3, ge=1, le=4)
    schemas: list[str] = Field(default_factory=list, description="only these schemas; every schema when empty")
    sev: int = Field(default=2, ge=MIN_SEV, le=MAX_SEV)
    playbook: str | None = None
    exception: list[PolicyException] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("must be a slug like 'no-broad-sensitive' (lowercase letters, digits, - and _)")
        return value

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        names = [PUBLIC if p.strip().upper() == PUBLIC else p.strip() for p in value]
        if not all(names):
            raise ValueError("a principal name cannot be empty")
        return list(dict.fromkeys(names))

    @property
    def key(self) -> str:
        """How the store names the (policy, target) pair it schedules and attaches incidents to."""
        return f"{self.name}@{self.target}"


def policy_problems(policies: list[Policy], targets: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """What one policy cannot know alone: (location in the config, problem) for duplicate names and unknown targets."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    seen: dict[str, int] = {}
    for index, policy in enumerate(policies):
        if policy.name in seen:
            problems.append(
                (("policy", index, "name"), f"{policy.name!r} is already the name of policy [{seen[policy.name]}]")
            )
        seen.setdefault(policy.name, index)
        if policy.target not in targets:
            known = ", ".join(sorted(targets)) or "none"
            problems.append(
                (("policy", index, "target"), f"no target named {policy.target!r} in [targets] (known: {known})")
            )
    return problems


State = Literal["holds", "violated", "error"]


@dataclass(frozen=True)
class Verdict:
    """What one run of one policy found. `findings` are the violations: not exempted by a live exception."""

    policy: Policy
    findings: list[Finding]
    exempted: int = 0
    expired: list[PolicyException] = field(default_factory=list)  # expired exceptions that would have covered a finding
    expiring: list[PolicyException] = field(default_factory=list)  # live exceptions in use

    @property
    def state(self) -> State:
        return "violated" if self.findings else "holds"

    @property
    def objects(self) -> int:
        return len({f.object_fqn for f in self.findings})


def evaluate(policy: Policy, findings: list[Finding], now: datetime) -> Verdict:
    """Of the findings on objects rated `min_dss` or more (or unrated), those a live exception covers are exempt;
    the rest, and those only an expired exception covers, violate. The scan may hold less sensitive findings too
    (the broadening digest counts every DSS): they are not this policy's business."""
    findings = [f for f in findings if f.dss is None or f.dss >= policy.min_dss]
    live = [e for e in policy.exception if not e.expired(now)]
    dead = [e for e in policy.exception if e.expired(now)]
    violations: list[Finding] = []
    exempted = 0
    used: set[int] = set()
    lapsed: set[int] = set()
    for finding in findings:
        covering = next((i for i, e in enumerate(live) if e.covers(finding)), None)
        if covering is not None:
            exempted += 1
            used.add(covering)
            continue
        violations.append(finding)
        lapsed.update(i for i, e in enumerate(dead) if e.covers(finding))
    return Verdict(policy, violations, exempted, [dead[i] for i in sorted(lapsed)], [live[i] for i in sorted(used)])
