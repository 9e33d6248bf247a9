"""Refused attempts, bounded: a flood of them writes a few audit records and one alert.

Every refusal used to be one fsynced audit write and one alert, so whoever could reach a
front end could spend the guard's disk and page its people at will. Now a refusal is recorded
(and alerted on) at once only the first time its kind is seen in a window: the same source,
actor, action, scope and kind of reason (the reason with its quoted names and numbers masked).
Repeats within ``auth.refusal_window_seconds`` are counted, and the count is written as one
summary record when the window closes: on the next refusal after it, on the breaker tick and on
close. Nothing counted is lost; only its repetition is folded.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Callable

from tradeguard.audit import AuditEntry
from tradeguard.clock import Clock

Key = tuple[str, str, str, str, str]  # source, actor, action, scope, kind of reason

_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(?:\.\d+)?")


def kind_of(reason: str) -> str:
    """The reason without what varies from one attempt to the next (quoted names, numbers):
    ``unknown user 'a1'`` and ``unknown user 'a2'`` are one kind of refusal."""
    return _VARYING.sub("_", reason)


@dataclasses.dataclass(slots=True)
class _Window:
    opened: float
    first: AuditEntry  # written when the window opened
    repeats: int = 0


class RefusalWindows:
    """Which refusals to write now, and the summaries of the windows that have closed.
    Thread-safe; the clock is injected, the window's length read from the config each time."""

    def __init__(self, clock: Clock, seconds: Callable[[], float]) -> None:
        self._clock = clock
        self._seconds = seconds
        self._lock = threading.Lock()
        self._open: dict[Key, _Window] = {}  # in the order they opened, so in closing order

    def note(self, key: Key, entry: AuditEntry) -> tuple[bool, list[AuditEntry]]:
        """Whether ``entry`` is the first of its kind in a window (write and alert it now),
        and the summaries of the windows closed by now (write them too)."""
        with self._lock:
            now = self._clock.time()
            closed = self._close(now)
            window = self._open.get(key)
            if window is None:
                self._open[key] = _Window(now, entry)
                return True, closed
            window.repeats += 1
            return False, closed

    def due(self, *, everything: bool = False) -> list[AuditEntry]:
        """The summaries of the windows closed by now; ``everything``: of every window (close)."""
        with self._lock:
            return self._close(math.inf if everything else self._clock.time())

    def _close(self, now: float) -> list[AuditEntry]:
        seconds = self._seconds()
        summaries = []
        while self._open:
            key, window = next(iter(self._open.items()))
            if now < window.opened + seconds:
                break
            del self._open[key]
            if window.repeats:
                summaries.append(_summary(window, seconds, self._clock.time()))
        return summaries


def _summary(window: _Window, seconds: float, now: float) -> AuditEntry:
    first = window.first
    return dataclasses.replace(
        first,
        ts=now,
        reason=f"{window.repeats} more like this within {seconds:g} s: {first.reason}",
        details={**first.details, "repeated": window.repeats, "first_at": window.opened},
    )
