"""The playbook as a checklist: done steps ticked from the timeline, the next one highlighted with what to do."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from sevtool.core.playbook import StepProgress, next_step

STEP_KEYS = {
    "scan": "1 then s",
    "revoke": "2 then p, a",
    "verify": "3 then v",
    "watch": "3 then w",
    "communicate": "n 'update: …'",
    "postmortem": "5 then e",
    "assign_roles": "palette",
    "declare": "",
}


def checklist_text(playbook: str | None, steps: list[StepProgress], next_step: StepProgress | None) -> Text:
    if not playbook:
        return Text("No playbook.\nDeclare with one (e.g. data-exposure) to get a checklist here.", style="dim")
    out = Text.assemble((f"Playbook: {playbook}\n", "bold"))
    for item in steps:
        is_next = next_step is not None and item.step.id == next_step.step.id
        mark, style = ("✔", "#69db7c") if item.done else (("▶", "bold reverse #ffd43b") if is_next else ("○", ""))
        optional = "" if item.required else " (optional)"
        out.append(f"{mark} {item.step.title}{optional}\n", style=style if not item.done else "dim " + style)
        if is_next:
            out.append(f"  {item.step.text}\n", style="#ffd43b")
            keys = STEP_KEYS.get(item.step.kind.value)
            if keys:
                out.append(f"  keys: {keys}\n", style="bold")
    if next_step is None:
        out.append("\nEvery step is done.", style="bold #69db7c")
    return out


class PlaybookChecklist(Static):
    def __init__(self, incident_id: int, **kwargs):
        super().__init__("", **kwargs)
        self.incident_id = incident_id

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        with self.app.reporting_errors("loading the playbook"):
            incident = self.app.wb.incidents.get(self.incident_id)
            steps = self.app.wb.playbooks.progress(self.incident_id)
            self.update(checklist_text(incident.playbook, steps, next_step(steps)))
