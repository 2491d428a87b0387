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

import psycopg

from sevtool.targets.postgres.sql import _MEMBERSHIP, Quoted, json_list

_MEMBERSHIP_RESTORE_REFUSED = (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported)


def membership_rows(rows: list[tuple]) -> list[dict]:
    """pg_auth_members rows (grantor, admin, inherit, set) as recorded; inherit and set are None before 16."""
    return sorted(({"grantor": g, "admin_option": a, "inherit_option": i, "set_option": s} for g, a, i, s in rows),
                  key=lambda r: r["grantor"])


def membership_prior(role: str, member: str, rows: list[tuple]) -> str:
    return json.dumps({"role": role, "member": member, "rows": membership_rows(rows)}, sort_keys=True)


def _prior_rows(prior: str | None) -> list[dict]:
    recorded = json.loads(prior or "{}")
    if "rows" in recorded:
        return recorded["rows"]
    # Plans recorded before every row was kept: one row, no INHERIT/SET options known.
    return [{"grantor": recorded.get("grantor"), "admin_option": recorded.get("admin_option", False),
             "inherit_option": None, "set_option": None}]


def _options(row: dict) -> str:
    known = [f"ADMIN {row['admin_option']}"] + [f"{name.upper()} {row[f'{name}_option']}" for name in ("inherit", "set")
                                               if row.get(f"{name}_option") is not None]
    return ", ".join(known)


class MembershipUndo:
    """Membership half of undo, used by RevokeUndoer (units of family 'membership')."""

    def _memberships_now(self, conn, batch) -> list[list[dict]]:
        now: list[list[dict]] = [[] for _ in batch]
        for i, *row in conn.execute(_MEMBERSHIP, [json_list(u.role for u in batch), json_list(u.member for u in batch)]).fetchall():
            now[i - 1].append(row)
        return [membership_rows(rows) for rows in now]

    def _restore_memberships(self, conn, who: dict, batch) -> None:
        q = Quoted()
        per_grantor = who["version"] >= 160000
        for unit, now in zip(batch, self._memberships_now(conn, batch)):
            revoked_by = {a.grantor for a in unit.actions}
            removed = [r for r in _prior_rows(unit.prior) if r["grantor"] in revoked_by or not per_grantor]
            unit.expected = []
            for row in removed:
                same = [r for r in now if r["grantor"] == row["grantor"] or not per_grantor]
                if same:
                    differs = "" if all(same[0].get(k) == row.get(k) for k in row if row.get(k) is not None) else \
                        f" with other options ({_options(same[0])} instead of {_options(row)})"
                    unit.notes.append(f"{unit.label} granted by {same[0]['grantor']} is already back{differs}: left as it is")
                    continue
                grant = f"GRANT {q(unit.role)} TO {q(unit.member)}"
                if per_grantor:
                    grant += f" WITH {_options(row)}"
                elif row["admin_option"]:
                    grant += " WITH ADMIN OPTION"
                try:
                    with conn.transaction():   # a savepoint: a refused grantor must not abort the batch
                        conn.execute(f"{grant} GRANTED BY {q(row['grantor'])}")
                    unit.expected.append(row)
                except _MEMBERSHIP_RESTORE_REFUSED as exc:
                    conn.execute(grant)
                    unit.expected.append({**row, "grantor": who["user"] if per_grantor else None})
                    unit.notes.append(f"{unit.label} restored with grantor {who['user']} instead of {row['grantor']} "
                                      f"({' '.join(str(exc).split())}); a superuser can re-grant it GRANTED BY {row['grantor']}")
            known = {r["grantor"] for r in _prior_rows(unit.prior)}
            unit.notes += [f"{unit.label} granted by {r['grantor']} was added after the plan: left in place"
                           for r in now if per_grantor and r["grantor"] not in known]

    def _read_back_memberships(self, conn, who: dict, batch) -> None:
        for unit, now in zip(batch, self._memberships_now(conn, batch)):
            for row in unit.expected:
                if not any((row["grantor"] is None or r["grantor"] == row["grantor"])
                           and all(r.get(k) == v for k, v in row.items() if k != "grantor" and v is not None) for r in now):
                    unit.error = (f"after undo {unit.label} (granted by {row['grantor'] or 'anyone'}, {_options(row)}) is still missing: "
                                  f"grant it by hand, or run the undo again")
