"""Live-probe half of the PostgreSQL target (owned by the verify engineer)."""


class PostgresProber:
    """Mixin that checks access by attempting `SELECT ... LIMIT 0` as a principal."""
