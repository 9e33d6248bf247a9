"""The circuit-breaker daemon thread: every few seconds, call the guard's tick. Nothing else.

It holds no rules and no reasoning of its own (the seed's "no LLM" layer): the tick re-reads
the metric sources and re-applies the same rules the event path uses, which catches what an
event cannot: a feed that went quiet, an agent that stopped, a missed or blocked update.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("tradeguard.breaker")


class CircuitBreaker:
    def __init__(
        self, tick: Callable[[], object], interval: float, name: str = "tradeguard-breaker"
    ) -> None:
        self._name = name
        self._tick = tick
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:  # the backstop must outlive any single bad tick
                log.exception("breaker tick failed; next tick in %.1fs", self._interval)
            if self._stop.wait(self._interval):
                return

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
