"""Playbooks: the ordered steps of a response, which SEV levels require them, and what a responder reads.

A playbook is a TOML file validated with pydantic. A malformed one is reported as `file:line: field:
problem`: syntax errors carry tomllib's line, schema errors are located by finding the offending key
(or the table that misses it) in the TOML text. Whether a step is done is derived from the timeline.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from sevtool.core.severity import MAX_SEV, MIN_SEV
from sevtool.core.timeline import Event
from sevtool.errors import ConfigError


class StepKind(StrEnum):
    DECLARE = "declare"
    ASSIGN_ROLES = "assign_roles"
    SCAN = "scan"
    REVOKE = "revoke"
    VERIFY = "verify"
    WATCH = "watch"
    COMMUNICATE = "communicate"
    POSTMORTEM = "postmortem"


# Timeline evidence that a step of each kind happened. `note:KIND` matches a note of that note kind;
# `check:clean` a check that found no access (any check, clean or not, is `check`); `apply:ok` an apply
# that closed something and failed nowhere (any apply, a re-run with nothing to do included, is `apply`).
DEFAULT_DONE_WHEN: dict[StepKind, tuple[str, ...]] = {
    StepKind.DECLARE: ("declared",),
    StepKind.ASSIGN_ROLES: ("role_assigned",),
    StepKind.SCAN: ("scan",),
    StepKind.REVOKE: ("apply:ok",),
    StepKind.VERIFY: ("check:clean",),  # "verify no access remains": a check that found access does not show that
    StepKind.WATCH: (),  # done when the re-check schedule lets the incident resolve: see `progress(settled=...)`
    StepKind.COMMUNICATE: ("note:update", "note:comms", "communicated"),
    StepKind.POSTMORTEM: ("postmortem_exported",),
}

_SLUG = re.compile(r"^[a-z][a-z0-9-]*$")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="short slug, unique in the playbook")
    kind: StepKind
    title: str = Field(min_length=1)
    text: str = Field(min_length=1, description="what the responder is told to do")
    required_at: list[int] = Field(
        default_factory=lambda: list(range(MIN_SEV, MAX_SEV + 1)),
        description="SEV levels at which the step is required; optional at the others",
    )
    command: str | None = Field(default=None, description="the sevtool command that does it, shown to the responder")
    done_when: list[str] | None = Field(
        default=None, description="timeline event kinds (or note:KIND, check:clean, apply:ok) that complete it"
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("must be a lowercase slug like 'scan-scope'")
        return value

    @field_validator("required_at")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        bad = [v for v in value if not MIN_SEV <= v <= MAX_SEV]
        if bad:
            raise ValueError(f"SEV levels run from {MIN_SEV} to {MAX_SEV}, got {bad}")
        return sorted(set(value))

    def required(self, sev: int) -> bool:
        return sev in self.required_at

    @property
    def evidence_kinds(self) -> tuple[str, ...]:
        return tuple(self.done_when) if self.done_when else DEFAULT_DONE_WHEN[self.kind]


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str = Field(min_length=1)
    description: str = ""
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Playbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self


class StepProgressDict(TypedDict):
    id: str
    kind: str
    title: str
    required: bool
    done: bool
    done_at: str | None
    evidence_event: int | None
    command: str | None


@dataclass(frozen=True)
class StepProgress:
    step: Step
    required: bool
    done: bool
    done_at: datetime | None = None
    evidence_seq: int | None = None

    def as_dict(self) -> StepProgressDict:
        return {
            "id": self.step.id,
            "kind": self.step.kind.value,
            "title": self.step.title,
            "required": self.required,
            "done": self.done,
            "done_at": self.done_at.isoformat() if self.done_at else None,
            "evidence_event": self.evidence_seq,
            "command": self.step.command,
        }


# --- loading and locating errors -----------------------------------------------------------------

_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


TomlPath = tuple[str | int, ...]  # ('steps', 2, 'kind'): keys, and indexes into arrays of tables


def key_lines(text: str) -> dict[TomlPath, int]:
    """Map each table and key path in TOML text to its 1-based line: ('steps', 2, 'kind') -> 31.

    Good enough for the playbook and team config shapes (top-level keys, [[steps]], [[policy]] and their
    [[policy.exception]] tables); anything it cannot place
    falls back to the nearest enclosing table.
    """
    lines: dict[TomlPath, int] = {}
    counters: dict[TomlPath, int] = {}
    current: TomlPath = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        # Lines inside a multi-line string are text, not keys.
        quotes = line.count('"""') + line.count("'''")
        if in_multiline:
            in_multiline = quotes % 2 == 0
            continue
        if quotes % 2 == 1:
            in_multiline = True
        table = _TABLE.match(line)
        if table:
            parts = [part.strip().strip("\"'") for part in table.group(2).split(".")]
            # [[policy.exception]] belongs to the latest [[policy]]: ('policy', 1, 'exception', 0).
            name: TomlPath = ()
            for depth, part in enumerate(parts):
                name = (*name, part)
                if depth < len(parts) - 1 and name in counters:
                    name = (*name, counters[name])
            if table.group(1) == "[[":
                index = counters.get(name, -1) + 1
                counters[name] = index
                current = (*name, index)
            else:
                current = name
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*current, key.group(1)), number)
    return lines


