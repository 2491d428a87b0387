"""Access exceptions through the services against a real server (15 and 18): expiry survives a process killed
mid-revoke, is enforced by watch and guard, and a team's own SEV limits apply."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from sevtool.core.timeparse import utcnow
from sevtool.errors import UsageError
from sevtool.scenario import ensure_role, grant_role
from sevtool.services import Workbench
from sevtool.settings import Settings

pytestmark = pytest.mark.postgres

# Roles are cluster-wide and tests run side by side on one server: these names are this module's alone.


@pytest.fixture
def fixed(server_db, tmp_path, config_path):
    """A SEV 3 incident whose fix is applied; jits_carol (outside the scope) reads nothing in hr."""
    with psycopg.connect(server_db, autocommit=True) as conn:
        ensure_role(conn, "jits_staff")
        ensure_role(conn, "jits_alice", login=True)
        ensure_role(conn, "jits_carol", login=True)
        grant_role(conn, "jits_staff", "jits_alice")
        conn.execute("CREATE SCHEMA hr")
        conn.execute("GRANT USAGE ON SCHEMA hr TO PUBLIC")
        conn.execute("CREATE TABLE hr.chats (id bigint)")
        conn.execute("COMMENT ON TABLE hr.chats IS 'dss=4'")
        conn.execute("GRANT SELECT ON hr.chats TO jits_staff")
    config_path.write_text(
        f'[targets.wh]\ndsn = "{server_db}"\n\n[sev.3]\naccess_max = "30m"\nrecheck = ["0m"]\n'
        '\n[[policy]]\nname = "no-broad"\ntarget = "wh"\nprincipals = ["jits_staff"]\nschemas = ["hr"]\n'
    )
    wb = Workbench(Settings(db=f"sqlite:///{tmp_path / 'access.db'}", config=config_path, tz="UTC", actor="tester"))
    incident = wb.incidents.declare("hr.chats readable by every employee", 3)
    wb.scanning.scan(incident.id, "wh", ["jits_staff"], schemas=["hr"])
    wb.revocation.plan(incident.id)
    wb.revocation.apply(incident.id)
    return wb, incident.id, server_db


def carol_reads(dsn: str) -> bool:
    with psycopg.connect(dsn, user="jits_carol", autocommit=True) as conn:
        try:
            conn.execute("SELECT FROM hr.chats LIMIT 0")
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def test_team_limit_and_a_revoke_interrupted_before_it_was_recorded(fixed):
    wb, incident_id, dsn = fixed
    with pytest.raises(UsageError, match="SEV 3 allows exceptions of at most 30m; 31m was asked"):
        wb.access.grant(incident_id, "jits_carol", ["hr.chats"], timedelta(minutes=31), "audit")
    start = utcnow() - timedelta(minutes=40)
    exc = wb.access.grant(incident_id, "jits_carol", ["hr.chats"], timedelta(minutes=30), "audit", now=lambda: start)
    assert carol_reads(dsn) and exc.due(utcnow())
    # A process revoked the grants and died before recording it: the exception is still open, and due.
    target = wb.scanning.target("wh")
    assert target.revoke_exception("jits_carol", list(exc.grants)) == []
    [again] = wb.access.expire(incident_id)
    assert again.recorded and again.error is None and again.exception.ending.value == "expired"
    assert wb.access.expire(incident_id) == [] and not carol_reads(dsn)


def test_watch_and_guard_enforce_expiry(fixed, config_path):
    wb, incident_id, dsn = fixed
    # watch runs until the exception ends, even when its re-check round (one check, here) is already done
    wb.access.grant(incident_id, "jits_carol", ["hr.chats"], timedelta(seconds=3), "audit")
    report = wb.verification.watch(incident_id, sleep=lambda s: time.sleep(min(s, 0.5)))
    [exc] = wb.access.list(incident_id)
    assert exc.ending is not None and exc.ending.value == "expired" and not carol_reads(dsn)
    assert report.checks and report.checks[0].authorized  # the first check ran while jits_carol's read was authorized

    # guard --once revokes what is due, across incidents
    started = utcnow() - timedelta(minutes=10)
    wb.access.grant(incident_id, "jits_carol", ["hr.chats"], timedelta(minutes=5), "audit", now=lambda: started)
    assert carol_reads(dsn)
    wb.guard.run_once()
    assert not carol_reads(dsn) and all(e.ended_at for e in wb.access.list(incident_id))


def test_an_exception_for_an_in_scope_principal_is_authorized_in_the_scan_itself(fixed):
    wb, incident_id, dsn = fixed
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_role(conn, "jits_data_eng")
        conn.execute("CREATE TABLE hr.pipeline (id bigint)")
        conn.execute("COMMENT ON TABLE hr.pipeline IS 'dss=3'")
    wb.scanning.scan(incident_id, "wh", ["jits_staff", "jits_data_eng"], schemas=["hr"])  # the team is in scope too
    assert wb.verification.verify(incident_id).clean
    wb.access.grant(incident_id, "jits_data_eng", ["hr.pipeline"], timedelta(minutes=20), "fix the pipeline")
    check = wb.verification.verify(incident_id)
    assert check.clean and [(a["role"], a["object"]) for a in check.authorized] == [("jits_data_eng", "hr.pipeline")]
    with psycopg.connect(dsn, autocommit=True) as conn:  # the whole company reaching the team's role is beyond it
        grant_role(conn, "jits_data_eng", "jits_staff")
    beyond = wb.verification.verify(incident_id)
    assert not beyond.clean and {(f.principal, f.object_fqn) for f in beyond.outcome.findings} == {
        ("jits_staff", "hr.pipeline")
    }
    refused = [e for e in wb.store.events(incident_id) if e.kind == "access_refused"]
    assert refused == []
    with pytest.raises(UsageError, match="already reads"):
        wb.access.grant(incident_id, "jits_data_eng", ["hr.pipeline"], timedelta(minutes=5), "again")
    [event] = [e for e in wb.store.events(incident_id) if e.kind == "access_refused"]
    assert "jits_data_eng already reads hr.pipeline" in event.summary
