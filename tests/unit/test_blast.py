"""Blast radius totals, holding back actions with collateral, and the SEV level's size guard (pure domain)."""

from __future__ import annotations

import pytest

from sevtool.core import blast
from sevtool.core.plan import Action, ActionStatus, Collateral
from sevtool.core.severity import DEFAULT_MAX_ACTIONS, SevPolicy
from sevtool.errors import ConfigError, UsageError
from sevtool.targets.postgres.plugin import ActionKind


def action(seq: int, *collateral: Collateral, status: ActionStatus = ActionStatus.PLANNED) -> Action:
    return Action(
        seq=seq,
        kind=ActionKind.REVOKE_GRANT_OPTION,
        schema_name="hr",
        object_name=f"t{seq}",
        grantee="emp_all",
        sql="REVOKE ...",
        collateral=list(collateral),
        status=status,
    )


def test_totals_count_distinct_roles_objects_and_each_roles_login_members_once():
    a = action(
        1,
        Collateral(
            role="contractor", objects=["hr.complaints", "hr.salaries"], login_members=3, cause="grant_option_cascade"
        ),
    )
    b = action(
        2,
        Collateral(role="contractor", objects=["hr.complaints"], login_members=3, cause="grant_option_cascade"),
        Collateral(role="auditors", objects=["hr.audit"], login_members=1, cause="membership"),
    )
    totals = blast.totals([a, b, action(3)])
    assert totals == {"actions": 2, "roles": ["auditors", "contractor"], "objects": 3, "login_members": 4}
    assert blast.of_action(b) == {
        "roles": ["auditors", "contractor"],
        "objects": 2,
        "login_members": 4,
        "causes": ["grant_option_cascade", "membership"],
    }
    assert blast.cell(a) == "1 role, 2 obj, 3 login" and blast.cell(action(3)) == ""
    assert blast.summary_text(blast.totals([action(3)])) == "no action takes access beyond the incident's scope"


def test_actions_with_collateral_are_marked_for_review_and_held_unless_accepted_or_in_flight():
    harm = Collateral(role="contractor", objects=["hr.complaints"], login_members=1)
    plain, harmful, in_flight = action(1), action(2, harm), action(3, harm, status=ActionStatus.APPLYING)
    blast.mark_review([plain, harmful])
    assert (plain.review, harmful.review) == (False, True)
    run, held = blast.split_held([plain, harmful, in_flight], accept_collateral=False)
    assert [a.seq for a in run] == [1, 3] and [a.seq for a in held] == [2]
    assert blast.split_held([plain, harmful], accept_collateral=True) == ([plain, harmful], [])
    assert "contractor" in blast.held_message(harmful) and blast.ACCEPT_FLAG in blast.held_message(harmful)


def test_the_size_guard_names_the_limit_and_the_flag():
    blast.check_size(7, 10, 10, "plan")
    with pytest.raises(UsageError) as refused:
        blast.check_size(7, 11, 10, "plan")
    assert "11 actions, more than the limit of 10" in refused.value.message and "--max-actions 11" in refused.value.hint


def test_max_actions_defaults_above_the_45000_table_drill_and_is_overridable_per_level():
    policy = SevPolicy.from_overrides({"1": {"max_actions": 500}})
    assert policy.level(1).max_actions == 500
    assert policy.level(2).max_actions == DEFAULT_MAX_ACTIONS >= 45_000
    with pytest.raises(ConfigError):
        SevPolicy.from_overrides({"2": {"max_actions": 0}})
