"""Store reads for `evidence`: when the ledger closed (applied) or reopened (undone) each object."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from sevtool.core.timeparse import as_utc
from sevtool.store.models import DETAIL_OF_ACTION, ActionDetailRow, ActionRow
from sevtool.store.repository import Store

OBJECT_LESS_KINDS = ("revoke_membership", "revoke_default_privileges", "manual")


def object_ledger_times(
    store: Store, incident_id: int
) -> tuple[dict[str, list[datetime]], dict[str, list[datetime]], int]:
    """(object -> applied times, object -> undone times, applied actions that name no object, e.g. a membership).

    Objects are named as findings name them (schema.object, no column); only the fields needed are extracted
    from each action's JSON, by the database.
    """
    detail = ActionDetailRow.detail
    query = (
        select(
            ActionRow.kind,
            ActionRow.status,
            ActionRow.updated_at,
            detail["schema_name"].as_string(),
            detail["object_name"].as_string(),
        )
        .join(ActionDetailRow, DETAIL_OF_ACTION)
        .where(ActionRow.incident_id == incident_id, ActionRow.status.in_(("applied", "undone")))
    )
    applied: dict[str, list[datetime]] = {}
    undone: dict[str, list[datetime]] = {}
    object_less = 0
    with store.read() as s:
        for kind, status, at, schema_name, object_name in s.connection().execute(query):
            if kind in OBJECT_LESS_KINDS:
                object_less += status == "applied"
                continue
            fqn = f"{schema_name}.{object_name}" if schema_name else object_name or ""
            (applied if status == "applied" else undone).setdefault(fqn, []).append(as_utc(at))
    return applied, undone, object_less
