"""Append-only timeline with a hash chain: each event carries the hash of the one before it.

Editing, deleting or reordering an event breaks the chain at that event, and `verify_chain` names it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from sevtool.core.timeparse import as_utc

GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    seq: int
    incident_id: int | None
    at: datetime
    kind: str
    actor: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)  # open-ended: each event kind carries its own JSON
    prev_hash: str = GENESIS
    hash: str = ""


# One encoder for every event: json.dumps with options builds a new JSONEncoder per call (10,000 per audit).
_encode_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def canonical(event: Event) -> bytes:
    body = {
        "seq": event.seq,
        "incident_id": event.incident_id,
        "at": as_utc(event.at).isoformat(timespec="microseconds"),
        "kind": event.kind,
        "actor": event.actor,
        "summary": event.summary,
        "data": event.data,
        "prev_hash": event.prev_hash,
    }
    return _encode_canonical(body).encode()


def event_hash(event: Event) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


class ChainReportDict(TypedDict):
    ok: bool
    events: int
    head: str
    broken_seq: int | None
    problem: str


@dataclass
class ChainReport:
    ok: bool
    events: int
    head: str
    broken_seq: int | None = None
    problem: str = ""

    def as_dict(self) -> ChainReportDict:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
        }


def verify_chain(events: list[Event], recorded_head: tuple[int, str] | None = None) -> ChainReport:
    """Walk events in seq order; the first event whose link or content does not match is named.

    `recorded_head` is the (seq, hash) the store keeps beside the events, so deleting the newest
    events is caught too.
    """
    prev, expected_seq = GENESIS, 1
    for event in events:
        if event.seq != expected_seq:
            problem = (
                f"event {expected_seq} is missing (deleted)"
                if event.seq > expected_seq
                else f"event {event.seq} is out of order"
            )
            return ChainReport(
                False, len(events), prev, event.seq if event.seq < expected_seq else expected_seq, problem
            )
        if event.prev_hash != prev:
            return ChainReport(
                False,
                len(events),
                prev,
                event.seq,
                f"event {event.seq} does not link to event {event.seq - 1} (reordered, or an earlier event was replaced)",
            )
        if event_hash(event) != event.hash:
            return ChainReport(
                False, len(events), prev, event.seq, f"event {event.seq} ({event.kind}) was edited after it was written"
            )
        prev, expected_seq = event.hash, expected_seq + 1
    if recorded_head is not None:
        head_seq, head_hash = recorded_head
        if head_seq != expected_seq - 1 or head_hash != prev:
            return ChainReport(
                False,
                len(events),
                prev,
                expected_seq,
                f"the chain head says {head_seq} events but {expected_seq - 1} remain (newest events deleted)",
            )
    return ChainReport(True, len(events), prev)
