"""Regression detection and attribution, the re-check schedule and the resolution gate, without a clock or a store."""

from datetime import UTC, datetime, timedelta

import pytest

from sevtool.core.causes import Cause
from sevtool.core.checks import (
    Baseline,
    CheckState,
    LedgerChange,
    SlotState,
    compare,
    due,
    gate_reason,
    group_regressions,
    next_pending,
    regression_round,
    schedule,
)
from sevtool.core.exposure import FUTURE_TABLES, AccessPath, Finding
from sevtool.core.severity import DEFAULT_LEVELS

T0 = datetime(2026, 6, 18, 14, 0, tzinfo=UTC)


def f(
    obj: str,
    path: AccessPath = AccessPath.PUBLIC,
    *,
    principal="all_employees",
    grantee="PUBLIC",
    grantor="owner",
    **kw,
) -> Finding:
    schema, _, name = obj.rpartition(".")
    return Finding(
        object_kind="table",
        schema_name=schema,
        object_name=name,
        principal=principal,
        path=path,
        grantee=grantee,
        grantor=grantor,
        dss=kw.pop("dss", 4),
        **kw,
    )


def dp(schema: str, grantee="all_employees", grantor="etl_owner") -> Finding:
    return Finding(
        object_kind="schema (default privileges)",
        schema_name=schema,
        object_name=FUTURE_TABLES,
        future_tables=True,
        principal="all_employees",
        path=AccessPath.DEFAULT_PRIVILEGES,
        grantee=grantee,
        grantor=grantor,
    )


def check(label="check 1", findings=(), objects=None):
    return Baseline.of(label, T0, findings, objects)


def test_clean_check_after_a_clean_check_has_nothing_to_say():
    out = compare([], {"t.a", "t.b"}, check(objects={"t.a", "t.b"}))
    assert out.clean and out.regressions == [] and out.remaining == 0 and out.exposed_objects == 0


def test_access_that_never_closed_remains_and_is_not_a_regression():
    before = [f("t.a")]
    out = compare([f("t.a")], {"t.a"}, check(findings=before, objects={"t.a"}))
    assert not out.clean and out.remaining == 1 and out.regressions == []


def test_first_check_without_baseline_reports_exposure_not_regression():
    out = compare([f("t.a")], {"t.a"}, None)
    assert out.remaining == 1 and out.regressions == []


def test_grant_re_added_after_a_clean_check_names_the_grantor():
    now = [f("t.a", AccessPath.DIRECT, grantee="all_employees", grantor="iac_bot")]
    out = compare(now, {"t.a"}, check(objects={"t.a"}))
    [reg] = out.regressions
    assert reg.cause_kind == Cause.GRANT_READDED and reg.grantor == "iac_bot" and "re-added by iac_bot" in reg.cause


def test_pair_closed_by_the_ledger_and_readable_again_is_a_regression():
    scan = Baseline.of("scan v1", T0, [f("t.a"), f("t.b")])
    applied = [LedgerChange(grantee="PUBLIC", object_fqn="t.a"), LedgerChange(grantee="PUBLIC", object_fqn="t.b")]
    out = compare([f("t.a", grantor="cron_job")], {"t.a", "t.b"}, scan, ledger=applied)
    [reg] = out.regressions
    assert reg.object_fqn == "t.a" and reg.cause_kind == Cause.PUBLIC_GRANT and "by cron_job" in reg.cause
    assert out.closed_since == 1


def test_pair_whose_other_path_was_not_closed_only_remains():
    scan = Baseline.of("scan v1", T0, [f("t.a"), f("t.a", AccessPath.ROLE, grantee="readers")])
    out = compare([f("t.a", AccessPath.ROLE, grantee="readers")], {"t.a"}, scan, ledger=[LedgerChange("PUBLIC", "t.a")])
    assert out.regressions == [] and out.remaining == 1


def test_table_created_after_the_fix_is_attributed_to_default_privileges():
    now = [dp("telemetry"), f("telemetry.new_keys", AccessPath.DIRECT, grantee="all_employees", grantor="etl_owner")]
    before = [dp("telemetry")]
    out = compare(now, {"telemetry.old", "telemetry.new_keys"}, check(findings=before, objects={"telemetry.old"}))
    assert out.new_objects == ["telemetry.new_keys"]
    [reg] = out.regressions
    assert reg.cause_kind == Cause.DEFAULT_PRIVILEGES_NEW_TABLE and "default privileges of etl_owner" in reg.cause
    assert out.remaining == 1  # the default-privileges finding itself was already there


def test_new_table_without_default_privileges_is_still_a_regression():
    now = [f("telemetry.new_keys", AccessPath.DIRECT, grantee="all_employees", grantor="alice")]
    out = compare(now, {"telemetry.new_keys"}, check(objects=set()))
    [reg] = out.regressions
    assert reg.cause_kind == Cause.NEW_TABLE and "created after the fix" in reg.cause


