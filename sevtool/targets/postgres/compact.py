"""Catalog rows held compactly while a scan works on them.

A scan holds every relation and every SELECT item of the catalog at once (who reads what is decided per reader
over the whole grant graph). As Python tuples, 200,000 tables' relations and their ~400,000 grant rows were
hundreds of megabytes: each row's schema name, comment and owner a copy of its own, each grant row a tuple of
three int objects. Here the repeated values are shared, and the grant rows are three arrays of oids.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Any

from sevtool.targets.postgres.catalog import _Relation


def relations_of(rows: Iterable[tuple[Any, ...]]) -> dict[int, _Relation]:
    """oid -> _Relation from `_RELATIONS_SQL` rows, the values that repeat (schema, comment, namespace, owner) shared."""
    shared: dict[Any, Any] = {}
    share = shared.setdefault
    out: dict[int, _Relation] = {}
    for oid, schema, name, kind, parent, comment, namespace, invoker, owner, row_security in rows:
        out[oid] = _Relation(
            oid,
            share(schema, schema),
            name,
            kind,
            parent,
            None if comment is None else share(comment, comment),
            share(namespace, namespace),
            invoker,
            share(owner, owner),
            row_security,
        )
    return out


class GrantRows:
    """(relation oid, grantee oid, grantor oid) rows of `_TABLE_GRANTS_SQL`, iterated as tuples, held as 4-byte oids."""

    __slots__ = ("_grantees", "_grantors", "_oids")

    def __init__(self, rows: Iterable[tuple[int, int, int]]):
        self._oids, self._grantees, self._grantors = array("I"), array("I"), array("I")
        add_oid, add_grantee, add_grantor = self._oids.append, self._grantees.append, self._grantors.append
        for oid, grantee, grantor in rows:
            add_oid(oid)
            add_grantee(grantee)
            add_grantor(grantor)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return zip(self._oids, self._grantees, self._grantors, strict=False)

    def __len__(self) -> int:
        return len(self._oids)


def shared_holders(pairs: Iterable[tuple[int, int]]) -> dict[int, frozenset[int]]:
    """(relation oid, role oid) pairs as relation -> the roles holding it, one frozenset per distinct set of roles.

    Tens of thousands of tables hold the same few roles (owner and grantee): a set per table was the largest part of
    a 200,000-table scan's peak, even when merged into shared sets afterwards. Here no per-table set is ever made:
    each (roles so far, one more role) step is worked out once and its result shared."""
    empty: frozenset[int] = frozenset()
    distinct: dict[frozenset[int], frozenset[int]] = {empty: empty}
    grown: dict[tuple[frozenset[int], int], frozenset[int]] = {}
    out: dict[int, frozenset[int]] = {}
    for oid, role in pairs:
        held = out.get(oid, empty)
        step = (held, role)
        after = grown.get(step)
        if after is None:
            bigger = held if role in held else held | {role}
            after = grown[step] = distinct.setdefault(bigger, bigger)
        out[oid] = after
    return out
