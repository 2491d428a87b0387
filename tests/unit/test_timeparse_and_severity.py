from datetime import UTC, datetime, timedelta

import pytest
from dateutil import tz

from sevtool.core.severity import DEFAULT_LEVELS, SevPolicy, check_sev
from sevtool.core.timeparse import format_duration, parse_at, parse_duration
from sevtool.errors import ConfigError, InvalidTime, UsageError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-06-18T14:05:00Z", datetime(2026, 6, 18, 14, 5, tzinfo=UTC)),
        ("2026-06-18 14:05 PDT", datetime(2026, 6, 18, 21, 5, tzinfo=UTC)),
        ("2026-01-18 14:05 PST", datetime(2026, 1, 18, 22, 5, tzinfo=UTC)),
        ("2026-06-18T14:05:00+02:00", datetime(2026, 6, 18, 12, 5, tzinfo=UTC)),
        ("-4h", NOW - timedelta(hours=4)),
        ("-1h30m", NOW - timedelta(minutes=90)),
        ("+15m", NOW + timedelta(minutes=15)),
        ("now", NOW),
    ],
)
def test_parse_at(text, expected):
    assert parse_at(text, now=NOW) == expected


def test_naive_times_are_read_in_the_responders_zone():
    assert parse_at("2026-06-18 14:05", default_zone=tz.gettz("America/Los_Angeles")) == datetime(
        2026, 6, 18, 21, 5, tzinfo=UTC
    )


@pytest.mark.parametrize("garbage", ["", "yesterday-ish", "-4x", "2026-13-45", "banana 14:05"])
def test_garbage_times_are_usage_errors(garbage):
    with pytest.raises(InvalidTime):
        parse_at(garbage, now=NOW)


def test_durations():
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("0") == timedelta(0)
    assert format_duration(timedelta(hours=4, minutes=5)) == "4h 5m"
    assert format_duration(None) == "unknown"
    with pytest.raises(InvalidTime):
        parse_duration("soon")


def test_default_policy_covers_0_to_5_with_stricter_rechecks_at_higher_severity():
    assert sorted(DEFAULT_LEVELS) == [0, 1, 2, 3, 4, 5]
    assert DEFAULT_LEVELS[2].recheck == ["0m", "15m", "1h", "4h", "24h"]
    assert len(DEFAULT_LEVELS[0].recheck) >= len(DEFAULT_LEVELS[5].recheck)


def test_overrides_merge_and_validate():
    policy = SevPolicy.from_overrides({"2": {"recheck": ["0m", "5m"], "page": ["me"]}})
    assert policy.level(2).recheck == ["0m", "5m"] and policy.level(2).label == DEFAULT_LEVELS[2].label
    with pytest.raises(ConfigError, match="outside 0-5"):
        SevPolicy.from_overrides({"7": {"label": "x"}})
    with pytest.raises(ConfigError, match="recheck"):
        SevPolicy.from_overrides({"2": {"recheck": ["1h", "5m"]}})


@pytest.mark.parametrize("bad", [-1, 6, 7])
def test_sev_outside_range_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        check_sev(bad)
