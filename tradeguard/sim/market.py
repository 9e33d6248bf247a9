"""A seeded market: correlated log-normal prices with a scheduled crash.

Calm regime: each symbol follows its own noise plus a weak common factor. The crash drives a
strong common factor down for its duration, so returns correlate, volatility jumps and prices
fall together: what the portfolio breakers are there for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Crash:
    start: float  # seconds into the session
    duration: float
    depth: float  # total fall of the common factor, e.g. 0.12 for -12%


class Market:
    def __init__(
        self,
        prices: dict[str, float],
        *,
        seed: int,
        vol_per_step: float = 0.0015,
        crash: Crash | None = None,
    ) -> None:
        self.prices = dict(prices)
        self._rng = np.random.default_rng(seed)
        self._vol = vol_per_step
        self._crash = crash
        self.elapsed = 0.0

    def step(self, dt: float) -> dict[str, float]:
        """Advance ``dt`` seconds and return the new prices."""
        self.elapsed += dt
        n = len(self.prices)
        common, own = self._rng.normal(), self._rng.normal(size=n)
        drift, beta = 0.00005, 0.3
        crash = self._crash
        if crash is not None and crash.start <= self.elapsed < crash.start + crash.duration:
            steps = crash.duration / dt
            drift = math.log(1 - crash.depth) / steps
            beta = 3.0
        for (symbol, price), noise in zip(list(self.prices.items()), own, strict=True):
            ret = drift + self._vol * (beta * common + noise)
            self.prices[symbol] = price * math.exp(ret)
        return dict(self.prices)
