"""Process settings from the environment (pydantic-settings) and the team's TOML config file."""

from __future__ import annotations

import getpass
import os
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import platformdirs
from dateutil import tz
from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from sevtool.core.broadening import BroadeningRule
from sevtool.core.guard import Policy, policy_problems
from sevtool.core.playbook import key_lines, locate
from sevtool.core.severity import SevPolicy
from sevtool.errors import ConfigError

APP = "sevtool"


def default_db_url() -> str:
    return "sqlite:///" + str(Path(platformdirs.user_data_dir(APP)) / "sevtool.db")


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


class TargetConfig(BaseModel):
    """A [targets.NAME] table: `kind` names an installed target plug-in, whose own model validates the rest."""

    kind: str
    options: BaseModel

    @model_validator(mode="before")
    @classmethod
    def _by_kind(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw  # pydantic says it is not a table
        from sevtool.targets.plugin import known_kinds, plugins

        table = dict(raw)
        kind = table.pop("kind", None)
        found = plugins()
        if kind is None:  # a table that fits exactly one kind's settings needs no `kind`
            fits = [p.kind for p in found.values() if _fits(p.config, table)]
            kind = fits[0] if len(fits) == 1 else None
        if not isinstance(kind, str) or kind not in found:
            problem = (
                f"unknown target kind {kind!r}"
                if "kind" in raw
                else "kind is missing and the settings fit no single kind"
            )
            raise PydanticCustomError(
                "target_kind", "{problem}", {"problem": problem, "hint": f'add kind = "..."; {known_kinds()}'}
            )
        plugin = found[kind]
        try:
            return {"kind": kind, "options": plugin.config.model_validate(table)}
        except ValidationError as exc:
            # A misspelt setting explains a missing one, so it is named first.
            err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
            field = ".".join(str(p) for p in err["loc"])
            takes = ", ".join(plugin.config.model_fields)
            problem = {
                "missing": f"a {kind} target needs {field}",
                "extra_forbidden": f"{field} is not a {kind} setting (it takes {takes})",
            }.get(err["type"], f"{field}: {err['msg']}")
            example = "; ".join(plugin.config_example.splitlines())
            raise PydanticCustomError(
                "target_config", "{problem}", {"problem": problem, "hint": f"e.g. {example}"}
            ) from None


def _fits(model: type[BaseModel], table: dict) -> bool:
    try:
        model.model_validate(table)
    except ValidationError:
        return False
    return True


class ClassificationRule(BaseModel):
    pattern: str  # glob over schema.table
    dss: int = Field(ge=1, le=4)


class WebhookConfig(BaseModel):
    url: str
    format: Literal["json", "slack"] = "json"
    sev: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    events: list[str] = Field(
        default_factory=lambda: ["declared", "sev_changed", "regression", "status_changed", "resolved"]
    )


class TeamConfig(BaseModel):
    timezone: str | None = None
    sev: dict[str, dict] = Field(default_factory=dict)
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    classification: list[ClassificationRule] = Field(default_factory=list)
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)
    revoke_batch_size: int = Field(default=1000, ge=1, le=20000)
    policy: list[Policy] = Field(default_factory=list)  # [[policy]]: standing exposure policies (`sevtool guard`)
    guard: BroadeningRule = Field(default_factory=BroadeningRule)  # [guard]: when a run records access broadening


class Settings(BaseSettings):
    """SEVTOOL_DB, SEVTOOL_CONFIG, SEVTOOL_TZ, SEVTOOL_ACTOR, SEVTOOL_WATCH_STALE_AFTER."""

    model_config = SettingsConfigDict(env_prefix="SEVTOOL_", extra="ignore")

    db: str = Field(default_factory=default_db_url)
    config: Path = Field(default_factory=default_config_path)
    tz: str | None = None
    actor: str | None = None
    # Seconds without a heartbeat after which a watcher on another host is presumed dead and its lock taken over.
    # A live watcher beats three times per window, during a check too.
    watch_stale_after: float = Field(default=60.0, ge=0.5, le=3600)

    @cached_property
    def team(self) -> TeamConfig:
        return load_team_config(self.config)

    @cached_property
    def policy(self) -> SevPolicy:
        return SevPolicy.from_overrides(self.team.sev, source=str(self.config))

    @property
    def zone(self):
        name = self.tz or self.team.timezone or os.environ.get("TZ")
        zone = tz.gettz(name) if name else tz.tzlocal()
        if zone is None:
            raise ConfigError(f"unknown time zone {name!r}", hint="use an IANA name such as America/Los_Angeles")
        return zone

    @property
    def who(self) -> str:
        if self.actor:
            return self.actor
        try:
            return getpass.getuser()
        except Exception:  # no passwd entry (containers)
            return "unknown"


def load_team_config(path: Path) -> TeamConfig:
    if not path.exists():
        return TeamConfig()
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint="fix the TOML syntax at that line") from None
    lines = key_lines(text)
    try:
        config = TeamConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc)
        where = _where(path, lines, loc)
        raise ConfigError(
            f"{where}: {field}: {err['msg'].removeprefix('Value error, ')}", hint=(err.get("ctx") or {}).get("hint")
        ) from None
    problems = policy_problems(config.policy, set(config.targets))
    if problems:
        raise ConfigError(
            "; ".join(f"{_where(path, lines, loc)}: {'.'.join(map(str, loc))}: {problem}" for loc, problem in problems),
            hint="each [[policy]] needs a unique name and a target named in [targets.NAME]",
        )
    return config


def _where(path: Path, lines: dict, loc: tuple) -> str:
    """`file:line` for errors in [[policy]] tables (located like a playbook's); other settings keep `file`."""
    line = locate(lines, loc) if loc[:1] == ("policy",) else None
    return f"{path}:{line}" if line else str(path)
