"""Revokes drafted from catalog rows for what is not a table's own ACL: column grants, default privileges (tables
created later), and the role memberships a finding's access goes through (revoked at the first hop, for review).
"""

from __future__ import annotations

from typing import Any

import psycopg

from sevtool.core.exposure import FUTURE_TABLES, Finding
from sevtool.targets.postgres.drafts import ActionDraft, becomable_roles, grant_drafts
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.roles import membership_prior
from sevtool.targets.postgres.sql import _COLUMN_ACL, _DEFAULT_ACL, _FIRST_HOPS, _MEMBERSHIP, json_list


def plan_columns(
    conn: psycopg.Connection, wanted: dict[tuple[str, str, str], dict[str, set[str]]]
) -> list[ActionDraft]:
    if not wanted:
        return []
    keys = list(wanted)
    rows = conn.execute(
        _COLUMN_ACL, [json_list(k[0] for k in keys), json_list(k[1] for k in keys), json_list(k[2] for k in keys)]
    ).fetchall()
    becomable = becomable_roles(conn, {item[1] for row in rows for item in (row[3] or [])})
    actions: list[ActionDraft] = []
    for i, owner, attacl, items in rows:
        schema, name, col = keys[i - 1]
        actions += grant_drafts(
            wanted[(schema, name, col)],
            owner,
            items,
            becomable,
            owner_kind=ActionKind.REVOKE_COLUMN,
            object_kind="column",
            schema_name=schema,
            object_name=name,
            column=col,
            prior_state=attacl,
        )
    return actions


def plan_defaults(conn: psycopg.Connection, wanted: dict[tuple[str, str], dict[str, set[str]]]) -> list[ActionDraft]:
    if not wanted:
        return []
    # A finding may not name the role whose defaults grant: then every role's defaults in that schema count.
    roles = [
        r[0]
        for r in conn.execute("SELECT DISTINCT pg_get_userbyid(defaclrole) FROM pg_default_acl ORDER BY 1").fetchall()
    ]
    keys = [
        (role, schema, grantees)
        for (schema, grantor), grantees in wanted.items()
        for role in ([grantor] if grantor else roles)
    ]
    rows = conn.execute(_DEFAULT_ACL, [json_list(k[0] for k in keys), json_list(k[1] for k in keys)]).fetchall()
    actions: list[ActionDraft] = []
    for i, defaclacl, items in rows:
        role, schema, grantees = keys[i - 1]
        for draft in grant_drafts(
            grantees,
            role,
            items,
            set(),
            owner_kind=ActionKind.REVOKE_DEFAULT_PRIVILEGES,
            object_kind="default privileges",
            schema_name=schema,
            object_name=FUTURE_TABLES,
            prior_state=defaclacl,
        ):
            draft["reason"] = f"default privileges of {role} grant on tables created later" + (
                f" in {schema}" if schema else ""
            )
            actions.append(draft)
    return actions


def plan_memberships(conn: psycopg.Connection, wanted: dict[tuple[str, str], list[Finding]]) -> list[ActionDraft]:
    through: dict[tuple[str, str], list[Finding]] = {}
    for (principal, grantee), found in wanted.items():
        for (hop,) in conn.execute(_FIRST_HOPS, {"principal": principal, "grantee": grantee}).fetchall():
            through.setdefault((principal, hop), []).extend(found)
    if not through:
        return []
    keys = list(through)
    rows = conn.execute(_MEMBERSHIP, [json_list(k[1] for k in keys), json_list(k[0] for k in keys)]).fetchall()
    by_key: dict[int, list[list[Any]]] = {}
    for i, *row in rows:
        by_key.setdefault(i, []).append(row)
    actions: list[ActionDraft] = []
    for i, grantor, _admin, _inherit, _set in rows:  # one action per row: each grantor's row is revoked on its own
        principal, role = keys[i - 1]
        found = through[(principal, role)]
        objects = sorted({f.object_fqn for f in found})
        predefined = role.startswith("pg_")
        reason = (
            f"{principal} is a member of {'predefined role ' if predefined else ''}{role}, which gives it "
            f"{len(objects)} object(s) (e.g. {objects[0]}); removing the membership may also remove legitimate access: review"
        )
        prior = membership_prior(role, principal, by_key[i])
        actions.append(
            {
                "kind": ActionKind.REVOKE_MEMBERSHIP,
                "object_kind": "role",
                "object_name": role,
                "grantee": principal,
                "grantor": grantor,
                "privileges": ["MEMBER"],
                "sql": "",
                "prior_state": prior,
                "review": True,
                "reason": reason,
            }
        )
    return actions
