"""Apply: bounded batches of one statement shape, halved on out-of-shared-memory, bisected to the refused object, read back."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from itertools import groupby

import psycopg

from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import TargetUnreachable
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.pool import RevokeSession, RevokeSessions
from sevtool.targets.postgres.sql import (
    _COLUMN_ACL,
    _DEFAULT_ACL,
    _MEMBERSHIP,
    _RELATION_STILL_GRANTED,
    Quoted,
    family_of,
    json_list,
    statements,
    usage_while_acting_as,
)

DEFAULT_BATCH_SIZE = 1000
NOT_REVOKED = "01006"  # SQLSTATE of "WARNING: no privileges could be revoked"

BatchCallback = Callable[[list[ActionResult]], None]


class RevokeApplier(RevokeSessions):
    """Apply half of PostgresRevoker."""

    # ------------------------------------------------------------------------------------------
    # reading grants back

    def _still_granted(self, conn: psycopg.Connection, actions: list[Action]) -> set[int]:
        """Indexes (into `actions`, a batch of one statement shape) whose grant item still holds one of its privileges."""
        if not actions:
            return set()
        family = family_of(actions[0])
        if family == "membership":
            rows = conn.execute(
                _MEMBERSHIP, [json_list(a.object_name for a in actions), json_list(a.grantee for a in actions)]
            ).fetchall()
            if conn.info.server_version < 160000:  # one row per member and role, whoever granted it
                return {row[0] - 1 for row in rows}
            return {row[0] - 1 for row in rows if row[1] == actions[row[0] - 1].grantor}  # from 16: one row per grantor
        if family == "relation":
            first = actions[0]
            oids = self._role_oid_cache(conn, {first.grantee, first.grantor})
            if first.grantee not in oids or first.grantor not in oids:
                return set()  # a dropped role holds no grant
            rows = conn.execute(
                _RELATION_STILL_GRANTED,
                {
                    "nsp": json_list(a.schema_name for a in actions),
                    "rel": json_list(a.object_name for a in actions),
                    "privs": first.privileges,
                    "grantee": oids[first.grantee],
                    "grantor": oids[first.grantor],
                },
            ).fetchall()
            return {row[0] - 1 for row in rows}
        if family == "column":
            rows = conn.execute(
                _COLUMN_ACL,
                [
                    json_list(a.schema_name for a in actions),
                    json_list(a.object_name for a in actions),
                    json_list(a.column for a in actions),
                ],
            ).fetchall()
            items: dict[int, list[tuple[str, str, str, bool]] | None] = {
                row[0] - 1: row[3] for row in rows
            }  # (grantee, grantor, privilege, grantable)
        else:
            rows = conn.execute(
                _DEFAULT_ACL, [json_list(a.grantor for a in actions), json_list(a.schema_name for a in actions)]
            ).fetchall()
            items = {row[0] - 1: row[2] for row in rows}
        present: set[int] = set()
        for i, action in enumerate(actions):
            wanted = set(action.privileges)
            if any(g == action.grantee and r == action.grantor and p in wanted for g, r, p, _ in items.get(i) or []):
                present.add(i)
        return present

    # ------------------------------------------------------------------------------------------
    # apply

    def apply(self, actions: list[Action], on_batch: BatchCallback, *, batch_size: int | None = None) -> None:
        """Run actions in bounded batches of one statement shape; report each batch once read back.

        Calls with disjoint objects may run side by side from several threads (each holds its own connection).
        """
        size = batch_size or DEFAULT_BATCH_SIZE
        if manual := [a for a in actions if a.kind == ActionKind.MANUAL]:  # nothing to run: the step is a human's
            on_batch([ActionResult(seq=a.seq, status=ActionStatus.MANUAL, message=a.reason) for a in manual])
            actions = [a for a in actions if a.kind != ActionKind.MANUAL]
        with self._revoke_connection() as session:
            for _, shape in groupby(actions, key=lambda a: a.batch_key):
                group = list(shape)
                start = 0
                while start < len(group):
                    limit = min(size, self._batch_limit or size)
                    self._apply_bounded(session, group[start : start + limit], on_batch)
                    start += limit

    def _apply_bounded(self, session: RevokeSession, batch: list[Action], on_batch: BatchCallback) -> None:
        conn = session.conn
        try:
            results = self._apply_batch(session, batch)
        except psycopg.errors.OutOfMemory as exc:
            if len(batch) == 1:
                on_batch([ActionResult(seq=batch[0].seq, status=ActionStatus.FAILED, message=str(exc).strip())])
                return
            # The server's shared memory (lock table) is smaller than this batch: stay smaller for the rest of the run.
            self._batch_limit = min(self._batch_limit or len(batch), max(1, len(batch) // 2))
            self._bisect(session, batch, on_batch)
            return
        except psycopg.Error as exc:
            if conn.broken:
                raise TargetUnreachable(
                    f"lost the connection to {getattr(self, 'display', 'the target')} while revoking: {exc}".strip(),
                    hint="run the same command again: the ledger resumes where it stopped",
                ) from None
            if len(batch) == 1:
                on_batch([ActionResult(seq=batch[0].seq, status=ActionStatus.FAILED, message=str(exc).strip())])
                return
            self._bisect(session, batch, on_batch)  # find the object the server refused; the rest still go through
            return
        on_batch(results)

    def _bisect(self, session: RevokeSession, batch: list[Action], on_batch: BatchCallback) -> None:
        half = len(batch) // 2
        self._apply_bounded(session, batch[:half], on_batch)
        self._apply_bounded(session, batch[half:], on_batch)

    def _apply_batch(self, session: RevokeSession, batch: list[Action]) -> list[ActionResult]:
        conn, notices = session.conn, session.notices
        with conn.transaction():
            present = self._still_granted(conn, batch)
            todo = batch if len(present) == len(batch) else [a for i, a in enumerate(batch) if i in present]
            notices.clear()
            if todo:
                q = Quoted()
                holder = todo[0].grantor if todo[0].kind == ActionKind.REVOKE_AS_GRANTOR else None
                with usage_while_acting_as(conn, holder, (a.schema_name for a in todo), q) if holder else nullcontext():
                    for statement in statements(todo, q):
                        conn.execute(statement)
            remaining = self._still_granted(conn, todo)
            warnings = [(sqlstate, message or "") for sqlstate, message, severity in notices if severity == "WARNING"]
        results = {
            action.seq: ActionResult(seq=action.seq, status=ActionStatus.SKIPPED, message="already absent")
            for i, action in enumerate(batch)
            if i not in present
        }
        warned_of = _attribute(todo, warnings) if warnings else {}
        for i, action in enumerate(todo):
            warned = [f"server warning {sqlstate}: {message}" for sqlstate, message in warned_of.get(i, [])]
            if i in remaining or any(sqlstate == NOT_REVOKED for sqlstate, _ in warned_of.get(i, [])):
                detail = "; ".join(warned) or "the grant is still there after REVOKE"
                if (
                    i in remaining
                    and not warned
                    and action.kind in (ActionKind.REVOKE_TABLE, ActionKind.REVOKE_VIEW, ActionKind.REVOKE_COLUMN)
                ):
                    detail += (
                        f" (if {action.grantor} is not the owner, it is a grant-option holder's grant: "
                        f"revoke it as {action.grantor}, or revoke their grant option with CASCADE)"
                    )
                results[action.seq] = ActionResult(seq=action.seq, status=ActionStatus.FAILED, message=detail)
            else:
                results[action.seq] = ActionResult(
                    seq=action.seq, status=ActionStatus.APPLIED, message="; ".join(warned)
                )
        return [results[a.seq] for a in batch]


def _attribute(batch: list[Action], warnings: list[tuple[str | None, str]]) -> dict[int, list[tuple[str | None, str]]]:
    """Each server WARNING goes to the actions whose object it names; one that names none goes to every action."""
    out: dict[int, list[tuple[str | None, str]]] = {}
    for sqlstate, message in warnings:
        named: list[int | None] = []  # None: a column warning repeating its table's, taken and not repeated
        for i, a in enumerate(batch):
            if a.kind == ActionKind.REVOKE_MEMBERSHIP:
                mine = f'role "{a.grantee}"' in message and f'role "{a.object_name}"' in message
            elif a.column is not None:
                mine = message.endswith(f'column "{a.column}" of relation "{a.object_name}"')
            else:  # a table-level REVOKE also warns for every column of the table: those repeat the table's warning
                mine = message.endswith((f'for "{a.object_name}"', f'of relation "{a.object_name}"'))
                if mine and message.endswith(f'of relation "{a.object_name}"'):
                    named.append(None)  # taken, not repeated
                    continue
            if mine:
                named.append(i)
        for index in named or range(len(batch)):
            if index is not None:
                out.setdefault(index, []).append((sqlstate, message))
    return out
