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
from sevtool.targets.postgres.acl import Acl, Grant, Key, Merge, merge, missing, parse_acl
from sevtool.targets.postgres.apply import DEFAULT_BATCH_SIZE, BatchCallback
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.pool import RevokeSession, RevokeSessions
from sevtool.targets.postgres.roles import MembershipRow, MembershipUndo, UndoIdentity
from sevtool.targets.postgres.sql import (
    Quoted,
    family_of,
    json_list,
    one_row,
    privilege_list,
    usage_while_acting_as,
)

FAMILY_ORDER = ("membership", "relation", "default")
# Actions whose grantor is the object's owner at plan time (the others are grant-option holders').
OWNER_KINDS = (
    ActionKind.REVOKE_TABLE,
    ActionKind.REVOKE_VIEW,
    ActionKind.REVOKE_COLUMN,
    ActionKind.REVOKE_DEFAULT_PRIVILEGES,
)
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


class _Part:
    """One ACL to merge: a table's, a column's or a role's default privileges."""

    __slots__ = ("actions", "expected", "notes", "now", "now_text", "owner", "prior")

    def __init__(self, prior: str | None):
        self.prior = prior
        self.actions: list[Action] = []
        self.expected: list[tuple[Key, str, bool]] = []  # (item key, privilege, grant option) present again after undo
        self.notes: list[str] = []
        self.now: Acl | None = None  # the ACL read just now; None when the object is gone
        self.now_text: str | None = None
        self.owner = ""


class _Unit:
    """One object and every action on it: its results are decided together.

    A plain slotted class: undo builds one per table, tens of thousands per run.
    """

    __slots__ = (
        "actions",
        "columns",
        "error",
        "expected",
        "family",
        "member",
        "name",
        "notes",
        "prior",
        "role",
        "schema",
        "table",
        "warnings",
    )

    def __init__(
        self,
        family: str,
        *,
        schema: str = "",
        name: str = "",
        role: str = "",
        member: str = "",
        prior: str | None = None,
    ):
        self.family, self.schema, self.name = family, schema, name
        self.role, self.member, self.prior = role, member, prior  # role: whose default privileges / the role granted
        self.actions: list[Action] = []
        self.table: _Part | None = None
        self.columns: dict[str, _Part] = {}
        self.error = ""
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.expected: list[MembershipRow] = []  # memberships: rows present again after undo

    @property
    def label(self) -> str:
        if self.family == "relation":
            return f"{self.schema}.{self.name}"
        if self.family == "default":
            return f"default privileges of {self.role}" + (f" in schema {self.schema}" if self.schema else "")
        return f"membership of {self.member} in {self.role}"

    def parts(self) -> list[tuple[str | None, _Part]]:
        """(column, or None for the table itself, and its part): the table's first."""
        table: list[tuple[str | None, _Part]] = [(None, self.table)] if self.table else []
        return table + list(self.columns.items())


def _units(actions: list[Action]) -> list[_Unit]:
    units: dict[tuple[str, str, str], _Unit] = {}
    for a in sorted(actions, key=lambda a: a.column is not None):  # table actions first: they own the column parts
        family = family_of(a)
        if family in ("relation", "column"):
            key = ("relation", a.schema_name, a.object_name)
            unit = units.get(key) or units.setdefault(key, _Unit("relation", schema=a.schema_name, name=a.object_name))
            if a.column is None:
                unit.table = unit.table or _Part(a.prior_state)
                unit.table.actions.append(a)
                for col, attacl in a.prior_columns.items():  # a table-level REVOKE took these column grants with it
                    unit.columns.setdefault(col, _Part(attacl)).actions.append(a)
            else:
                unit.columns.setdefault(a.column, _Part(a.prior_state)).actions.append(a)
        elif family == "default":
            key = ("default", a.grantor, a.schema_name)
            unit = units.get(key) or units.setdefault(key, _Unit("default", role=a.grantor, schema=a.schema_name))
            unit.table = unit.table or _Part(a.prior_state)
            unit.table.actions.append(a)
        else:
            key = ("membership", a.object_name, a.grantee)
            unit = units.get(key) or units.setdefault(
                key, _Unit("membership", role=a.object_name, member=a.grantee, prior=a.prior_state)
            )
        unit.actions.append(a)
    return list(units.values())


class RevokeUndoer(MembershipUndo, RevokeSessions):
    """Undo half of PostgresRevoker."""

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        """Put back what these applied actions removed; report each object once read back.

        Calls for disjoint objects may run side by side from several threads (each holds its own connection).
        """
        units = _units(actions)
        with self._revoke_connection() as session:
            who = self._undo_identity(session.conn)
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
        self, session: RevokeSession, who: UndoIdentity, batch: list[_Unit], on_batch: BatchCallback
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

    def _now(self, conn: psycopg.Connection, batch: list[_Unit]) -> None:
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

    def _restore(self, conn: psycopg.Connection, who: UndoIdentity, batch: list[_Unit]) -> None:
        if batch[0].family == "membership":
            self._restore_memberships(conn, who, batch)
            return
        self._now(conn, batch)
        merged: dict[
            tuple[object, ...], Merge
        ] = {}  # tens of thousands of tables share a handful of (owner, prior, now) shapes
        by_grants: dict[tuple[Grant, ...], list[_Unit]] = {}
        one_by_one: list[
            tuple[list[Grant], _Unit, str | None]
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
                        prior_owner=_prior_owner(part),
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
        self, conn: psycopg.Connection, grants: list[Grant], units: list[_Unit], *, column: str | None = None
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

    def _warnings(self, session: RevokeSession, batch: list[_Unit]) -> None:
        """Server warnings on our GRANTs go to the object they name, or to every object of the batch."""
        for sqlstate, message, severity in session.notices:
            if severity != "WARNING":
                continue
            named = [u for u in batch if f'"{u.name or u.role}"' in (message or "")]
            for unit in named or batch:
                unit.warnings.append(f"server warning {sqlstate}: {message}")

    def _read_back(self, conn: psycopg.Connection, who: UndoIdentity, batch: list[_Unit]) -> list[ActionResult]:
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
    def _results(batch: list[_Unit]) -> list[ActionResult]:
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


def _prior_owner(part: _Part) -> str:
    """The owner when the plan was made: the grantor of an owner's grant it revoked (else the owner now)."""
    for a in part.actions:
        if a.kind in OWNER_KINDS:
            return a.grantor
    return part.owner
