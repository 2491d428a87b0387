"""What responders enter for the postmortem: note kinds and the section each feeds, action item types and statuses.

Apart from the renderer so the CLI can name them in its help without importing pydantic and tabulate.
"""

# Note kinds a responder enters with `sevtool note --kind K`, and the section each one feeds.
NOTE_SECTIONS = {
    "summary": "Summary",
    "detection": "Detection",
    "root-cause": "Root cause",
    "trigger": "Trigger",
    "contributing": "Contributing factors",
    "went-well": "What went well",
    "went-wrong": "What went wrong",
    "lucky": "Where we got lucky",
}
ACTION_ITEM_TYPES = ("prevent", "mitigate", "detect", "process")
ACTION_ITEM_STATUSES = ("open", "in-progress", "done", "wont-do")
