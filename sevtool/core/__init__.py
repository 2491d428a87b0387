"""Pure domain code: no Textual, SQLModel or httpx, and no I/O."""