def test_scan_baseline_without_objects_uses_matching_default_privileges():
    scan = Baseline.of(
        "scan v1", T0, [dp("s"), f("s.old", AccessPath.DIRECT, grantee="all_employees", grantor="etl_owner")]
    )
    ledger = [LedgerChange("all_employees", "s.old")]
    now = [dp("s"), f("s.fresh", AccessPath.DIRECT, grantee="all_employees", grantor="etl_owner")]
    [reg] = compare(now, {"s.old", "s.fresh"}, scan, ledger=ledger).regressions
    assert reg.object_fqn == "s.fresh" and reg.cause_kind == Cause.DEFAULT_PRIVILEGES_NEW_TABLE
    other = [dp("s"), f("s.fresh", AccessPath.DIRECT, grantee="all_employees", grantor="mallory")]
    [reg] = compare(other, {"s.old", "s.fresh"}, scan, ledger=ledger).regressions
    assert reg.cause_kind == Cause.GRANT_READDED and "mallory" in reg.cause


def test_grant_option_holder_regrant_is_named():
    now = [f("t.a", AccessPath.GRANT_OPTION, grantee="all_employees", grantor="bob")]
    [reg] = compare(now, {"t.a"}, check(objects={"t.a"})).regressions
    assert reg.cause_kind == Cause.GRANT_OPTION_REGRANT and "grant-option holder bob" in reg.cause


def test_role_path_distinguishes_new_membership_from_regrant():
    role = f("t.a", AccessPath.ROLE, grantee="analytics", route=("analytics",))
    [reg] = compare([role], {"t.a"}, check(objects={"t.a"})).regressions
    assert reg.cause_kind == Cause.NEW_MEMBERSHIP and "reaches analytics" in reg.cause
    [reg] = compare([role], {"t.a"}, check(objects={"t.a"}), known_reach={("all_employees", "analytics")}).regressions
    assert reg.cause_kind == Cause.GRANT_READDED
    membership_fix = [LedgerChange("analytics", None)]
    [reg] = compare(
        [role], {"t.a"}, check(objects={"t.a"}), ledger=membership_fix, known_reach={("all_employees", "analytics")}
    ).regressions
    assert reg.cause_kind == Cause.NEW_MEMBERSHIP


def test_each_path_has_its_own_cause():
    cases = {
        AccessPath.PREDEFINED_ROLE: (Cause.PREDEFINED_ROLE, "pg_read_all_data"),
        AccessPath.VIEW: (Cause.VIEW, "over t.base"),
        AccessPath.PARTITION: (Cause.PARTITION, "of t.base"),
        AccessPath.COLUMN: (Cause.COLUMN_GRANT, "column payload"),
    }
    for path, (cause, text) in cases.items():
        finding = f(
            "t.a",
            path,
            grantee="pg_read_all_data" if path == AccessPath.PREDEFINED_ROLE else "all_employees",
            base_object="t.base",
            column="payload" if path == AccessPath.COLUMN else None,
        )
        [reg] = compare([finding], {"t.a"}, check(objects={"t.a"})).regressions
        assert reg.cause_kind == cause and text in reg.cause, (path, reg.cause)


def test_a_catalog_or_schema_securable_closed_by_the_ledger_covers_the_tables_under_it():
    # Unity Catalog: SELECT granted on schema main.chats reaches every table in it; the fix revoked it on the schema.
    uc = {"grantee": "account users", "principal": "account users", "path": AccessPath.INHERITED}
    scan = Baseline.of(
        "scan v1", T0, [f("main.chats.messages", **uc), f("main.chats.index", **uc), f("main.hr.pay", **uc)]
    )
    now = [f("main.chats.messages", **uc), f("main.hr.pay", **uc)]
    on_schema = [LedgerChange("account users", "main.chats", container=True)]
    out = compare(now, {"main.chats.messages", "main.chats.index", "main.hr.pay"}, scan, ledger=on_schema)
    assert [r.object_fqn for r in out.regressions] == [
        "main.chats.messages"
    ] and out.remaining == 1  # main.hr was never closed
    on_catalog = [LedgerChange("account users", "main", container=True)]
    assert len(compare(now, {"main.chats.messages", "main.hr.pay"}, scan, ledger=on_catalog).regressions) == 2
    undone = [LedgerChange("account users", "main.chats", undone=True, container=True)]
    [reg] = compare(
        now,
        {"main.chats.messages"},
        check(objects={"main.chats.messages", "main.hr.pay"}, findings=[now[1]]),
        ledger=undone,
    ).regressions
    assert reg.cause_kind == Cause.FIX_UNDONE


