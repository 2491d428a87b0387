"""Widgets grouped by feature: one pane per tab of the incident screen, plus shared pieces."""