def locate(lines: dict[TomlPath, int], loc: TomlPath) -> int | None:
    """The line of the longest prefix of `loc` that appears in the text."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _field_name(loc: TomlPath) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_playbook(text: str, source: str, *, name: str) -> Playbook:
    """Parse and validate; errors read `source:line: field: problem`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{source}:{match.group(1)}" if match else source
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "invalid TOML"
        raise ConfigError(f"{where}: TOML syntax: {problem}", hint="fix the syntax at that line") from None
    lines = key_lines(text)
    if "name" in raw and raw["name"] != name:
        raise ConfigError(
            f"{source}:{locate(lines, ('name',))}: name: {raw['name']!r} does not match the file name {name!r}",
            hint="a playbook is referred to by its file name; make them agree",
        )
    duplicate = _duplicate_step(raw)
    if duplicate is not None:
        index, step_id = duplicate
        raise ConfigError(
            f"{source}:{locate(lines, ('steps', index, 'id'))}: steps[{index}].id: {step_id!r} is already the id of an earlier step",
            hint="step ids must be unique",
        )
    try:
        return Playbook.model_validate({**raw, "name": name})
    except ValidationError as exc:
        problems = [_problem(err, lines, source) for err in exc.errors()]
        raise ConfigError(
            "; ".join(problems), hint="see `sevtool playbook show data-exposure` for a valid playbook"
        ) from None


def _problem(err: ErrorDetails, lines: dict[TomlPath, int], source: str) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "missing":
        problem = "is required but missing"
    elif err["type"] == "extra_forbidden":
        problem = "is not a known field"
    else:
        problem = err["msg"].removeprefix("Value error, ")
    line = locate(lines, loc)
    return (
        f"{source}:{line}: {_field_name(loc) or 'playbook'}: {problem}"
        if line
        else f"{source}: {_field_name(loc) or 'playbook'}: {problem}"
    )


def _duplicate_step(raw: dict[str, Any]) -> tuple[int, str] | None:  # raw TOML, not validated yet
    seen: set[object] = set()
    steps = raw.get("steps")
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        step_id = step.get("id") if isinstance(step, dict) else None
        if isinstance(step_id, str) and step_id in seen:
            return index, step_id
        seen.add(step_id)
    return None


# --- progress from the timeline ------------------------------------------------------------------


def _evidence_index(events: list[Event]) -> dict[str, Event]:
    """The first event of each kind (and of each note kind, as 'note:KIND'; the first clean check, 'check:clean';
    the first apply that closed something without a failure, 'apply:ok'), in time order."""
    first: dict[str, Event] = {}
    for event in sorted(events, key=lambda e: (e.at, e.seq)):
        first.setdefault(event.kind, event)
        if event.kind == "note" and event.data.get("note_kind"):
            first.setdefault(f"note:{event.data['note_kind']}", event)
        if event.kind == "check" and event.data.get("clean") is True:
            first.setdefault("check:clean", event)
        if event.kind == "apply":
            counts = event.data.get("counts") or {}
            if not counts.get("failed") and counts.get("applied", 0) + counts.get("skipped", 0):
                first.setdefault("apply:ok", event)
    return first


def progress(
    playbook: Playbook,
    sev: int,
    events: list[Event],
    *,
    commander: str | None = None,
    settled: dict[StepKind, datetime | None] | None = None,
) -> list[StepProgress]:
    """Which steps are done, each with the timeline event that shows it.

    `settled` names step kinds known done from state the timeline alone does not show (the watch
    step is done when the re-check schedule is complete), with when, if known.
    """
    first = _evidence_index(events)
    settled = settled or {}
    out = []
    for step in playbook.steps:
        hits = [first[k] for k in step.evidence_kinds if k in first]
        evidence = min(hits, key=lambda e: (e.at, e.seq)) if hits else None
        # A commander named at declaration counts as roles assigned: the declared event shows it.
        if evidence is None and step.kind == StepKind.ASSIGN_ROLES and commander and "declared" in first:
            evidence = first["declared"]
        if evidence is None and step.kind in settled:
            out.append(StepProgress(step, step.required(sev), True, settled[step.kind]))
            continue
        out.append(
            StepProgress(
                step,
                step.required(sev),
                evidence is not None,
                evidence.at if evidence else None,
                evidence.seq if evidence else None,
            )
        )
    return out


def next_step(steps: list[StepProgress]) -> StepProgress | None:
    """The first required step not done yet; once those are done, the first optional one left."""
    for wanted in (True, False):
        for item in steps:
            if item.required == wanted and not item.done:
                return item
    return None
