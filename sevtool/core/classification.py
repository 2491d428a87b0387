"""Data sensitivity (DSS 1-4) of an object, decided without reading it.

The owner's word wins: a `dss=N` tag in the table COMMENT. Otherwise the team's glob patterns over
`schema.table` (TeamConfig `[[classification]]`). Otherwise the object is unrated (None), which SEV
guidance treats as the most sensitive. When several patterns match, the highest rating wins:
over-rating costs a page, under-rating costs an exposure.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Protocol

MIN_DSS, MAX_DSS = 1, 4

_TAG = re.compile(r"(?<![A-Za-z0-9_])dss\s*=\s*(\d+)(?![0-9])", re.IGNORECASE)


class Rule(Protocol):
    pattern: str
    dss: int


@lru_cache(maxsize=8192)
def dss_from_comment(comment: str | None) -> int | None:
    """The first `dss=N` tag with N in 1-4; an out-of-range tag is ignored rather than guessed.

    Cached: a warehouse repeats a handful of comment templates across tens of thousands of tables."""
    if not comment:
        return None
    for match in _TAG.finditer(comment):
        value = int(match.group(1))
        if MIN_DSS <= value <= MAX_DSS:
            return value
    return None


class Classifier:
    """Callable `(schema, name, comment) -> DSS or None`, the shape targets expect."""

    def __init__(self, rules: Iterable[Rule | tuple[str, int]] = ()):
        compiled = []
        for rule in rules:
            pattern, dss = rule if isinstance(rule, tuple) else (rule.pattern, rule.dss)
            if not MIN_DSS <= dss <= MAX_DSS:
                raise ValueError(f"classification pattern {pattern!r}: DSS must be 1-4, not {dss}")
            compiled.append((re.compile(fnmatch.translate(pattern)), dss))
        # Highest rating first, so the first match is the answer.
        self._rules = sorted(compiled, key=lambda item: -item[1])

    def by_pattern(self, schema: str, name: str) -> int | None:
        fqn = f"{schema}.{name}"
        for regex, dss in self._rules:
            if regex.match(fqn):
                return dss
        return None

    def __call__(self, schema: str, name: str, comment: str | None) -> int | None:
        tagged = dss_from_comment(comment)
        return tagged if tagged is not None else self.by_pattern(schema, name)
