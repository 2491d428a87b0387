"""The findings matching the filter, as far as the store has sent them: a page at a time, as the table reaches it.

A scope of 200,000 findings would cost seconds and hundreds of megabytes to read whole; a screen shows forty.
"""

from __future__ import annotations

from sevtool.core.exposure import Finding
from sevtool.services.finding_pages import FindingPage

PAGE = 200
KEEP_PAGES = 25  # about 5,000 findings held while someone scrolls far: older pages are read again if needed


class FindingWindow:
    """Indexed like the list of every matching finding; an index not read yet gives None (the table shows a
    placeholder and asks for its page)."""

    def __init__(self, generation: int, words: tuple[str, ...], first: FindingPage):
        self.generation = generation  # which load or filter of the scope pane it answers
        self.words = words
        self.matching = first.matching
        self._pages: dict[int, list[Finding]] = {}
        self._asked: set[int] = set()
        self.add(first)

    def __len__(self) -> int:
        return self.matching

    def __getitem__(self, index: int) -> Finding | None:
        if not 0 <= index < self.matching:
            raise IndexError(index)
        page = self._pages.get(index // PAGE)
        return page[index % PAGE] if page is not None and index % PAGE < len(page) else None

    def ask(self, index: int) -> int | None:
        """The offset of the page holding `index`, the first time it is wanted; None once it has been asked for."""
        number = index // PAGE
        if number in self._pages or number in self._asked:
            return None
        self._asked.add(number)
        return number * PAGE

    def forget(self, offset: int) -> None:
        """The page at `offset` was not read after all (scrolled past): ask for it again when it is wanted."""
        self._asked.discard(offset // PAGE)

    def add(self, page: FindingPage) -> None:
        number = page.offset // PAGE
        self._asked.discard(number)
        self._pages[number] = page.findings
        while len(self._pages) > KEEP_PAGES:
            del self._pages[next(iter(self._pages))]  # the page read longest ago
