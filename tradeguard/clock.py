"""The one clock every component reads, injected so tests control time.

Wall-clock epoch seconds (UTC) are used because halts, cool-downs and approval expiry must mean
the same thing in every process that shares a store; latency is measured separately with
``time.perf_counter`` where it matters.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime
from typing import Literal, Protocol

from tradeguard.errors import TradeguardError


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class SystemClock:
    """The real clock."""

    # time.time itself, not a method that calls it: read on every pre-trade check
    time = staticmethod(time.time)


# Epoch seconds a real clock can show: 2000-01-01 to 2200-01-01. A value past the upper bound
# is most often milliseconds or nanoseconds handed over as seconds.
EARLIEST, LATEST = 946_684_800.0, 7_258_118_400.0


def to_iso(ts: float) -> str:
    """Render epoch seconds as an ISO-8601 UTC timestamp for humans and JSON."""
    try:
        return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return repr(ts)


def from_timestamp(value: object) -> float:
    """Accept epoch seconds or an aware datetime at the API edge; naive datetimes are ambiguous."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware (UTC); got a naive datetime")
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"timestamp must be finite, got {value!r}")
        if value > LATEST:
            raise ValueError(f"timestamp {value!r} is not epoch seconds (milliseconds?)")
        if value < EARLIEST:
            raise ValueError(f"timestamp {value!r} is before 2000: not a real clock time")
        return float(value)
    raise ValueError(f"timestamp must be epoch seconds or an aware datetime, got {value!r}")


class NaiveTime(ValueError, TradeguardError):
    """An ISO time without a zone: it names a different instant on every machine. Nothing
    was read; each caller words its own refusal."""


def parse_iso(text: str, form: Literal["date", "time", "either"] = "either") -> datetime:
    """Read ISO-8601 text as an aware datetime; raise ValueError for anything else.

    ``form="date"`` takes a date alone (anything ``date.fromisoformat`` reads: ``2026-11-21``,
    ``20261121``, ``2026-W47-6``) as midnight UTC, and nothing with a time. ``form="time"``
    takes a date and time with its zone (``2026-11-21T09:00+01:00``, ``...Z``); a date alone is
    a time without a zone there. ``form="either"`` takes both, told apart by length: ten
    characters are a date alone (``YYYY-MM-DD``). A time without a zone raises NaiveTime (a
    ValueError) rather than being guessed. A time keeps the zone it names; the text is taken as
    given, never stripped.
    """
    if form == "date" or (form == "either" and len(text) == 10):
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise NaiveTime(f"{text!r} has no zone")
    return at


class FakeClock:
    """A clock that moves only when told to: for tests, replays and simulations (public
    through ``tradeguard.testing``)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("a clock only moves forward by a finite amount")
        self._now += seconds

    def set(self, now: float) -> None:
        if now < self._now:
            raise ValueError("a clock never moves backwards")
        self._now = now
