"""The re-check schedule and the resolution gate: when checks are due, and whether the incident may be resolved.

Decided here, apart from any clock or store, so they are testable; `checks.py` compares what a check found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sevtool.core.severity import SevLevel
from sevtool.core.timeparse import format_duration, format_utc


@dataclass(frozen=True)
class PlannedSlot:
    idx: int
    offset: str
    due_at: datetime


def schedule(anchor: datetime, level: SevLevel) -> list[PlannedSlot]:
    """The SEV policy's re-checks, as times: anchor + each offset (anchor = containment, or the regression)."""
    return [
        PlannedSlot(i, text, anchor + offset)
        for i, (text, offset) in enumerate(zip(level.recheck, level.recheck_offsets, strict=False))
    ]


REGRESSION_SLOT = "0m"


def regression_round(anchor: datetime, level: SevLevel) -> list[PlannedSlot]:
    """The round a regression starts: slot 0 is the check that found it, then the policy's later offsets from it.

    That check found access, so it cannot end the round: a policy with nothing after 0m (a single
    re-check) gets one more at its update cadence, or the incident could never be resolved again.
    """
    later = [
        (text, offset)
        for text, offset in zip(level.recheck, level.recheck_offsets, strict=False)
        if offset > timedelta(0)
    ]
    later = later or [(level.update_every, level.update_cadence)]
    return [
        PlannedSlot(0, REGRESSION_SLOT, anchor),
        *(PlannedSlot(i, text, anchor + offset) for i, (text, offset) in enumerate(later, 1)),
    ]


@dataclass(frozen=True)
class SlotState:
    id: int
    round: int
    idx: int
    due_at: datetime
    status: str  # pending, running, done, covered, superseded
    check_id: int | None = None


@dataclass(frozen=True)
class DueDecision:
    """Run one check for `run`; the earlier overdue slots are `covered` by it (they are not run again)."""

    run: SlotState
    covered: list[SlotState]

    def delay(self, slot: SlotState, now: datetime) -> timedelta:
        return max(now - slot.due_at, timedelta(0))


def due(slots: list[SlotState], now: datetime) -> DueDecision | None:
    """After a long stop several slots can be overdue: one check now answers all of them.

    Running each overdue slot back to back would only repeat the same answer seconds apart; the
    latest overdue slot runs and the earlier ones are recorded as covered by that check, with their delay.
    """
    overdue = sorted((s for s in slots if s.status == "pending" and s.due_at <= now), key=lambda s: (s.round, s.idx))
    if not overdue:
        return None
    return DueDecision(run=overdue[-1], covered=overdue[:-1])


def next_pending(slots: list[SlotState]) -> SlotState | None:
    pending = [s for s in slots if s.status == "pending"]
    return min(pending, key=lambda s: (s.due_at, s.round, s.idx)) if pending else None


@dataclass(frozen=True)
class CheckState:
    id: int
    number: int
    ran_at: datetime
    clean: bool
    regressions: int


def gate_reason(slots: list[SlotState], checks: list[CheckState], now: datetime) -> str | None:
    """Why the incident cannot be resolved yet, or None once the schedule's last check was clean with no regression since."""
    if not checks:
        return "no verification check has run yet (run `sevtool verify` or `sevtool watch`)"
    if not slots:
        return "the re-check schedule has not started (run `sevtool watch` to run it)"
    current = max(s.round for s in slots)
    round_slots = sorted((s for s in slots if s.round == current), key=lambda s: s.idx)
    last = round_slots[-1]
    if last.status not in ("done", "covered") or last.check_id is None:
        waiting = next_pending(round_slots) or last
        remaining = sum(1 for s in round_slots if s.status not in ("done", "covered"))
        when = format_utc(waiting.due_at)
        eta = (
            f"in {format_duration(waiting.due_at - now)}"
            if waiting.due_at > now
            else f"overdue by {format_duration(now - waiting.due_at)}"
        )
        return (
            f"{remaining} scheduled re-check(s) still to run; the next is due {when} ({eta}), "
            f"the last at {format_utc(last.due_at)}"
        )
    by_id = {c.id: c for c in checks}
    final = by_id.get(last.check_id)
    if final is None:
        return "the schedule's last check is missing from the store"
    if not final.clean:
        return f"the schedule's last check (check {final.number} at {format_utc(final.ran_at)}) found access remaining"
    later = [c for c in checks if c.ran_at > final.ran_at and (c.regressions or not c.clean)]
    if later:
        bad = later[0]
        what = "a regression" if bad.regressions else "access remaining"
        return f"check {bad.number} at {format_utc(bad.ran_at)} found {what} after the schedule's last clean check"
    return None
