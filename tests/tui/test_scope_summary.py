"""The scope tab shows the exposure summary before the findings arrive: counted by the store, it must say
exactly what counting the findings says (`ScanService.summary`), ties and first-finding DSS included."""

from __future__ import annotations

from sevtool.core.exposure import AccessPath, Finding, Scope
from sevtool.store import scans


def _finding(
    schema: str, name: str, principal: str, path: AccessPath, dss: int | None, column: str | None = None
) -> Finding:
    return Finding(
        object_kind="table",
        schema_name=schema,
        object_name=name,
        principal=principal,
        path=path,
        grantee=principal,
        column=column,
        dss=dss,
    )


def _record(wb, incident_id: int, version: int, findings: list[Finding]) -> None:
    with wb.store.write() as tx:
        scope_id = scans.add_scope(
            tx.session,
            incident_id,
            version,
            Scope(target="drill", principals=["alice", "bob"]),
            finding_count=len(findings),
            object_count=10,
        )
        scans.add_findings(tx.session, scope_id, findings)


def test_the_summary_counted_by_the_store_matches_the_findings(wb):
    incident = wb.incidents.declare("summary before findings", 2)
    assert wb.scanning.aggregate_summary(incident.id) is None  # never scanned

    _record(wb, incident.id, 1, [_finding("old", "t", "alice", AccessPath.DIRECT, 1)])
    _record(
        wb,
        incident.id,
        2,
        [
            _finding("hr", "salaries", "bob", AccessPath.ROLE, 3),
            _finding(
                "hr", "salaries", "alice", AccessPath.COLUMN, 4, column="amount"
            ),  # same object, another DSS: the first counts
            _finding("hr", "people", "alice", AccessPath.DIRECT, None),
            _finding("hr", "people", "bob", AccessPath.DIRECT, None),
            _finding("web", "logs", "alice", AccessPath.ROLE, 2),  # role and direct tie at 2: first seen first
            _finding("web", "logs_v", "alice", AccessPath.VIEW, 2),
            _finding("x.y", "z", "alice", AccessPath.VIEW, 4),  # "x.y" + "z" and "x" + "y.z" are one name
            _finding("x", "y.z", "bob", AccessPath.VIEW, 1),
            _finding("web", "logs_v", "bob", AccessPath.VIEW, 2),
        ],
    )

    version, counted = wb.scanning.aggregate_summary(incident.id)
    assert version.version == 2 and version.findings == 9 and version.objects == 10
    assert counted == wb.scanning.summary(incident.id)
    assert list(counted.by_path.items()) == [("view", 4), ("role", 2), ("direct", 2), ("column", 1)]
    assert counted.by_dss == {"DSS 2": 2, "DSS 3": 1, "DSS 4": 1, "unrated": 1}
    assert counted.by_principal == {"alice": 5, "bob": 4}
    assert (counted.findings, counted.objects, counted.unrated) == (9, 5, 1)
