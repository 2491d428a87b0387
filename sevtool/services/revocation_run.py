"""What a revocation run reports (per batch and at the end), and how it cuts a plan into batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import TypeVar

from pydantic import BaseModel

from sevtool.core.plan import Action, ActionResult

RESUMED = "applied by an interrupted run; confirmed gone on read-back"
APPLY_WORKERS = 4  # connections revoking side by side (each batch is its own transaction)
HEARTBEAT_EVERY_S = 10  # well inside locks.STALE_AFTER, so a live apply is never taken over


T = TypeVar("T")


def read_ahead(pages: Iterator[T]) -> Iterator[T]:
    """The next page read and decoded on a thread of its own while the current one runs: the workers mostly wait
    on the target, so the ledger's read need not wait for them."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        upcoming = reader.submit(next, pages, None)
        while (page := upcoming.result()) is not None:
            upcoming = reader.submit(next, pages, None)
            yield page


def shape_runs(pages: Iterable[list[Action]], size: int) -> Iterator[Iterator[list[Action]]]:
    """A plan's pages cut into chunks of `size` actions, as one run of chunks per statement shape.

    Actions of one shape name each object once, so a run's chunks can go to several connections side by side, and
    a run spans pages: workers take the next chunk without waiting for a page's slowest one. Runs follow each other
    (one table may appear in several shapes). Take a run's chunks before the next run; several threads may take
    them under one lock.
    """
    chunks = (
        (key, group[i : i + size])
        for todo in pages
        for key, group in ((key, list(shape)) for key, shape in groupby(todo, key=lambda a: a.batch_key))
        for i in range(0, len(group), size)
    )
    for _, run in groupby(chunks, key=lambda keyed: keyed[0]):
        yield (chunk for _, chunk in run)


def _by_object(actions: list[Action], size: int) -> list[list[Action]]:
    """Chunks of about `size` objects in plan order, every action on one object in the same chunk."""
    by_object: dict[str, list[Action]] = {}
    for action in actions:
        by_object.setdefault(action.object_fqn, []).append(action)
    groups = list(by_object.values())
    return [[a for group in groups[i : i + size] for a in group] for i in range(0, len(groups), size)]


class RunReport(BaseModel):
    incident_id: int
    mode: str  # apply | undo
    plan_versions: list[int]
    counts: dict[str, int]  # outcomes of this run
    totals: dict[str, int]  # the ledger afterwards (latest plan for apply, all plans for undo)
    failures: list[dict]  # seq, object, message
    status: str  # incident status afterwards
    duration_ms: int
    # Actions with collateral left `planned` because the run did not accept it: access stays in place by choice.
    held: int = 0
    held_roles: list[str] = []
    held_actions: list[dict] = []  # seq, object, roles, objects, login_members (the first 50)
    hint: str = ""  # what to do next, when something was held
    # Undo: access exceptions ended (grants revoked and read back) before the prior ACLs came back.
    exceptions_ended: list[dict] = []

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Progress:
    """Reported after every batch, for progress bars: done/total and that batch's outcomes."""

    done: int
    total: int
    results: list[ActionResult]
    counts: dict[str, int] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]
