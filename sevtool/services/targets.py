"""Turn what a responder typed after --target into a Target: a name from the team config, or a spec
(DSN, URL) that one installed target plug-in recognises."""

from __future__ import annotations

from sevtool.errors import NotFound, UsageError
from sevtool.settings import Settings
from sevtool.targets.base import Target
from sevtool.targets.plugin import plugin, plugins


def open_target(spec: str, settings: Settings) -> Target:
    spec = spec.strip()
    configured = settings.team.targets.get(spec)
    if configured is not None:
        return plugin(configured.kind).from_config(spec, configured.options)
    matching = {p.kind: p.spec for p in plugins().values() if p.spec is not None and p.spec.recognises(spec)}
    if len(matching) > 1:
        kinds = ", ".join(sorted(matching))
        raise UsageError(
            f"{spec!r} could be a target of more than one kind ({kinds})",
            hint=f"name it in {settings.config} as [targets.NAME] with kind = one of them",
        )
    if matching:
        return next(iter(matching.values())).open(spec)
    known = ", ".join(sorted(settings.team.targets)) or "none configured"
    specs = "; ".join(f"{p.title}: {p.spec.example}" for _, p in sorted(plugins().items()) if p.spec)
    raise NotFound(
        f"no target named {spec!r} (known: {known})",
        hint=f"add [targets.{spec}] to {settings.config}, or pass a spec ({specs})",
    )
