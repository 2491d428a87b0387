"""pgaudit's AUDIT payload: `SESSION|OBJECT,statement_id,substatement_id,class,command,object_type,object_name,
statement,parameter`, CSV-quoted inside the log message. Only the first seven fields are kept; the statement is
read only for a ROLE-class GRANT, to learn which tables it granted to whom, and then dropped.
"""

from __future__ import annotations

import re

from sevtool.core.identifiers import normalise_identifier, normalise_name

_GRANT = re.compile(
    r"^\s*GRANT\s+(?P<privs>.+?)\s+ON\s+(?P<objects>.+?)\s+TO\s+(?P<grantees>.+?)"
    r"(?:\s+WITH\s+GRANT\s+OPTION)?(?:\s+GRANTED\s+BY\s+\S+)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ALL_IN_SCHEMA = re.compile(r"^ALL\s+TABLES\s+IN\s+SCHEMA\s+(?P<schemas>.+)$", re.IGNORECASE | re.DOTALL)
_NOT_TABLES = re.compile(
    r"^(SEQUENCE|FUNCTION|PROCEDURE|ROUTINE|SCHEMA|DATABASE|DOMAIN|TYPE|LANGUAGE|LARGE|FOREIGN|TABLESPACE|"
    r"PARAMETER|ALL\s+(SEQUENCES|FUNCTIONS|PROCEDURES|ROUTINES))\b",
    re.IGNORECASE,
)


def csv_fields(text: str, count: int) -> list[str] | None:
    """The first `count` CSV fields of text (pgaudit's AUDIT payload), or None when it has fewer or bad quoting."""
    out: list[str] = []
    i, n = 0, len(text)
    while len(out) < count:
        if i < n and text[i] == '"':
            value, i = [], i + 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    return None
                value.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    value.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            out.append("".join(value))
            if i < n and text[i] != ",":
                return None
        else:
            j = text.find(",", i)
            if j < 0:
                j = n
            out.append(text[i:j])
            i = j
        if i >= n and len(out) < count:
            return None
        i += 1
    return out


def parse_audit(payload: str) -> tuple | None:
    """(audit_type, statement_id, substatement_id, class, command, object_type, object_name, grant_objects, grantees)
    from the text after 'AUDIT: ', or None when it is not a pgaudit payload."""
    parts = payload.split(",", 7)
    if len(parts) < 8 or parts[6][:1] == '"' or parts[4][:1] == '"':
        parts = csv_fields(payload, 8)
        if parts is None:
            return None
    audit_type, stmt, sub, klass, command, object_type, object_name = parts[:7]
    if audit_type not in ("SESSION", "OBJECT") or not stmt.isdigit() or not sub.isdigit():
        return None
    grant_objects: tuple[str, ...] = ()
    grantees: tuple[str, ...] = ()
    if klass == "ROLE" and command == "GRANT":
        statement = csv_fields(payload, 8)
        if statement is not None:
            grant_objects, grantees = grant_targets(statement[7])
    return audit_type, int(stmt), int(sub), klass, command, object_type, object_name, grant_objects, grantees


def grant_targets(statement: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tables and grantees of the GRANT ... ON ... TO ... statements in a query string (nothing else kept)."""
    objects: list[str] = []
    grantees: list[str] = []
    for part in statement.split(";"):
        match = _GRANT.match(part)
        if not match:
            continue
        target = match.group("objects").strip()
        if _NOT_TABLES.match(target):
            continue
        schemas = _ALL_IN_SCHEMA.match(target)
        if schemas:
            names = [f"{normalise_identifier(s)}.*" for s in split_names(schemas.group("schemas"))]
        else:
            target = re.sub(r"^TABLE\s+", "", target, flags=re.IGNORECASE)
            names = [normalise_name(n) for n in split_names(target)]
        objects += names
        grantees += [
            normalise_identifier(re.sub(r"^GROUP\s+", "", g.strip(), flags=re.IGNORECASE))
            for g in split_names(match.group("grantees"))
        ]
    return tuple(dict.fromkeys(objects)), tuple(dict.fromkeys(grantees))


def split_names(text: str) -> list[str]:
    """Split 'a, "b,c", s.t' on the commas outside double quotes."""
    out, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    out.append("".join(current).strip())
    return [name for name in out if name]
