"""Ways to read an in-scope object that are not a grant on it, found during a scan.

Each becomes findings with its own path, so a check is never clean while one remains:
- a role the principal acts as owns the object: an owner grants itself access at will (OWNER, set by the scan
  on the owner's own ACL item);
- pg_read_server_files / pg_execute_server_program: the table's data files on the server's disk, read without
  any privilege on the table (SERVER_FILES);
- CREATEROLE before PostgreSQL 16: such a role can grant itself membership of any non-superuser role, and so
  read whatever any of them reads (CREATEROLE);
- SECURITY DEFINER functions the principal may execute, owned by a role that reads in-scope objects: a
  possible path, named by signature, for a human to judge (SECURITY_DEFINER);
- legacy INHERITS children: SELECT on the parent reads the children's rows without checking the children's
  own privileges (INHERITS_PARENT, beside the parent's own findings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from sevtool.core.exposure import AccessPath, Finding

if TYPE_CHECKING:  # the scan imports this module
    import psycopg

    from sevtool.targets.postgres.access import RoleInfo
    from sevtool.targets.postgres.catalog import _Reach
    from sevtool.targets.postgres.scan import CatalogScan

SERVER_FILE_ROLES = ("pg_read_server_files", "pg_execute_server_program")

_SECURITY_DEFINER_SQL = """
SELECT p.oid, n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proowner, a.grantee
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.prosecdef AND a.privilege_type = 'EXECUTE' AND a.grantee = ANY(%(roles)s::oid[])
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""

_INHERITS_SQL = """
SELECT i.inhrelid, i.inhparent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE NOT c.relispartition
"""


def legacy_parents(cur: psycopg.Cursor) -> dict[int, list[int]]:
    """Child relation -> its INHERITS parents (partitions excluded: they have their own path)."""
    parents: dict[int, list[int]] = {}
    for child, parent in cur.execute(_INHERITS_SQL).fetchall():
        parents.setdefault(child, []).append(parent)
    return parents


def _most_sensitive(dss: Iterable[int | None]) -> int | None:
    ratings = list(dss)
    known = [r for r in ratings if r is not None]
    return None if len(known) < len(ratings) or not known else max(known)


class Escalations:
    """Adds the non-grant paths to a scan's findings. `scan` is the running postgres._Scan."""

    def __init__(self, scan: CatalogScan, make: Callable[[Mapping[str, object]], Finding]):
        self.scan = scan
        self.make = make

    def add(
        self,
        reach: list[_Reach],
        role_oids: list[int],
        roles: dict[int, RoleInfo],
        matched: AbstractSet[int],
        exposed: AbstractSet[int],
        parents: dict[int, list[int]],
        server_version: int,
    ) -> None:
        for reached, oid in zip(reach, role_oids, strict=False):
            info = roles.get(oid)
            if reached.role in SERVER_FILE_ROLES:
                self._every_object(reached, matched, AccessPath.SERVER_FILES)
            elif info is not None and server_version < 160000 and info.createrole and not info.superuser:
                self._every_object(reached, matched, AccessPath.CREATEROLE)
        self._inherits_children(matched, exposed, parents)
        self._security_definer(reach, role_oids, matched)

    def _every_object(self, reached: _Reach, matched: AbstractSet[int], path: AccessPath) -> None:
        relations = self.scan.relations
        for oid in sorted(matched, key=lambda o: relations[o].fqn):
            rel = relations[oid]
            self.scan.findings.append(
                self.make(
                    {
                        "object_kind": rel.kind_label,
                        "schema_name": rel.schema,
                        "object_name": rel.name,
                        "principal": reached.principal,
                        "path": path,
                        "grantee": reached.role,
                        "dss": self.scan.dss.get(oid),
                        **reached.fields(),
                    }
                )
            )

    def _inherits_children(
        self, matched: AbstractSet[int], exposed: AbstractSet[int], parents: dict[int, list[int]]
    ) -> None:
        relations = self.scan.relations
        # Only children with an exposed parent, and only their parents' findings: indexing every finding by its
        # object (a new name string each) was a large allocation at the end of a 200,000-table scan with none.
        children = [child for child in matched if any(p in exposed for p in parents.get(child, ()))]
        if not children:
            return
        wanted = {relations[p].fqn for child in children for p in parents[child]}
        by_object: dict[str, list[Finding]] = {}
        for f in self.scan.findings:
            if (fqn := f.object_fqn) in wanted:
                by_object.setdefault(fqn, []).append(f)
        for child in sorted(children, key=lambda o: relations[o].fqn):
            for parent in parents.get(child, ()):
                if parent not in exposed:
                    continue
                rel, parent_fqn = relations[child], relations[parent].fqn
                for f in by_object.get(parent_fqn, ()):
                    # The parent's grant, reached as the parent's finding reaches it: closing that grant closes this path.
                    self.scan.findings.append(
                        self.make(
                            {
                                "object_kind": rel.kind_label,
                                "schema_name": rel.schema,
                                "object_name": rel.name,
                                "principal": f.principal,
                                "path": AccessPath.INHERITS_PARENT,
                                "grantee": f.grantee,
                                "grantor": f.grantor,
                                "dss": self.scan.dss.get(child),
                                "base_object": parent_fqn,
                                "route": f.route,
                                "set_role": f.set_role,
                                "usage_from": f.usage_from,
                                "by_holder": f.by_holder,
                            }
                        )
                    )

    def _security_definer(self, reach: list[_Reach], role_oids: list[int], matched: AbstractSet[int]) -> None:
        scan = self.scan
        reached_by_oid: dict[int, list[_Reach]] = {}
        for reached, oid in zip(reach, role_oids, strict=False):
            reached_by_oid.setdefault(oid, []).append(reached)
        rows = scan.cur.execute(_SECURITY_DEFINER_SQL, {"roles": list(reached_by_oid)}).fetchall()
        relations = scan.relations
        for _oid, schema, signature, owner, grantee in rows:
            readable = sorted(scan.model.reads_now(owner) & matched, key=lambda o: relations[o].fqn)
            if not readable:
                continue
            owner_name = scan.role_names.get(owner, str(owner))
            for reached in reached_by_oid[grantee]:
                scan.findings.append(
                    self.make(
                        {
                            "object_kind": "function",
                            "schema_name": schema,
                            "object_name": signature,
                            "principal": reached.principal,
                            "path": AccessPath.SECURITY_DEFINER,
                            "grantee": reached.role,
                            "grantor": owner_name,
                            "dss": _most_sensitive(scan.dss.get(o) for o in readable),
                            "base_object": relations[readable[0]].fqn,
                            **reached.fields(),
                        }
                    )
                )
