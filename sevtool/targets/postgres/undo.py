"""Undo: put back exactly what the apply removed, as the grantor that held it, and nothing else.

Work goes in dependency order, family by family: role memberships first (a restored grant may need the schema
USAGE a membership gives its grantor), then tables with their columns, then default privileges. Within an
object a grant-option holder gets its option back before the grants it made (see acl.merge).

Batches are bounded like apply's and a batch the server refuses is bisected down to the object it refuses, so
one bad object never fails its neighbours. Every result is read back: an action is undone only when every item
its apply removed is present again. What undo leaves as it is now (grants made after the plan, items already
back, grantors it could not act as) is drift, written into the action's message, so it reaches the ledger.
"""

from __future__ import annotations

import psycopg

from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import TargetUnreachable
from sevtool.targets.postgres.acl import Acl, Grant, Merge, merge, missing, parse_acl
from sevtool.targets.postgres.apply import DEFAULT_BATCH_SIZE, BatchCallback
from sevtool.targets.postgres.pool import RevokeSession, RevokeSessions
from sevtool.targets.postgres.roles import MembershipUndo, UndoIdentity
from sevtool.targets.postgres.sql import (
    Quoted,
    json_list,
    one_row,
    privilege_list,
    usage_while_acting_as,
)
from sevtool.targets.postgres.undo_units import Unit, prior_owner, units_of

FAMILY_ORDER = ("membership", "relation", "default")
MAX_NOTES = 6  # drift notes per message; the rest are counted

# Per table: does it exist, its owner, its ACL now (the implicit owner-only ACL spelled out).
_RELATIONS_NOW = """
SELECT want.i, c.oid IS NOT NULL, pg_get_userbyid(c.relowner), COALESCE(c.relacl, acldefault('r', c.relowner))::text
FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json)) WITH ORDINALITY AS want(nsp, rel, i)
LEFT JOIN pg_namespace n ON n.nspname = want.nsp
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel"""

_COLUMNS_NOW = """
SELECT want.i, a.attrelid IS NOT NULL, pg_get_userbyid(c.relowner), a.attacl::text
FROM ROWS FROM (json_array_elements_text(%(nsp)s::json), json_array_elements_text(%(rel)s::json), json_array_elements_text(%(col)s::json))
     WITH ORDINALITY AS want(nsp, rel, col, i)
LEFT JOIN pg_namespace n ON n.nspname = want.nsp
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = want.rel
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = want.col AND NOT a.attisdropped"""

# Schema '' means the role's global default privileges, whose absence means the built-in default.
_DEFAULTS_NOW = """
SELECT want.i, r.oid IS NOT NULL, want.role, COALESCE(d.defaclacl, CASE WHEN want.nsp = '' THEN acldefault('r', r.oid) END)::text
FROM ROWS FROM (json_array_elements_text(%(role)s::json), json_array_elements_text(%(nsp)s::json)) WITH ORDINALITY AS want(role, nsp, i)
LEFT JOIN pg_roles r ON r.rolname = want.role
LEFT JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r'
 AND d.defaclnamespace = CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END"""


