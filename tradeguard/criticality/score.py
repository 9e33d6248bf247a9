"""From 15 raw values to one score in [0, 1].

Each indicator's stress level ``u`` in [0, 1] is its own probability where it has one (BOCPD,
CUSUM), the chi-square CDF for turbulence, and otherwise the percentile of its raw value in its
own trailing history (the direction that means stress counting as high). Only the part of ``u``
above ``calm_quantile`` counts: ``contribution = (u - calm) / (1 - calm)``, clipped to [0, 1],
so an indicator wandering in its normal range adds nothing and one at the top of its history
adds fully. The score is the weighted mean of the contributions of the indicators that could be
measured this cycle.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeguard.config import CriticalityConfig

MIN_HISTORY = 20  # a percentile of fewer past values means little


@dataclass(frozen=True, slots=True)
class IndicatorReading:
    name: str
    label: str
    raw: float | None  # None: not measurable this cycle (no volume, too few assets, ...)
    stress: float | None  # u in [0, 1]; None while its history is too short to rank it
    contribution: float | None
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "raw": self.raw,
            "stress": self.stress,
            "contribution": self.contribution,
            "weight": self.weight,
        }


class Score:
    def __init__(self, config: CriticalityConfig) -> None:
        self.calm = config.calm_quantile
        self.weights = config.weights
        self._history: dict[str, deque[float]] = {}
        self._size = config.percentile_window

    def weight(self, name: str) -> float:
        return self.weights.get(name, 1.0)

    def rank(self, name: str, raw: float, high_is_stress: bool) -> float | None:
        """The share of the indicator's past values that this one is at least as stressed
        as; the value then joins the history."""
        history = self._history.setdefault(name, deque(maxlen=self._size))
        rank = None
        if len(history) >= MIN_HISTORY:
            past = np.fromiter(history, float, len(history))
            below = (past <= raw) if high_is_stress else (past >= raw)
            rank = float(below.mean())
        history.append(raw)
        return rank

    def contribution(self, stress: float | None, probability: bool = False) -> float | None:
        """A probability of stress (a changepoint, an alarm) counts as it is; a rank or CDF
        only for the part above ``calm``."""
        if stress is None:
            return None
        if probability:
            return min(1.0, max(0.0, stress))
        return min(1.0, max(0.0, (stress - self.calm) / (1.0 - self.calm)))

    def combine(self, readings: list[IndicatorReading]) -> float | None:
        weighted = [(r.contribution, r.weight) for r in readings if r.contribution is not None]
        total = sum(w for _c, w in weighted)
        if not weighted or total <= 0:
            return None
        score = sum(c * w for c, w in weighted) / total
        return score if math.isfinite(score) else None
