"""Every ACL revocation can touch, as the catalogs print them: byte-comparable text, order included."""

from __future__ import annotations

import psycopg


def acl_snapshot(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        return {
            "relacl": conn.execute("""SELECT n.nspname, c.relname, c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1, 2""").fetchall(),
            "attacl": conn.execute("SELECT attrelid::regclass::text, attname, attacl::text FROM pg_attribute WHERE attacl IS NOT NULL ORDER BY 1, 2").fetchall(),
            "defacl": conn.execute("SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclacl::text FROM pg_default_acl ORDER BY 1, 2").fetchall(),
            "members": conn.execute("""SELECT roleid::regrole::text, member::regrole::text, grantor::regrole::text, admin_option
                                       FROM pg_auth_members ORDER BY 1, 2""").fetchall(),
        }
