"""What every indicator reads in one cycle: the last observations of every asset, aligned.

The monitor samples every asset once per cycle (a daily bar in a replay, the last minute's
prices live), so the window is a plain matrix: rows are observations, oldest first; columns are
assets. Fields an asset's feed does not give (volume, high/low, quotes) are NaN there, and an
indicator that needs them uses the assets that have them. The moments of the returns (mean,
covariance, lag-1 cross-covariance) are computed once per window, and shared by correlation,
absorption, turbulence, contagion and transfer entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Moments:
    """Mean, covariance and lag-1 cross-covariance of the returns (each asset a column)."""

    mean: Matrix  # (N,)
    cov: Matrix  # (N, N): E[(r_t - m)(r_t - m)']
    lag: Matrix  # (N, N): E[(r_t - m)(r_{t-1} - m)']

    @cached_property
    def corr(self) -> Matrix:
        sd = np.sqrt(np.diag(self.cov))
        return np.asarray(self.cov / np.outer(sd, sd), dtype=np.float64)


@dataclass(frozen=True)
class Window:
    """One cycle's observations. ``new`` is how many of the last rows arrived since the cycle
    before (the incremental indicators process only those)."""

    close: Matrix  # (T, N) positive prices
    high: Matrix  # (T, N), NaN where not given
    low: Matrix
    volume: Matrix
    bid: Matrix
    ask: Matrix
    symbols: tuple[str, ...]
    short: int  # the "recent" stretch level indicators look at
    new: int = 1

    @cached_property
    def log_prices(self) -> Matrix:
        return np.log(self.close)

    @cached_property
    def returns(self) -> Matrix:
        """(T - 1, N) log returns."""
        return np.diff(self.log_prices, axis=0)

    @cached_property
    def moments(self) -> Moments:
        r = self.returns
        mean = r.mean(axis=0)
        x = r - mean
        n = len(x)
        cov = (x.T @ x) / (n - 1)
        lag = (x[1:].T @ x[:-1]) / (n - 2)
        return Moments(mean, cov, lag)

    @property
    def assets(self) -> int:
        return int(self.close.shape[1])

    def complete(self, field: Matrix, rows: int | None = None) -> NDArray[np.bool_]:
        """The assets whose ``field`` is given on each of the last ``rows`` observations."""
        part = field if rows is None else field[-rows:]
        return np.asarray(np.isfinite(part).all(axis=0))
