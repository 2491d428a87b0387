import pytest

from sevtool.core.incident import TRANSITIONS, Status, check_transition, is_regression, parse_status
from sevtool.errors import ExitCode, IllegalTransition, UsageError


@pytest.mark.parametrize(
    "current,new",
    [
        (Status.DECLARED, Status.CONTAINED),
        (Status.CONTAINED, Status.VERIFYING),
        (Status.VERIFYING, Status.RESOLVED),
        (Status.RESOLVED, Status.CLOSED),
        (Status.VERIFYING, Status.CONTAINED),
        (Status.RESOLVED, Status.CONTAINED),
        (Status.CONTAINED, Status.DECLARED),
    ],
)
def test_allowed_transitions(current, new):
    check_transition(current, new)


@pytest.mark.parametrize(
    "current,new",
    [
        (Status.DECLARED, Status.RESOLVED),
        (Status.DECLARED, Status.VERIFYING),
        (Status.CONTAINED, Status.RESOLVED),
        (Status.CLOSED, Status.DECLARED),
        (Status.CLOSED, Status.CONTAINED),
        (Status.DECLARED, Status.CLOSED),
    ],
)
def test_illegal_transitions_are_refused_with_the_allowed_next_steps(current, new):
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, new)
    assert info.value.exit_code == ExitCode.USAGE
    assert current.value in info.value.message and new.value in info.value.message
    assert info.value.hint


def test_same_status_is_refused():
    with pytest.raises(IllegalTransition, match="already"):
        check_transition(Status.CONTAINED, Status.CONTAINED)


def test_closed_is_final_and_every_status_has_a_rule():
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[Status.CLOSED] == set()


def test_regression_direction():
    assert is_regression(Status.RESOLVED, Status.CONTAINED)
    assert is_regression(Status.VERIFYING, Status.DECLARED)
    assert not is_regression(Status.CONTAINED, Status.VERIFYING)


def test_parse_status():
    assert parse_status(" Contained ") is Status.CONTAINED
    with pytest.raises(UsageError, match="unknown status"):
        parse_status("fixed")
