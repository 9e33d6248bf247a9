"""A daemon thread that calls one function every few seconds, and nothing else.

The guard runs three of them: the breaker tick (re-read the metric sources, re-apply every
rule: what catches a feed that went quiet or an agent that stopped), the store watcher, and the
criticality cycle. It holds no rules and no reasoning of its own; a tick that raises is logged
and the next one runs on time, because a backstop that one bad tick can kill is no backstop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("tradeguard.periodic")


class Periodic:
    """Calls ``tick`` at once (or, ``wait_first``, one interval from now), then every
    ``interval`` seconds, on the daemon thread ``name`` (a daemon never keeps a finished
    trading process alive)."""

    def __init__(
        self,
        tick: Callable[[], object],
        interval: float,
        name: str = "tradeguard-periodic",
        *,
        wait_first: bool = False,
    ) -> None:
        self._name = name
        self._tick = tick
        self._interval = interval
        self._wait_first = wait_first
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
        if self._wait_first and self._stop.wait(self._interval):
            return
        while True:
            try:
                self._tick()
            except Exception:  # the backstop must outlive any single bad tick
                log.exception("%s: tick failed; next tick in %.1fs", self._name, self._interval)
            if self._stop.wait(self._interval):
                return

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
