"""Memory in returns: the Hurst exponent by detrended fluctuation analysis (Peng et al. 1994)
and critical slowing down (rising lag-1 autocorrelation; Scheffer et al. 2009, Dakos et al.
2012). Both for every asset at once."""

from __future__ import annotations

import numpy as np

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


def dfa_hurst(series: Matrix, min_box: int = 8, scales: int = 10) -> Matrix:
    """DFA-1 exponent of each column (increments, e.g. returns): ~0.5 for white noise, H for
    fractional Gaussian noise. Box sizes are log-spaced from ``min_box`` to a quarter of the
    length; each box is detrended by its own least-squares line."""
    x = series - series.mean(axis=0)
    profile = np.cumsum(x, axis=0)  # (L, N)
    length = len(profile)
    sizes = np.unique(np.geomspace(min_box, length // 4, scales).astype(int))
    fluctuations = []
    for n in sizes:
        boxes = length // n
        y = profile[: boxes * n].T.reshape(x.shape[1], boxes, n)  # (N, boxes, n)
        t = np.arange(n, dtype=float) - (n - 1) / 2  # centred: slope and mean decouple
        slope = (y * t).sum(axis=-1, keepdims=True) / (t**2).sum()
        residual = y - y.mean(axis=-1, keepdims=True) - slope * t
        fluctuations.append(np.sqrt((residual**2).mean(axis=(1, 2))))
    log_f = np.log(np.array(fluctuations))  # (scales, N)
    log_n = np.log(sizes.astype(float))
    centred = log_n - log_n.mean()
    return np.asarray(
        (centred[:, None] * (log_f - log_f.mean(axis=0))).sum(axis=0) / (centred**2).sum()
    )


class HurstDfa(Indicator):
    """Above 0.5: moves persist (trending, herding); below: they revert. Averaged over assets
    on the whole window."""

    name = "hurst"
    family = "memory"
    label = "long-range dependence (trending vs mean-reverting)"

    def compute(self, window: Window) -> float | None:
        r = window.returns
        live = r.std(axis=0) > 0
        if len(r) < 64 or not live.any():
            return None
        return float(dfa_hurst(r[:, live]).mean())


def lag1_autocorrelation(series: Matrix) -> Matrix:
    x = series - series.mean(axis=0)
    return np.asarray((x[1:] * x[:-1]).sum(axis=0) / (x**2).sum(axis=0))


class CriticalSlowingDown(Indicator):
    """Lag-1 autocorrelation of returns over the recent ``stretch``, averaged over assets: a
    system near a tipping point recovers from shocks ever more slowly."""

    name = "critical_slowing_down"
    family = "memory"
    label = "slower recovery from shocks (rising autocorrelation)"

    def __init__(self, stretch: int = 250) -> None:
        self.stretch = stretch

    def compute(self, window: Window) -> float | None:
        r = window.returns[-self.stretch :]
        live = r.std(axis=0) > 0
        if len(r) < 20 or not live.any():
            return None
        return float(lag1_autocorrelation(r[:, live]).mean())
