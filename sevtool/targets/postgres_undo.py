"""Undo: restore what the apply removed."""

from __future__ import annotations

import json

import psycopg

from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import TargetUnreachable
from sevtool.targets.postgres_apply import DEFAULT_BATCH_SIZE, BatchCallback
from sevtool.targets.postgres_sql import _MEMBERSHIP, PRIVILEGES, Quoted, family_of, json_list, privilege_list

_UNDO_SOURCES = {
    "relation": """
SELECT want.i, c.oid IS NOT NULL, c.relowner, c.relacl, want.prior
FROM ROWS FROM (json_array_elements_text(%(names)s::json), json_array_elements_text(%(priors)s::json)) WITH ORDINALITY AS want(name, prior, i)
LEFT JOIN pg_class c ON c.oid = to_regclass(want.name)""",
    "column": """
SELECT want.i, a.attrelid IS NOT NULL, c.relowner, a.attacl, want.prior
FROM ROWS FROM (json_array_elements_text(%(names)s::json), json_array_elements_text(%(columns)s::json), json_array_elements_text(%(priors)s::json)) WITH ORDINALITY AS want(name, col, prior, i)
LEFT JOIN pg_class c ON c.oid = to_regclass(want.name)
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = want.col AND NOT a.attisdropped""",
    # Schema '' means the role's global default privileges, whose absence means the built-in default.
    "default": """
SELECT want.i, r.oid IS NOT NULL, r.oid, COALESCE(d.defaclacl, CASE WHEN want.nsp = '' THEN acldefault('r', r.oid) END), want.prior
FROM ROWS FROM (json_array_elements_text(%(roles)s::json), json_array_elements_text(%(schemas)s::json), json_array_elements_text(%(priors)s::json)) WITH ORDINALITY AS want(role, nsp, prior, i)
LEFT JOIN pg_roles r ON r.rolname = want.role
LEFT JOIN pg_default_acl d ON d.defaclrole = r.oid AND d.defaclobjtype = 'r'
 AND d.defaclnamespace = CASE WHEN want.nsp = '' THEN 0 ELSE (SELECT oid FROM pg_namespace WHERE nspname = want.nsp) END""",
}

# ACL items keep their insertion order, so the prior ACL comes back by keeping the common prefix of the
# current and prior ACL, revoking the current items after it and re-granting the prior ones in order.
# Per differing object: JSON [[grantee, grantor] to revoke, ...], [[grantee, grantor, with grant option, plain], ...]]
# with grantor null when it is the owner. Objects needing the same statements share them (the usual case).
_UNDO_OPS = """
WITH src(i, present, owner, cur, prior) AS ({source}),
diff AS (
  SELECT i, owner, cur, prior::aclitem[] AS pri,
         (SELECT min(n) FROM generate_series(1, greatest(cardinality(cur), cardinality(prior::aclitem[])) + 1) AS n
           WHERE cur[n] IS DISTINCT FROM (prior::aclitem[])[n]) AS keep
  FROM src WHERE present AND cur::text IS DISTINCT FROM prior
)
SELECT i, json_build_array(
  (SELECT COALESCE(json_agg(json_build_array(e.grantee, e.grantor) ORDER BY it.ord), '[]')
     FROM unnest(cur[keep:]) WITH ORDINALITY AS it(acl, ord), LATERAL ({item}) e),
  (SELECT COALESCE(json_agg(json_build_array(e.grantee, e.grantor, e.with_option, e.plain) ORDER BY it.ord), '[]')
     FROM unnest(pri[keep:]) WITH ORDINALITY AS it(acl, ord), LATERAL ({item}) e))::text
FROM diff
"""
_UNDO_ITEM = """SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee,
         CASE WHEN x.grantor = owner THEN NULL ELSE pg_get_userbyid(x.grantor) END AS grantor,
         COALESCE(array_agg(x.privilege_type) FILTER (WHERE x.is_grantable), '{}') AS with_option,
         COALESCE(array_agg(x.privilege_type) FILTER (WHERE NOT x.is_grantable), '{}') AS plain
  FROM aclexplode(ARRAY[it.acl]) x GROUP BY x.grantee, x.grantor"""
_UNDO_OPS_SQL = {family: _UNDO_OPS.format(source=source, item=_UNDO_ITEM) for family, source in _UNDO_SOURCES.items()}

