"""What an access exception explains, what it does not, and the SEV limits on asking for one (pure domain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sevtool.core.access_exceptions import AccessException, Ending, RoleAccess, check_request, review
from sevtool.core.causes import Cause
from sevtool.core.exposure import AccessPath, Finding
from sevtool.core.severity import SevPolicy
from sevtool.errors import ConfigError, UsageError

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)


def exception(number: int = 1, role: str = "data_eng", objects=("hr.chats",), **kw) -> AccessException:
    fields = {
        "incident_id": 1,
        "number": number,
        "target": "wh",
        "role": role,
        "objects": tuple(objects),
        "why": "pipeline fix",
        "requested_by": "oncall",
        "granted_at": T0,
        "until": T0 + timedelta(hours=2),
    }
    return AccessException(**{**fields, **kw})


def finding(obj: str = "hr.chats", principal: str = "data_eng", **kw) -> Finding:
    schema, name = obj.split(".")
    fields = {
        "object_kind": "table", "schema_name": schema, "object_name": name, "principal": principal, "path": AccessPath.DIRECT,
        "grantee": principal, "grantor": "owner", "dss": 4,
    }  # fmt: skip
    return Finding(**{**fields, **kw})


def test_an_active_exception_explains_its_own_grant_and_nothing_beyond_it():
    exc = exception()
    own = finding()
    beyond = [
        finding("hr.salaries"),  # another object
        finding(principal="all_employees", grantee="all_employees"),  # another role
        finding(privilege="UPDATE"),  # a broader privilege
        finding(column="email"),  # a column grant is not the table grant the exception made
        finding(principal="all_employees", path=AccessPath.ROLE, grantee="data_eng", route=("data_eng",)),
    ]
    checked = review([exc], [own, *beyond], {}, T0 + timedelta(hours=1))
    assert [(a.exception.number, a.object_fqn) for a in checked.authorized] == [(1, "hr.chats")]
    assert list(checked.findings) == beyond and len(checked.findings) == len(beyond) and checked.breaches == []
    after = review([exc], [own], {}, T0 + timedelta(hours=2))  # expiry is exclusive: at `until` it no longer holds
    assert after.findings == [own] and after.authorized == []


def test_roles_outside_the_scope_are_judged_by_their_access_now():
    active, ended = (
        exception(1, "carol"),
        exception(2, "dave", ended_at=T0 + timedelta(minutes=30), ending=Ending.ENDED_EARLY),
    )
    access = {
        1: [RoleAccess("hr.chats", True, ("SELECT", "UPDATE"))],
        2: [RoleAccess("hr.chats", True, ("SELECT",))],
    }
    checked = review([active, ended], [], access, T0 + timedelta(hours=1))
    assert [(b.principal, b.cause_kind) for b in checked.breaches] == [
        ("carol", Cause.BEYOND_EXCEPTION),
        ("dave", Cause.EXCEPTION_LAPSED),
    ]
    assert "holds UPDATE" in checked.breaches[0].cause and "ended at" in checked.breaches[1].cause
    held_before = exception(1, "carol", held_before={"hr.chats": ("UPDATE",)})  # it could write before: not ours
    again = review([held_before], [], {1: access[1]}, T0 + timedelta(hours=1))
    assert again.breaches == [] and [a.exception.role for a in again.authorized] == ["carol"]


def test_limits_by_sev_and_their_override():
    policy = SevPolicy.from_overrides({"3": {"access_max": "2h"}})
    ask = {"role": "carol", "objects": ["hr.chats"], "why": "audit"}
    check_request(policy.level(2), duration=timedelta(hours=8), approver="ic", **ask)
    with pytest.raises(UsageError, match="SEV 2 allows exceptions of at most 8h; 8h 1m was asked"):
        check_request(policy.level(2), duration=timedelta(hours=8, minutes=1), approver="ic", **ask)
    with pytest.raises(UsageError, match="SEV 0 requires an approver"):
        check_request(policy.level(0), duration=timedelta(hours=1), approver=" ", **ask)
    check_request(policy.level(4), duration=timedelta(hours=24), approver=None, **ask)
    with pytest.raises(UsageError, match="SEV 3 allows exceptions of at most 2h"):
        check_request(policy.level(3), duration=timedelta(hours=3), approver=None, **ask)
    with pytest.raises(UsageError, match="cannot be granted to PUBLIC"):
        check_request(policy.level(4), duration=timedelta(hours=1), approver=None, **{**ask, "role": "public"})
    with pytest.raises(ConfigError, match="access_max"):
        SevPolicy.from_overrides({"2": {"access_max": "0"}})
