"""Action drafts: an Action as a dict, one per ACL item (grantee x grantor) holding a wanted privilege, and the
order actions run in.

Drafting as dicts and validating 45,000 of them in one call costs less than constructing each Action (see
`RevokePlanner.plan`). A grant made by a grant-option holder is revoked as that holder when we can act as it,
else with its grant option CASCADE; paths no REVOKE closes become manual steps for a human.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, Required, TypedDict, Unpack

import psycopg

from sevtool.core.exposure import PUBLIC, AccessPath, Finding
from sevtool.core.plan import BatchKey, batch_key
from sevtool.targets.postgres.plugin import ActionKind
from sevtool.targets.postgres.sql import PRIVILEGES

KIND_ORDER: dict[str, int] = {
    k: i
    for i, k in enumerate(
        (
            ActionKind.REVOKE_AS_GRANTOR,
            ActionKind.REVOKE_GRANT_OPTION,
            ActionKind.REVOKE_TABLE,
            ActionKind.REVOKE_VIEW,
            ActionKind.REVOKE_COLUMN,
            ActionKind.REVOKE_DEFAULT_PRIVILEGES,
            ActionKind.REVOKE_MEMBERSHIP,
            ActionKind.MANUAL,
        )
    )
}
OBJECT_KIND = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}

Row = tuple[Any, ...]  # a catalog row (psycopg's tuple rows)


class DraftFields(TypedDict, total=False):
    """What an action draft may say besides its statement: the object, its prior state, review, its number (see Action)."""

    object_kind: str
    schema_name: str
    object_name: str
    column: str
    prior_state: str | None
    prior_columns: dict[str, str]
    review: bool
    seq: int


class ActionDraft(DraftFields, total=False):
    """An Action drafted as a dict: 45,000 of them are validated into Actions in one call (see RevokePlanner.plan)."""

    kind: Required[ActionKind]
    grantee: Required[str]
    grantor: Required[str]
    privileges: Required[list[str]]
    sql: Required[str]
    reason: str


def object_order(draft: ActionDraft) -> tuple[str, str, str]:
    return draft.get("schema_name", ""), draft["object_name"], draft.get("column") or ""


def draft_batch_key(draft: ActionDraft) -> BatchKey:
    return batch_key(draft["kind"], draft["grantee"], draft["grantor"], draft["privileges"], draft.get("column"))


def manual_step(finding: Finding, grantee: str) -> str | None:
    """What a human must do for a path no REVOKE of ours closes; None when the plan closes it."""
    if finding.path == AccessPath.SECURITY_DEFINER:
        return (
            f"review what {finding.object_fqn} returns; if it reads sensitive rows, REVOKE EXECUTE ON FUNCTION "
            f"{finding.object_fqn} FROM {grantee} (functions are executable by PUBLIC unless revoked)"
        )
    if finding.path == AccessPath.OWNER and grantee == finding.principal:
        return f"{grantee} owns {finding.object_fqn} and can grant itself access at will: ALTER TABLE ... OWNER TO a role outside it"
    if finding.path == AccessPath.CREATEROLE and grantee == finding.principal:
        return (
            f"{grantee} has CREATEROLE and can grant itself any non-superuser role: ALTER ROLE {grantee} NOCREATEROLE"
        )
    return None


def manual_draft(finding: Finding, step: str) -> ActionDraft:
    return {
        "kind": ActionKind.MANUAL,
        "object_kind": finding.object_kind,
        "schema_name": finding.schema_name,
        "object_name": finding.object_name,
        "grantee": grantee_of(finding),
        "grantor": finding.grantor,
        "privileges": ["SELECT"],
        "sql": f"-- by hand: {step}",
        "review": True,
        "reason": f"sevtool cannot close this {finding.path.value} path: {step}",
    }


def grantee_of(finding: Finding) -> str:
    if finding.grantee:
        return finding.grantee
    return PUBLIC if finding.path == AccessPath.PUBLIC else finding.principal


def becomable_roles(conn: psycopg.Connection, roles: set[str]) -> set[str]:
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER')",
        [sorted(roles)],
    ).fetchall()
    return {r[0] for r in rows}


def grant_drafts(
    wanted: dict[str, set[str]],
    owner: str,
    items: Iterable[Row] | None,
    becomable: set[str],
    owner_kind: ActionKind,
    **fields: Unpack[DraftFields],
) -> Iterator[ActionDraft]:
    """One action (drafted as a dict) per ACL item (grantee x grantor) holding a wanted privilege."""
    held: dict[tuple[str, str], list[str]] = {}
    for grantee, grantor, privilege, _grantable in items or []:
        if privilege in wanted.get(grantee, ()):
            held.setdefault((grantee, grantor), []).append(privilege)
    for (grantee, grantor), privs in held.items():
        if grantor == owner:
            kind, reason = owner_kind, f"granted by the owner {owner}"
        elif grantor in becomable:
            kind, reason = (
                ActionKind.REVOKE_AS_GRANTOR,
                f"granted by grant-option holder {grantor}: revoked as {grantor}, an owner's REVOKE would leave it",
            )
        else:
            kind, reason = (
                ActionKind.REVOKE_GRANT_OPTION,
                f"granted by grant-option holder {grantor}, whom we cannot act as: their grant option is revoked with CASCADE",
            )
        # Interned: 45,000 actions share a handful of reasons, not 45,000 copies of one.
        yield {
            "kind": kind,
            "grantee": grantee,
            "grantor": grantor,
            "privileges": sorted(privs, key=PRIVILEGES.index),
            "sql": "",
            "reason": sys.intern(reason),
            **fields,
        }
