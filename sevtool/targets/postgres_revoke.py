"""Revocation half of the PostgreSQL target (owned by the revoke engineer)."""


class PostgresRevoker:
    """Mixin that turns a plan's actions into REVOKE/ALTER statements on the target."""
