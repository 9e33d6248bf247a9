"""The CriticalityMonitor: sample the market once per cycle, compute the 15 indicators on the
window, combine them into one score.

Pure computation with its own state (the sampled window, each indicator's history, the
incremental BOCPD and VPIN state); no thread, no clock, no I/O. The guard runs it on a thread of
its own every ``interval_seconds`` and turns a score past the threshold into a breach.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from threadpoolctl import ThreadpoolController

from tradeguard.clock import to_iso
from tradeguard.config import CriticalityConfig
from tradeguard.criticality.indicators import Indicator, build
from tradeguard.criticality.score import IndicatorReading, Score
from tradeguard.criticality.window import Window

NAN = math.nan
FIELDS = ("close", "high", "low", "volume", "bid", "ask")
_BLAS = ThreadpoolController()  # BLAS kept to one thread: the monitor must not crowd trading


class Bar(NamedTuple):
    """One asset's observation for one cycle; fields its feed does not give are NaN."""

    close: float
    high: float = NAN
    low: float = NAN
    volume: float = NAN
    bid: float = NAN
    ask: float = NAN


@dataclass(frozen=True)
class Reading:
    """One cycle's result: the score (None while warming up) and every indicator."""

    at: float
    score: float | None
    threshold: float
    observations: int
    assets: int
    indicators: list[IndicatorReading] = field(default_factory=list)

    @property
    def crossed(self) -> bool:
        return self.score is not None and self.score > self.threshold

    def top(self, n: int = 3) -> list[IndicatorReading]:
        """The indicators that contributed most, largest first."""
        ranked = [r for r in self.indicators if r.contribution]
        return sorted(ranked, key=lambda r: r.contribution or 0.0, reverse=True)[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": to_iso(self.at),
            "score": self.score,
            "threshold": self.threshold,
            "crossed": self.crossed,
            "observations": self.observations,
            "assets": self.assets,
            "indicators": [r.to_dict() for r in self.indicators],
        }


