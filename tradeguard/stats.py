"""Rolling statistics and indexes the ledger derives metrics from, each O(1), O(window),
O(log n) or O(what the update names) per update: never O(every symbol) or O(every strategy).

They live on the event path, so none of them rescans history it can keep a running sum for.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

K = TypeVar("K")


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
    misaligned samples would be meaningless. That common set is a subset of the newest
    snapshot, so it is found in O(snapshot) from per-symbol presence counts.

    A snapshot costs O(its symbols^2), never O(every symbol^2): the per-symbol sums, squares,
    presence and move counts are Python lists touched only at the snapshot's symbols, and the
    cross-products are a dense matrix updated only in the snapshot's block (so a one-symbol tick
    touches no matrix at all, and a book ticked one symbol at a time never allocates one).
    The sums, and the cross-products of every pair a held snapshot shares, are recomputed from
    the held snapshots every ``window`` snapshots so rounding cannot drift (the value reads only
    pairs that every held snapshot shares).
    """

    def __init__(self, window: int) -> None:
        self._window = window
        self._index: dict[str, int] = {}
        self._rows: list[tuple[list[int], list[float]]] = []  # a ring of the held snapshots
        self._sum: list[float] = []
        self._sq: list[float] = []
        self._present: list[int] = []  # held snapshots holding the symbol
        self._moving: list[int] = []  # non-zero returns held, per symbol: exact
        self._cross = np.zeros((0, 0))  # grown only by snapshots of two symbols or more
        self._common: list[int] = []  # the symbols in every held snapshot
        self._next = self._since_rebuild = 0

    def add(self, returns: dict[str, float]) -> None:
        if not returns:
            return
        cols: list[int] = []
        for symbol in returns:
            col = self._index.get(symbol)
            if col is None:
                col = self._index[symbol] = len(self._index)
                for column in (self._sum, self._sq, self._present, self._moving):
                    column.append(0)
            cols.append(col)
        row = (cols, list(returns.values()))
        if len(self._rows) == self._window:
            self._apply(self._rows[self._next], -1.0)
            self._rows[self._next] = row
            self._next = (self._next + 1) % self._window
        else:
            self._rows.append(row)
        self._apply(row, 1.0)
        count = len(self._rows)
        self._common = [c for c in cols if self._present[c] == count]
        self._since_rebuild += 1
        if self._since_rebuild >= self._window:
            self._rebuild()

    def _apply(self, row: tuple[list[int], list[float]], sign: float) -> None:
        """Add (sign 1) or evict (sign -1) one snapshot's contribution."""
        cols, vals = row
        step = int(sign)
        present, total, squares, moving = self._present, self._sum, self._sq, self._moving
        for col, val in zip(cols, vals, strict=True):
            held = present[col] = present[col] + step
            if held == 0:  # exactly nothing held: no rounding residue left
                total[col] = squares[col] = 0.0
                moving[col] = 0
                continue
            total[col] += sign * val
            squares[col] += sign * val * val
            moving[col] += step * (val != 0.0)
        if len(cols) > 1:
            block, order = self._cells(cols)
            ordered = np.asarray(vals)[order]
            self._cross[block] += sign * np.outer(ordered, ordered)

    def _cells(self, cols: list[int]) -> tuple[Any, NDArray[np.intp]]:
        """The block of these symbols in the cross matrix (grown to hold them), and the order
        that sorts them: plain slices when they are consecutive (a full snapshot of a fixed
        universe), which a large block needs, as fancy indexing costs 10x more."""
        top = max(cols) + 1
        if top > len(self._cross):
            size = max(top, 2 * len(self._cross))
            grown = np.zeros((size, size))
            grown[: len(self._cross), : len(self._cross)] = self._cross
            self._cross = grown
        order = np.argsort(cols)
        idx = np.asarray(cols)[order]
        if idx[-1] - idx[0] == len(idx) - 1:  # distinct and sorted: consecutive
            span = slice(int(idx[0]), int(idx[-1]) + 1)
            return (span, span), order
        return np.ix_(idx, idx), order

    def _rebuild(self) -> None:
        """Recompute every sum from the held snapshots, exactly."""
        for cols, _vals in self._rows:
            for col in cols:
                self._sum[col] = self._sq[col] = 0.0
        for cols, vals in self._rows:
            for col, val in zip(cols, vals, strict=True):
                self._sum[col] += val
                self._sq[col] += val * val
        wide = [row for row in self._rows if len(row[0]) > 1]
        if wide:
            union = sorted({col for cols, _vals in wide for col in cols})
            at = {col: i for i, col in enumerate(union)}
            held = np.zeros((len(wide), len(union)))
            for r, (cols, vals) in enumerate(wide):
                held[r, [at[c] for c in cols]] = vals
            block, _order = self._cells(union)  # sorted already
            self._cross[block] = held.T @ held
        self._since_rebuild = 0

    def value(self, min_observations: int) -> float | None:
        n = len(self._rows)
        if n < min_observations or len(self._common) < 2:
            return None
        cols = sorted(self._common)
        total = np.array([self._sum[c] for c in cols])
        squares = np.array([self._sq[c] for c in cols])
        moving = np.array([self._moving[c] for c in cols])
        block, _order = self._cells(cols)
        cov = (self._cross[block] - np.outer(total, total) / n) / (n - 1)
        var = (squares - total * total / n) / (n - 1)
        np.fill_diagonal(cov, var)
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


