"""Seed a PostgreSQL database with exposures, for tests, the demo and the benchmarks.

Run as a superuser on a fresh database. Every seed returns what it built, so callers assert against the
returned names rather than repeating them. The seeds live in their own modules (`access_paths`: one
scenario per access path; `bulk`: many tables for the benchmarks; `drill`: the demo), on the building
blocks in `helpers`; their public names are importable from here, as tests, the demo and the benchmarks do.
"""

from sevtool.scenario.access_paths import SEEDED_PATHS, seed_access_paths
from sevtool.scenario.bulk import create_tables, seed_bulk
from sevtool.scenario.drill import DRILL_READS, drill_reads, seed_drill
from sevtool.scenario.helpers import (
    AWKWARD_COLUMN,
    AWKWARD_COLUMN_TABLE,
    AWKWARD_ROLE,
    AWKWARD_SCHEMA,
    AWKWARD_TABLE,
    PRINCIPAL,
    ensure_role,
    grant_role,
)

__all__ = [
    "AWKWARD_COLUMN",
    "AWKWARD_COLUMN_TABLE",
    "AWKWARD_ROLE",
    "AWKWARD_SCHEMA",
    "AWKWARD_TABLE",
    "DRILL_READS",
    "PRINCIPAL",
    "SEEDED_PATHS",
    "create_tables",
    "drill_reads",
    "ensure_role",
    "grant_role",
    "seed_access_paths",
    "seed_bulk",
    "seed_drill",
]
