"""Unity Catalog changes: the revoke plan (one action per securable, grantee and privilege, on the securable that
holds the grant), and applying or undoing it through the permissions API.

Each securable is read, PATCHed and read again; only the re-read decides whether an action applied. Undo re-adds
exactly what an action removed, in the spelling its prior state recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sevtool.core.exposure import Finding, Scope
from sevtool.core.plan import Action, ActionResult, ActionStatus
from sevtool.errors import TargetError, TargetRejected
from sevtool.targets.base import BatchCallback
from sevtool.targets.unity import blast as unity_blast
from sevtool.targets.unity.client import permissions_path
from sevtool.targets.unity.plugin import REVOKE_SECURABLE
from sevtool.targets.unity.privileges import normalise_privilege, privileges_of

if TYPE_CHECKING:
    from sevtool.targets.unity.target import UnityCatalogTarget

DEFAULT_BATCH = 100


def _split(full_name: str) -> tuple[str, str]:
    """`cat.sch.tbl` -> ("cat.sch", "tbl"); `cat.sch` -> ("cat", "sch"); `cat` -> ("", "cat")."""
    parent, _, leaf = full_name.rpartition(".")
    return parent, leaf


def securable_of(finding: Finding) -> tuple[str, str]:
    """Which securable holds the grant behind a finding: the one the scan recorded, else the table itself."""
    on = finding.granted_on
    return (on.kind, on.name) if on is not None else ("table", finding.object_fqn)


def plan(target: UnityCatalogTarget, findings: Iterable[Finding], scope: Scope) -> list[Action]:
    groups: dict[tuple[str, str, str, str], list[Finding]] = {}
    in_scope: set[str] = set()
    for f in findings:
        in_scope.add(f.object_fqn)
        stype, sname = securable_of(f)
        groups.setdefault((stype, sname, f.grantee or f.principal, normalise_privilege(f.privilege)), []).append(f)
    rank = {"catalog": 0, "schema": 1, "table": 2}
    actions: list[Action] = []
    securables = sorted({(stype, sname) for stype, sname, _, _ in groups})
    with ThreadPoolExecutor(target.workers, thread_name_prefix="uc-plan") as pool:
        current = dict(zip(securables, pool.map(lambda key: target.permissions(*key), securables), strict=False))
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
    unity_blast.attach(target, actions, in_scope)  # a catalog or schema revoke also takes the tables outside the scope
    return actions


def apply(
    target: UnityCatalogTarget, actions: list[Action], on_batch: BatchCallback, *, batch_size: int | None = None
) -> None:
    _in_batches(target, actions, on_batch, batch_size, _revoke_on)


def undo(target: UnityCatalogTarget, actions: list[Action], on_batch: BatchCallback) -> None:
    _in_batches(target, actions, on_batch, None, _restore_on)


def _in_batches(
    target: UnityCatalogTarget,
    actions: list[Action],
    on_batch: BatchCallback,
    batch_size: int | None,
    run: Callable[[UnityCatalogTarget, str, str, list[Action]], list[ActionResult]],
) -> None:
    """Securables in a batch are independent: their read-PATCH-read rounds run side by side.
    What finished is reported even when the catalog stops answering mid-batch, then the error is raised."""
    size = batch_size or DEFAULT_BATCH
    with ThreadPoolExecutor(target.workers, thread_name_prefix="uc-apply") as pool:
        for start in range(0, len(actions), size):
            by_securable: dict[tuple[str, str], list[Action]] = {}
            for action in actions[start : start + size]:
                by_securable.setdefault((action.object_kind, action.object_fqn), []).append(action)
            running = [
                (pool.submit(run, target, stype, sname, group), group) for (stype, sname), group in by_securable.items()
            ]
            results: list[ActionResult] = []
            stopped: TargetError | None = None
            for future, group in running:
                try:
                    results += future.result()
                except TargetRejected as exc:
                    results += [ActionResult(seq=a.seq, status=ActionStatus.FAILED, message=exc.message) for a in group]
                except TargetError as exc:
                    stopped = stopped or exc
            on_batch(results)
            if stopped:
                raise stopped


def _patch(target: UnityCatalogTarget, stype: str, sname: str, changes: dict[str, dict[str, list[str]]]) -> None:
    body = {
        "changes": [
            {"principal": p, "add": c.get("add", []), "remove": c.get("remove", [])} for p, c in changes.items()
        ]
    }
    target.client.patch(permissions_path(stype, sname), body)


def _revoke_on(target: UnityCatalogTarget, stype: str, sname: str, group: list[Action]) -> list[ActionResult]:
    before = target.permissions(stype, sname)
    present: dict[int, list[str]] = {}
    changes: dict[str, dict[str, list[str]]] = {}
    for action in group:
        names = {normalise_privilege(x) for x in action.privileges}
        present[action.seq] = [p for p in privileges_of(before, action.grantee) if normalise_privilege(p) in names]
        removing = changes.setdefault(action.grantee, {"remove": []})["remove"]
        removing += [p for p in present[action.seq] if p not in removing]
    changes = {p: c for p, c in changes.items() if c["remove"]}
    if changes:
        _patch(target, stype, sname, changes)
    after = target.permissions(stype, sname)  # trust only what the re-read shows
    results = []
    for action in group:
        names = {normalise_privilege(x) for x in action.privileges}
        left = [p for p in privileges_of(after, action.grantee) if normalise_privilege(p) in names]
        if not present[action.seq]:
            results.append(
                ActionResult(seq=action.seq, status=ActionStatus.SKIPPED, message=f"already absent on {stype} {sname}")
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


def _restore_on(target: UnityCatalogTarget, stype: str, sname: str, group: list[Action]) -> list[ActionResult]:
    """Re-add exactly what each action removed, in the spelling recorded in its prior state."""
    current = target.permissions(stype, sname)
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
        _patch(target, stype, sname, changes)
    after = target.permissions(stype, sname)
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