class Extreme(Generic[K]):
    """The key with the lowest (or highest) value of a dict whose values change in place, in
    O(log n) amortized per change instead of a scan per read: a heap with lazy deletion.

    The dict stays the truth: ``noted`` is told each key written, and an entry whose value the
    dict no longer holds is dropped when it reaches the top. The heap is rebuilt from the dict
    when stale entries outnumber live ones (O(n) once per n changes), and when it is handed
    another dict than the one it follows (a view whose dict was replaced whole).
    """

    __slots__ = ("_heap", "_of", "_sign")

    def __init__(self, *, highest: bool = False) -> None:
        self._sign = -1.0 if highest else 1.0
        self._heap: list[tuple[float, K]] = []
        self._of: Mapping[K, float] | None = None

    def noted(self, values: Mapping[K, float], key: K) -> None:
        """``values[key]`` was just written."""
        if values is not self._of or len(self._heap) > 2 * len(values) + 64:
            self._rebuild(values)
        else:
            heapq.heappush(self._heap, (self._sign * values[key], key))

    def top(self, values: Mapping[K, float]) -> tuple[K, float] | None:
        """The key with the extreme value and that value; None when ``values`` is empty."""
        if values is not self._of:
            self._rebuild(values)
        heap = self._heap
        while heap:
            signed, key = heap[0]
            value = values.get(key)
            if value is not None and self._sign * value == signed:
                return key, value
            heapq.heappop(heap)
        return None

    def _rebuild(self, values: Mapping[K, float]) -> None:
        self._of = values
        self._heap = [(self._sign * v, k) for k, v in values.items()]
        heapq.heapify(self._heap)


class Magnitudes(Generic[K]):
    """Keys grouped by the magnitude of a positive value at a relative ``resolution``: which
    keys may hold a value within ``[lo, hi]``, in O(groups spanned + keys in them), while a
    value that moves costs O(1) (its group changes only when it moves by ``resolution``).

    ``within`` may name keys just outside the range (in a boundary group), never miss one
    inside it: the caller judges each key it names. Non-finite values are not indexed (they
    lie within no finite range). Groups are insertion-ordered dicts so what ``within`` names
    comes out in the same order on every run.
    """

    __slots__ = ("_group", "_keys", "_scale")

    def __init__(self, resolution: float) -> None:
        self._scale = 1.0 / math.log1p(resolution)
        self._group: dict[K, int] = {}
        self._keys: dict[int, dict[K, None]] = {}

    def set(self, key: K, value: float | None) -> None:
        """Index ``key`` under ``value``; None (or a non-finite or non-positive value) drops it."""
        group = self._of(value)
        old = self._group.get(key)
        if group == old:
            return
        if old is not None:
            keys = self._keys[old]
            del keys[key]
            if not keys:
                del self._keys[old]
            del self._group[key]
        if group is not None:
            self._group[key] = group
            self._keys.setdefault(group, {})[key] = None

    def within(self, lo: float, hi: float) -> list[K]:
        """Every key whose value may lie within ``[lo, hi]`` (an empty range names none)."""
        if not lo <= hi or hi <= 0.0 or lo == math.inf:
            return []
        first = self._of(lo) if lo > 0.0 else None
        last = self._of(hi)
        groups: Iterable[int]
        if first is None or last is None or last - first > len(self._keys):
            groups = sorted(  # spanning more groups than exist: walk the ones that do
                g
                for g in self._keys
                if (first is None or g >= first) and (last is None or g <= last)
            )
        else:
            groups = range(first, last + 1)
        return [key for g in groups for key in self._keys.get(g, ())]

    def _of(self, value: float | None) -> int | None:
        if value is None or not 0.0 < value < math.inf:
            return None
        return math.floor(math.log(value) * self._scale)
