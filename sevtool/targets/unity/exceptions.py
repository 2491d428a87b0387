"""Just-in-time access exceptions on Unity Catalog: let one principal read named tables, and take exactly that back.

A table is read with SELECT on the table, its schema or its catalog, USE SCHEMA on the schema or the catalog, and
USE CATALOG on the catalog (`privileges.select_sources`). An exception grants SELECT on each table and whichever
USE SCHEMA / USE CATALOG the principal lacks. Gaining a USE privilege can open more than the named tables: SELECT
the principal holds on the schema or catalog, or on other tables there, that the missing USE kept closed (a lock-down
that revoked USE SCHEMA and left table grants in place). The plan names those tables (`collateral`) so the service
refuses before anything changes.

The permissions API does not expose group membership, so access is judged on the named principal's own
privileges: a read it gets through a group is not seen here (the scan treats groups the same way).

Privileges are recorded in one spelling (USE SCHEMA) and written in the server's: Databricks spells USE_SCHEMA,
OSS Unity Catalog USE SCHEMA. Removal uses the spelling the re-read shows; an addition follows the spelling the
securables' permission lists use, spaces (the OSS contract) when they show no two-word privilege.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sevtool.core.access_exceptions import READ, ExceptionGrant, GrantPlan, RoleAccess
from sevtool.core.exposure import Securable
from sevtool.errors import TargetError, TargetRejected
from sevtool.targets.unity.client import PrivilegeAssignment, SecurableGone, UnityClient, permissions_path
from sevtool.targets.unity.privileges import (
    SELECT,
    USE_CATALOG,
    USE_SCHEMA,
    holds,
    normalise_privilege,
    privileges_of,
    select_sources,
)

Key = tuple[str, str]  # (securable type, full name)

GRANT_HINT = (
    "sevtool's principal needs MANAGE (or ownership) on the catalog, schema and tables to grant on them; "
    "grant the access by hand or ask the catalog's owner"
)


@dataclass(frozen=True)
class _Levels:
    """One principal's own privileges (as the server spells them) at a table's three levels."""

    catalog: list[str]
    schema: list[str]
    table: list[str]

    @property
    def readable(self) -> bool:
        return bool(select_sources(self.catalog, self.schema, self.table))

    def table_privileges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalise_privilege(p) for p in self.table))


class _Reads:
    """What these need of a UnityCatalogTarget (mixed into it)."""

    if TYPE_CHECKING:
        display: str
        workers: int
        client: UnityClient

        def permissions(self, securable_type: str, full_name: str) -> list[PrivilegeAssignment]: ...


class ExceptionGrants(_Reads):
    """Mixin for UnityCatalogTarget: the `GrantsExceptions` side of the target interface."""

    def role_access(self, role: str, objects: list[str]) -> list[RoleAccess]:
        levels = self._levels(role, objects)
        return [
            RoleAccess(fqn, False) if lv is None else RoleAccess(fqn, lv.readable, lv.table_privileges())
            for fqn, lv in levels.items()
        ]

    def plan_exception(self, role: str, objects: list[str]) -> GrantPlan:
        levels = self._levels(role, objects)
        missing = tuple(fqn for fqn, lv in levels.items() if lv is None)
        already = tuple(fqn for fqn, lv in levels.items() if lv is not None and lv.readable)
        use_catalog: dict[str, ExceptionGrant] = {}
        use_schema: dict[str, ExceptionGrant] = {}
        selects: list[ExceptionGrant] = []
        for fqn, lv in levels.items():
            if lv is None or lv.readable:
                continue
            catalog, schema = _catalog_of(fqn), _schema_of(fqn)
            if not holds(lv.catalog, USE_CATALOG):
                use_catalog[catalog] = ExceptionGrant(Securable("catalog", catalog), USE_CATALOG)
            if not (holds(lv.catalog, USE_SCHEMA) or holds(lv.schema, USE_SCHEMA)):
                use_schema[schema] = ExceptionGrant(Securable("schema", schema), USE_SCHEMA)
            if not holds(lv.table, SELECT):
                selects.append(ExceptionGrant(Securable("table", fqn), READ))
        return GrantPlan(
            grants=(*use_catalog.values(), *use_schema.values(), *selects),
            held_before={fqn: lv.table_privileges() if lv else () for fqn, lv in levels.items()},
            already=already,
            missing=missing,
            collateral=self._opened(role, set(use_catalog), set(use_schema), set(objects)),
        )

    def grant_exception(self, role: str, grants: list[ExceptionGrant]) -> None:
        """PATCH each securable (catalog, then schema, then tables) and read it back; when one is refused or does not
        read back, what this call added is removed again, so a failed grant leaves nothing behind."""
        wanted = _by_securable(grants)
        before = {key: self.permissions(*key) for key in wanted}
        spell = _spelling(before.values())
        added: dict[Key, list[str]] = {}
        try:
            for key, privileges in wanted.items():
                held = privileges_of(before[key], role)
                adding = [spell(p) for p in privileges if not _among(p, held)]
                if adding:
                    self._patch(key, role, add=adding)
                    added[key] = adding
            after = {key: privileges_of(self.permissions(*key), role) for key in wanted}
            lacking = [
                f"{p} on {key[0]} {key[1]}" for key, ps in wanted.items() for p in ps if not _among(p, after[key])
            ]
            if lacking:
                raise TargetRejected(
                    f"{self.display} accepted the grants to {role}, but a re-read lacks {', '.join(lacking)}",
                    hint="another process may manage these permissions: check the catalog, then grant again",
                )
        except TargetError as exc:
            undone = self._take_back(role, added)
            raise TargetRejected(
                f"granting {role} read access failed: {exc.message}; {undone}",
                hint=(exc.hint or GRANT_HINT)
                if isinstance(exc, TargetRejected)
                else "check the catalog, then grant again",
            ) from None

    def revoke_exception(self, role: str, grants: list[ExceptionGrant]) -> list[ExceptionGrant]:
        """Remove exactly these privileges (a securable already without them, or gone, is no error: a re-run after a
        crash), then read them back: the grants still in place."""
        left: list[ExceptionGrant] = []
        for key, privileges in _by_securable(grants).items():
            try:
                held = privileges_of(self.permissions(*key), role)
                removing = [p for p in held if normalise_privilege(p) in privileges]
                if removing:
                    self._patch(key, role, remove=removing)
                after = privileges_of(self.permissions(*key), role)
            except SecurableGone:
                continue  # a dropped securable took its grants with it
            except TargetRejected as exc:
                raise TargetRejected(
                    f"{self.display}: revoking {role}'s exception grants on {key[0]} {key[1]} failed: {exc.message}",
                    hint="revoke them by hand (see `sevtool access list`), then run `sevtool access expire` again",
                ) from None
            left += [ExceptionGrant(Securable(*key), p) for p in privileges if _among(p, after)]
        return left

    # --- reading ------------------------------------------------------------------------------

    def _levels(self, role: str, objects: list[str]) -> dict[str, _Levels | None]:
        """object -> the role's privileges at its three levels, or None when there is no such table."""
        unique = list(dict.fromkeys(k for fqn in objects if _is_table_name(fqn) for k in _keys(fqn)))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="uc-access") as pool:
            found = dict(zip(unique, pool.map(lambda key: self._own(role, key), unique), strict=True))
        levels: dict[str, _Levels | None] = {}
        for fqn in objects:
            cat, sch, tbl = (found[k] for k in _keys(fqn)) if _is_table_name(fqn) else (None, None, None)
            levels[fqn] = None if cat is None or sch is None or tbl is None else _Levels(cat, sch, tbl)
        return levels

    def _own(self, role: str, key: Key) -> list[str] | None:
        """The role's own privileges on a securable, or None when it does not exist."""
        try:
            return privileges_of(self.permissions(*key), role)
        except SecurableGone:
            return None

    def _opened(self, role: str, catalogs: set[str], schemas: set[str], requested: set[str]) -> tuple[str, ...]:
        """Tables besides the requested ones the role would read once it holds USE CATALOG on `catalogs` and USE
        SCHEMA on `schemas`: every schema of a catalog it gains, and each schema it gains, are looked through."""
        looked = set(schemas)
        for catalog in catalogs:
            looked |= {
                f"{catalog}.{s['name']}" for s in self.client.pages("/schemas", "schemas", {"catalog_name": catalog})
            }
        opened: list[str] = []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="uc-access") as pool:
            for schema in sorted(looked):
                catalog = _catalog_of(schema)
                cat, sch = self._own(role, ("catalog", catalog)) or [], self._own(role, ("schema", schema)) or []
                cat_after = cat + ([USE_CATALOG] if catalog in catalogs else [])
                sch_after = sch + ([USE_SCHEMA] if schema in schemas else [])
                if not select_sources(cat_after, sch_after, [READ]):
                    continue  # still no USE SCHEMA here: nothing in it opens
                tables = [
                    f"{schema}.{t['name']}"
                    for t in self.client.pages(
                        "/tables", "tables", {"catalog_name": catalog, "schema_name": schema.split(".", 1)[1]}
                    )
                ]
                others = [t for t in tables if t not in requested]
                # SELECT on the schema or catalog opens every table; else each table's own grants decide.
                inherited = select_sources(cat_after, sch_after, [])
                own = pool.map(
                    lambda t, skip=bool(inherited): [] if skip else self._own(role, ("table", t)) or [], others
                )
                for table, tbl in zip(others, own, strict=True):
                    if select_sources(cat_after, sch_after, tbl) and not select_sources(cat, sch, tbl):
                        opened.append(table)
        return tuple(sorted(opened))

    # --- changing -----------------------------------------------------------------------------

    def _patch(self, key: Key, role: str, *, add: list[str] | None = None, remove: list[str] | None = None) -> None:
        body = {"changes": [{"principal": role, "add": add or [], "remove": remove or []}]}
        self.client.patch(permissions_path(*key), body)

    def _take_back(self, role: str, added: dict[Key, list[str]]) -> str:
        """Remove what a failed grant added; say what happened, for the error the caller raises."""
        stuck: list[str] = []
        for key, privileges in added.items():
            try:
                self._patch(key, role, remove=privileges)
            except SecurableGone:
                continue
            except TargetError:
                stuck.append(f"{', '.join(privileges)} on {key[0]} {key[1]}")
        if not added:
            return "nothing was granted"
        if stuck:
            return f"could not remove what was added, revoke it by hand: {'; '.join(stuck)}"
        return "what was added has been removed again"


