"""Unity Catalog target: grants read and changed through the REST permissions API (OSS UC and Databricks).

Who counts. The permissions API names principals (users, groups) but does not expose group membership,
so only grants made *to the scope's principals themselves* count (e.g. "account users", "employees").
A scope must name every group that must lose access; a grant to one user inside such a group is not an
exposure of the group and is not reported.

Effective read access to a table for a principal P follows Unity Catalog's rule:
    SELECT on the table, its schema or its catalog
    AND USE SCHEMA on the schema or the catalog
    AND USE CATALOG on the catalog
(ALL PRIVILEGES on a securable implies all three there.) A table whose SELECT comes from the schema or
the catalog is reported with path INHERITED and "granted on schema cat.sch": revoking on the table would
not close it, so the plan targets the securable that holds the grant.

Names: a table's finding has schema_name "catalog.schema" and object_name "table", so its object_fqn is
the table's full name. Privileges are compared normalised ("USE_SCHEMA" == "use schema" == "USE SCHEMA")
and written back in the spelling the server used, so Databricks (underscores) and OSS UC (spaces) both work.

The bearer token is read from the environment variable the config names; it lives only in the HTTP
client's headers, never in `display`, a plan, an error message or the store.

This module holds the target's connection and its contract with sevtool; the work is in `privileges.py` (the
read rule), `scan.py` (the scan), `changes.py` (plan, apply, undo) and `exceptions.py` (just-in-time access).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from sevtool.core.exposure import Finding, Scope
from sevtool.core.plan import Action
from sevtool.errors import ConfigError, TargetError
from sevtool.targets.base import BatchCallback, Classifier, ProbeResult, ScanResult
from sevtool.targets.unity import changes
from sevtool.targets.unity import scan as scanning
from sevtool.targets.unity.client import PrivilegeAssignment, UnityClient, permissions_path
from sevtool.targets.unity.exceptions import ExceptionGrants
from sevtool.targets.unity.plugin import KIND, SPEC_PREFIXES


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`uc+https://host/api/2.1/unity-catalog?token_env=VAR` -> (base URL, token variable name)."""
    if not spec.startswith(SPEC_PREFIXES):
        raise ConfigError(
            f"{spec!r} is not a Unity Catalog spec", hint="use uc+https://HOST/api/2.1/unity-catalog[?token_env=VAR]"
        )
    parts = urlsplit(spec.removeprefix("uc+"))
    given = parse_qs(parts.query).get("token_env")
    token_env = given[0] if given else None
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")), token_env


class UnityCatalogTarget(ExceptionGrants):
    kind = KIND

    def __init__(
        self,
        base_url: str,
        *,
        token_env: str | None = None,
        name: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        max_retries: int = 4,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 8,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{base_url!r} is not an http(s) URL", hint="e.g. https://HOST/api/2.1/unity-catalog")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        # The scope records `display` and later commands re-open the target from it: keep it a valid spec.
        self.display = name or f"uc+{parts.scheme}://{host}{parts.path.rstrip('/')}" + (
            f"?token_env={token_env}" if token_env else ""
        )
        token = None
        if token_env:
            token = os.environ.get(token_env)
            if not token:
                raise ConfigError(
                    f"target {self.display}: environment variable {token_env} is not set",
                    hint=f"export {token_env}=<bearer token>; sevtool never stores it",
                )
        self.workers = workers  # concurrent permission reads (scan, plan) and securables per batch (apply, undo)
        clean_url = urlunsplit((parts.scheme, host, parts.path, "", ""))
        self.client = UnityClient(
            clean_url,
            token=token,
            display=self.display,
            transport=transport,
            timeout=timeout,
            max_retries=max_retries,
            max_wait=max_wait,
            sleep=sleep,
        )

    @classmethod
    def from_spec(cls, spec: str, **kw: Any) -> UnityCatalogTarget:  # kw: the constructor's keywords
        base_url, token_env = parse_spec(spec)
        return cls(base_url, token_env=token_env, **kw)

    # --- reading -----------------------------------------------------------------------------

    def permissions(self, securable_type: str, full_name: str) -> list[PrivilegeAssignment]:
        body = self.client.get(permissions_path(securable_type, full_name))
        assignments: list[PrivilegeAssignment] = body.get("privilege_assignments") or []
        return assignments

    def scan(self, scope: Scope, classify: Classifier) -> ScanResult:
        return scanning.scan(self, scope, classify)

    # --- planning and changing ---------------------------------------------------------------

    securable_of = staticmethod(changes.securable_of)

    def plan(self, findings: Iterable[Finding], scope: Scope) -> list[Action]:
        return changes.plan(self, findings, scope)

    def apply(self, actions: list[Action], on_batch: BatchCallback, *, batch_size: int | None = None) -> None:
        changes.apply(self, actions, on_batch, batch_size=batch_size)

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        changes.undo(self, actions, on_batch)

    def probe(self, role: str, objects: list[str]) -> list[ProbeResult]:
        raise TargetError(
            f"{self.display}: live probes are not supported on Unity Catalog targets: the REST API cannot act as a member of {role!r}",
            hint="verification relies on the catalog's effective grants for this target",
        )

    def close(self) -> None:
        self.client.close()
