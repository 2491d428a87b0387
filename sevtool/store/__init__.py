"""The store: SQLModel tables, the engine, and the repository (the only place SQLModel meets the domain)."""
