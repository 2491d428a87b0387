"""SEV levels 0-5 (0 = most critical): what each means, how often to update, when to re-check.

Defaults ship here; a team overrides any field per level in its TOML config under [sev.N].
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pydantic import BaseModel, Field, ValidationError, field_validator

from sevtool.core.timeparse import parse_duration
from sevtool.errors import ConfigError, UsageError

MIN_SEV, MAX_SEV = 0, 5
# Above the 45,000-table exposure this tool is built for, so the drill and the benchmark run unguarded; a plan
# larger than that is more likely a scope that went wrong (a missing --schema) than an incident.
DEFAULT_MAX_ACTIONS = 50_000


class SevLevel(BaseModel):
    level: int = Field(ge=MIN_SEV, le=MAX_SEV)
    label: str
    meaning: str
    update_every: str = Field(description="stakeholder update cadence, e.g. 30m")
    recheck: list[str] = Field(description="verification re-check offsets from the first fix, e.g. 0m, 15m, 1h")
    page: list[str] = Field(default_factory=list, description="who is paged")
    max_actions: int = Field(
        default=DEFAULT_MAX_ACTIONS,
        ge=1,
        description="the largest revocation plan made or applied without --max-actions",
    )
    access_max: str = Field(default="24h", description="the longest just-in-time access exception, e.g. 8h")
    access_approver: bool = Field(default=False, description="whether an access exception needs --approver")

    @field_validator("update_every")
    @classmethod
    def _cadence(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("recheck")
    @classmethod
    def _schedule(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one re-check")
        offsets = [parse_duration(item) for item in value]
        if offsets != sorted(offsets):
            raise ValueError("re-check offsets must be in increasing order")
        return value

    @field_validator("access_max")
    @classmethod
    def _access_max(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @property
    def access_max_duration(self) -> timedelta:
        return parse_duration(self.access_max)

    @property
    def recheck_offsets(self) -> list[timedelta]:
        return [parse_duration(item) for item in self.recheck]

    @property
    def update_cadence(self) -> timedelta:
        return parse_duration(self.update_every)


DEFAULT_LEVELS: dict[int, SevLevel] = {
    level.level: level
    for level in [
        SevLevel(
            level=0,
            label="SEV 0 - critical",
            meaning="Broad exposure of the most sensitive data (DSS 4) to many people or outside the company, still ongoing.",
            update_every="15m",
            recheck=["0m", "5m", "15m", "1h", "4h", "24h", "72h"],
            page=["security-oncall", "privacy-lead", "cto"],
            access_max="8h",
            access_approver=True,
        ),
        SevLevel(
            level=1,
            label="SEV 1 - major",
            meaning="Sensitive data (DSS 3-4) readable by a large internal population, or any external exposure.",
            update_every="30m",
            recheck=["0m", "15m", "1h", "4h", "24h", "72h"],
            page=["security-oncall", "privacy-lead"],
            access_max="8h",
            access_approver=True,
        ),
        SevLevel(
            level=2,
            label="SEV 2 - high",
            meaning="Sensitive data readable far beyond need-to-know inside the company (e.g. every employee).",
            update_every="1h",
            recheck=["0m", "15m", "1h", "4h", "24h"],
            page=["security-oncall"],
            access_max="8h",
            access_approver=True,
        ),
        SevLevel(
            level=3,
            label="SEV 3 - moderate",
            meaning="Limited-sensitivity data (DSS 1-2) over-shared, or a small group with excess access.",
            update_every="4h",
            recheck=["0m", "1h", "24h"],
            page=["data-platform-oncall"],
        ),
        SevLevel(
            level=4,
            label="SEV 4 - low",
            meaning="Minor over-grant, no sensitive data, fix is routine.",
            update_every="24h",
            recheck=["0m", "24h"],
            page=[],
        ),
        SevLevel(
            level=5,
            label="SEV 5 - informational",
            meaning="Near miss or tracking item; no exposure confirmed.",
            update_every="72h",
            recheck=["0m"],
            page=[],
        ),
    ]
}

RUBRIC = """\
Choosing a SEV (0 = most critical, 5 = least):
  data sensitivity   DSS 4 (keystrokes, screen content, private chats) -> SEV 0-1;  DSS 3 -> 1-2;  DSS 1-2 -> 3-4
  breadth of access  outside the company -> raise one level;  every employee -> SEV 2 or worse;  one team -> 3-4
  still ongoing?     yes -> raise one level until contained
If unsure, pick the more severe level: downgrading later is cheap, under-reacting is not."""


class SevPolicy(BaseModel):
    levels: dict[int, SevLevel]

    def level(self, sev: int) -> SevLevel:
        check_sev(sev)
        return self.levels[sev]

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, object] | None, *, source: str = "config") -> SevPolicy:
        """Merge `[sev.N]` tables over the defaults; unknown levels or fields are errors, not ignored."""
        levels = {n: lvl.model_copy() for n, lvl in DEFAULT_LEVELS.items()}
        for key, fields in (overrides or {}).items():
            try:
                number = int(key)
            except (TypeError, ValueError):
                raise ConfigError(f"{source}: [sev.{key}] is not a SEV level", hint="use 0-5") from None
            if number not in levels:
                raise ConfigError(f"{source}: [sev.{key}] is outside 0-5", hint="SEV levels are 0 (most critical) to 5")
            if not isinstance(fields, dict):
                raise ConfigError(f"{source}: [sev.{key}] must be a table")
            try:
                levels[number] = SevLevel.model_validate({**levels[number].model_dump(), **fields, "level": number})
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])
                raise ConfigError(f"{source}: sev.{key}.{field}: {err['msg']}") from None
        return cls(levels=levels)


def check_sev(sev: int) -> int:
    if not isinstance(sev, int) or not MIN_SEV <= sev <= MAX_SEV:
        raise UsageError(
            f"invalid SEV {sev!r}: SEV levels run from 0 (most critical) to 5",
            hint="see `sevtool declare --help` for the rubric",
        )
    return sev
