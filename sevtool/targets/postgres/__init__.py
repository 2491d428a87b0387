"""PostgreSQL target: per-reader access model, scan, revoke/apply/undo and probes."""
