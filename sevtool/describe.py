"""Findings in words, for people: the `via` column of the CLI and TUI tables and the human field of JSON output.

Made here, at the edges, from a finding's fields (its route of roles, the securable its grant is on, the views
and bases it is read through ...). Nothing reads these words back: code that needs to know how access happens
reads the fields.
"""

from __future__ import annotations

from sevtool.core.exposure import PUBLIC, AccessPath, Finding

_ROLE_LABELS = {
    AccessPath.PREDEFINED_ROLE: "predefined role",
    AccessPath.SERVER_FILES: "predefined role",
    AccessPath.SUPERUSER: "superuser role",
}


def reach(f: Finding, label: str = "role") -> str:
    """How the principal reaches the grantee: "granted to PUBLIC", "via role b (through a), by SET ROLE (...)"."""
    if f.grantee == PUBLIC:
        return "granted to PUBLIC"
    if not f.route:
        return f"granted to {f.principal}"
    text = f"via {label} {f.grantee}"
    if len(f.route) > 1:
        text += f" (through {' -> '.join(f.route[:-1])})"
    if f.set_role is not None:
        text += f", by SET ROLE ({f.set_role})"
    return text


def _grant(f: Finding) -> str:
    """The grant a finding is read through: who holds it, who granted it when not the owner, where USAGE comes from."""
    if f.by_holder and not f.route:
        text = f"granted by {f.grantor} to {PUBLIC if f.grantee == PUBLIC else f.principal}"
    else:
        text = f"granted by {f.grantor}; {reach(f)}" if f.by_holder else reach(f)
    if f.usage_from is not None:
        holder, member = f.usage_from
        text += f"; USAGE on {f.schema_name} from {holder} (e.g. member {member})"
    return text


def via(f: Finding) -> str:
    """One line saying how the principal reads the object: "column payload; via role analytics_readers"."""
    path = f.path
    if f.granted_on is not None:
        return f"granted on {f.granted_on.kind} {f.granted_on.name}"
    if f.future_tables:
        where = f"in schema {f.schema_name}" if f.schema_name else "in every schema"
        return f"default privileges on tables {f.grantor} creates {where}; {reach(f)}"
    if path in (AccessPath.PREDEFINED_ROLE, AccessPath.SUPERUSER, AccessPath.SERVER_FILES):
        text = reach(f, _ROLE_LABELS[path])
        if path == AccessPath.SUPERUSER:
            return f"{text}: a superuser reads every table"
        return (
            f"{text}: reads the table's data files on the server, no table privilege needed"
            if path == AccessPath.SERVER_FILES
            else text
        )
    if path == AccessPath.CREATEROLE:
        return (
            f"{reach(f)} has CREATEROLE: before PostgreSQL 16 it can grant itself any non-superuser role "
            "and read what that role reads"
        )
    if path == AccessPath.SECURITY_DEFINER:
        return (
            f"SECURITY DEFINER function runs as {f.grantor}, who reads in-scope objects (e.g. {f.base_object}); "
            f"EXECUTE {reach(f)}: review what it returns"
        )
    if path == AccessPath.INHERITS_PARENT:
        return f"rows read through INHERITS parent {f.base_object} ({_grant(f)})"
    if path == AccessPath.VIEW and f.views:
        return f"rows read through view {', '.join(f.views)}; {_grant(f)}"
    if path == AccessPath.VIEW and not f.bases:
        return f"view over {f.base_object}, read with this grant; {_grant(f)}"
    parts = []
    if path == AccessPath.VIEW:
        parts.append(f"{f.object_kind} over {', '.join(f.bases)}")
    elif path == AccessPath.PARTITION:
        parts.append(f"partition of {f.base_object}")
    elif path == AccessPath.OWNER:
        parts.append(f"owned by {f.grantee}, which can grant itself access at will")
    if f.column is not None:
        parts.append(f"column {f.column}")
    parts.append(_grant(f))
    if f.row_security:
        parts.append("row-level security on: readable, with rows filtered by its policies")
    return "; ".join(parts)


def as_json(f: Finding) -> dict:
    """Every field that is set (the route always, as a list; the securable as an object) and `via`, the words for people."""
    return {**Finding.__pydantic_serializer__.to_python(f, mode="json"), "route": list(f.route), "via": via(f)}
