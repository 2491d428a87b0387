"""Every ACL revocation can touch, as sets of items: grantee, grantor, privilege, grant option.

ACL items are compared as a set, not as catalog text: undo puts a removed item back at the end of the ACL
(re-inserting it in place would mean revoking and re-granting every later item, other people's grants), and
the order of items grants nothing. Memberships include every pg_auth_members row with its options (16+).
"""

from __future__ import annotations

import psycopg

_ITEMS = """(SELECT array_agg(item ORDER BY item) FROM (
               SELECT format('%s=%s%s/%s', CASE WHEN x.grantee = 0 THEN '' ELSE x.grantee::regrole::text END, x.privilege_type,
                             CASE WHEN x.is_grantable THEN '*' ELSE '' END, x.grantor::regrole::text) AS item
               FROM aclexplode({acl}) x) items)"""


def acl_snapshot(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        return {
            "relacl": conn.execute(f"""SELECT n.nspname, c.relname, c.relacl IS NULL, {_ITEMS.format(acl="c.relacl")}
                                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1, 2""").fetchall(),
            "attacl": conn.execute(f"""SELECT attrelid::regclass::text, attname, {_ITEMS.format(acl="attacl")}
                                       FROM pg_attribute WHERE attacl IS NOT NULL ORDER BY 1, 2""").fetchall(),
            "defacl": conn.execute(f"""SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, {_ITEMS.format(acl="defaclacl")}
                                       FROM pg_default_acl ORDER BY 1, 2""").fetchall(),
            "members": conn.execute("""SELECT roleid::regrole::text, member::regrole::text, grantor::regrole::text, admin_option,
                                              to_jsonb(m) ->> 'inherit_option', to_jsonb(m) ->> 'set_option'
                                       FROM pg_auth_members m ORDER BY 1, 2, 3""").fetchall(),
        }
