"""Playbooks: find, validate and follow them.

Playbooks are looked up by name in `./playbooks/` (a team's own, in its repository) and then in the
ones shipped inside the package, so `pip install sevtool` works without the source tree. A team's
file with the same name as a shipped one replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sevtool.core.playbook import Playbook, StepKind, StepProgress, next_step, parse_playbook, progress
from sevtool.errors import ConfigError, NotFound, UsageError

if TYPE_CHECKING:
    from sevtool.services import Workbench

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "playbooks"


@dataclass(frozen=True)
class PlaybookFile:
    name: str
    path: Path
    playbook: Playbook | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "valid": self.error is None,
            "error": self.error,
            "title": self.playbook.title if self.playbook else None,
            "steps": len(self.playbook.steps) if self.playbook else None,
        }


class PlaybookService:
    def __init__(self, wb: Workbench, dirs: list[Path] | None = None):
        self.wb = wb
        self.dirs = dirs if dirs is not None else [Path.cwd() / "playbooks", SHIPPED_DIR]

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for directory in self.dirs:
            if directory.is_dir():
                for path in sorted(directory.glob("*.toml")):
                    found.setdefault(path.stem, path)
        return found

    def list(self) -> list[PlaybookFile]:
        """Every playbook found; a broken one is listed with its error rather than hidden."""
        out = []
        for name, path in sorted(self._files().items()):
            try:
                out.append(PlaybookFile(name, path, playbook=self.load(path)))
            except ConfigError as exc:
                out.append(PlaybookFile(name, path, error=str(exc)))
        return out

    def get(self, name: str) -> Playbook:
        files = self._files()
        path = files.get(name.strip())
        if path is None:
            raise UsageError(f"no playbook named {name!r}", hint="available: " + (", ".join(sorted(files)) or "none"))
        return self.load(path)

    def load(self, path: Path) -> Playbook:
        """Parse and validate one file; errors read `file:line: field: problem`."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"no playbook file {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        return parse_playbook(text, str(path), name=path.stem)

    def progress(self, incident_id: int) -> list[StepProgress]:
        """Steps of the incident's playbook with what is done, from the timeline; [] without a playbook."""
        incident = self.wb.incidents.get(incident_id)
        if not incident.playbook:
            return []
        playbook = self.get(incident.playbook)
        events = self.wb.store.events(incident_id)
        return progress(
            playbook, incident.sev, events, commander=incident.commander, settled=self._settled(incident_id, events)
        )

    def _settled(self, incident_id: int, events: list) -> dict[StepKind, datetime | None]:
        """The watch step is done once the re-check schedule no longer holds back resolution."""
        checks = [e for e in events if e.kind == "check"]
        verification = getattr(self.wb, "verification", None)
        if checks and verification is not None and verification.resolution_gate(incident_id) is None:
            return {StepKind.WATCH: max(e.at for e in checks)}
        return {}

    def next_step(self, incident_id: int) -> StepProgress | None:
        return next_step(self.progress(incident_id))