def test_a_table_named_like_a_schema_prefix_is_not_covered_by_an_exact_ledger_change():
    # PostgreSQL: closing table "s.t" says nothing about a table "x" in a schema that happens to be named "s.t".
    scan = Baseline.of("scan v1", T0, [f("s.t.x"), f("s.t")])
    out = compare([f("s.t.x"), f("s.t")], {"s.t.x", "s.t"}, scan, ledger=[LedgerChange("PUBLIC", "s.t")])
    assert [r.object_fqn for r in out.regressions] == ["s.t"] and out.remaining == 1


def test_a_baseline_read_without_grants_counts_what_closed_and_refuses_a_check_that_found_access():
    counted = Baseline("check 2", T0, pairs_readable=3, objects=frozenset({"t.a"}))
    out = compare([], {"t.a"}, counted)
    assert out.clean and out.closed_since == 3 and out.remaining == 0
    with pytest.raises(ValueError, match="without its grants"):
        compare([f("t.a")], {"t.a"}, counted)


def test_undone_fix_is_named_as_such():
    now = [f("t.a")]
    [reg] = compare(
        now, {"t.a"}, check(objects={"t.a"}), ledger=[LedgerChange("PUBLIC", "t.a", undone=True)]
    ).regressions
    assert reg.cause_kind == Cause.FIX_UNDONE


def test_access_back_through_a_membership_undo_restored_is_the_undo_not_a_re_added_grant():
    # The plan revoked all_employees' membership of legacy_ops (the first hop); legacy_readers holds the grant two hops on.
    now = [
        f(
            "hr.org_chart",
            AccessPath.ROLE,
            grantee="legacy_readers",
            grantor="postgres",
            route=("legacy_ops", "legacy_readers"),
        )
    ]
    known_reach = {("all_employees", "legacy_readers")}
    [reg] = compare(
        now,
        {"hr.org_chart"},
        check(objects={"hr.org_chart"}),
        known_reach=known_reach,
        ledger=[LedgerChange("legacy_ops", None, undone=True)],
    ).regressions
    assert reg.cause_kind == Cause.FIX_UNDONE and "restored the route to role legacy_readers" in reg.cause
    [other] = compare(
        now,
        {"hr.org_chart"},
        check(objects={"hr.org_chart"}),
        known_reach=known_reach,
        ledger=[LedgerChange("analytics_readers", None, undone=True)],
    ).regressions
    assert other.cause_kind == Cause.GRANT_READDED, "an undo of some other membership does not explain it"


@pytest.mark.parametrize("hop", ["a)b", "x -> y", 'say "hi" (please)'])
def test_attribution_reads_the_route_as_roles_whatever_they_are_named(hop):
    """The route is data: a role named with `)`, ` -> `, quotes or spaces is one hop, never split or cut short."""
    now = [
        f("hr.org_chart", AccessPath.ROLE, grantee="legacy readers", grantor="postgres", route=(hop, "legacy readers"))
    ]
    known_reach = {("all_employees", "legacy readers")}
    [undone] = compare(
        now,
        {"hr.org_chart"},
        check(objects={"hr.org_chart"}),
        known_reach=known_reach,
        ledger=[LedgerChange(hop, None, undone=True)],
    ).regressions
    assert undone.cause_kind == Cause.FIX_UNDONE and undone.as_dict()["route"] == [hop, "legacy readers"]
    assert f"all_employees -> {hop} -> legacy readers" in undone.cause
    [revoked] = compare(
        now,
        {"hr.org_chart"},
        check(objects={"hr.org_chart"}),
        known_reach=known_reach,
        ledger=[LedgerChange(hop, None)],
    ).regressions
    assert revoked.cause_kind == Cause.NEW_MEMBERSHIP, (
        "the fix revoked a membership on the route: access is back through it"
    )
    for part in {hop[:1], hop[-1:], "a", "y", "x"}:  # what a text parse cut such names into
        for change in (LedgerChange(part, None, undone=True), LedgerChange(part, None)):
            [other] = compare(
                now, {"hr.org_chart"}, check(objects={"hr.org_chart"}), known_reach=known_reach, ledger=[change]
            ).regressions
            assert other.cause_kind == Cause.GRANT_READDED, (part, change)


def test_probe_readable_object_makes_the_check_exposed():
    out = compare([], {"t.a"}, check(objects={"t.a"}), probe_readable=["t.a"])
    assert not out.clean and out.exposed_objects == 1


def test_regressions_group_by_cause():
    now = [f(f"t.x{i}", grantor="job") for i in range(5)] + [
        f("t.y", AccessPath.DIRECT, grantee="all_employees", grantor="alice")
    ]
    groups = group_regressions(compare(now, {*(f"t.x{i}" for i in range(5)), "t.y"}, check(objects=set())).regressions)
    assert sorted(n for _, n in groups) == [1, 5]


