"""Target plug-ins: how sevtool learns which data platforms it can work on.

A target kind is a package that registers one `TargetPlugin` in the `sevtool.targets` entry-point group
(see docs/adding-a-target.md). The declaration is cheap to import: it names the kind, validates its
`[targets.NAME]` tables, recognises a bare `--target` spec, says what the kind can do and what each of
its action kinds closes; the target itself (and its driver) is imported only when a target is opened.

Nothing outside a kind's own package names a kind: settings, the registry, the store and the services
ask the declarations found here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from sevtool.core.plan import Closes
from sevtool.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from sevtool.core.plan import Action
    from sevtool.core.table_stats import TableStats
    from sevtool.targets.base import Target

GROUP = "sevtool.targets"


@dataclass(frozen=True, slots=True)
class ActionKindSpec:
    name: str  # the `Action.kind` the plug-in's plans use, unique across plug-ins
    closes: Closes
    containers: frozenset[str] = frozenset()  # object kinds on which the action closes everything under it instead

    def closes_on(self, object_kind: str) -> Closes:
        return Closes.CONTAINER if object_kind in self.containers else self.closes


@dataclass(frozen=True, slots=True)
class Capabilities:
    live_probe: bool  # `Target.probe` can read as a canary member; without it a check cannot be asked to probe


@dataclass(frozen=True, slots=True)
class AuditFacts:
    """What a target says about its audit trail for `sevtool evidence`."""

    source_id: str  # whose records count: PostgreSQL's database, Unity Catalog's metastore ('' if unknown)
    members: set[str]  # roles or users who are members of the principals now
    everyone: bool  # every reader is a member (a principal such as Databricks' `account users`)
    notes: list[str]  # what the report must say about these facts (membership it cannot tell, ...)
    source: str  # what records the reads, as the answers' reasons name it ("pgaudit")
    table_ids: dict[str, str]  # id -> full name, where audit rows name tables by id


@dataclass(frozen=True, slots=True)
class AuditTrail:
    """Where a kind's reads are recorded: the evidence readers know `format`; the CLI names the files with `option`."""

    format: str  # "pgaudit-log", "databricks-audit-table": a format sevtool.evidence reads
    option: str  # "--log", "--uc-audit"
    described: str  # "pgaudit server logs", for errors and hints
    facts: Callable[[Target, list[str], list[str]], AuditFacts]  # (target, principals, in-scope objects)


@dataclass(frozen=True, slots=True)
class SpecSyntax:
    """A bare `--target` spec of this kind (a DSN, a URL), for targets not named in the team config."""

    recognises: Callable[[str], bool]  # cheap: no driver import
    open: Callable[[str], Target]
    example: str  # shown in hints


@dataclass(frozen=True, slots=True)
class TargetPlugin:
    kind: str  # the `kind =` of a [targets.NAME] table, and `Target.kind`
    title: str  # how people call the platform ("PostgreSQL")
    config: type[BaseModel]  # validates a [targets.NAME] table, `kind` left out
    from_config: Callable[[str, Any], Target]  # (name, an instance of `config`) -> Target; imports the driver
    capabilities: Capabilities
    action_kinds: tuple[ActionKindSpec, ...]
    config_example: str  # a [targets.NAME] body that works, for hints
    spec: SpecSyntax | None = None  # None: only [targets.NAME] tables open it
    audit: AuditTrail | None = None  # None: `sevtool evidence` has no source for this kind
    # (target, in-scope objects) -> their read counters now: evidence's second source. None: the kind keeps none.
    table_stats: Callable[[Target, list[str]], TableStats] | None = None


@cache
def plugins() -> dict[str, TargetPlugin]:
    """Every installed target plug-in by kind (entry points are read once per process)."""
    found: dict[str, TargetPlugin] = {}
    for point in entry_points(group=GROUP):
        plugin = point.load()
        if not isinstance(plugin, TargetPlugin):
            raise ConfigError(
                f"entry point {point.name} = {point.value} in group {GROUP} is not a TargetPlugin",
                hint="it must name a sevtool.targets.plugin.TargetPlugin instance",
            )
        if plugin.kind in found and found[plugin.kind] is not plugin:
            raise ConfigError(
                f"two installed packages declare the target kind {plugin.kind!r} ({point.value})",
                hint="uninstall one of them",
            )
        found[plugin.kind] = plugin
    return found


def plugin(kind: str) -> TargetPlugin:
    found = plugins()
    if kind not in found:
        raise ConfigError(f"no installed target plug-in handles the kind {kind!r}", hint=known_kinds())
    return found[kind]


def known_kinds() -> str:
    return "known kinds: " + (
        ", ".join(sorted(plugins())) or f"none (no package registers the {GROUP} entry point group)"
    )


@cache
def action_kinds() -> dict[str, ActionKindSpec]:
    """Every declared action kind by name; one name means one thing whichever plug-in plans it."""
    found: dict[str, ActionKindSpec] = {}
    for declared in plugins().values():
        for spec in declared.action_kinds:
            if found.setdefault(spec.name, spec) != spec:
                raise ConfigError(
                    f"the action kind {spec.name!r} is declared twice with different meanings "
                    f"(target kind {declared.kind!r} is one)",
                    hint="action kind names must be unique across target plug-ins",
                )
    return found


def closes(kind: str, object_kind: str) -> Closes:
    """What an applied action of this kind closes. A kind no installed plug-in declares (its package was
    removed since) is taken to close the one object it names, the narrowest claim."""
    spec = action_kinds().get(kind)
    return spec.closes_on(object_kind) if spec else Closes.OBJECT


def membership_kinds(kinds: Iterable[str]) -> list[str]:
    """Of these action kinds, those that can close a role (undo restores them first; see undo_phases)."""
    declared = action_kinds()
    return [k for k in kinds if k in declared and declared[k].closes is Closes.ROLE]


def undo_phases(actions: Iterable[Action]) -> list[list[Action]]:
    """Undo order: memberships are restored first, on their own, since a grant being restored may need what
    a membership gives its grantor; then everything else."""
    first: list[Action] = []
    rest: list[Action] = []
    for action in actions:
        (first if closes(action.kind, action.object_kind) is Closes.ROLE else rest).append(action)
    return [first, rest]
