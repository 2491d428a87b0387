"""Revocation half of the PostgreSQL target: plan, apply in bounded batches, read back, undo.

The work is split by responsibility, one module each:

- `sql.py`: catalog queries, identifier quoting and the REVOKE statements of a batch;
- `pool.py`: the pooled connections revocation runs on, and the notices they receive;
- `plan.py`: findings -> ordered actions, each with its SQL and the exact prior state;
- `apply.py`: bounded batches, bisection to the refused object, read-back;
- `undo.py`: put back what the apply removed, object by object, as the right grantor (`undo_units.py`: the
  objects it works on, each with every action on it);
- `acl.py`: ACL text as data, and undo's three-way merge (prior, what the apply made of it, now);
- `roles.py`: role memberships row by row (one per grantor from 16), as recorded and as restored.

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

from sevtool.targets.postgres.apply import (
    DEFAULT_BATCH_SIZE,
    BatchCallback,
    RevokeApplier,
)
from sevtool.targets.postgres.plan import RevokePlanner
from sevtool.targets.postgres.pool import RevokeSessions
from sevtool.targets.postgres.sql import PRIVILEGES, quote_ident
from sevtool.targets.postgres.undo import RevokeUndoer

__all__ = ["DEFAULT_BATCH_SIZE", "PRIVILEGES", "BatchCallback", "PostgresRevoker", "quote_ident"]


class PostgresRevoker(RevokePlanner, RevokeApplier, RevokeUndoer, RevokeSessions):
    """Mixin for PostgresTarget, which provides `connect(*, autocommit=False, user=None)`."""