def _is_table_name(fqn: str) -> bool:
    parts = fqn.split(".")
    return len(parts) == 3 and all(parts)


def _keys(table: str) -> tuple[Key, Key, Key]:
    return ("catalog", _catalog_of(table)), ("schema", _schema_of(table)), ("table", table)


def _catalog_of(fqn: str) -> str:
    return fqn.split(".", 1)[0]


def _schema_of(fqn: str) -> str:
    return ".".join(fqn.split(".")[:2])


def _by_securable(grants: list[ExceptionGrant]) -> dict[Key, list[str]]:
    """Grants grouped per securable, catalogs first so a table's grant never precedes the usage that reaches it."""
    rank = {"catalog": 0, "schema": 1, "table": 2}
    grouped: dict[Key, list[str]] = {}
    for g in sorted(grants, key=lambda g: rank.get(g.securable.kind, 3)):
        if g.securable.kind not in rank:
            raise TargetRejected(f"a Unity Catalog exception cannot hold a grant on a {g.securable.kind}")
        names = grouped.setdefault((g.securable.kind, g.securable.name), [])
        if normalise_privilege(g.privilege) not in names:
            names.append(normalise_privilege(g.privilege))
    return grouped


def _among(privilege: str, held: list[str]) -> bool:
    """This very privilege is held (ALL PRIVILEGES does not count: the exception's own grant is what is asked)."""
    return normalise_privilege(privilege) in {normalise_privilege(p) for p in held}


def _spelling(lists: Iterable[list[PrivilegeAssignment]]) -> Callable[[str], str]:
    """How the server spells two-word privileges, from the first one its permission lists show; spaces (as
    recorded, and as the OSS contract spells them) when they show none."""
    for assignments in lists:
        for item in assignments:
            for p in item.get("privileges") or []:
                if "_" in p:
                    return _underscored
                if " " in p:
                    return normalise_privilege
    return normalise_privilege


def _underscored(privilege: str) -> str:
    """Databricks' spelling: USE SCHEMA -> USE_SCHEMA."""
    return normalise_privilege(privilege).replace(" ", "_")