# After undo: the objects whose ACL text is not the recorded one, with what it is now.
_UNDO_MISMATCH = """
WITH src(i, present, owner, cur, prior) AS ({source})
SELECT i, present, cur::text FROM src WHERE NOT present OR cur::text IS DISTINCT FROM prior
"""
_UNDO_MISMATCH_SQL = {family: _UNDO_MISMATCH.format(source=source) for family, source in _UNDO_SOURCES.items()}



class RevokeUndoer:
    """Undo half of PostgresRevoker (needs RevokeSessions beside it)."""

    # ------------------------------------------------------------------------------------------
    # undo

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        """Restore every object these actions touched to its recorded prior ACL, byte for byte.

        Calls for disjoint objects may run side by side from several threads (each holds its own connection).
        """
        units = self._restore_units(actions)
        with self._revoke_connection() as session:
            conn = session.conn
            for family in ("relation", "column", "default", "membership"):
                chosen = [u for u in units if u["family"] == family]
                for start in range(0, len(chosen), DEFAULT_BATCH_SIZE):
                    batch = chosen[start:start + DEFAULT_BATCH_SIZE]
                    try:
                        with conn.transaction():
                            self._restore(conn, batch)
                            columns = [c for u in batch for c in u["columns"]]
                            if columns:   # a table-level REVOKE took these column grants with it
                                self._restore(conn, columns)
                    except psycopg.Error as exc:
                        if conn.broken:
                            raise TargetUnreachable(f"lost the connection while undoing: {exc}".strip(),
                                                    hint="run the same command again: only actions still marked applied are undone") from None
                        for unit in batch:
                            unit["error"] = str(exc).strip()
                    on_batch(self._undo_results(conn, batch))

    def _restore_units(self, actions: list[Action]) -> list[dict]:
        """Each object (or column, default ACL, membership) to restore, with the actions that touched it."""
        units: dict[tuple, dict] = {}
        q = Quoted()

        def unit(key, family, prior, action, **extra):
            units.setdefault(key, {"family": family, "prior": prior, "actions": [], "columns": [], **extra})["actions"].append(action)

        for a in actions:
            family = family_of(a)
            if family == "relation":
                name = q.table(a)
                unit(("relation", a.schema_name, a.object_name), family, a.prior_state, a, name=name,
                     columns=[{"family": "column", "prior": attacl, "actions": [], "name": name, "column": col}
                              for col, attacl in sorted(a.prior_columns.items())])
            elif family == "column":
                unit(("column", a.schema_name, a.object_name, a.column), family, a.prior_state, a, name=q.table(a), column=a.column)
            elif family == "default":
                unit(("default", a.grantor, a.schema_name), family, a.prior_state, a, schema=a.schema_name, role=a.grantor)
            else:
                unit(("membership", a.object_name, a.grantee), family, a.prior_state, a, role=a.object_name, member=a.grantee)
        return list(units.values())

    @staticmethod
    def _undo_params(batch: list[dict]) -> dict:
        family = batch[0]["family"]
        params = {"priors": json_list(u["prior"] for u in batch)}
        if family in ("relation", "column"):
            params["names"] = json_list(u["name"] for u in batch)
        if family == "column":
            params["columns"] = json_list(u["column"] for u in batch)
        if family == "default":
            params |= {"roles": json_list(u["role"] for u in batch), "schemas": json_list(u["schema"] for u in batch)}
        return params

    def _restore(self, conn, batch: list[dict]) -> None:
        family = batch[0]["family"]
        if family == "membership":
            current = self._memberships_now(conn, batch)
            for unit, now in zip(batch, current):
                if now != unit["prior"]:
                    self._restore_membership(conn, unit, now)
            return
        by_ops: dict[object, list[dict]] = {}
        for i, ops in conn.execute(_UNDO_OPS_SQL[family], self._undo_params(batch)).fetchall():
            # Table statements name many tables; column and default-privilege statements name one object each.
            by_ops.setdefault(ops if family == "relation" else (ops, i), []).append(batch[i - 1])
        for key, units in by_ops.items():
            revokes, grants = json.loads(key if family == "relation" else key[0])
            for grantee, grantor in revokes:
                self._acl_statement(conn, units, "REVOKE", grantee, grantor, None, grant_option=False)
            for grantee, grantor, with_option, plain in grants:
                for privs, option in ((with_option, True), (plain, False)):   # grant options first: the item keeps its place either way
                    if privs:
                        self._acl_statement(conn, units, "GRANT", grantee, grantor, tuple(sorted(privs, key=PRIVILEGES.index)), grant_option=option)

    def _memberships_now(self, conn, batch: list[dict]) -> list[str | None]:
        """Each membership as the JSON the plan recorded, or None where it is gone."""
        current: list[str | None] = [None] * len(batch)
        for i, grantor, admin in conn.execute(_MEMBERSHIP, [json_list(u["role"] for u in batch), json_list(u["member"] for u in batch)]).fetchall():
            unit = batch[i - 1]
            current[i - 1] = json.dumps({"role": unit["role"], "member": unit["member"], "grantor": grantor, "admin_option": admin}, sort_keys=True)
        return current

    def _acl_statement(self, conn, units: list[dict], verb: str, grantee: str, grantor: str | None, privs: tuple[str, ...] | None,
                       *, grant_option: bool) -> None:
        """One GRANT or REVOKE of one ACL item, made as the item's grantor (None: the owner) so the recorded grantor is identical.

        Several units only for table ACLs; column and default-privilege units come one at a time.
        """
        what = privilege_list(privs) if privs else "ALL"
        family, unit = units[0]["family"], units[0]
        to_from = "TO" if verb == "GRANT" else "FROM"
        tail = " WITH GRANT OPTION" if grant_option else (" CASCADE" if verb == "REVOKE" else "")
        q = Quoted()
        if family == "default":
            where = f" IN SCHEMA {q(unit['schema'])}" if unit["schema"] else ""
            conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(unit['role'])}{where} {verb} {what} ON TABLES {to_from} {q.role(grantee)}{tail}")
            return
        columns = f" ({q(unit['column'])})" if family == "column" else ""
        statement = f"{verb} {what}{columns} ON TABLE {', '.join(u['name'] for u in units)} {to_from} {q.role(grantee)}{tail}"
        if grantor is None:
            conn.execute(statement)   # the owner's grants are recorded with the owner as grantor, whoever runs them
            return
        conn.execute(f"SET LOCAL ROLE {q(grantor)}")
        conn.execute(statement)
        conn.execute("RESET ROLE")

    def _restore_membership(self, conn, unit: dict, now: str | None) -> None:
        prior = json.loads(unit["prior"])
        q = Quoted()
        if now is not None:
            conn.execute(f"REVOKE {q(prior['role'])} FROM {q(prior['member'])}")
        conn.execute(f"GRANT {q(prior['role'])} TO {q(prior['member'])}{' WITH ADMIN OPTION' if prior['admin_option'] else ''} "
                     f"GRANTED BY {q(prior['grantor'])}")

    def _mismatches(self, conn, batch: list[dict]) -> dict[int, str]:
        """Index -> why this unit's ACL is not the recorded one, for the units that differ."""
        family = batch[0]["family"]
        if family == "membership":
            return {i: f"the membership is {now!r}, not the recorded {u['prior']!r}"
                    for i, (u, now) in enumerate(zip(batch, self._memberships_now(conn, batch))) if now != u["prior"]}
        rows = conn.execute(_UNDO_MISMATCH_SQL[family], self._undo_params(batch)).fetchall()
        return {i - 1: (f"the ACL is {now!r}, not the recorded {batch[i - 1]['prior']!r}" if present
                        else f"{batch[i - 1].get('name') or batch[i - 1]['role']} no longer exists")
                for i, present, now in rows}

    def _undo_results(self, conn, batch: list[dict]) -> list[ActionResult]:
        mismatch = {id(batch[i]): [why] for i, why in self._mismatches(conn, batch).items()}
        columns = [(u, c) for u in batch for c in u["columns"]]
        if columns:
            for i, why in self._mismatches(conn, [c for _, c in columns]).items():
                unit, column = columns[i]
                mismatch.setdefault(id(unit), []).append(f"column {column['column']}: {why}")
        results = []
        for unit in batch:
            for action in unit["actions"]:
                if unit.get("error"):
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message=f"undo failed: {unit['error']}"))
                elif id(unit) in mismatch:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.FAILED, message="after undo " + "; ".join(mismatch[id(unit)])))
                else:
                    results.append(ActionResult(seq=action.seq, status=ActionStatus.UNDONE, message="restored to the recorded ACL"))
        return results
