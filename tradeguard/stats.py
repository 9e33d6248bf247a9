"""Rolling statistics the ledger derives metrics from, each O(1) or O(window) per update.

They live on the event path, so none of them rescans history it can keep a running sum for.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class RollingVolatility:
    """Standard deviation of the last ``window`` returns and of the ``baseline`` returns before.

    Running sums make each update O(1); the baseline excludes the recent window so a burst does
    not dampen its own ratio.
    """

    __slots__ = ("_base", "_base_sq", "_base_sum", "_baseline", "_recent", "_sq", "_sum", "_window")

    def __init__(self, window: int, baseline: int) -> None:
        self._window = window
        self._baseline = baseline
        self._recent: deque[float] = deque()
        self._base: deque[float] = deque()
        self._sum = self._sq = self._base_sum = self._base_sq = 0.0

    def add(self, ret: float) -> None:
        self._recent.append(ret)
        self._sum += ret
        self._sq += ret * ret
        if len(self._recent) > self._window:
            moved = self._recent.popleft()
            self._sum -= moved
            self._sq -= moved * moved
            self._base.append(moved)
            self._base_sum += moved
            self._base_sq += moved * moved
            if len(self._base) > self._baseline:
                dropped = self._base.popleft()
                self._base_sum -= dropped
                self._base_sq -= dropped * dropped

    @staticmethod
    def _std(n: int, total: float, squares: float) -> float:
        var = (squares - total * total / n) / (n - 1)
        return math.sqrt(var) if var > 0 else 0.0

    def ratio(self, min_baseline: int) -> float | None:
        """Recent volatility over baseline; None until both windows hold enough returns."""
        if len(self._recent) < self._window or len(self._base) < min_baseline:
            return None
        recent = self._std(len(self._recent), self._sum, self._sq)
        base = self._std(len(self._base), self._base_sum, self._base_sq)
        if base == 0.0:
            return math.inf if recent > 0.0 else 0.0
        return recent / base


class CorrelationWindow:
    """Average pairwise correlation of returns across symbols over the last ``window`` snapshots.

    Only symbols present in every snapshot of the window take part: a correlation over
    misaligned samples would be meaningless.
    """

    def __init__(self, window: int) -> None:
        self._snapshots: deque[dict[str, float]] = deque(maxlen=window)

    def add(self, returns: dict[str, float]) -> None:
        if returns:
            self._snapshots.append(returns)

    def value(self, min_observations: int) -> float | None:
        if len(self._snapshots) < min_observations:
            return None
        common = set(self._snapshots[0])
        for snap in self._snapshots:
            common.intersection_update(snap)
        if len(common) < 2:
            return None
        symbols = sorted(common)
        matrix = np.array([[snap[s] for s in symbols] for snap in self._snapshots])
        matrix = matrix[:, matrix.std(axis=0) > 0.0]  # a flat series has no correlation
        n = matrix.shape[1]
        if n < 2:
            return None
        corr = np.corrcoef(matrix, rowvar=False)
        return float((corr.sum() - n) / (n * (n - 1)))


class WindowMax:
    """Highest value seen within the last ``seconds``, by a monotonic deque (amortized O(1))."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._items: deque[tuple[float, float]] = deque()

    def add(self, t: float, value: float) -> float:
        """Record a sample and return the window's maximum including it."""
        items = self._items
        while items and items[-1][1] <= value:
            items.pop()
        items.append((t, value))
        horizon = t - self._seconds
        while items[0][0] < horizon:
            items.popleft()
        return items[0][1]
