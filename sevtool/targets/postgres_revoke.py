"""Revocation half of the PostgreSQL target: plan, apply in bounded batches, read back, undo.

The work is split by responsibility, one module each:

- `postgres_sql`: catalog queries, identifier quoting and the REVOKE statements of a batch;
- `postgres_pool`: the pooled connections revocation runs on, and the notices they receive;
- `postgres_plan`: findings -> ordered actions, each with its SQL and the exact prior state;
- `postgres_apply`: bounded batches, bisection to the refused object, read-back;
- `postgres_undo`: put back what the apply removed, object by object, as the right grantor;
- `postgres_acl`: ACL text as data, and undo's three-way merge (prior, what the apply made of it, now);
- `postgres_roles`: role memberships row by row (one per grantor from 16), as recorded and as restored.

How each finding is closed (`plan`):
- a grant to the principal itself or to PUBLIC, on a table, view, partition: one action per grant *item*
  found in `relacl` (grantee x grantor). Made by the owner: `REVOKE ... ON TABLE ... FROM grantee`.
  Made by a grant-option holder: executed as that holder (`SET LOCAL ROLE holder`), because a superuser's
  REVOKE acts as the owner and silently leaves the holder's grant in place; when the connected user cannot
  become the holder, `REVOKE GRANT OPTION FOR ... FROM holder CASCADE` instead (what an owner can do).
- a column grant: `REVOKE priv (col) ON TABLE ...`, per column ACL item, same grantor rules.
- default privileges: `ALTER DEFAULT PRIVILEGES FOR ROLE r [IN SCHEMA s] REVOKE ... ON TABLES FROM grantee`.
- access through another role (an inherited role, a predefined role such as pg_read_all_data): revoke the
  principal's membership of the first role on the chain. That role may legitimately hold the grant, so the
  action is flagged `review=True` and never hidden in a batch summary.
"""

from __future__ import annotations

from sevtool.targets.postgres_apply import DEFAULT_BATCH_SIZE, BatchCallback, RevokeApplier
from sevtool.targets.postgres_plan import RevokePlanner
from sevtool.targets.postgres_pool import RevokeSessions
from sevtool.targets.postgres_sql import PRIVILEGES, PUBLIC, quote_ident
from sevtool.targets.postgres_undo import RevokeUndoer

__all__ = ["DEFAULT_BATCH_SIZE", "PRIVILEGES", "PUBLIC", "BatchCallback", "PostgresRevoker", "quote_ident"]


class PostgresRevoker(RevokePlanner, RevokeApplier, RevokeUndoer, RevokeSessions):
    """Mixin for PostgresTarget, which provides `connect(*, autocommit=False, user=None)`."""
