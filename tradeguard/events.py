"""Callbacks run on the actuator: an asyncio loop in a thread of its own.

The decide path only enqueues; nothing it does waits for a callback. Async callbacks run on the
loop, sync ones in its executor so a slow one cannot stall the others, each with a timeout. A
callback that raises or hangs is logged and forgotten: it never stops or undoes a halt.

Callbacks run on tradeguard's thread, not the caller's event loop: a callback that must touch
the host's loop should hand over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("tradeguard.events")

EVENTS = frozenset(
    {
        "breach",
        "strategy_halt",
        "strategy_resume",
        "portfolio_halt",
        "portfolio_close",
        "emergency_stop",
        "reset",
        "state_change",
        "breaker_tick",
        "flatten_step",
        "flatten_done",
        "escalation",
        "refused",
        "alert_delivery",
        "criticality",
        "incident",
        "reserve_release",
    }
)

T = TypeVar("T")
Callback = Callable[[Any], Awaitable[object] | object]


class Actuator:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._callbacks: dict[str, list[Callback]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self._closing = False

    def register(self, event: str, fn: Callback) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {sorted(EVENTS)}")
        if not callable(fn):
            raise TypeError("callback must be callable")
        self._callbacks.setdefault(event, []).append(fn)

    def emit(self, event: str, payload: object) -> None:
        """Queue the callbacks; never raises, because it is called from the halt path."""
        callbacks = self._callbacks.get(event)
        if not callbacks:
            return
        if self._closing:
            log.warning("%s callbacks not run: the actuator is closing", event)
            return
        try:
            loop = self._ensure_loop()
            for fn in callbacks:
                with self._idle:
                    self._pending += 1
                try:
                    loop.call_soon_threadsafe(self._schedule, event, fn, payload)
                except BaseException:
                    with self._idle:
                        self._pending -= 1
                    raise
        except Exception:
            log.exception("could not queue %s callbacks; the halt stands", event)

    def _schedule(self, event: str, fn: Callback, payload: object) -> None:
        if self._closing:  # too late to start: close() is cancelling what runs
            log.warning("callback %r for %s not run: the actuator is closing", fn, event)
            self._done(None)
            return
        task = asyncio.ensure_future(self._run(event, fn, payload))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: str, fn: Callback, payload: object) -> None:
        try:
            if inspect.iscoroutinefunction(fn):
                await asyncio.wait_for(fn(payload), self._timeout)
            else:
                loop = asyncio.get_running_loop()
                result = await asyncio.wait_for(
                    loop.run_in_executor(None, fn, payload), self._timeout
                )
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, self._timeout)
        except asyncio.CancelledError:
            log.warning("callback %r for %s cancelled: the actuator closed first", fn, event)
            raise
        except TimeoutError:
            log.error("callback %r for %s timed out after %.1fs", fn, event, self._timeout)
        except Exception:
            log.exception("callback %r for %s raised; the guard carries on", fn, event)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._start_lock:
            if self._loop is None:
                ready = threading.Event()
                new_loop = asyncio.new_event_loop()

                def run() -> None:
                    asyncio.set_event_loop(new_loop)
                    new_loop.call_soon(ready.set)
                    new_loop.run_forever()

                self._thread = threading.Thread(target=run, name="tradeguard-actuator", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = new_loop
            return self._loop

    def submit(self, make: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run a coroutine on the actuator loop; ``flush`` waits until its future is done."""
        loop = self._ensure_loop()
        with self._idle:
            self._pending += 1

        async def run() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        future.add_done_callback(self._done)  # after the result is set, not before
        return future

    def _done(self, _future: concurrent.futures.Future[Any] | None) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every emitted callback has finished; False if the timeout ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, grace: float = 5.0) -> None:
        """Stop the loop. Callbacks still queued or running get ``grace`` seconds to finish
        (one may be what acts on a venue); then each is cancelled, logged, and awaited: a
        task the stopped loop never ran would leave its coroutine unawaited."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not self.flush(grace):
            log.warning("callbacks still running %.1fs into close: cancelling them", grace)
        self._closing = True
        try:
            asyncio.run_coroutine_threadsafe(_cancel_others(), loop).result(timeout=5)
        except Exception:  # a callback that ignores cancellation: stop the loop regardless
            log.warning("actuator callbacks still running at close; stopping the loop")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        with self._idle:  # anything queued behind the stop never runs: nothing to wait for
            self._pending = 0
            self._idle.notify_all()
        self._loop = self._thread = None
        self._closing = False


async def _cancel_others() -> None:
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
