"""The one clock every component reads, injected so tests control time.

Wall-clock epoch seconds (UTC) are used because halts, cool-downs and approval expiry must mean
the same thing in every process that shares a store; latency is measured separately with
``time.perf_counter`` where it matters.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()


def to_iso(ts: float) -> str:
    """Render epoch seconds as an ISO-8601 UTC timestamp for humans and JSON."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def from_timestamp(value: object) -> float:
    """Accept epoch seconds or an aware datetime at the API edge; naive datetimes are ambiguous."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware (UTC); got a naive datetime")
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"timestamp must be finite, got {value!r}")
        return float(value)
    raise ValueError(f"timestamp must be epoch seconds or an aware datetime, got {value!r}")
