"""Turn what a responder typed after --target into a Target: a name from the team config, or a DSN."""

from __future__ import annotations

from sevtool.errors import ConfigError, NotFound
from sevtool.settings import Settings, TargetConfig
from sevtool.targets.base import Target

_DSN_PREFIXES = ("postgresql://", "postgres://")


def looks_like_dsn(spec: str) -> bool:
    return spec.startswith(_DSN_PREFIXES) or "=" in spec


def open_target(spec: str, settings: Settings) -> Target:
    spec = spec.strip()
    configured = settings.team.targets.get(spec)
    if configured is not None:
        return _from_config(spec, configured, settings)
    if spec.startswith(("uc+http://", "uc+https://")):
        from sevtool.targets.unity.target import UnityCatalogTarget

        return UnityCatalogTarget.from_spec(spec)
    if looks_like_dsn(spec):
        from sevtool.targets.postgres.target import PostgresTarget

        return PostgresTarget(spec)
    known = ", ".join(sorted(settings.team.targets)) or "none configured"
    raise NotFound(f"no target named {spec!r} (known: {known})",
                   hint=f"add [targets.{spec}] with a dsn to {settings.config}, or pass a DSN such as 'host=db1 dbname=warehouse'")


def _from_config(name: str, config: TargetConfig, settings: Settings) -> Target:
    if config.kind == "postgresql":
        if not config.dsn:
            raise ConfigError(f"{settings.config}: targets.{name}: a postgresql target needs dsn",
                              hint="e.g. dsn = \"host=db1 dbname=warehouse user=sevtool\" (keep the password in ~/.pgpass)")
        from sevtool.targets.postgres.target import PostgresTarget

        return PostgresTarget(config.dsn, name=name, connect_timeout=config.connect_timeout)
    if config.kind == "unity-catalog":
        if not config.url:
            raise ConfigError(f"{settings.config}: targets.{name}: a unity-catalog target needs url",
                              hint="e.g. url = \"https://HOST/api/2.1/unity-catalog\" and token_env = \"DATABRICKS_TOKEN\"")
        from sevtool.targets.unity.target import UnityCatalogTarget

        return UnityCatalogTarget(config.url, token_env=config.token_env, name=name, timeout=float(max(10, config.connect_timeout)))
    raise ConfigError(f"{settings.config}: targets.{name}: kind {config.kind!r} is not supported by this build",
                      hint="supported kinds: postgresql, unity-catalog")
