"""FindingSpool: the findings read back are the ones added, in order, and a chunk at a time."""

from __future__ import annotations

import gc

import pytest

from sevtool.core import finding_spool
from sevtool.core.exposure import AccessPath, ExposureSummary, Finding, Securable
from sevtool.core.finding_spool import FindingSpool


def _finding(n: int) -> Finding:
    return Finding(
        object_kind="table",
        schema_name=f"s{n % 7}",
        object_name=f"t{n}",
        principal="p",
        path=AccessPath.ROLE if n % 2 else AccessPath.COLUMN,
        grantee="readers",
        column="c" if n % 2 == 0 else None,
        dss=n % 5 or None,
        route=("readers",) if n % 3 else (),
        usage_from=("u", "m") if n % 11 == 0 else None,
        granted_on=Securable(kind="schema", name="main.s") if n % 13 == 0 else None,
    )


def test_findings_come_back_equal_and_in_order_any_number_of_times() -> None:
    findings = [_finding(n) for n in range(3 * finding_spool._CHUNK + 5)]
    spool = FindingSpool(findings)
    assert len(spool) == len(findings) and spool
    assert list(spool) == findings
    assert list(spool) == findings  # a second pass reads the same
    assert spool == findings and findings == list(spool)
    assert ExposureSummary.of(spool) == ExposureSummary.of(findings)


def test_indexing_and_slices() -> None:
    findings = [_finding(n) for n in range(finding_spool._CHUNK + 10)]
    spool = FindingSpool(findings)
    for i in (0, 1, finding_spool._CHUNK - 1, finding_spool._CHUNK, len(findings) - 1, -1, -len(findings)):
        assert spool[i] == findings[i]
    assert spool[5:9] == findings[5:9]
    with pytest.raises(IndexError):
        spool[len(findings)]


def test_empty() -> None:
    spool = FindingSpool()
    assert not spool and len(spool) == 0 and list(spool) == [] and spool == []


def test_adding_while_reading_reads_what_was_there() -> None:
    spool = FindingSpool(_finding(n) for n in range(10))
    seen = []
    for f in spool:
        seen.append(f)
        spool.append(_finding(100 + len(seen)))
    assert seen == [_finding(n) for n in range(10)] and len(spool) == 20


def test_findings_are_not_all_alive_at_once() -> None:
    spool = FindingSpool(_finding(n) for n in range(4 * finding_spool._CHUNK))
    gc.collect()
    alive = []
    for n, _f in enumerate(spool):
        if n % 500 == 0:
            alive.append(sum(isinstance(o, Finding) for o in gc.get_objects()))
    assert max(alive) <= finding_spool._CHUNK + 10  # one chunk decoded at a time, not the 8,192 added
