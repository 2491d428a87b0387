"""SQL identifiers as a server log spells them, turned into the names findings use (schema.object)."""

from __future__ import annotations


def normalise_identifier(ident: str) -> str:
    ident = ident.strip()
    if len(ident) >= 2 and ident[0] == ident[-1] == '"':
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def normalise_name(name: str) -> str:
    """'public."Keys"' -> 'public.Keys'; 'Public.T' -> 'public.t'; the name as findings spell schema.object."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in name.strip():
        if ch == '"':
            quoted = not quoted
        if ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return ".".join(normalise_identifier(p) for p in parts)
