"""Mask anything shaped like a password or token in free text typed by people (summaries, notes)."""

from __future__ import annotations

import re

_URL_SECRET = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]+)@", re.I)
_KV_SECRET = re.compile(
    r"\b(?P<key>password|passwd|pwd|pgpassword|token|secret|api[_-]?key)(?P<sep>\s*[=:]\s*)(?P<secret>'[^']*'|\"[^\"]*\"|\S+)",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=\-]+", re.I)

# Lower-case fragments every secret pattern above contains: a cell without any of them needs no regex, and
# most cells of a long timeline have none.
_SECRET_HINTS = ("://", "pass", "pwd", "token", "secret", "api", "bearer")


def redact(text: str) -> str:
    """Mask anything shaped like a password or token; DSNs keep their user, host and database."""
    lower = text.lower()
    if not any(hint in lower for hint in _SECRET_HINTS):
        return text
    text = _URL_SECRET.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _KV_SECRET.sub(lambda m: f"{m['key']}{m['sep']}***", text)
    return _BEARER.sub(r"\1 ***", text)
