"""Windows, coverage and the per-object answer (sevtool.core.evidence): pure logic, no logs, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sevtool.core.evidence import (
    ObjectFacts,
    Piece,
    ReadTally,
    coverage,
    exposure_start,
    intersect,
    judge,
    source_pieces,
    windows_for,
)

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def read(
    minutes: float, user: str, obj: str = "public.keystrokes", stmt: int = 1, session: str = "s1", kind: str = "SESSION"
):
    return SimpleNamespace(
        time=T0 + minutes * M,
        epoch=(T0 + minutes * M).timestamp(),
        user=user,
        session=session,
        audit_type=kind,
        statement_id=stmt,
        audit_class="READ",
        command="SELECT",
        object_name=obj,
        grantees=(),
        grant_objects=(),
    )


def tally(*records, objects=("public.keystrokes", "public.salaries")) -> ReadTally:
    t = ReadTally(objects=set(objects), principals={"all_employees"})
    for r in records:
        t.add(r)
    return t


def test_windows_exposure_undo_and_regression():
    facts = ObjectFacts(applied=(T0 + 2 * H,), undone=(T0 + 3 * H,), regressions=((T0 + 5 * H, T0 + 6 * H),))
    clean = [T0 + 2.5 * H, T0 + 4 * H, T0 + 7 * H]
    assert windows_for(T0, facts, clean, T0 + 10 * H) == [
        ((T0, T0 + 2 * H), "exposure"),
        ((T0 + 3 * H, T0 + 10 * H), "reopened"),
        ((T0 + 4 * H, T0 + 6 * H), "regression"),
    ]
    assert windows_for(None, ObjectFacts(), [], T0) == [((None, T0), "exposure")], "never closed: open until now"


def test_exposure_start_prefers_the_recorded_time():
    assert exposure_start(T0, [T0 - H])[0] == T0
    assert exposure_start(None, [T0 + H, T0 - H]) == (
        T0 - H,
        "earliest GRANT to the principal in the pgaudit ROLE entries",
    )
    assert exposure_start(None, [])[0] is None


def test_coverage_bridges_short_silences_between_files_but_not_holes_or_long_gaps():
    a = source_pieces(T0, T0 + H, [], [])
    b = source_pieces(T0 + H + 5 * M, T0 + 2 * H, [(T0 + 80 * M, T0 + 100 * M)], [])  # a 20-minute silence inside b
    c = source_pieces(T0 + 3 * H, T0 + 4 * H, [], [], broken_at_start=True)
    assert coverage(a + b + c, 10 * M) == [(T0, T0 + 80 * M), (T0 + 100 * M, T0 + 2 * H), (T0 + 3 * H, T0 + 4 * H)]
    assert coverage(a + b, 30 * M) == [(T0, T0 + 80 * M), (T0 + 100 * M, T0 + 2 * H)], "a gap inside a file stays cut"
    near = [Piece(T0, T0 + H), Piece(T0 + H + M, T0 + 2 * H, hard_start=True)]
    assert coverage(near, H) == [(T0, T0 + H), (T0 + H + M, T0 + 2 * H)], (
        "unreadable lines at a file's start: not bridged"
    )


def test_intersect_splits_windows_into_covered_and_unknown():
    covered = [(T0 + H, T0 + 2 * H), (T0 + 3 * H, T0 + 5 * H)]
    inside, outside = intersect([(T0, T0 + 4 * H)], covered)
    assert inside == [(T0 + H, T0 + 2 * H), (T0 + 3 * H, T0 + 4 * H)]
    assert outside == [(T0, T0 + H), (T0 + 2 * H, T0 + 3 * H)]
    assert intersect([(None, T0 + 90 * M)], covered) == ([(T0 + H, T0 + 90 * M)], [(None, T0 + H)])
    assert intersect([(T0, T0 + H)], []) == ([], [(T0, T0 + H)])


def test_reads_are_counted_once_per_statement_and_only_inside_the_window():
    t = tally(
        read(1, "alice", stmt=1),
        read(1, "alice", stmt=1),  # self-join: the table twice
        read(2, "bob", stmt=4, session="s2", kind="OBJECT"),
        read(2, "bob", stmt=4, session="s2"),  # OBJECT + SESSION
        read(3, "alice", stmt=2),
        read(1, "alice", stmt=1),  # a replay of the same log (its jsonlog twin)
        read(90, "alice", stmt=3),  # after the apply
        read(5, "carol", obj="public.other", session="s3"),
    )  # out of scope
    windows = [((T0, T0 + H), "exposure")]
    ev = judge("public.keystrokes", t, windows, "recorded", [(T0 - H, T0 + 2 * H)], members={"alice", "bob"})
    assert ev.answer == "reads" and ev.uncovered == []
    assert [(r.role, r.member, r.reads, r.first, r.last) for r in ev.readers] == [
        ("alice", True, 2, T0 + M, T0 + 3 * M),
        ("bob", True, 1, T0 + 2 * M, T0 + 2 * M),
    ]
    quiet = judge("public.salaries", t, windows, "recorded", [(T0 - H, T0 + 2 * H)], members={"alice"})
    assert quiet.answer == "no_reads" and quiet.read_logged == "session"


def test_no_reads_needs_full_coverage_and_evidence_that_read_was_logged():
    windows = [((T0, T0 + H), "exposure")]
    half = judge(
        "public.salaries", tally(read(1, "alice")), windows, "recorded", [(T0 + 30 * M, T0 + 2 * H)], {"alice"}
    )
    assert (
        half.answer == "unknown" and half.uncovered == [(T0, T0 + 30 * M)] and half.covered == [(T0 + 30 * M, T0 + H)]
    )
    silent = judge("public.salaries", tally(), windows, "recorded", [(T0 - H, T0 + 2 * H)], set())
    assert silent.answer == "unknown" and silent.read_logged is None, "no READ entry at all: pgaudit may not log reads"
    unknown_start = judge(
        "public.salaries", tally(read(1, "alice")), [((None, T0 + H), "exposure")], "unknown", [(T0, T0 + 2 * H)], set()
    )
    assert unknown_start.answer == "unknown" and unknown_start.uncovered == [(None, T0)]
    as_json = unknown_start.as_dict()
    assert as_json["uncovered"] == [[None, T0.isoformat()]] and as_json["answer"] == "unknown"


def test_grants_to_the_principal_open_the_window_per_object():
    grant = SimpleNamespace(
        time=T0,
        audit_class="ROLE",
        command="GRANT",
        grantees=("all_employees",),
        grant_objects=("keystrokes", "hr.*"),
        audit_type="SESSION",
        user="postgres",
        session="s0",
    )
    other = SimpleNamespace(**{**grant.__dict__, "time": T0 - H, "grantees": ("carol",)})
    t = tally(grant, other, objects=("public.keystrokes", "hr.salaries", "public.salaries"))
    assert t.grants == {"public.keystrokes": [T0], "hr.salaries": [T0]}
