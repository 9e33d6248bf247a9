"""Liquidity: VPIN (Easley, Lopez de Prado, O'Hara 2012) with bulk-volume classification,
a depth score, spread widening (quoted, or Corwin-Schultz 2012 from highs and lows) and the
Amihud (2002) illiquidity ratio. Each uses the assets whose feed gives what it needs."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from scipy.special import ndtr

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


class VolumeBuckets:
    """VPIN's state for one asset, kept incrementally: bulk-classified volume poured into
    equal-volume buckets; the order imbalance of each full bucket is remembered."""

    def __init__(self, size: float, buckets: int) -> None:
        self.size = size
        self.buy = self.sell = 0.0
        self.imbalances: deque[float] = deque(maxlen=buckets)

    def add(self, volume: float, buy_share: float) -> None:
        """Fill the open bucket, then whole buckets at once (a bar of a hundred buckets'
        volume costs no more than one), then start the next with what is left."""
        room = self.size - self.buy - self.sell
        part = min(room, volume)
        self.buy += part * buy_share
        self.sell += part * (1 - buy_share)
        volume -= part
        if self.buy + self.sell < self.size * (1 - 1e-12):
            return
        self.imbalances.append(abs(self.buy - self.sell) / self.size)
        self.buy = self.sell = 0.0
        whole = min(int(volume // self.size), self.imbalances.maxlen or 0)
        self.imbalances.extend([abs(2 * buy_share - 1)] * whole)
        volume -= int(volume // self.size) * self.size
        if volume > self.size * 1e-12:
            self.buy, self.sell = volume * buy_share, volume * (1 - buy_share)

    def vpin(self) -> float | None:
        if not self.imbalances:
            return None
        return sum(self.imbalances) / len(self.imbalances)


def buy_share(price_change: float, sigma: float) -> float:
    """Bulk-volume classification: the share of a bar's volume that was buying."""
    return float(ndtr(price_change / sigma))


class Vpin(Indicator):
    """Order-flow toxicity: the volume-weighted order imbalance over the last ``buckets``
    volume buckets, each sized to the asset's mean volume per observation when first seen.
    Only the new observations of each cycle are classified (incremental state)."""

    name = "vpin"
    family = "liquidity"
    label = "probability of informed trading (order-flow toxicity)"

    def __init__(self, buckets: int = 50) -> None:
        self.buckets = buckets
        self._state: dict[str, VolumeBuckets] = {}

    def compute(self, window: Window) -> float | None:
        r = window.returns
        if len(r) < 20:
            return None
        values = []
        for j, symbol in enumerate(window.symbols):
            volume = window.volume[1:, j]
            known = np.isfinite(volume)
            sigma = float(r[:, j].std())
            if known.sum() < 20 or sigma <= 0:
                continue
            state = self._state.get(symbol)
            new = min(window.new, len(r))
            if state is None:  # first sight: size the buckets, pour the whole window in
                size = float(volume[known].mean())
                if not size > 0:
                    continue  # no volume yet: sized once some has traded
                state = VolumeBuckets(size, self.buckets)
                self._state[symbol] = state
                new = len(r)
            for k in range(len(r) - new, len(r)):
                if known[k] and volume[k] > 0:
                    state.add(float(volume[k]), buy_share(float(r[k, j]), sigma))
            value = state.vpin()
            if value is not None:
                values.append(value)
        return float(np.mean(values)) if values else None


def corwin_schultz(high: Matrix, low: Matrix) -> Matrix:
    """Two-day high-low spread estimates (rows t-1, t), negatives set to zero, per column."""
    beta = np.log(high[1:] / low[1:]) ** 2 + np.log(high[:-1] / low[:-1]) ** 2
    gamma = np.log(np.maximum(high[1:], high[:-1]) / np.minimum(low[1:], low[:-1])) ** 2
    k = 3 - 2 * math.sqrt(2)
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    spread = 2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))
    return np.asarray(np.maximum(spread, 0.0))


class SpreadWidening(Indicator):
    """Relative bid-ask spread over the recent stretch: quoted where quotes are given, else
    estimated from daily highs and lows (Corwin-Schultz). Averaged over assets."""

    name = "spread_widening"
    family = "liquidity"
    label = "bid-ask deterioration"

    def compute(self, window: Window) -> float | None:
        rows = window.short
        values = []
        quoted = window.complete(window.bid, rows) & window.complete(window.ask, rows)
        if quoted.any():
            bid, ask = window.bid[-rows:, quoted], window.ask[-rows:, quoted]
            values.extend(((ask - bid) / ((ask + bid) / 2)).mean(axis=0))
        ranged = ~quoted & window.complete(window.high, rows) & window.complete(window.low, rows)
        if ranged.any() and rows >= 2:
            high, low = window.high[-rows:, ranged], window.low[-rows:, ranged]
            values.extend(corwin_schultz(high, low).mean(axis=0))
        return float(np.mean(values)) if values else None


class Amihud(Indicator):
    """Price impact per unit of money traded, |r| / (price x volume), over the recent
    stretch; the log of it is averaged over assets so no single asset's scale dominates."""

    name = "amihud"
    family = "liquidity"
    label = "price impact per unit of volume"

    def compute(self, window: Window) -> float | None:
        rows = window.short
        has = window.complete(window.volume, rows)
        if not has.any() or len(window.returns) < rows:
            return None
        dollar = window.close[-rows:, has] * window.volume[-rows:, has]
        r = np.abs(window.returns[-rows:, has])
        with np.errstate(divide="ignore"):
            ratio = np.where(dollar > 0, r / dollar, np.nan)
        mean = np.nanmean(ratio, axis=0)
        mean = mean[np.isfinite(mean) & (mean > 0)]
        return float(np.log(mean).mean()) if len(mean) else None


class LiquidityScore(Indicator):
    """Depth: money traded per unit of price range, log, averaged over assets (the range is
    high-low over the close where given, else the absolute return). Low is stress: little
    volume moves the price a lot."""

    name = "liquidity"
    family = "liquidity"
    label = "available depth (low: thin markets)"
    high_is_stress = False

    def compute(self, window: Window) -> float | None:
        rows = window.short
        has = window.complete(window.volume, rows)
        if not has.any() or len(window.returns) < rows:
            return None
        close = window.close[-rows:, has]
        dollar = (close * window.volume[-rows:, has]).mean(axis=0)
        ranged = window.complete(window.high, rows)[has] & window.complete(window.low, rows)[has]
        move = np.abs(window.returns[-rows:, has]).mean(axis=0)
        span = ((window.high[-rows:, has] - window.low[-rows:, has]) / close).mean(axis=0)
        move = np.where(ranged, span, move)
        live = (dollar > 0) & (move > 0)
        if not live.any():
            return None
        return float(np.log(dollar[live] / move[live]).mean())