class Panel:
    """The last ``size`` observations of every asset, in preallocated arrays (a ring): one
    row per cycle, one column per asset ever seen, one plane per field."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.columns: dict[str, int] = {}
        self.data = np.full((len(FIELDS), size, 8), NAN)
        self.rows = 0  # appended so far

    def append(self, bars: Mapping[str, Bar]) -> None:
        for symbol in bars:
            if symbol not in self.columns:
                self._add_column(symbol)
        row = self.rows % self.size
        self.data[:, row, :] = NAN
        for symbol, bar in bars.items():
            self.data[:, row, self.columns[symbol]] = bar
        self.rows += 1

    def _add_column(self, symbol: str) -> None:
        self.columns[symbol] = len(self.columns)
        if len(self.columns) > self.data.shape[2]:
            grown = np.full((len(FIELDS), self.size, 2 * self.data.shape[2]), NAN)
            grown[:, :, : self.data.shape[2]] = self.data
            self.data = grown

    def window(self, short: int, new: int) -> Window | None:
        """The assets with a price on every row held, oldest row first; None with fewer than
        four rows (three returns: the least a lag-1 covariance needs)."""
        held = min(self.rows, self.size)
        if held < 4:
            return None
        start = self.rows % self.size if self.rows > self.size else 0
        order = np.r_[start:held, 0:start] if start else slice(0, held)
        planes = self.data[:, order, : len(self.columns)]
        closes = planes[0]
        complete = np.isfinite(closes).all(axis=0) & (closes > 0).all(axis=0)
        # a price that never moves (a pegged coin) carries no information: left out, so it
        # does not make every covariance singular for the others
        complete &= np.nanmax(closes, axis=0) > np.nanmin(closes, axis=0)
        if not complete.any():
            return None
        planes = planes[:, :, complete]
        symbols = tuple(s for s, c in self.columns.items() if complete[c])
        close, high, low, volume, bid, ask = planes
        return Window(close, high, low, volume, bid, ask, symbols, short, new)


def _merge(first: Bar, then: Bar) -> Bar:
    """Two bars of one symbol within a cycle: the last close and quotes, the range of both,
    the volume of both."""

    def fold(a: float, b: float, pick: Callable[[float, float], float]) -> float:
        return b if math.isnan(a) else a if math.isnan(b) else pick(a, b)

    return Bar(
        then.close,
        fold(first.high, then.high, max),
        fold(first.low, then.low, min),
        fold(first.volume, then.volume, lambda a, b: a + b),
        fold(first.bid, then.bid, lambda _a, b: b),
        fold(first.ask, then.ask, lambda _a, b: b),
    )


class CriticalityMonitor:
    """Thread-safe: ``observe`` may be called from the feed's thread while ``evaluate`` runs
    on the monitor's; the window is copied out under a short lock and computed on outside it."""

    def __init__(self, config: CriticalityConfig) -> None:
        self.config = config
        self.indicators: list[Indicator] = build(config)
        self.score = Score(config)
        self.panel = Panel(config.window)
        self.last_observation: float | None = None
        self.last: Reading | None = None
        self._pending: dict[str, Bar] = {}  # this cycle's bars, merged
        self._carried: dict[str, tuple[Bar, int]] = {}  # last bar, cycles it was carried
        self._evaluated_rows = 0
        self._lock = threading.Lock()  # the panel
        self._evaluating = threading.Lock()  # the indicators' state: one cycle at a time

    def add(self, at: float, bars: Mapping[str, Bar]) -> None:
        """Bars arriving during a cycle (validated by the caller): one call per symbol or one
        for all, as the feed delivers them; ``close_cycle`` makes them one observation."""
        with self._lock:
            for symbol, bar in bars.items():
                seen = self._pending.get(symbol)
                self._pending[symbol] = bar if seen is None else _merge(seen, bar)
            if bars:
                self.last_observation = at

    def close_cycle(self) -> bool:
        """Append this cycle's observation: the bars that came, and for a symbol that sent
        none, its last close carried forward with no volume (for at most ``carry_cycles``
        cycles; then it leaves the cross-section until it has a full window again). Nothing
        is appended when no bar came at all: the market's silence is the guard's
        ``criticality_stale`` rule. Returns whether a row was appended."""
        with self._lock:
            if not self._pending:
                return False
            row = dict(self._pending)
            for symbol, (bar, missed) in list(self._carried.items()):
                if symbol in row:
                    continue
                if missed >= self.config.carry_cycles:
                    del self._carried[symbol]
                    continue
                row[symbol] = Bar(bar.close, bar.close, bar.close, 0.0, bar.bid, bar.ask)
                self._carried[symbol] = (bar, missed + 1)
            for symbol, bar in self._pending.items():
                self._carried[symbol] = (bar, 0)
            self._pending.clear()
            self.panel.append(row)
            return True

    def observe(self, at: float, bars: Mapping[str, Bar]) -> None:
        """One whole observation at once (a replay's row): ``add`` then ``close_cycle``."""
        self.add(at, bars)
        self.close_cycle()

    def evaluate(self, at: float) -> Reading:
        """Compute every indicator on the window and combine them. Before
        ``min_observations`` the indicators still run (to build their history) but there is
        no score. A cycle with no new observation changes nothing: it returns the last
        reading (staleness is the guard's ``criticality_stale`` rule)."""
        threshold = self.config.avalanche_deploy_threshold
        with self._evaluating:
            with self._lock:
                new = self.panel.rows - self._evaluated_rows
                self._evaluated_rows = self.panel.rows
                held = min(self.panel.rows, self.config.window)
                window = self.panel.window(self.config.short_window, new) if new > 0 else None
            if window is None:
                if new == 0 and self.last is not None:
                    return self.last
                return Reading(at, None, threshold, held, 0)
            with _BLAS.limit(limits=1, user_api="blas"):
                readings = [self._read(indicator, window) for indicator in self.indicators]
            ready = held >= self.config.min_observations
            score = self.score.combine(readings) if ready else None
            self.last = Reading(at, score, threshold, held, window.assets, readings)
            return self.last

    def _read(self, indicator: Indicator, window: Window) -> IndicatorReading:
        raw = indicator.compute(window)
        if raw is not None and not math.isfinite(raw):
            raw = None  # degenerate data (no movement at all): unmeasurable, not stress
        stress = None
        if raw is not None:
            stress = indicator.stress(raw, window)
            if stress is None:
                stress = self.score.rank(indicator.name, raw, indicator.high_is_stress)
        return IndicatorReading(
            indicator.name,
            indicator.label,
            raw,
            stress,
            self.score.contribution(stress, indicator.probability),
            self.score.weight(indicator.name),
        )
