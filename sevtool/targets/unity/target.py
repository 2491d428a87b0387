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
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from sevtool.core.exposure import AccessPath, Finding, Scope, Securable
from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import ConfigError, TargetError, TargetRejected
from sevtool.targets.base import BatchCallback, Classifier, ProbeResult, ScanResult
from sevtool.targets.unity import blast as unity_blast
from sevtool.targets.unity.client import JSON, PrivilegeAssignment, UnityClient, permissions_path
from sevtool.targets.unity.plugin import KIND, REVOKE_SECURABLE, SPEC_PREFIXES

SELECT, USE_SCHEMA, USE_CATALOG, ALL = "SELECT", "USE SCHEMA", "USE CATALOG", "ALL PRIVILEGES"
DEFAULT_BATCH = 100


def normalise_privilege(name: str) -> str:
    """Databricks spells privileges USE_SCHEMA, OSS Unity Catalog USE SCHEMA; compare one form."""
    return " ".join(name.replace("_", " ").upper().split())


def privileges_of(assignments: list[PrivilegeAssignment], principal: str) -> list[str]:
    """The raw privilege names a permissions list gives one principal (as spelled by the server)."""
    out: list[str] = []
    for item in assignments:
        if item.get("principal") == principal:
            out.extend(item.get("privileges") or [])
    return out


def holds(privileges: list[str], wanted: str) -> bool:
    names = {normalise_privilege(p) for p in privileges}
    return normalise_privilege(wanted) in names or ALL in names


def select_sources(catalog: list[str], schema: list[str], table: list[str]) -> list[tuple[str, str]]:
    """For one principal's privileges at each level: the levels whose SELECT-like grant makes the table
    readable, as (level, privilege as spelled). Empty when USE CATALOG or USE SCHEMA is missing."""
    if not holds(catalog, USE_CATALOG) or not (holds(catalog, USE_SCHEMA) or holds(schema, USE_SCHEMA)):
        return []
    sources = []
    for level, privs in (("table", table), ("schema", schema), ("catalog", catalog)):
        for p in privs:
            if normalise_privilege(p) in (SELECT, ALL):
                sources.append((level, p))
    return sources


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


def _split(full_name: str) -> tuple[str, str]:
    """`cat.sch.tbl` -> ("cat.sch", "tbl"); `cat.sch` -> ("cat", "sch"); `cat` -> ("", "cat")."""
    parent, _, leaf = full_name.rpartition(".")
    return parent, leaf


