"""Findings a page at a time, filtered by the store: what a screen needs from a scope of 200,000 findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sevtool.core.exposure import Finding
from sevtool.store import finding_pages, scans

if TYPE_CHECKING:
    from sevtool.services import Workbench


@dataclass(frozen=True)
class FindingPage:
    """One page of the latest scope version's findings matching a filter, most sensitive first."""

    version: int
    total: int  # every finding of the version
    matching: int  # those the filter keeps
    offset: int
    findings: list[Finding]


class FindingPageService:
    def __init__(self, wb: Workbench):
        self.store = wb.store

    def page(
        self, incident_id: int, words: Sequence[str] = (), offset: int = 0, limit: int = 200
    ) -> FindingPage | None:
        """Findings `offset` to `offset + limit` of those with every word of `words` somewhere in them (any case);
        None if the incident was never scanned."""
        with self.store.read() as session:
            row = scans.scope_row(session, incident_id)
            if row is None:
                return None
            words = [w for w in words if w]
            matching, findings = finding_pages.page(session, row.id, words, offset, limit)
            if not words:
                matching = row.finding_count
            elif matching is None:  # no row came back to carry the count: none match, or the page is past the end
                matching = finding_pages.count(session, row.id, words) if offset else 0
            return FindingPage(row.version, row.finding_count, matching, offset, findings)
