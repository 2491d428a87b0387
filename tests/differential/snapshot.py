"""Everything a revocation can touch, compared before apply and after undo.

ACLs are sets of items (grantee, privilege, grant option, grantor), as in tests/acl_snapshot.py: undo puts a
removed item back at the end of the ACL, and the order of items grants nothing. A NULL ACL counts as its default.
Schema ACLs and owners are compared too, and on 16+ the membership options (INHERIT, SET) that a membership
restored without them would silently lose.
"""

from __future__ import annotations

import psycopg

_NOT_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"

_ITEMS = """(SELECT coalesce(array_agg(item ORDER BY item), '{{}}')::text FROM (
               SELECT format('%s=%s%s/%s', CASE WHEN x.grantee = 0 THEN '' ELSE x.grantee::regrole::text END, x.privilege_type,
                             CASE WHEN x.is_grantable THEN '*' ELSE '' END, x.grantor::regrole::text) AS item
               FROM aclexplode({acl}) x) items)"""


def snapshot(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        sixteen = conn.info.server_version >= 160000
        options = ", inherit_option, set_option" if sixteen else ""
        return {
            "relacl": conn.execute(
                f"""SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), {{relacl}}
                                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                       WHERE {_NOT_SYSTEM} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1, 2""".replace(
                    "{relacl}", _ITEMS.format(acl="coalesce(c.relacl, acldefault('r', c.relowner))")
                )
            ).fetchall(),
            "attacl": conn.execute(
                f"""SELECT n.nspname, c.relname, a.attname, {{attacl}}
                                       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                                       WHERE a.attacl IS NOT NULL AND {_NOT_SYSTEM} ORDER BY 1, 2, 3""".replace(
                    "{attacl}", _ITEMS.format(acl="a.attacl")
                )
            ).fetchall(),
            "nspacl": conn.execute(
                f"""SELECT n.nspname, pg_get_userbyid(n.nspowner), {{nspacl}} FROM pg_namespace n
                                       WHERE {_NOT_SYSTEM} ORDER BY 1""".replace(
                    "{nspacl}", _ITEMS.format(acl="coalesce(n.nspacl, acldefault('n', n.nspowner))")
                )
            ).fetchall(),
            "defacl": conn.execute(
                """SELECT pg_get_userbyid(defaclrole), coalesce(defaclnamespace::regnamespace::text, ''),
                                             defaclobjtype::text, {defacl} FROM pg_default_acl ORDER BY 1, 2, 3""".replace(
                    "{defacl}", _ITEMS.format(acl="defaclacl")
                )
            ).fetchall(),
            "members": conn.execute(f"""SELECT pg_get_userbyid(roleid), pg_get_userbyid(member), pg_get_userbyid(grantor), admin_option{options}
                                        FROM pg_auth_members ORDER BY 1, 2, 3""").fetchall(),
        }


def differences(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    """Human-readable lines, one per catalog row that differs (keyed by everything but its last, ACL, field)."""
    lines = []
    for family in before:
        if family == "members":  # the whole row is the key: a changed option is a row gone and a row new
            old, new = set(before[family]), set(after[family])
            lines += [f"members: lost {row}" for row in sorted(old - new)] + [
                f"members: new {row}" for row in sorted(new - old)
            ]
            continue
        old = {row[:-1]: row[-1] for row in before[family]}
        new = {row[:-1]: row[-1] for row in after[family]}
        for key in sorted(old.keys() | new.keys()):
            if old.get(key, "<absent>") != new.get(key, "<absent>"):
                lines.append(f"{family} {key}: before {old.get(key, '<absent>')!r}, now {new.get(key, '<absent>')!r}")
    return lines
