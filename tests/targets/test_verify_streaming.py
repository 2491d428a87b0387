"""A check reads its findings as a stream: counted and iterated, never indexed, and never all alive at once.

The scan's findings at 200,000 tables come as a container that decodes them afresh at each pass; a check that
kept them (or a copy, or a dict of pairs with their findings) would hold the scope's size in memory again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import psycopg
import pytest
from pg_roles import roles_dropped_after

from sevtool.core.causes import Cause
from sevtool.core.exposure import AccessPath, Finding
from sevtool.scenario import ensure_role
from sevtool.services import Workbench
from sevtool.settings import Settings
from sevtool.targets.base import ScanResult

pytestmark = pytest.mark.postgres

PRINCIPAL = "vstream_all"
TABLES = 3000


class OnlyStreamed:
    """Findings as the scan hands them over at scale: len() and iteration (fresh objects each pass), nothing else.
    Remembers the most findings alive at once that it saw while handing them out (counted every 250)."""

    def __init__(self, count: int):
        self.count = count
        self.passes = 0
        self.most_alive = 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Finding]:
        self.passes += 1
        for i in range(self.count):
            f = Finding(
                object_kind="table",
                schema_name="vstream",
                object_name=f"t_{i:05d}",
                principal=PRINCIPAL,
                path=AccessPath.DIRECT,
                grantee=PRINCIPAL,
                grantor="vstream_owner",
                dss=3,
            )
            if i % 250 == 249:
                alive = sum(1 for o in gc.get_objects() if type(o) is Finding)
                self.most_alive = max(self.most_alive, alive)
            yield f


@pytest.fixture
def bench(tmp_path, config_path) -> Workbench:
    return Workbench(Settings(db=f"sqlite:///{tmp_path / 'verify.db'}", config=config_path, tz="UTC", actor="tester"))


def test_a_check_streams_its_findings_and_names_every_regression(pg_db, bench, monkeypatch):
    with roles_dropped_after(pg_db), psycopg.connect(pg_db, autocommit=True) as conn:
        ensure_role(conn, PRINCIPAL, login=False)
        conn.execute("CREATE SCHEMA vstream")
        conn.execute("CREATE TABLE vstream.t_00000 (id int)")
        conn.execute(f"GRANT USAGE ON SCHEMA vstream TO {PRINCIPAL}")
        incident = bench.incidents.declare("vstream", 2)
        bench.scanning.scan(incident.id, pg_db, [PRINCIPAL], schemas=["vstream"])  # nothing readable yet

        findings = OnlyStreamed(TABLES)
        objects: dict[str, int | None] = {f"vstream.t_{i:05d}": 3 for i in range(TABLES)}
        rescanned = ScanResult.model_construct(
            findings=findings,
            objects_in_scope=TABLES,
            principal_members={},
            objects=objects,
            notices=[],
            duration_ms=0,
        )
        monkeypatch.setattr(bench.scanning, "run", lambda scope: rescanned)
        monkeypatch.setattr(bench.table_stats, "snapshot", lambda *args: True)
        report = bench.verification.verify(incident.id)

    out = report.outcome
    assert len(out.findings) == TABLES and out.readable_pairs == TABLES and out.exposed_objects == TABLES
    assert len(out.regressions) == TABLES, "the scan found nothing readable: every pair readable now is new"
    assert {r.cause_kind for r in out.regressions} == {Cause.GRANT_READDED}
    assert [r.object_fqn for r in out.regressions] == sorted(objects)
    assert findings.most_alive < TABLES / 10, f"{findings.most_alive} findings alive at once"
    stored = bench.verification.history(incident.id)[-1]
    assert stored["findings"] == TABLES and stored["regressions"] == TABLES
