"""Calls that must answer in time, on a few reused daemon threads: metric sources, callbacks.

Python cannot kill a thread, so a call that hangs keeps its thread for as long as it hangs.
Giving every call a fresh thread made a permanently hung source leak one thread per breaker
tick. Here each owner has at most ``workers`` threads: a hung call holds one of them, and once
every one is held a further call is refused at once with ``SourceTimeout`` rather than queued
behind the hung ones (fail closed: the caller halts on a failed source, as on a timeout).

The workers are daemon threads, not a ``ThreadPoolExecutor``'s: the executor joins its workers
at interpreter exit, so a hung source would keep a finished trading process alive.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from tradeguard.errors import SourceTimeout

T = TypeVar("T")

# One unit of work for a worker: the callable and where its outcome goes. None: exit.
_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"] | None


class TimedCalls:
    """Runs calls with a timeout on at most ``workers`` threads, reused from call to call."""

    def __init__(self, workers: int = 4, name: str = "tradeguard-call") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._workers = workers
        self._name = name
        self._lock = threading.Lock()
        self._busy = 0  # calls started and not yet returned, hung ones included
        self._idle: list[queue.SimpleQueue[_Job]] = []  # inboxes of workers waiting for work
        self._closed = False

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        """Return ``fn()``, or raise what it raised; raise ``SourceTimeout`` if it has not
        answered within ``timeout`` seconds (it goes on running on its worker) or if every
        worker is still held by an earlier call (then ``fn`` is not called at all)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._busy >= self._workers:
                plural = "" if self._busy == 1 else "s"
                raise SourceTimeout(
                    f"not called: {self._busy} earlier call{plural} still running, "
                    f"the most allowed at once"
                )
            self._busy += 1
            inbox = self._idle.pop() if self._idle else self._start_worker()
        inbox.put((fn, future))
        try:
            failure = future.exception(timeout)
        except TimeoutError:  # only the wait's own: fn's TimeoutError is its outcome
            raise SourceTimeout(f"no answer within {timeout:g}s") from None
        if failure is not None:
            raise failure
        return future.result()

    def close(self) -> None:
        """Let every worker exit: idle ones now, busy ones when their call returns. A later
        call still runs, on a worker that exits when it is done."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)

    def _start_worker(self) -> queue.SimpleQueue[_Job]:
        """Called under the lock, when no worker is idle and fewer than ``workers`` are busy."""
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(target=self._serve, args=(inbox,), name=self._name, daemon=True).start()
        return inbox

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while (job := inbox.get()) is not None:
            fn, future = job
            result: Any = None
            failure: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # the caller's to handle, not this thread's
                failure = exc
            # Free the slot before the caller learns the outcome, so its next call finds this
            # worker available instead of being refused for a call that has already returned.
            with self._lock:
                self._busy -= 1
                keep = not self._closed
                if keep:
                    self._idle.append(inbox)
            if failure is None:
                future.set_result(result)
            else:
                future.set_exception(failure)
            if not keep:
                return
