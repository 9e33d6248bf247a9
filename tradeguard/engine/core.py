"""What every part of the guard shares, in one value: passed to each part as its first argument."""

from __future__ import annotations

from dataclasses import dataclass

from tradeguard.clock import Clock
from tradeguard.engine.book import Book
from tradeguard.engine.storage import Storage
from tradeguard.engine.transitions import Transitions
from tradeguard.events import Actuator


@dataclass(frozen=True, slots=True)
class Core:
    """The book, the store handle, the only writer of states, the clock and the actuator."""

    book: Book
    storage: Storage
    transitions: Transitions
    clock: Clock
    actuator: Actuator
