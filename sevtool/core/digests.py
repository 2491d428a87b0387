"""Fingerprints of what a check saw: each finding as JSON, and digests of findings and of objects in scope.

A check stores its findings as JSON and a digest of them, so the next check can tell "exactly what the
previous one found" without reading 45,000 findings back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from sevtool.core.exposure import Finding

# pydantic sets `__pydantic_serializer__` on its dataclasses, but its mypy plugin does not declare it.
_finding_json: Callable[[Finding], bytes] = getattr(Finding, "__pydantic_serializer__").to_json  # noqa: B009


def findings_json(findings: list[Finding]) -> list[bytes]:
    """Each finding as JSON, every field: what a check stores, and what its digest is made of."""
    return [_finding_json(f) for f in findings]


def findings_digest(findings_as_json: list[bytes]) -> str:
    """A fingerprint of a set of findings (pass `findings_json`; any order): equal digests mean a check found
    exactly what the previous one did, without reading 45,000 findings back to compare."""
    return hashlib.sha256(b"\n".join(sorted(findings_as_json))).hexdigest()


def objects_digest(objects: Iterable[str]) -> str:
    """A fingerprint of the objects in scope: equal digests mean no table appeared or went since."""
    return hashlib.sha256("\n".join(sorted(objects)).encode()).hexdigest()
