"""Access broadening: a compact digest of who reads how much, and what changed since the last one.

A guard run keeps one digest per (policy, target): per principal, how many sensitive objects it reads at
each DSS and through which roles; per schema, how many objects PUBLIC reads. Comparing two digests finds
broadening before any rule is broken: a jump in readable objects (by count or by share), a role the
principal newly reads through, new PUBLIC grants in a watched schema. Counts, not object lists, so a
digest of 45,000 findings stays a few hundred bytes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from sevtool.core.exposure import AccessPath, Finding


class Digest(TypedDict):
    objects: dict[str, dict[str, int]]  # principal -> DSS ("1".."4", "unrated") -> readable objects
    roles: dict[str, list[str]]  # principal -> roles it reads through (sorted)
    public: dict[str, int]  # schema -> objects granted to PUBLIC


class BroadeningRule(BaseModel):
    """`[guard]` in the team config. A threshold left out (or 0) is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_dss: int = Field(
        default=1, ge=1, le=4, description="objects rated at least this (or unrated) count as sensitive here"
    )
    objects: int = Field(default=100, ge=0, description="a principal reads at least this many more sensitive objects")
    percent: float = Field(default=20.0, ge=0, description="... or this much more, in percent of what it read before")
    public_schemas: list[str] = Field(
        default_factory=list, description="schemas whose new PUBLIC grants are recorded; every schema when empty"
    )


def digest(findings: list[Finding]) -> Digest:
    objects: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    roles: dict[str, set[str]] = defaultdict(set)
    public: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        objects[f.principal][_dss_key(f.dss)].add(f.object_fqn)
        if f.path == AccessPath.ROLE:
            roles[f.principal].update(f.route or (f.grantee,))
        elif f.path == AccessPath.PUBLIC:
            public[f.schema_name].add(f.object_fqn)
    return {
        "objects": {p: {label: len(fqns) for label, fqns in sorted(by.items())} for p, by in sorted(objects.items())},
        "roles": {p: sorted(r) for p, r in sorted(roles.items())},
        "public": {schema: len(fqns) for schema, fqns in sorted(public.items())},
    }


def _dss_key(dss: int | None) -> str:
    return str(dss) if dss else "unrated"


def _sensitive(by_dss: dict[str, int] | None, min_dss: int) -> int:
    return sum(count for key, count in (by_dss or {}).items() if key == "unrated" or int(key) >= min_dss)


def broadened(before: Digest | None, after: Digest, rule: BroadeningRule) -> list[dict[str, Any]]:
    """What broadened from `before` to `after`, as data (the edges word it); [] on the first run."""
    if before is None:
        return []
    changes: list[dict[str, Any]] = []
    for principal, by_dss in after["objects"].items():
        old, new = _sensitive(before["objects"].get(principal), rule.min_dss), _sensitive(by_dss, rule.min_dss)
        grew = new - old
        by_count = rule.objects > 0 and grew >= rule.objects
        by_share = rule.percent > 0 and grew > 0 and (old == 0 or grew * 100 >= rule.percent * old)
        if by_count or by_share:
            old_by = before["objects"].get(principal, {})
            changes.append(
                {
                    "kind": "objects",
                    "principal": principal,
                    "before": old,
                    "after": new,
                    "by_dss": {
                        key: [old_by.get(key, 0), count] for key, count in by_dss.items() if count != old_by.get(key, 0)
                    },
                }
            )
    for principal, roles in after["roles"].items():
        new_roles = sorted(set(roles) - set(before["roles"].get(principal, [])))
        if new_roles:
            changes.append({"kind": "roles", "principal": principal, "new_roles": new_roles})
    for schema, count in after["public"].items():
        if rule.public_schemas and schema not in rule.public_schemas:
            continue
        old = before["public"].get(schema, 0)
        if count > old:
            changes.append({"kind": "public", "schema": schema, "before": old, "after": count})
    return changes
