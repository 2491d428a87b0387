from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from sevtool.core.timeline import GENESIS, Event, event_hash, verify_chain

T0 = datetime(2026, 6, 18, 21, 5, tzinfo=UTC)


def build_chain(n: int) -> list[Event]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        draft = Event(
            seq=i,
            incident_id=1,
            at=T0 + timedelta(minutes=i),
            kind="note",
            actor="a",
            summary=f"event {i}",
            data={"i": i},
            prev_hash=prev,
        )
        event = replace(draft, hash=event_hash(draft))
        events.append(event)
        prev = event.hash
    return events


def test_intact_chain_verifies_and_reports_head():
    events = build_chain(5)
    report = verify_chain(events, (5, events[-1].hash))
    assert report.ok and report.head == events[-1].hash and report.events == 5


def test_edited_summary_is_named():
    events = build_chain(5)
    events[2] = replace(events[2], summary="nothing happened")
    report = verify_chain(events, (5, events[-1].hash))
    assert not report.ok and report.broken_seq == 3 and "edited" in report.problem


def test_edited_time_is_named():
    events = build_chain(5)
    events[1] = replace(events[1], at=events[1].at + timedelta(hours=1))
    report = verify_chain(events)
    assert not report.ok and report.broken_seq == 2


def test_deleted_event_is_named():
    events = build_chain(5)
    del events[3]
    report = verify_chain(events, (5, build_chain(5)[-1].hash))
    assert not report.ok and report.broken_seq == 4 and "missing" in report.problem


def test_deleting_the_newest_event_is_caught_by_the_head():
    events = build_chain(5)
    head = (5, events[-1].hash)
    report = verify_chain(events[:-1], head)
    assert not report.ok and "newest" in report.problem


def test_reordered_events_are_named():
    events = build_chain(5)
    a, b = events[1], events[2]
    events[1], events[2] = replace(b, seq=2), replace(a, seq=3)
    report = verify_chain(events)
    assert not report.ok and report.broken_seq == 2


def test_hash_is_independent_of_dict_order_and_timezone_representation():
    e1 = Event(seq=1, incident_id=1, at=T0, kind="k", actor="a", summary="s", data={"a": 1, "b": 2})
    e2 = Event(
        seq=1,
        incident_id=1,
        at=T0.astimezone(timezone(timedelta(hours=-7))),
        kind="k",
        actor="a",
        summary="s",
        data={"b": 2, "a": 1},
    )
    assert event_hash(e1) == event_hash(e2)
