"""Command-line interface. Never imports Textual except to launch the TUI."""
