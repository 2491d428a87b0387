"""DSS ratings: the comment tag first, then the team's patterns, else unrated."""

from __future__ import annotations

import pytest

from sevtool.core.classification import Classifier, dss_from_comment


@pytest.mark.parametrize(
    "comment,expected",
    [
        ("dss=3", 3),
        ("Keystroke capture. DSS = 4; owner: telemetry", 4),
        ("pii, dss=2, retention 90d", 2),
        ("dss=7 (typo)", None),
        ("dss=33", None),
        ("nodss=3", None),
        ("dss=9 then dss=1", 1),
        ("no rating here", None),
        ("", None),
        (None, None),
    ],
)
def test_comment_tag(comment, expected):
    assert dss_from_comment(comment) == expected


def test_comment_wins_over_patterns():
    classify = Classifier([("hr.*", 1)])
    assert classify("hr", "salaries", "dss=4") == 4
    assert classify("hr", "salaries", None) == 1


def test_highest_matching_pattern_wins_and_patterns_cover_schema_dot_table():
    classify = Classifier([("telemetry.*", 2), ("telemetry.keystrokes_*", 4), ("*.screen_*", 3)])
    assert classify("telemetry", "keystrokes_2026", None) == 4
    assert classify("telemetry", "screen_caps", None) == 3
    assert classify("telemetry", "mouse", None) == 2
    assert classify("chat", "keystrokes_2026", None) is None, "a pattern with a schema does not match other schemas"


def test_unrated_without_tag_or_pattern():
    assert Classifier()("any", "thing", "just a comment") is None


def test_patterns_are_case_sensitive_like_postgresql_identifiers():
    assert Classifier([("HR.*", 4)])("hr", "salaries", None) is None


def test_out_of_range_rule_is_refused():
    with pytest.raises(ValueError, match="1-4"):
        Classifier([("x.*", 5)])


def test_team_config_patterns_reach_the_scan(sqlite_wb, config_path):
    config_path.write_text(
        '[[classification]]\npattern = "telemetry.keystrokes_*"\ndss = 4\n\n'
        '[[classification]]\npattern = "chat.*"\ndss = 3\n'
    )
    classify = sqlite_wb.scanning.classifier()
    assert classify("telemetry", "keystrokes_01", None) == 4
    assert classify("chat", "messages", "dss=1") == 1
    assert classify("chat", "messages", None) == 3
