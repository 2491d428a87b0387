"""Parse the times responders type: ISO, zone names ("2026-06-18 14:05 PDT"), relative ("-4h").

Everything is returned as an aware UTC datetime; the store never holds local times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import overload

from dateutil import parser as date_parser
from dateutil import tz

from sevtool.errors import InvalidTime

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_RELATIVE = re.compile(r"^\s*([+-])\s*((?:\d+\s*[smhdw]\s*)+)$")
_PART = re.compile(r"(\d+)\s*([smhdw])")


# Abbreviations dateutil cannot resolve alone; North-American zones are the common case on call.
def _zone(name: str) -> tzinfo:
    """dateutil falls back on its bundled zone files, so these names resolve; a None here would silently read
    "14:05 PDT" in the responder's own zone, so it is an error at import instead."""
    zone = tz.gettz(name)
    if zone is None:
        raise LookupError(f"time zone {name!r} is unknown to dateutil")
    return zone


ZONE_ABBREVIATIONS: dict[str, tzinfo] = {
    name: _zone(zone)
    for name, zone in {
        "PST": "America/Los_Angeles",
        "PDT": "America/Los_Angeles",
        "MST": "America/Denver",
        "MDT": "America/Denver",
        "CST": "America/Chicago",
        "CDT": "America/Chicago",
        "EST": "America/New_York",
        "EDT": "America/New_York",
        "BST": "Europe/London",
        "CET": "Europe/Paris",
        "CEST": "Europe/Paris",
        "IST": "Asia/Kolkata",
        "JST": "Asia/Tokyo",
        "UTC": "UTC",
        "GMT": "UTC",
        "Z": "UTC",
    }.items()
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_duration(text: str) -> timedelta:
    """'15m', '4h', '0' -> timedelta. Used by SEV policies' re-check schedules."""
    if str(text).strip() == "0":
        return timedelta(0)
    match = _DURATION.match(str(text))
    if not match:
        raise InvalidTime(f"invalid duration {text!r}", hint="use a number and a unit, e.g. 15m, 4h, 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "unknown"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs and not days:
        parts.append(f"{secs}s")
    return sign + (" ".join(parts) or "0s")


def parse_at(text: str, *, now: datetime | None = None, default_zone: tzinfo | None = None) -> datetime:
    """Parse a responder-typed time into aware UTC.

    Naive times are read in `default_zone` (the responder's zone), not UTC, because that is what a
    person typing "14:05" means.
    """
    now = now or utcnow()
    raw = (text or "").strip()
    if not raw:
        raise InvalidTime("empty time", hint="give an ISO time, '2026-06-18 14:05 PDT' or a relative time like -4h")
    if raw.lower() == "now":
        return now.astimezone(UTC)
    relative = _RELATIVE.match(raw)
    if relative:
        delta = sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in _PART.findall(relative.group(2))), timedelta())
        return (now + delta if relative.group(1) == "+" else now - delta).astimezone(UTC)
    try:
        parsed = date_parser.parse(raw, tzinfos=ZONE_ABBREVIATIONS)
    except (ValueError, OverflowError, TypeError) as exc:
        raise InvalidTime(
            f"cannot read time {text!r}",
            hint="give an ISO time (2026-06-18T14:05Z), a time with zone (2026-06-18 14:05 PDT) or relative (-4h)",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_zone or tz.tzlocal())
    return parsed.astimezone(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Stores (SQLite) hand back naive datetimes; they were written as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def in_zone(value: datetime, zone: tzinfo | None) -> datetime:
    return as_utc(value).astimezone(zone or tz.tzlocal())


def format_local(value: datetime | None, zone: tzinfo | None = None) -> str:
    if value is None:
        return "unknown"
    return in_zone(value, zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def format_utc(value: datetime | None) -> str:
    if value is None:
        return "unknown"
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%SZ")
