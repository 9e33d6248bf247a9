"""Rolling statistics the ledger derives metrics from, each O(1) or O(window) per update.

They live on the event path, so none of them rescans history it can keep a running sum for.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class RollingVolatility:
    """Standard deviation of the last ``window`` returns and of the ``baseline`` returns before.

    The recent window is computed exactly on each call (it is short, and its exactness decides
    whether a quiet market reads as quiet); the long baseline keeps running sums, resynchronized
    with ``math.fsum`` once per baseline length so rounding residue cannot build up. The
    baseline excludes the recent window so a burst does not dampen its own ratio.
    """

    __slots__ = ("_base", "_base_sq", "_base_sum", "_baseline", "_recent", "_since_sync", "_window")

    def __init__(self, window: int, baseline: int) -> None:
        self._window = window
        self._baseline = baseline
        self._recent: deque[float] = deque()
        self._base: deque[float] = deque()
        self._base_sum = self._base_sq = 0.0
        self._since_sync = 0

    def add(self, ret: float) -> None:
        self._recent.append(ret)
        if len(self._recent) <= self._window:
            return
        moved = self._recent.popleft()
        self._base.append(moved)
        self._base_sum += moved
        self._base_sq += moved * moved
        if len(self._base) > self._baseline:
            dropped = self._base.popleft()
            self._base_sum -= dropped
            self._base_sq -= dropped * dropped
        self._since_sync += 1
        if self._since_sync >= self._baseline:
            self._base_sum = math.fsum(self._base)
            self._base_sq = math.fsum(x * x for x in self._base)
            self._since_sync = 0

    def ratio(self, min_baseline: int) -> float | None:
        """Recent volatility over baseline; None until both windows hold enough returns."""
        if len(self._recent) < self._window or len(self._base) < min_baseline:
            return None
        recent = _exact_std(self._recent)
        if recent == 0.0:
            return 0.0
        n = len(self._base)
        var = (self._base_sq - self._base_sum * self._base_sum / n) / (n - 1)
        return recent / math.sqrt(var) if var > 0.0 else math.inf


def _exact_std(values: deque[float]) -> float:
    n = len(values)
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (n - 1))


class CorrelationWindow:
    """Average pairwise correlation of returns across symbols over the last ``window`` snapshots.

    Only symbols present in every snapshot of the window take part: a correlation over
    misaligned samples would be meaningless. Sums and co-moments are kept incrementally (a
    snapshot adds its row and evicts the oldest), so a snapshot costs O(symbols^2) in numpy
    instead of rebuilding the window; they are recomputed from the rows every ``window``
    snapshots so rounding cannot drift.
    """

    def __init__(self, window: int) -> None:
        self._window = window
        self._index: dict[str, int] = {}
        self._rows = np.zeros((window, 0))
        self._present = np.zeros((window, 0), dtype=bool)
        self._sum = np.zeros(0)
        self._cross = np.zeros((0, 0))
        self._missing = np.zeros(0, dtype=np.int64)
        self._moving = np.zeros(0, dtype=np.int64)  # non-zero returns held, per symbol: exact
        self._count = self._next = self._since_rebuild = 0

    def _grow(self, symbol: str) -> None:
        self._index[symbol] = len(self._index)
        self._rows = np.hstack([self._rows, np.zeros((self._window, 1))])
        self._present = np.hstack([self._present, np.zeros((self._window, 1), dtype=bool)])
        self._sum = np.append(self._sum, 0.0)
        n = len(self._index)
        cross = np.zeros((n, n))
        cross[: n - 1, : n - 1] = self._cross
        self._cross = cross
        self._missing = np.append(self._missing, self._count)  # absent from every held row
        self._moving = np.append(self._moving, 0)

    def add(self, returns: dict[str, float]) -> None:
        if not returns:
            return
        for symbol in returns:
            if symbol not in self._index:
                self._grow(symbol)
        row = np.zeros(len(self._index))
        present = np.zeros(len(self._index), dtype=bool)
        for symbol, ret in returns.items():
            col = self._index[symbol]
            row[col] = ret
            present[col] = True
        slot = self._next
        if self._count == self._window:
            old = self._rows[slot]
            self._sum -= old
            self._cross -= np.outer(old, old)
            self._missing -= ~self._present[slot]
            self._moving -= old != 0.0
        else:
            self._count += 1
        self._rows[slot] = row
        self._present[slot] = present
        self._sum += row
        self._cross += np.outer(row, row)
        self._missing += ~present
        self._moving += row != 0.0
        self._next = (slot + 1) % self._window
        self._since_rebuild += 1
        if self._since_rebuild >= self._window:
            held = self._rows[: self._count]
            self._sum = held.sum(axis=0)
            self._cross = held.T @ held
            self._since_rebuild = 0

    def value(self, min_observations: int) -> float | None:
        n = self._count
        if n < min_observations:
            return None
        total, cross, moving = self._sum, self._cross, self._moving
        cols = self._missing == 0
        if not cols.all():  # the common case (every symbol in every snapshot) skips the copy
            if cols.sum() < 2:
                return None
            total, cross, moving = total[cols], cross[np.ix_(cols, cols)], moving[cols]
        cov = (cross - np.outer(total, total) / n) / (n - 1)
        var = np.diag(cov)
        # A series that did not move has no correlation. Counting its moves is exact; its
        # variance from running sums can keep rounding residue until the next rebuild.
        keep = (moving > 0) & (var > _FLAT)
        k = int(keep.sum())
        if k < 2:
            return None
        if k < len(var):
            cov, var = cov[np.ix_(keep, keep)], var[keep]
        corr = cov / np.sqrt(np.outer(var, var))
        return float((corr.sum() - k) / (k * (k - 1)))


# Variance below this is a flat series, not a price: 1e-20 is a return stdev of 1e-10.
_FLAT = 1e-20


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

    def samples(self) -> list[tuple[float, float]]:
        """The samples that may still be the maximum, oldest first: adding them again to an
        empty window rebuilds this one."""
        return list(self._items)
