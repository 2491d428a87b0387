"""Playbooks: the shipped ones are valid, a broken one is reported with file, line and field, progress comes from the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sevtool.core.playbook import (
    StepKind,
    key_lines,
    next_step,
    parse_playbook,
    progress,
)
from sevtool.core.timeline import Event
from sevtool.errors import ConfigError
from sevtool.services.playbooks import SHIPPED_DIR

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["credential-leak", "data-exposure", "over-broad-role"]

VALID = '''\
title = "Test playbook"

[[steps]]
id = "declare"
kind = "declare"
title = "Declare"
text = "Declare it."

[[steps]]
id = "scan"
kind = "scan"
title = "Scan"
text = """
Scan the scope.
kind = "this line is text, not a key"
"""
required_at = [0, 1, 2]

[[steps]]
id = "revoke"
kind = "revoke"
title = "Revoke"
text = "Apply the plan."
'''


def parse(text: str):
    return parse_playbook(text, "team/playbooks/test.toml", name="test")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_playbooks_are_valid(name):
    packaged = SHIPPED_DIR / f"{name}.toml"
    playbook = parse_playbook(packaged.read_text(), str(packaged), name=name)
    assert playbook.steps and playbook.steps[0].kind == StepKind.DECLARE


def test_the_repo_playbooks_dir_points_at_the_shipped_ones_and_holds_no_copy():
    assert sorted(p.stem for p in SHIPPED_DIR.glob("*.toml")) == SHIPPED
    assert not list((REPO / "playbooks").glob("*.toml")), (
        "a second copy drifts: the shipped playbooks live in sevtool/playbooks/"
    )
    assert "sevtool/playbooks/" in (REPO / "playbooks" / "README.md").read_text()


def test_data_exposure_covers_every_step_kind():
    playbook = parse_playbook(
        (SHIPPED_DIR / "data-exposure.toml").read_text(), "data-exposure.toml", name="data-exposure"
    )
    assert {s.kind for s in playbook.steps} == set(StepKind)


def test_three_ways_to_break_a_playbook_give_three_precise_errors():
    assert len(parse(VALID).steps) == 3

    syntax = VALID.replace('title = "Scan"', 'title = "Scan', 1)  # unterminated string on line 12
    with pytest.raises(ConfigError) as exc:
        parse(syntax)
    assert exc.value.message.startswith("team/playbooks/test.toml:12: TOML syntax:")

    bad_kind = VALID.replace('kind = "revoke"', 'kind = "revokee"')  # line 21, third step
    with pytest.raises(ConfigError) as exc:
        parse(bad_kind)
    assert exc.value.message.startswith("team/playbooks/test.toml:21: steps[2].kind: Input should be 'declare'")

    missing = VALID.replace('text = "Declare it."\n', "")  # first step loses its text; its table starts on line 3
    with pytest.raises(ConfigError) as exc:
        parse(missing)
    assert exc.value.message == "team/playbooks/test.toml:3: steps[0].text: is required but missing"


def test_more_schema_errors_point_at_the_offending_key():
    with pytest.raises(ConfigError) as exc:
        parse(VALID.replace("required_at = [0, 1, 2]", "required_at = [0, 7]"))
    assert exc.value.message.startswith(
        "team/playbooks/test.toml:17: steps[1].required_at: SEV levels run from 0 to 5, got [7]"
    )
    with pytest.raises(ConfigError) as exc:
        parse(VALID.replace('text = "Apply the plan."', 'txet = "Apply the plan."'))
    assert exc.value.message == (
        "team/playbooks/test.toml:19: steps[2].text: is required but missing; "
        "team/playbooks/test.toml:23: steps[2].txet: is not a known field"
    )
    with pytest.raises(ConfigError) as exc:
        parse(VALID.replace('id = "revoke"', 'id = "scan"'))
    assert exc.value.message == "team/playbooks/test.toml:20: steps[2].id: 'scan' is already the id of an earlier step"
    with pytest.raises(ConfigError) as exc:
        parse('name = "other"\n' + VALID)
    assert exc.value.message.startswith("team/playbooks/test.toml:1: name: 'other' does not match the file name 'test'")


def test_key_lines_skip_multiline_strings():
    lines = key_lines(VALID)
    assert lines[("steps", 1, "kind")] == 11
    assert lines[("steps", 1, "required_at")] == 17
    assert lines[("steps", 2)] == 19


def _event(seq: int, kind: str, minutes: int, **data) -> Event:
    return Event(
        seq=seq,
        incident_id=1,
        at=datetime(2026, 6, 18, tzinfo=UTC) + timedelta(minutes=minutes),
        kind=kind,
        actor="alice",
        summary=kind,
        data=data,
    )


def test_progress_is_derived_from_the_timeline():
    playbook = parse(VALID)
    events = [_event(1, "declared", 0)]
    steps = progress(playbook, 2, events)
    assert [(s.step.id, s.done) for s in steps] == [("declare", True), ("scan", False), ("revoke", False)]
    assert next_step(steps).step.id == "scan"
    # At SEV 4 the scan step is optional, so the required revoke comes first.
    assert next_step(progress(playbook, 4, events)).step.id == "revoke"
    events += [_event(3, "apply", 30, counts={"applied": 0, "skipped": 0, "failed": 2}), _event(2, "scan", 10)]
    assert not progress(playbook, 2, events)[2].done, "an apply that failed everywhere revoked nothing"
    events.append(_event(4, "apply", 40, counts={"applied": 2, "skipped": 0, "failed": 0}))
    steps = progress(playbook, 2, events)
    assert all(s.done for s in steps) and next_step(steps) is None
    assert steps[1].evidence_seq == 2 and steps[2].done_at == events[-1].at


def test_done_when_overrides_and_settled_steps():
    text = (
        VALID
        + """