class UnityCatalogTarget:
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

    def _in_scope_privileges(self, securable_type: str, full_name: str, principals: list[str]) -> dict[str, list[str]]:
        assignments = self.permissions(securable_type, full_name)
        return {p: privileges_of(assignments, p) for p in principals}

    def scan(self, scope: Scope, classify: Classifier) -> ScanResult:
        started = time.monotonic()
        findings: list[Finding] = []
        objects: dict[str, int | None] = {}
        notices: list[str] = []
        principals = list(scope.principals)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="uc-scan") as pool:
            self._scan_catalogs(scope, classify, principals, pool, findings, objects, notices)
        return ScanResult(
            findings=findings,
            objects_in_scope=len(objects),
            objects=objects,
            notices=notices,
            duration_ms=int((time.monotonic() - started) * 1000),
        )

    def _scan_catalogs(
        self,
        scope: Scope,
        classify: Classifier,
        principals: list[str],
        pool: ThreadPoolExecutor,
        findings: list[Finding],
        objects: dict[str, int | None],
        notices: list[str],
    ) -> None:
        for catalog in self.client.pages("/catalogs", "catalogs", {}):
            cat = catalog["name"]
            if scope.schemas and not any(s == cat or s.startswith(f"{cat}.") for s in scope.schemas):
                continue
            cat_privs = self._in_scope_privileges("catalog", cat, principals)
            for schema in self.client.pages("/schemas", "schemas", {"catalog_name": cat}):
                schema_fqn = f"{cat}.{schema['name']}"
                if scope.schemas and cat not in scope.schemas and schema_fqn not in scope.schemas:
                    continue
                sch_privs = self._in_scope_privileges("schema", schema_fqn, principals)
                # Without USE CATALOG and USE SCHEMA nobody in scope can read any table here: skip the per-table reads.
                reachable = [
                    p
                    for p in principals
                    if holds(cat_privs[p], USE_CATALOG)
                    and (holds(cat_privs[p], USE_SCHEMA) or holds(sch_privs[p], USE_SCHEMA))
                ]
                in_scope: list[tuple[JSON, str, int | None]] = []
                for table in self.client.pages(
                    "/tables", "tables", {"catalog_name": cat, "schema_name": schema["name"]}
                ):
                    name = table["name"]
                    if scope.table_glob and not any(
                        fnmatchcase(n, scope.table_glob)
                        for n in (name, f"{schema['name']}.{name}", f"{schema_fqn}.{name}")
                    ):
                        continue
                    dss = classify(schema_fqn, name, table.get("comment"))
                    if scope.matches_dss(dss):
                        objects[f"{schema_fqn}.{name}"] = dss
                        in_scope.append((table, name, dss))
                if not reachable:
                    continue
                # One permissions read per table: run them side by side, the round trip dominates.
                table_privs = pool.map(
                    lambda item, schema=schema_fqn, holders=reachable: self._in_scope_privileges(
                        "table", f"{schema}.{item[1]}", holders
                    ),
                    in_scope,
                )
                inherited_here = 0
                for (table, name, dss), tbl_privs in zip(in_scope, table_privs, strict=False):
                    fqn = f"{schema_fqn}.{name}"
                    kind = "view" if "VIEW" in (table.get("table_type") or "") else "table"
                    for principal in reachable:
                        for level, privilege in select_sources(
                            cat_privs[principal], sch_privs[principal], tbl_privs[principal]
                        ):
                            holder = {"table": fqn, "schema": schema_fqn, "catalog": cat}[level]
                            inherited_here += level != "table"
                            findings.append(
                                Finding(
                                    object_kind=kind,
                                    schema_name=schema_fqn,
                                    object_name=name,
                                    principal=principal,
                                    path=AccessPath.DIRECT if level == "table" else AccessPath.INHERITED,
                                    granted_on=Securable(level, holder),
                                    privilege=normalise_privilege(privilege),
                                    grantee=principal,
                                    dss=dss,
                                )
                            )
                if inherited_here:
                    notices.append(
                        f"{schema_fqn}: {inherited_here} finding(s) come from grants on the schema or catalog; "
                        "revoking on the tables would not close them"
                    )

    # --- planning ----------------------------------------------------------------------------

    @staticmethod
    def securable_of(finding: Finding) -> tuple[str, str]:
        """Which securable holds the grant behind a finding: the one the scan recorded, else the table itself."""
        on = finding.granted_on
        return (on.kind, on.name) if on is not None else ("table", finding.object_fqn)

    def plan(self, findings: Iterable[Finding], scope: Scope) -> list[Action]:
        groups: dict[tuple[str, str, str, str], list[Finding]] = {}
        in_scope: set[str] = set()
        for f in findings:
            in_scope.add(f.object_fqn)
            stype, sname = self.securable_of(f)
            groups.setdefault((stype, sname, f.grantee or f.principal, normalise_privilege(f.privilege)), []).append(f)
        rank = {"catalog": 0, "schema": 1, "table": 2}
        actions: list[Action] = []
        securables = sorted({(stype, sname) for stype, sname, _, _ in groups})
        with ThreadPoolExecutor(self.workers, thread_name_prefix="uc-plan") as pool:
            current = dict(zip(securables, pool.map(lambda key: self.permissions(*key), securables), strict=False))
        for (stype, sname, principal, privilege), group in sorted(
            groups.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1], kv[0][2], kv[0][3])
        ):
            assignments = current[(stype, sname)]
            spelled = [p for p in privileges_of(assignments, principal) if normalise_privilege(p) == privilege] or [
                privilege
            ]
            tables = sorted({f.object_fqn for f in group})
            if stype == "table":
                reason = f"{privilege} granted on table {sname} to {principal}"
            else:
                shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
                reason = (
                    f"{privilege} is granted to {principal} on {stype} {sname} and inherited by every table in it; "
                    f"a revoke on the table would not close access, so this revokes on the {stype} "
                    f"(affects all its tables; in scope: {shown})"
                )
            body = {"changes": [{"principal": principal, "add": [], "remove": spelled}]}
            parent, leaf = _split(sname)
            actions.append(
                Action(
                    seq=len(actions) + 1,
                    kind=REVOKE_SECURABLE,
                    object_kind=stype,
                    schema_name=parent,
                    object_name=leaf,
                    grantee=principal,
                    privileges=spelled,
                    sql=f"PATCH {permissions_path(stype, sname)} {json.dumps(body)}",
                    prior_state=json.dumps(
                        {"securable_type": stype, "full_name": sname, "privilege_assignments": assignments}
                    ),
                    reason=reason,
                )
            )
        unity_blast.attach(
            self, actions, in_scope
        )  # a catalog or schema revoke also takes the tables outside the scope
        return actions

    # --- changing ----------------------------------------------------------------------------

    def apply(self, actions: list[Action], on_batch: BatchCallback, *, batch_size: int | None = None) -> None:
        self._in_batches(actions, on_batch, batch_size, self._revoke_on)

    def undo(self, actions: list[Action], on_batch: BatchCallback) -> None:
        self._in_batches(actions, on_batch, None, self._restore_on)

    def _in_batches(
        self,
        actions: list[Action],
        on_batch: BatchCallback,
        batch_size: int | None,
        run: Callable[[str, str, list[Action]], list[ActionResult]],
    ) -> None:
        """Securables in a batch are independent: their read-PATCH-read rounds run side by side.
        What finished is reported even when the catalog stops answering mid-batch, then the error is raised."""
        size = batch_size or DEFAULT_BATCH
        with ThreadPoolExecutor(self.workers, thread_name_prefix="uc-apply") as pool:
            for start in range(0, len(actions), size):
                by_securable: dict[tuple[str, str], list[Action]] = {}
                for action in actions[start : start + size]:
                    by_securable.setdefault((action.object_kind, action.object_fqn), []).append(action)
                running = [
                    (pool.submit(run, stype, sname, group), group) for (stype, sname), group in by_securable.items()
                ]
                results: list[ActionResult] = []
                stopped: TargetError | None = None
                for future, group in running:
                    try:
                        results += future.result()
                    except TargetRejected as exc:
                        results += [
                            ActionResult(seq=a.seq, status=ActionStatus.FAILED, message=exc.message) for a in group
                        ]
                    except TargetError as exc:
                        stopped = stopped or exc
                on_batch(results)
                if stopped:
                    raise stopped

    def _patch(self, stype: str, sname: str, changes: dict[str, dict[str, list[str]]]) -> None:
        body = {
            "changes": [
                {"principal": p, "add": c.get("add", []), "remove": c.get("remove", [])} for p, c in changes.items()
            ]
        }
        self.client.patch(permissions_path(stype, sname), body)

    def _revoke_on(self, stype: str, sname: str, group: list[Action]) -> list[ActionResult]:
        before = self.permissions(stype, sname)
        present: dict[int, list[str]] = {}
        changes: dict[str, dict[str, list[str]]] = {}
        for action in group:
            names = {normalise_privilege(x) for x in action.privileges}
            present[action.seq] = [p for p in privileges_of(before, action.grantee) if normalise_privilege(p) in names]
            removing = changes.setdefault(action.grantee, {"remove": []})["remove"]
            removing += [p for p in present[action.seq] if p not in removing]
        changes = {p: c for p, c in changes.items() if c["remove"]}
        if changes:
            self._patch(stype, sname, changes)
        after = self.permissions(stype, sname)  # trust only what the re-read shows
        results = []
        for action in group:
            names = {normalise_privilege(x) for x in action.privileges}
            left = [p for p in privileges_of(after, action.grantee) if normalise_privilege(p) in names]
            if not present[action.seq]:
                results.append(
                    ActionResult(
                        seq=action.seq, status=ActionStatus.SKIPPED, message=f"already absent on {stype} {sname}"
                    )
                )
            elif left:
                results.append(
                    ActionResult(
                        seq=action.seq,
                        status=ActionStatus.FAILED,
                        message=f"PATCH accepted but a re-read of {stype} {sname} still shows {', '.join(left)} for {action.grantee}",
                    )
                )
            else:
                results.append(
                    ActionResult(
                        seq=action.seq,
                        status=ActionStatus.APPLIED,
                        message=f"removed {', '.join(present[action.seq])} from {action.grantee} on {stype} {sname}; re-read confirms",
                    )
                )
        return results

    def _restore_on(self, stype: str, sname: str, group: list[Action]) -> list[ActionResult]:
        """Re-add exactly what each action removed, in the spelling recorded in its prior state."""
        current = self.permissions(stype, sname)
        wanted: dict[int, list[str]] = {}
        changes: dict[str, dict[str, list[str]]] = {}
        for action in group:
            prior = json.loads(action.prior_state or "{}").get("privilege_assignments") or []
            names = {normalise_privilege(x) for x in action.privileges}
            wanted[action.seq] = [p for p in privileges_of(prior, action.grantee) if normalise_privilege(p) in names]
            have = {normalise_privilege(c) for c in privileges_of(current, action.grantee)}
            adding = changes.setdefault(action.grantee, {"add": []})["add"]
            adding += [p for p in wanted[action.seq] if normalise_privilege(p) not in have and p not in adding]
        changes = {p: c for p, c in changes.items() if c["add"]}
        if changes:
            self._patch(stype, sname, changes)
        after = self.permissions(stype, sname)
        results = []
        for action in group:
            back = {normalise_privilege(p) for p in privileges_of(after, action.grantee)}
            lacking = [p for p in wanted[action.seq] if normalise_privilege(p) not in back]
            if lacking:
                results.append(
                    ActionResult(
                        seq=action.seq,
                        status=ActionStatus.FAILED,
                        message=f"re-read of {stype} {sname} lacks {', '.join(lacking)} for {action.grantee} after the PATCH",
                    )
                )
            else:
                restored = ", ".join(wanted[action.seq]) or "nothing (no prior grant recorded)"
                results.append(
                    ActionResult(
                        seq=action.seq,
                        status=ActionStatus.UNDONE,
                        message=f"restored {restored} for {action.grantee} on {stype} {sname}; re-read confirms",
                    )
                )
        return results

    def probe(self, role: str, objects: list[str]) -> list[ProbeResult]:
        raise TargetError(
            f"{self.display}: live probes are not supported on Unity Catalog targets: the REST API cannot act as a member of {role!r}",
            hint="verification relies on the catalog's effective grants for this target",
        )

    def close(self) -> None:
        self.client.close()