def test_schedule_follows_the_sev_policy():
    slots = schedule(T0, DEFAULT_LEVELS[2])
    assert [s.due_at - T0 for s in slots] == [
        timedelta(0),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=4),
        timedelta(hours=24),
    ]
    assert [s.offset for s in slots] == ["0m", "15m", "1h", "4h", "24h"]


def _slots(statuses, *, round=1, check_ids=None):
    offsets = [timedelta(0), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4)]
    return [
        SlotState(
            id=i + 1 + 10 * round,
            round=round,
            idx=i,
            due_at=T0 + offsets[i],
            status=st,
            check_id=(check_ids or {}).get(i),
        )
        for i, st in enumerate(statuses)
    ]


def test_overdue_slots_after_a_long_stop_run_once_and_cover_the_rest():
    slots = _slots(["done", "pending", "pending", "pending"])
    decision = due(slots, T0 + timedelta(hours=2))
    assert decision.run.idx == 2 and [s.idx for s in decision.covered] == [1]
    assert decision.delay(decision.covered[0], T0 + timedelta(hours=2)) == timedelta(hours=1, minutes=45)
    assert due(slots, T0 + timedelta(minutes=5)) is None
    assert next_pending(slots).idx == 1


def test_gate_refuses_until_the_last_slot_ran_clean_with_no_regression_since():
    checks = [CheckState(1, 1, T0, True, 0)]
    assert "has not started" in gate_reason([], checks, T0)
    assert "no verification check" in gate_reason([], [], T0)
    pending = _slots(["done", "pending", "pending", "pending"], check_ids={0: 1})
    reason = gate_reason(pending, checks, T0 + timedelta(minutes=5))
    assert "3 scheduled re-check(s)" in reason and "in 10m" in reason
    done = _slots(["done", "done", "covered", "done"], check_ids={0: 1, 1: 2, 2: 3, 3: 3})
    clean = [
        CheckState(1, 1, T0, True, 0),
        CheckState(2, 2, T0 + timedelta(minutes=15), True, 0),
        CheckState(3, 3, T0 + timedelta(hours=4), True, 0),
    ]
    assert gate_reason(done, clean, T0 + timedelta(hours=5)) is None
    exposed_last = [*clean[:2], CheckState(3, 3, T0 + timedelta(hours=4), False, 0)]
    assert "found access remaining" in gate_reason(done, exposed_last, T0 + timedelta(hours=5))
    regressed_later = [*clean, CheckState(4, 4, T0 + timedelta(hours=6), False, 2)]
    assert "check 4" in gate_reason(done, regressed_later, T0 + timedelta(hours=7))


def test_a_regression_round_never_ends_on_the_check_that_found_the_regression():
    # SEV 5 re-checks once ("0m"): the round a regression starts needs a later check, at the update cadence.
    single = DEFAULT_LEVELS[5]
    slots = regression_round(T0, single)
    assert [(s.idx, s.offset, s.due_at - T0) for s in slots] == [
        (0, "0m", timedelta(0)),
        (1, single.update_every, single.update_cadence),
    ]
    # The usual policy keeps its offsets, the regression check taking the 0m slot.
    assert [s.offset for s in regression_round(T0, DEFAULT_LEVELS[2])] == ["0m", "15m", "1h", "4h", "24h"]
    # A policy that starts later than 0m still gets the regression's own slot first.
    later = DEFAULT_LEVELS[2].model_copy(update={"recheck": ["1h"]})
    assert [(s.offset, s.due_at - T0) for s in regression_round(T0, later)] == [
        ("0m", timedelta(0)),
        ("1h", timedelta(hours=1)),
    ]


def test_gate_clears_once_the_round_a_regression_started_ends_clean():
    regressed = CheckState(1, 1, T0, False, 2)
    slots = [
        SlotState(id=1, round=1, idx=0, due_at=T0 - timedelta(hours=1), status="done", check_id=None),
        *(
            SlotState(
                id=10 + p.idx,
                round=2,
                idx=p.idx,
                due_at=p.due_at,
                status="done" if p.idx == 0 else "pending",
                check_id=1 if p.idx == 0 else None,
            )
            for p in regression_round(T0, DEFAULT_LEVELS[5])
        ),
    ]
    assert "1 scheduled re-check(s) still to run" in gate_reason(slots, [regressed], T0 + timedelta(minutes=5))
    later = T0 + DEFAULT_LEVELS[5].update_cadence
    ran = [
        s if s.idx == 0 or s.round == 1 else SlotState(s.id, s.round, s.idx, s.due_at, "done", check_id=2)
        for s in slots
    ]
    assert gate_reason(ran, [regressed, CheckState(2, 2, later, True, 0)], later) is None
