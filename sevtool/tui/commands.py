"""Command palette (ctrl+p): every action of the current screen, by name, with its key."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


def palette_entries(screen) -> list[tuple[str, str, str]]:
    """(title, help, action) for the screen's actions; screens list them in PALETTE."""
    return list(getattr(screen, "PALETTE", []))


class ScreenActions(Provider):
    async def discover(self) -> Hits:
        for title, help_text, action in palette_entries(self.screen):
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in palette_entries(self.screen):
            score = matcher.match(f"{title} {help_text}")
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(self.screen.run_action, action), text=title, help=help_text
                )
