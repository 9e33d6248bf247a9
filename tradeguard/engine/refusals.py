"""Refused attempts, bounded: a flood of them writes a few audit records and one alert.

Every refusal used to be one fsynced audit write and one alert, so whoever could reach a
front end could spend the guard's disk and page its people at will. Now a refusal is recorded
(and alerted on) at once only the first time its kind is seen in a window: the same source,
action, kind of scope and kind of reason (the reason with the actor's name, the scope's id,
quoted names and numbers masked). The names a refused caller claims and the ids it asks for are
its own to vary, so they are not part of the kind: they are listed in the summary instead (the
first ``NAMED`` of each). Repeats within ``auth.refusal_window_seconds`` are counted, and the
count is written as one summary record when the window closes: on the next refusal after it,
on the breaker tick and on close. At most ``OPEN`` windows are open at once; past that, every
new kind is counted in one overflow window. Nothing counted is lost; only its repetition is
folded.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Callable

from tradeguard.audit import AuditEntry
from tradeguard.clock import Clock

Key = tuple[str, str, str, str]  # source, action, kind of scope, kind of reason
OVERFLOW: Key = ("*", "*", "*", "*")
OPEN = 10_000  # windows open at once (a flood of distinct kinds folds into OVERFLOW)
NAMED = 20  # actors and scopes named in a summary

_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(?:\.\d+)?")


def kind_of(reason: str, *names: str) -> str:
    """The reason without what varies from one attempt to the next (``names``, quoted names,
    numbers): ``unknown user 'a1'`` and ``unknown user 'a2'`` are one kind of refusal."""
    for name in names:
        if name:
            reason = reason.replace(name, "_")
    return _VARYING.sub("_", reason)


def key_of(source: str, entry: AuditEntry) -> Key:
    """The kind of a refused attempt: where from, what, on which kind of scope, and why."""
    scope_kind, _, scope_id = entry.scope.partition(":")
    return source, entry.action, scope_kind, kind_of(entry.reason, entry.actor, scope_id)


@dataclasses.dataclass(slots=True)
class _Window:
    opened: float
    first: AuditEntry  # written when the window opened
    repeats: int = 0
    actors: dict[str, None] = dataclasses.field(default_factory=dict)  # the first NAMED
    scopes: dict[str, None] = dataclasses.field(default_factory=dict)

    def add(self, entry: AuditEntry) -> None:
        self.repeats += 1
        for seen, name in ((self.actors, entry.actor), (self.scopes, entry.scope)):
            if len(seen) < NAMED:
                seen[name] = None


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
            if key not in self._open and len(self._open) >= OPEN:
                key = OVERFLOW
            window = self._open.get(key)
            if window is None:
                self._open[key] = _Window(now, entry)
                return True, closed
            window.add(entry)
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
        details={
            **first.details,
            "repeated": window.repeats,
            "first_at": window.opened,
            "actors": list(window.actors),
            "scopes": list(window.scopes),
        },
    )
