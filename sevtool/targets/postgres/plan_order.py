"""The plan's order and numbers, with its actions made a chunk at a time.

Actions run by statement shape (kind, grantee, grantor, privileges: a handful), then by object within each shape;
an action's seq is its place in that order, so nothing is numbered until every finding is drafted. Until then a
relation's draft waits in its shape's group as a small tuple (a 200,000-table plan holds 200,000 of them), and
drafts become Actions a chunk at a time as the plan is journaled: the whole plan is never alive as Actions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter

from sevtool.core.plan import Action, BatchKey
from sevtool.targets.postgres.blast import Screen
from sevtool.targets.postgres.drafts import KIND_ORDER, ActionDraft, draft_batch_key, object_order
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.sql import Quoted, statements, table_statement

# A relation's draft: (schema, name, object kind, prior ACL text, prior column ACLs or None, reason). The rest of
# the action (kind, grantee, grantor, privileges) is the key of the shape it waits under.
Compact = tuple[str, str, str, str | None, dict[str, str] | None, str]
Draft = ActionDraft | Compact
Numbered = tuple[int, BatchKey, Draft]

_ACTIONS = TypeAdapter(list[Action])


class Shapes:
    """Drafts grouped by statement shape, as they are drafted."""

    def __init__(self) -> None:
        self._by_shape: dict[BatchKey, list[Draft]] = {}

    def add(self, draft: ActionDraft) -> None:
        self._by_shape.setdefault(draft_batch_key(draft), []).append(draft)

    def add_relation(self, shape: BatchKey, draft: Compact) -> None:
        """A table-level relation draft, its strings shared with the catalog rows."""
        self._by_shape.setdefault(shape, []).append(draft)

    def ordered(self, chunk: int) -> Ordered:
        groups = [
            (key, sorted(self._by_shape.pop(key), key=_object_order))
            for key in sorted(self._by_shape, key=lambda k: (KIND_ORDER[k[0]], k))
        ]
        return Ordered(groups, chunk)


class Ordered:
    """Every draft in plan order: counted, screened for a blast radius, then made into numbered Actions `chunk`
    at a time."""

    def __init__(self, groups: list[tuple[BatchKey, list[Draft]]], chunk: int):
        self._groups, self._chunk = groups, chunk
        self.count = sum(len(group) for _, group in groups)
        self.shapes = [key for key, _ in groups]
        self._quoted = Quoted()
        # Composed once per shape: the text before and after the table's name (None: composed per action).
        self._statement: dict[BatchKey, tuple[str, str] | None] = {}
        for key, group in groups:
            first = _expanded(key, group[0])
            self._statement[key] = table_statement(
                first["kind"],
                first.get("column"),
                first["privileges"],
                first["grantee"],
                first["grantor"],
                self._quoted,
            )

    def numbered(self) -> Iterator[Numbered]:
        seq = 0
        for key, group in self._groups:
            for draft in group:
                seq += 1
                yield seq, key, draft

    def screened(self, screen: Screen) -> list[Action]:
        """The actions `screen` says may take access from someone else, and every membership removal (the blast
        radius weighs only these)."""
        picked: list[Numbered] = []
        seq = 0
        for key, group in self._groups:
            whole = True if key[0] == ActionKind.REVOKE_MEMBERSHIP else screen.shape(key)
            if whole is None:
                picked += [(seq + n, key, d) for n, d in enumerate(group, 1) if screen.action(*_screened_fields(d))]
            elif whole:
                picked += [(seq + n, key, d) for n, d in enumerate(group, 1)]
            seq += len(group)
        return self.actions(picked)

    def chunks(self, made: dict[int, Action]) -> Iterator[list[Action]]:
        """Every action in plan order, `chunk` at a time; the ones already `made` (with their blast radius) as they are."""
        batch: list[Numbered] = []
        for item in self.numbered():
            batch.append(item)
            if len(batch) >= self._chunk:
                yield [made.pop(a.seq, a) for a in self.actions(batch)]
                batch = []
        if batch:
            yield [made.pop(a.seq, a) for a in self.actions(batch)]

    def actions(self, numbered: list[Numbered]) -> list[Action]:
        """Drafts validated into Actions in one call (cheaper than constructing each), with their statements."""
        drafts: list[ActionDraft] = []
        for seq, key, draft in numbered:
            expanded = _expanded(key, draft)
            if shape := self._statement[key]:
                name = self._quoted.qualified(expanded.get("schema_name", ""), expanded["object_name"])
                expanded["sql"] = f"{shape[0]}{name}{shape[1]}"
            expanded["seq"] = seq
            drafts.append(expanded)
        actions = _ACTIONS.validate_python(drafts)
        for action in actions:
            if not action.sql:
                action.sql = "; ".join(statements([action], self._quoted))
        return actions


def _object_order(draft: Draft) -> tuple[str, str, str]:
    return object_order(draft) if isinstance(draft, dict) else (draft[0], draft[1], "")


def _expanded(key: BatchKey, draft: Draft) -> ActionDraft:
    if isinstance(draft, dict):
        return draft
    schema, name, object_kind, prior, columns, reason = draft
    kind: Any = key[0]
    return {
        "kind": kind,
        "grantee": key[1],
        "grantor": key[2],
        "privileges": list(key[3]),
        "sql": "",
        "reason": reason,
        "object_kind": object_kind,
        "schema_name": schema,
        "object_name": name,
        "prior_state": prior,
        "prior_columns": columns or {},
    }


def _screened_fields(draft: Draft) -> tuple[str, str, str | None, bool, str | None]:
    """(schema, name, column, has column ACLs, prior ACL text) of a draft, for a Screen."""
    if isinstance(draft, dict):
        return (
            draft.get("schema_name", ""),
            draft["object_name"],
            draft.get("column"),
            bool(draft.get("prior_columns")),
            draft.get("prior_state"),
        )
    return draft[0], draft[1], None, bool(draft[4]), draft[3]
