"""The key bar at the bottom of the list and incident screens."""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    """A Footer that rebuilds only when the keys it shows change.

    Textual rebuilds the footer on every focus move, screen push and resume: a dozen keys mounted and styled
    again, tens of milliseconds each time. Opening an incident rebuilt footers seven times for the same keys.
    """

    _shown: tuple | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Footer draws nothing until the screen's first bindings signal, a frame or more after the rest of the
        # screen; the screen's own keys are known at mount, and the signal rebuilds only if focus changed them.
        self.set_reactive(Footer._bindings_ready, True)

    async def recompose(self) -> None:
        if not self.is_attached:  # its screen went away before the queued rebuild ran
            return
        shown = self._keys_shown()
        if shown == self._shown:
            return
        self._shown = shown
        await super().recompose()

    def _keys_shown(self) -> tuple:
        """Everything `Footer.compose` draws from: the screen's active bindings and the footer's own switches."""
        bindings = tuple(
            (binding, enabled, tooltip, self.app.get_key_display(binding))
            for _, binding, enabled, tooltip in self.screen.active_bindings.values()
        )
        return self._bindings_ready, self.show_command_palette, self.app.ENABLE_COMMAND_PALETTE, bindings
