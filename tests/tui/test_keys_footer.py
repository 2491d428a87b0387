"""KeysFooter: the footer follows the keys of whatever has focus, and skips rebuilds that would draw the same keys."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from sevtool.tui.widgets.keys_footer import KeysFooter


class Search(Input):
    BINDINGS = [Binding("f3", "find", "Find")]

    def action_find(self) -> None:
        pass


class TwoBoxes(App):
    BINDINGS = [Binding("f2", "done", "Done")]

    def compose(self) -> ComposeResult:
        yield Input(id="plain")
        yield Input(id="plain-too")
        yield Search(id="search")
        yield KeysFooter()

    def action_done(self) -> None:
        self.exit()


async def test_the_footer_follows_focus_and_rebuilds_only_for_new_keys(monkeypatch):
    composed = []
    original = KeysFooter.compose
    monkeypatch.setattr(KeysFooter, "compose", lambda self: composed.append(1) or original(self))
    app = TwoBoxes()
    async with app.run_test() as pilot:
        await pilot.pause()

        def shown() -> list[str]:
            return [key.description for key in app.screen.query("FooterKey")]

        app.screen.query_one("#plain").focus()
        await pilot.pause()
        assert "Done" in shown() and "Find" not in shown()
        builds = len(composed)

        app.screen.query_one("#plain-too").focus()  # same keys: nothing rebuilt
        await pilot.pause()
        assert len(composed) == builds

        app.screen.query_one("#search").focus()  # a key more: rebuilt, and shown
        await pilot.pause()
        assert len(composed) == builds + 1
        assert "Find" in shown() and "Done" in shown()