[[steps]]
id = "tell"
kind = "communicate"
title = "Tell"
text = "Send an update."
done_when = ["note:exec-update"]

[[steps]]
id = "watch"
kind = "watch"
title = "Watch"
text = "Re-check."
"""
    )
    playbook = parse(text)
    events = [_event(1, "declared", 0), _event(2, "note", 5, note_kind="update")]
    steps = {s.step.id: s for s in progress(playbook, 2, events)}
    assert not steps["tell"].done, "a plain update note does not satisfy a custom done_when"
    events.append(_event(3, "note", 6, note_kind="exec-update"))
    settled_at = datetime(2026, 6, 19, tzinfo=UTC)
    steps = {s.step.id: s for s in progress(playbook, 2, events, settled={StepKind.WATCH: settled_at})}
    assert steps["tell"].done and steps["tell"].evidence_seq == 3
    assert steps["watch"].done and steps["watch"].done_at == settled_at


def test_the_verify_step_needs_a_clean_check_not_any_check():
    playbook = parse(VALID.replace('kind = "revoke"', 'kind = "verify"'))
    exposed = [
        _event(1, "declared", 0),
        _event(2, "scan", 5),
        _event(3, "check", 10, clean=False, exposed_objects=3002),
    ]
    assert not progress(playbook, 2, exposed)[2].done, "a check that still found access is not 'no access remains'"
    steps = progress(playbook, 2, [*exposed, _event(4, "check", 20, clean=True, exposed_objects=0)])
    assert steps[2].done and steps[2].evidence_seq == 4


def test_commander_named_at_declaration_counts_as_roles_assigned():
    playbook = parse(VALID.replace('kind = "scan"', 'kind = "assign_roles"'))
    events = [_event(1, "declared", 0)]
    assert progress(playbook, 2, events, commander="alice")[1].done
    assert not progress(playbook, 2, events)[1].done
    assert progress(playbook, 2, [*events, _event(2, "role_assigned", 3)])[1].evidence_seq == 2


def test_a_teams_playbooks_dir_overrides_shipped_ones_and_broken_files_are_listed(tmp_path):
    from sevtool.errors import UsageError
    from sevtool.services.playbooks import PlaybookService

    team = tmp_path / "playbooks"
    team.mkdir()
    (team / "data-exposure.toml").write_text(VALID)
    (team / "half-written.toml").write_text('title = "x"\n[[steps]]\nid = "a"\n')
    service = PlaybookService(wb=None, dirs=[team, SHIPPED_DIR])
    listed = {f.name: f for f in service.list()}
    assert set(listed) == {*SHIPPED, "half-written"}
    assert (
        listed["data-exposure"].path == team / "data-exposure.toml"
        and service.get("data-exposure").title == "Test playbook"
    )
    assert listed["half-written"].playbook is None
    assert listed["half-written"].error.startswith(
        f"{team / 'half-written.toml'}:2: steps[0].kind: is required but missing"
    )
    assert service.get("credential-leak").steps[0].kind == StepKind.DECLARE
    with pytest.raises(UsageError, match="no playbook named 'nope'"):
        service.get("nope")
