"""How an apply cuts its plan's pages into chunks: runs of one statement shape that span pages."""

from __future__ import annotations

from sevtool.core.plan import Action
from sevtool.services.revocation_run import shape_runs


def action(seq: int, grantee: str) -> Action:
    return Action(seq=seq, kind="revoke_table", object_name=f"t{seq}", grantee=grantee, sql="")


def test_a_shape_runs_across_pages_and_a_new_shape_starts_a_new_run():
    pages = [
        [action(1, "a"), action(2, "a"), action(3, "a")],
        [action(4, "a"), action(5, "b"), action(6, "b")],
        [action(7, "b"), action(8, "a")],
    ]
    runs = [[[a.seq for a in chunk] for chunk in run] for run in shape_runs(iter(pages), 2)]
    # Chunks never mix shapes or pages; a run goes on over a page's end while the shape stays the same.
    assert runs == [[[1, 2], [3], [4]], [[5, 6], [7]], [[8]]]


def test_no_pages_no_runs():
    assert list(shape_runs(iter([]), 5)) == []
