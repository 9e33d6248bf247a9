"""Two-scale realized volatility (Zhang, Mykland, Ait-Sahalia 2005): realized variance
averaged over ``scale`` offset subgrids, less the bias the finest grid measures. Plain
realized variance on noisy prices grows with the number of observations (2 n omega^2); TSRV
does not, so it tracks the true volatility, not the microstructure noise."""

from __future__ import annotations

import numpy as np

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


def tsrv(log_prices: Matrix, scale: int) -> Matrix:
    """Integrated variance over the stretch, per column, bias-corrected (small-sample
    adjusted by 1 / (1 - nbar / n))."""
    n = len(log_prices) - 1
    rv_all = (np.diff(log_prices, axis=0) ** 2).sum(axis=0)
    slow = log_prices[scale:] - log_prices[:-scale]  # every K-step return, all K offsets
    rv_avg = (slow**2).sum(axis=0) / scale
    nbar = (n - scale + 1) / scale
    return np.asarray((rv_avg - nbar / n * rv_all) / (1 - nbar / n))


class TwoScaleVolatility(Indicator):
    """Noise-robust volatility of the recent ``stretch``, per observation, averaged over
    assets (a variance: its percentile is what counts)."""

    name = "two_scale_volatility"
    family = "volatility"
    label = "true volatility, net of microstructure noise"

    def __init__(self, scale: int = 5, stretch: int = 250) -> None:
        self.scale, self.stretch = scale, stretch

    def compute(self, window: Window) -> float | None:
        p = window.log_prices[-self.stretch - 1 :]
        moving = np.diff(p, axis=0).std(axis=0) > 0
        if len(p) < 4 * self.scale or not moving.any():
            return None
        per_obs = np.maximum(tsrv(p[:, moving], self.scale), 0.0) / (len(p) - 1)
        return float(per_obs.mean())
