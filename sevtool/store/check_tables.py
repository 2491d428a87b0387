"""The temporary tables a check's comparison fills (store/check_compare.py): what each holds, and its indexes."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, MetaData, Table, Text

_meta = MetaData()


def _temporary(name: str, *columns: Column) -> Table:
    return Table(name, _meta, *columns, prefixes=["TEMPORARY"])


# This check's findings in the order they came, each with its pair and its JSON as stored.
NOW = _temporary(
    "cmp_now",
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("obj", Text),
    Column("principal", Text),
    Column("grantee", Text),
    Column("path", Text),
    Column("dss", Integer),
    Column("detail", JSON),
)
NOW_PAIRS = _temporary("cmp_now_pairs", Column("obj", Text), Column("principal", Text))
# The baseline's findings, as much as a comparison needs; and its pairs, `closed` when the ledger closed every grant.
THEN = _temporary(
    "cmp_then", Column("obj", Text), Column("principal", Text), Column("grantee", Text), Column("path", Text)
)
THEN_PAIRS = _temporary("cmp_then_pairs", Column("obj", Text), Column("principal", Text), Column("closed", Integer))
# The ledger's changes since the baseline: `obj` NULL is a membership, `container` a catalog or schema securable.
LEDGER = _temporary(
    "cmp_ledger", Column("grantee", Text), Column("obj", Text), Column("undone", Integer), Column("container", Integer)
)
NEW = _temporary("cmp_new", Column("obj", Text))  # objects in scope now and not at the baseline

# Made once their table is filled (cheaper than keeping them up to date row by row).
INDEXES = {
    NOW: "CREATE INDEX ix_cmp_now_pair ON cmp_now (obj, principal, seq)",
    NOW_PAIRS: "CREATE INDEX ix_cmp_now_pairs ON cmp_now_pairs (obj, principal)",
    THEN: "CREATE INDEX ix_cmp_then_pair ON cmp_then (obj, principal)",
    THEN_PAIRS: "CREATE INDEX ix_cmp_then_pairs ON cmp_then_pairs (obj, principal)",
    LEDGER: "CREATE INDEX ix_cmp_ledger ON cmp_ledger (undone, container, obj, grantee)",
    NEW: "CREATE INDEX ix_cmp_new ON cmp_new (obj)",
}
TABLES = (NOW, NOW_PAIRS, THEN, THEN_PAIRS, LEDGER, NEW)
