"""Regime breaks: Bayesian online changepoint detection (Adams and MacKay 2007) and Page's
two-sided CUSUM (1954). Both keep their state between cycles and read only the new
observations, for every asset at once."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


class RunLength:
    """BOCPD for N independent series: a posterior over the run length since the last
    changepoint, truncated at ``max_run``, with a constant hazard and a Normal-Gamma prior
    (unknown mean and variance; the predictive is a Student t). The series should be roughly
    standardized: the prior is mean 0, variance about 1."""

    def __init__(self, n: int, hazard: float, max_run: int) -> None:
        self.hazard, self.max_run = hazard, max_run
        self.log_p = np.full((n, 1), 0.0)  # log P(run length = r), r = 0 .. current max
        self.mu = np.zeros((n, 1))
        self.kappa = np.ones((n, 1))
        self.alpha = np.ones((n, 1))
        self.beta = np.ones((n, 1))

    def update(self, x: Matrix) -> None:
        """One observation per series (shape (N,))."""
        xc = x[:, None]
        df = 2 * self.alpha
        scale2 = self.beta * (self.kappa + 1) / (self.alpha * self.kappa)
        pred = (
            gammaln((df + 1) / 2)
            - gammaln(df / 2)
            - 0.5 * np.log(np.pi * df * scale2)
            - (df + 1) / 2 * np.log1p((xc - self.mu) ** 2 / (df * scale2))
        )
        joint = self.log_p + pred
        growth = joint + math.log1p(-self.hazard)
        change = logsumexp(joint, axis=1, keepdims=True) + math.log(self.hazard)
        mu = (self.kappa * self.mu + xc) / (self.kappa + 1)
        beta = self.beta + self.kappa * (xc - self.mu) ** 2 / (2 * (self.kappa + 1))
        prior = np.zeros((len(x), 1))
        self.log_p = np.concatenate([change, growth], axis=1)
        self.mu = np.concatenate([prior, mu], axis=1)
        self.kappa = np.concatenate([prior + 1, self.kappa + 1], axis=1)
        self.alpha = np.concatenate([prior + 1, self.alpha + 0.5], axis=1)
        self.beta = np.concatenate([prior + 1, beta], axis=1)
        if self.log_p.shape[1] > self.max_run + 1:  # fold the tail into the last run length
            tail = logsumexp(self.log_p[:, self.max_run :], axis=1)
            self.log_p = self.log_p[:, : self.max_run + 1]
            self.log_p[:, -1] = tail
            for name in ("mu", "kappa", "alpha", "beta"):
                setattr(self, name, getattr(self, name)[:, : self.max_run + 1])
        self.log_p -= logsumexp(self.log_p, axis=1, keepdims=True)

    def recent_change(self, within: int) -> Matrix:
        """P(the last changepoint was fewer than ``within`` observations ago), per series."""
        return np.asarray(np.exp(self.log_p[:, 1 : within + 1]).sum(axis=1))

    def most_likely(self) -> Matrix:
        return np.asarray(self.log_p.argmax(axis=1))


class _Standardized:
    """Each asset's returns scaled by the mean and deviation of the window it was first seen
    in: the incremental detectors then see a stream with a fixed prior scale."""

    def __init__(self) -> None:
        self.symbols: tuple[str, ...] = ()
        self.centre = self.scale = np.zeros(0)

    def new_rows(self, window: Window) -> Matrix | None:
        """The new standardized rows, or the whole window when the assets changed (the
        detector then starts over)."""
        r = window.returns
        if window.symbols != self.symbols:
            scale = r.std(axis=0)
            if (scale <= 0).any():
                return None
            self.symbols, self.centre, self.scale = window.symbols, r.mean(axis=0), scale
            return (r - self.centre) / self.scale
        return (r[-min(window.new, len(r)) :] - self.centre) / self.scale


class BOCPD(Indicator):
    """Probability, averaged over assets, that a changepoint happened within the last
    ``recent`` observations: a probability, used as it is."""

    name = "bocpd"
    family = "changepoint"
    label = "Bayesian online changepoint probability"
    probability = True

    def __init__(self, hazard: float = 1 / 250, max_run: int = 500, recent: int = 5) -> None:
        self.hazard, self.max_run, self.recent = hazard, max_run, recent
        self._input = _Standardized()
        self._model: RunLength | None = None

    def compute(self, window: Window) -> float | None:
        before = self._input.symbols
        rows = self._input.new_rows(window)
        if rows is None or len(window.returns) < 20:
            return None
        if self._model is None or window.symbols != before:
            self._model = RunLength(window.assets, self.hazard, self.max_run)
        for row in rows:
            self._model.update(row)
        return float(self._model.recent_change(self.recent).mean())

    def stress(self, raw: float, window: Window) -> float | None:
        return raw


def cusum_step(
    high: Matrix, low: Matrix, z: Matrix, k: float, h: float
) -> tuple[Matrix, Matrix, Matrix]:
    """Page's two-sided CUSUM, one observation per series: the new sums and which series
    signalled (their sums restart at zero)."""
    high = np.maximum(0.0, high + z - k)
    low = np.maximum(0.0, low - z - k)
    alarm = (high > h) | (low > h)
    return np.where(alarm, 0.0, high), np.where(alarm, 0.0, low), alarm.astype(float)


class Cusum(Indicator):
    """Share of assets whose CUSUM (on returns standardized by their window) signalled within
    the last ``recent`` observations: a share, used as it is."""

    name = "cusum"
    family = "changepoint"
    label = "cumulative-sum control chart: regime breaks"
    probability = True

    def __init__(self, k: float = 0.5, h: float = 5.0, recent: int = 5) -> None:
        self.k, self.h, self.recent = k, h, recent
        self._symbols: tuple[str, ...] = ()
        self._high = self._low = np.zeros(0)
        self._since = np.zeros(0)  # observations since each asset's last alarm

    def compute(self, window: Window) -> float | None:
        r = window.returns
        if len(r) < 20:
            return None
        first = window.symbols != self._symbols
        if first:  # new assets: start over on the whole window
            n = window.assets
            self._symbols = window.symbols
            self._high, self._low = np.zeros(n), np.zeros(n)
            self._since = np.full(n, np.inf)
            new = len(r) - 1
        else:
            new = min(window.new, len(r) - 1)
        # Standardize by the rows before the new ones; on first sight there are none to speak
        # of (one row has no deviation), so the whole window sets the scale.
        history = r if first else r[: len(r) - new]
        centre, scale = history.mean(axis=0), history.std(axis=0)
        if not (scale > 0).any():
            return None  # nothing moves: nothing to measure
        scale = np.where(scale > 0, scale, np.inf)
        for row in r[len(r) - new :]:
            self._high, self._low, alarm = cusum_step(
                self._high, self._low, (row - centre) / scale, self.k, self.h
            )
            self._since = np.where(alarm > 0, 0.0, self._since + 1)
        return float((self._since < self.recent).mean())

    def stress(self, raw: float, window: Window) -> float | None:
        return raw
