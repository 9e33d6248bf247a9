"""Fans the guard's events out to Server-Sent Events subscribers, each on its own loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tradeguard.guard import Guard
from tradeguard.model import Breach, StateChange

Item = tuple[str, dict[str, Any]]


class EventHub:
    def __init__(self, guard: Guard, backlog: int = 1_000) -> None:
        self._backlog = backlog
        self._lock = threading.Lock()
        self._subscribers: dict[asyncio.Queue[Item], asyncio.AbstractEventLoop] = {}
        guard.register_callback("state_change", self._on_change)
        guard.register_callback("breach", self._on_breach)
        guard.register_callback("flatten_step", self._on_step)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[Item]:
        queue: asyncio.Queue[Item] = asyncio.Queue(self._backlog)
        with self._lock:
            self._subscribers[queue] = loop
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Item]) -> None:
        with self._lock:
            self._subscribers.pop(queue, None)

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            loop.call_soon_threadsafe(_offer, queue, (kind, payload))

    def _on_change(self, change: StateChange) -> None:
        self._publish("state_change", change.to_dict())

    def _on_breach(self, breach: Breach) -> None:
        self._publish("breach", breach.to_dict())

    def _on_step(self, step: dict[str, Any]) -> None:
        self._publish("flatten_step", step)


def _offer(queue: asyncio.Queue[Item], item: Item) -> None:
    """A subscriber that stopped reading loses its oldest events, never blocks the others."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
