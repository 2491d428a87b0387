"""Role memberships: what the plan records of them, and how undo puts them back row by row.

From PostgreSQL 16 a membership is one pg_auth_members row *per grantor*, each with its own ADMIN, INHERIT and
SET options; a member keeps the role while any row is left. So the plan records every row, the apply revokes
each row `GRANTED BY` its grantor (a superuser's plain REVOKE removes only the bootstrap superuser's row, with
a WARNING), and undo restores each removed row with its exact options and grantor. Before 16 there is one row
per member and role, and `GRANTED BY` on REVOKE is accepted and ignored.

Only a superuser may name another grantor before 16, and only a role with that grantor's privileges from 16:
where undo cannot restore the exact grantor it restores the access as the connected role and says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, TypedDict

import psycopg

from sevtool.core.plan import Action
from sevtool.targets.postgres.sql import _MEMBERSHIP, Quoted, json_list

_MEMBERSHIP_RESTORE_REFUSED = (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported)


class MembershipRow(TypedDict):
    """One pg_auth_members row as a plan records it. grantor None: whoever granted it (before 16, or the connected role)."""

    grantor: str | None
    admin_option: bool
    inherit_option: bool | None
    set_option: bool | None


class UndoIdentity(TypedDict):
    """Who an undo connection is: what it may grant as."""

    user: str
    superuser: bool
    version: int  # server_version_num
    can_act_as: dict[str, bool]  # role -> may SET ROLE to it (asked once per role)


class MembershipUnit(Protocol):
    """A membership to restore (undo's unit of family 'membership')."""

    role: str
    member: str
    prior: str | None
    actions: list[Action]
    expected: list[MembershipRow]  # rows present again after undo
    notes: list[str]
    error: str

    @property
    def label(self) -> str: ...


def membership_rows(rows: Sequence[Sequence[Any]]) -> list[MembershipRow]:
    """pg_auth_members rows (grantor, admin, inherit, set) as recorded; inherit and set are None before 16."""
    # Sorted by grantor (pg_get_userbyid: never NULL) before they become dicts.
    return [
        {"grantor": g, "admin_option": a, "inherit_option": i, "set_option": s}
        for g, a, i, s in sorted(rows, key=lambda r: r[0])
    ]


def membership_prior(role: str, member: str, rows: Sequence[Sequence[Any]]) -> str:
    return json.dumps({"role": role, "member": member, "rows": membership_rows(rows)}, sort_keys=True)


def _prior_rows(prior: str | None) -> list[MembershipRow]:
    recorded = json.loads(prior or "{}")
    if "rows" in recorded:
        rows: list[MembershipRow] = recorded["rows"]  # as membership_prior wrote them
        return rows
    # Plans recorded before every row was kept: one row, no INHERIT/SET options known.
    return [
        {
            "grantor": recorded.get("grantor"),
            "admin_option": recorded.get("admin_option", False),
            "inherit_option": None,
            "set_option": None,
        }
    ]


def _options(row: MembershipRow) -> str:
    known = [f"ADMIN {row['admin_option']}"] + [
        f"{name} {value}"
        for name, value in (("INHERIT", row.get("inherit_option")), ("SET", row.get("set_option")))
        if value is not None
    ]
    return ", ".join(known)


class MembershipUndo:
    """Membership half of undo, used by RevokeUndoer (units of family 'membership')."""

    def _memberships_now(self, conn: psycopg.Connection, batch: Sequence[MembershipUnit]) -> list[list[MembershipRow]]:
        now: list[list[list[Any]]] = [[] for _ in batch]
        for i, *row in conn.execute(
            _MEMBERSHIP, [json_list(u.role for u in batch), json_list(u.member for u in batch)]
        ).fetchall():
            now[i - 1].append(row)
        return [membership_rows(rows) for rows in now]

    def _restore_memberships(
        self, conn: psycopg.Connection, who: UndoIdentity, batch: Sequence[MembershipUnit]
    ) -> None:
        q = Quoted()
        per_grantor = who["version"] >= 160000
        for unit, now in zip(batch, self._memberships_now(conn, batch), strict=False):
            revoked_by = {a.grantor for a in unit.actions}
            removed = [r for r in _prior_rows(unit.prior) if r["grantor"] in revoked_by or not per_grantor]
            unit.expected = []
            for row in removed:
                same = [r for r in now if r["grantor"] == row["grantor"] or not per_grantor]
                if same:
                    differs = (
                        ""
                        if all(same[0].get(k) == row.get(k) for k in row if row.get(k) is not None)
                        else f" with other options ({_options(same[0])} instead of {_options(row)})"
                    )
                    unit.notes.append(
                        f"{unit.label} granted by {same[0]['grantor']} is already back{differs}: left as it is"
                    )
                    continue
                grant = f"GRANT {q(unit.role)} TO {q(unit.member)}"
                if per_grantor:
                    grant += f" WITH {_options(row)}"
                elif row["admin_option"]:
                    grant += " WITH ADMIN OPTION"
                try:
                    with conn.transaction():  # a savepoint: a refused grantor must not abort the batch
                        # grantor None (a plan recorded before grantors were): whoever grants it now
                        conn.execute(grant if row["grantor"] is None else f"{grant} GRANTED BY {q(row['grantor'])}")
                    unit.expected.append(row)
                except _MEMBERSHIP_RESTORE_REFUSED as exc:
                    conn.execute(grant)
                    unit.expected.append({**row, "grantor": who["user"] if per_grantor else None})
                    unit.notes.append(
                        f"{unit.label} restored with grantor {who['user']} instead of {row['grantor']} "
                        f"({' '.join(str(exc).split())}); a superuser can re-grant it GRANTED BY {row['grantor']}"
                    )
            known = {r["grantor"] for r in _prior_rows(unit.prior)}
            unit.notes += [
                f"{unit.label} granted by {r['grantor']} was added after the plan: left in place"
                for r in now
                if per_grantor and r["grantor"] not in known
            ]

    def _read_back_memberships(
        self, conn: psycopg.Connection, who: UndoIdentity, batch: Sequence[MembershipUnit]
    ) -> None:
        for unit, now in zip(batch, self._memberships_now(conn, batch), strict=False):
            for row in unit.expected:
                if not any(
                    (row["grantor"] is None or r["grantor"] == row["grantor"])
                    and all(r.get(k) == v for k, v in row.items() if k != "grantor" and v is not None)
                    for r in now
                ):
                    unit.error = (
                        f"after undo {unit.label} (granted by {row['grantor'] or 'anyone'}, {_options(row)}) is still missing: "
                        f"grant it by hand, or run the undo again"
                    )