class RevokeUndoer(MembershipUndo, RevokeSessions):
    """Undo half of PostgresRevoker."""

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        """Put back what these applied actions removed; report each object once read back.

        Calls for disjoint objects may run side by side from several threads (each holds its own connection).
        """
        units = units_of(actions)
        with self._revoke_connection() as session:
            if session.identity is None:  # a pooled connection serves many chunks: asked once per connection
                session.identity = self._undo_identity(session.conn)
            who = session.identity
            for family in FAMILY_ORDER:
                chosen = [u for u in units if u.family == family]
                start = 0
                while start < len(chosen):
                    size = min(
                        DEFAULT_BATCH_SIZE, self._batch_limit or DEFAULT_BATCH_SIZE
                    )  # an apply that ran out of locks lowered it
                    self._undo_bounded(session, who, chosen[start : start + size], on_batch)
                    start += size

    def _undo_identity(self, conn: psycopg.Connection) -> UndoIdentity:
        user, superuser, version = one_row(
            conn.execute(
                "SELECT current_user, rolsuper, current_setting('server_version_num')::int "
                "FROM pg_roles WHERE rolname = current_user"
            )
        )
        return {"user": user, "superuser": superuser, "version": version, "can_act_as": {}}

    def _can_act_as(self, conn: psycopg.Connection, who: UndoIdentity, role: str) -> bool:
        """Whether this connection may SET ROLE to `role` (to grant as it)."""
        if who["superuser"] or role == who["user"]:
            return True
        cache = who["can_act_as"]
        if role not in cache:
            how = "SET" if who["version"] >= 160000 else "MEMBER"
            row = conn.execute(
                f"SELECT pg_has_role(current_user, oid, '{how}') FROM pg_roles WHERE rolname = %s", [role]
            ).fetchone()
            cache[role] = bool(row and row[0])
        return cache[role]

    def _undo_bounded(
        self, session: RevokeSession, who: UndoIdentity, batch: list[Unit], on_batch: BatchCallback
    ) -> None:
        conn = session.conn
        for unit in batch:  # a bisected batch starts over: what a rolled-back attempt noted is void
            unit.error, unit.notes, unit.warnings = "", [], []
        try:
            with conn.transaction():
                session.notices.clear()
                self._restore(conn, who, batch)
                self._warnings(session, batch)
                results = self._read_back(conn, who, batch)
        except psycopg.Error as exc:
            if conn.broken:
                raise TargetUnreachable(
                    f"lost the connection to {getattr(self, 'display', 'the target')} while undoing: {exc}".strip(),
                    hint="run the same command again: only actions still marked applied are undone",
                ) from None
            if len(batch) > 1:  # find the object the server refused; the rest still go through
                half = len(batch) // 2
                self._undo_bounded(session, who, batch[:half], on_batch)
                self._undo_bounded(session, who, batch[half:], on_batch)
                return
            unit = batch[0]
            unit.error = (
                f"undo of {unit.label} failed: {' '.join(str(exc).split())}. Nothing of it was restored; fix the cause "
                f"(for example the privilege the connected role lacks) and run the undo again"
            )
            results = self._results(batch)
        on_batch(results)

    # --- tables, columns, default privileges --------------------------------------------------

    def _now(self, conn: psycopg.Connection, batch: list[Unit]) -> None:
        """Read each part's current ACL into part.now (None when the object is gone), and the owner into part.owner.

        ACL texts repeat across thousands of tables: each distinct text is parsed once (the parsed ACL is only read).
        """
        parsed: dict[str | None, Acl] = {}

        def parse(present: bool, acl: str | None) -> tuple[str | None, Acl | None]:
            if not present:
                return None, None
            if acl not in parsed:
                parsed[acl] = parse_acl(acl)
            return acl, parsed[acl]

        family = batch[0].family
        if family == "relation":
            tables = [(u, u.table) for u in batch if u.table]
            if tables:
                rows = conn.execute(
                    _RELATIONS_NOW,
                    {"nsp": json_list(u.schema for u, _ in tables), "rel": json_list(u.name for u, _ in tables)},
                )
                for i, present, owner, acl in rows.fetchall():
                    part = tables[i - 1][1]
                    (part.now_text, part.now), part.owner = parse(present, acl), owner
            cols = [(u, col, part) for u in batch for col, part in u.columns.items()]
            if cols:
                rows = conn.execute(
                    _COLUMNS_NOW,
                    {
                        "nsp": json_list(u.schema for u, _, _ in cols),
                        "rel": json_list(u.name for u, _, _ in cols),
                        "col": json_list(col for _, col, _ in cols),
                    },
                )
                for i, present, owner, acl in rows.fetchall():
                    part = cols[i - 1][2]
                    (part.now_text, part.now), part.owner = parse(present, acl), owner
        else:
            defaults = [(u, u.table) for u in batch if u.table]  # every default-privileges unit has its one part
            rows = conn.execute(
                _DEFAULTS_NOW,
                {"role": json_list(u.role for u, _ in defaults), "nsp": json_list(u.schema for u, _ in defaults)},
            )
            for i, present, owner, acl in rows.fetchall():
                part = defaults[i - 1][1]
                (part.now_text, part.now), part.owner = parse(present, acl), owner

    def _restore(self, conn: psycopg.Connection, who: UndoIdentity, batch: list[Unit]) -> None:
        if batch[0].family == "membership":
            self._restore_memberships(conn, who, batch)
            return
        self._now(conn, batch)
        merged: dict[
            tuple[object, ...], Merge
        ] = {}  # tens of thousands of tables share a handful of (owner, prior, now) shapes
        by_grants: dict[tuple[Grant, ...], list[Unit]] = {}
        one_by_one: list[
            tuple[list[Grant], Unit, str | None]
        ] = []  # columns and default privileges name one object each
        for unit in batch:
            for col, part in unit.parts():
                if part.now is None:
                    unit.notes.append(
                        f"{unit.label}{f' column {col}' if col else ''} no longer exists: nothing to put back"
                    )
                    continue
                key = (
                    part.owner,
                    part.prior,
                    part.now_text,
                    tuple((a.kind, a.grantee, a.grantor, tuple(a.privileges)) for a in part.actions),
                )
                result = merged.get(key)
                if result is None:
                    result = merged[key] = merge(
                        parse_acl(part.prior),
                        part.now,
                        part.actions,
                        part.owner,
                        lambda role: self._can_act_as(conn, who, role),
                        prior_owner=prior_owner(part),
                    )
                part.expected = result.expected
                part.notes = [f"column {col}: {n}" if col else n for n in result.drift]
                if col is None and unit.family == "relation":
                    by_grants.setdefault(tuple(result.grants), []).append(unit)
                elif result.grants:
                    one_by_one.append((result.grants, unit, col))
        for shared, units in by_grants.items():  # one multi-table statement per GRANT, for every table needing the same
            if shared:
                self._grant(conn, list(shared), units)
        for grants, unit, col in one_by_one:  # after the tables: a column grant may rest on a table-level grant option
            self._grant(conn, grants, [unit], column=col)

    def _grant(
        self, conn: psycopg.Connection, grants: list[Grant], units: list[Unit], *, column: str | None = None
    ) -> None:
        q = Quoted()
        for g in grants:
            tail = " WITH GRANT OPTION" if g.option else ""
            what = privilege_list(g.privileges)
            unit = units[0]
            if unit.family == "default":
                where = f" IN SCHEMA {q(unit.schema)}" if unit.schema else ""
                conn.execute(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(unit.role)}{where} GRANT {what} ON TABLES TO {q.role(g.grantee)}{tail}"
                )
                continue
            cols = f" ({q(column)})" if column else ""
            statement = f"GRANT {what}{cols} ON TABLE {', '.join(q.qualified(u.schema, u.name) for u in units)} TO {q.role(g.grantee)}{tail}"
            if g.grantor is None:
                conn.execute(statement)  # made by the owner (or a member of it): recorded with the owner as grantor
            else:
                with usage_while_acting_as(conn, g.grantor, (u.schema for u in units), q):
                    conn.execute(f"SET LOCAL ROLE {q(g.grantor)}")
                    conn.execute(statement)
                    conn.execute("RESET ROLE")

    def _warnings(self, session: RevokeSession, batch: list[Unit]) -> None:
        """Server warnings on our GRANTs go to the object they name, or to every object of the batch."""
        for sqlstate, message, severity in session.notices:
            if severity != "WARNING":
                continue
            named = [u for u in batch if f'"{u.name or u.role}"' in (message or "")]
            for unit in named or batch:
                unit.warnings.append(f"server warning {sqlstate}: {message}")

    def _read_back(self, conn: psycopg.Connection, who: UndoIdentity, batch: list[Unit]) -> list[ActionResult]:
        if batch[0].family == "membership":
            self._read_back_memberships(conn, who, batch)
            return self._results(batch)
        self._now(conn, batch)
        checked: dict[
            tuple[str | None, int], list[str]
        ] = {}  # parts restored alike share their expected list and, mostly, their ACL text
        for unit in batch:
            for col, part in unit.parts():
                if part.now is None:
                    continue
                key = (part.now_text, id(part.expected))
                if key not in checked:
                    checked[key] = missing(part.now, part.expected)
                gone = checked[key]
                if gone:
                    where = f" column {col}" if col else ""
                    unit.error = (
                        f"after undo {unit.label}{where} still lacks {', '.join(gone)}: the GRANT did not take "
                        f"(see the server warnings); grant it by hand as its grantor, or run the undo again"
                    )
                unit.notes += part.notes
        return self._results(batch)

    @staticmethod
    def _results(batch: list[Unit]) -> list[ActionResult]:
        results = []
        for unit in batch:
            notes = list(dict.fromkeys(unit.notes))
            shown = notes[:MAX_NOTES] + ([f"{len(notes) - MAX_NOTES} more"] if len(notes) > MAX_NOTES else [])
            drift = f"; drift, left as it is now: {'; '.join(shown)}" if shown else ""
            if unit.warnings:
                drift += "; " + "; ".join(dict.fromkeys(unit.warnings))
            for action in unit.actions:
                if unit.error:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message=unit.error + drift))
                else:
                    results.append(
                        ActionResult(
                            seq=action.seq,
                            status=ActionStatus.UNDONE,
                            message="restored what the apply removed" + drift,
                        )
                    )
        return results
