"""Property tests: whatever a responder types, the parsers answer with a value or a UsageError, never a crash."""

import contextlib
import tomllib
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from sevtool.core.severity import SevPolicy, check_sev
from sevtool.core.timeparse import parse_at, parse_duration
from sevtool.errors import UsageError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_parse_at_returns_aware_utc_or_usage_error(text):
    try:
        value = parse_at(text, now=NOW)
    except UsageError:
        return
    assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("+-"), st.integers(0, 10_000), st.sampled_from("smhdw"))
def test_relative_times_move_the_right_way(sign, amount, unit):
    value = parse_at(f"{sign}{amount}{unit}", now=NOW)
    assert (value >= NOW) if sign == "+" else (value <= NOW)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_parse_duration_never_crashes(text):
    with contextlib.suppress(UsageError):
        assert parse_duration(text).total_seconds() >= 0


@given(st.integers())
def test_check_sev_accepts_exactly_0_to_5(value):
    try:
        assert check_sev(value) in range(6)
    except UsageError:
        assert value not in range(6)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=3),
        st.dictionaries(
            st.sampled_from(["label", "recheck", "update_every", "page", "bogus"]),
            st.one_of(st.text(max_size=5), st.lists(st.text(max_size=4), max_size=3), st.integers()),
        ),
    )
)
def test_sev_overrides_merge_or_fail_as_config_errors(overrides):
    try:
        policy = SevPolicy.from_overrides(overrides)
    except UsageError:
        return
    assert sorted(policy.levels) == [0, 1, 2, 3, 4, 5]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_team_config_loader_never_crashes(tmp_path_factory, text):
    from sevtool.settings import load_team_config

    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_team_config(path)
    except UsageError as exc:
        assert str(path) in exc.message
    except tomllib.TOMLDecodeError:  # pragma: no cover - must be wrapped
        raise AssertionError("raw TOML error leaked") from None
