"""Evidence from PostgreSQL server logs (pgaudit): who read the exposed tables, and which time the logs cover."""
