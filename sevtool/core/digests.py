"""Fingerprints of what a check saw: each finding as JSON, and digests of findings and of objects in scope.

A check stores its findings as JSON and a digest of them, so the next check can tell "exactly what the
previous one found" without reading 200,000 findings back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from sevtool.core.exposure import Finding

# pydantic sets `__pydantic_serializer__` on its dataclasses, but its mypy plugin does not declare it.
finding_json: Callable[[Finding], bytes] = getattr(Finding, "__pydantic_serializer__").to_json  # noqa: B009

_MODULUS = 1 << 256


class FindingsDigest:
    """A fingerprint of a multiset of findings, fed one finding's JSON at a time in any order.

    The sum of each finding's SHA-256 (and their number) does not depend on the order, so it is taken while
    the findings stream past instead of sorting all their JSON first. Equal digests mean a check found
    exactly what the previous one did.
    """

    def __init__(self) -> None:
        self._sum = 0
        self._count = 0

    def add(self, finding_as_json: bytes) -> None:
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(finding_as_json).digest())) % _MODULUS
        self._count += 1

    def hexdigest(self) -> str:
        return hashlib.sha256(f"findings {self._count} {self._sum:064x}".encode()).hexdigest()


def findings_digest(findings: Iterable[Finding]) -> str:
    """The digest of these findings (any order), as `FindingsDigest` takes it."""
    digest = FindingsDigest()
    for f in findings:
        digest.add(finding_json(f))
    return digest.hexdigest()


def objects_digest(objects: Iterable[str]) -> str:
    """A fingerprint of the objects in scope: equal digests mean no table appeared or went since."""
    return hashlib.sha256("\n".join(sorted(objects)).encode()).hexdigest()
