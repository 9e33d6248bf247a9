"""Information in price moves: permutation entropy (Bandt-Pompe 2002, normalized) of each
asset, and linear-Gaussian transfer entropy (Schreiber 2000; Barnett et al. 2009) between
every pair, computed for all pairs at once from the window's shared moments."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


def permutation_entropy(series: Matrix, order: int) -> Matrix:
    """Normalized permutation entropy (delay 1) of each column, in [0, 1]. Ties are broken by
    position (a stable sort), as in Bandt and Pompe."""
    patterns = sliding_window_view(series, order, axis=0)  # (L, N, order)
    ranks = np.argsort(patterns, axis=-1, kind="stable")
    codes = (ranks * order ** np.arange(order)).sum(axis=-1)  # (L, N), < order**order
    n = series.shape[1]
    size = order**order
    counts = np.bincount((codes + size * np.arange(n)).ravel(), minlength=size * n)
    p = counts.reshape(n, size) / codes.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.asarray(h / math.log(math.factorial(order)))


class PermutationEntropy(Indicator):
    """Low entropy: moves have become predictable in their ordering (herding, one-way
    markets). Averaged over assets, on the last ``stretch`` returns."""

    name = "permutation_entropy"
    family = "information"
    label = "information content of price moves (low: one-way market)"
    high_is_stress = False

    def __init__(self, order: int = 4, stretch: int = 250) -> None:
        self.order, self.stretch = order, stretch

    def compute(self, window: Window) -> float | None:
        r = window.returns[-self.stretch :]
        if len(r) < 10 * math.factorial(self.order):
            return None
        return float(permutation_entropy(r, self.order).mean())


def transfer_entropy_matrix(cov: Matrix, lag: Matrix) -> Matrix:
    """Linear-Gaussian transfer entropy with one lag, in nats: entry (i, j) is the flow from
    i to j, 0.5 ln(var(y_t | y_t-1) / var(y_t | y_t-1, x_t-1)) with y = asset j, x = asset i,
    for all pairs at once (2 x 2 inverses written out, no per-pair Python loop)."""
    d = np.diag(cov)  # var of each asset (and of its lag: stationarity)
    own = np.diag(lag)  # cov(y_t, y_t-1)
    restricted = d - own**2 / d  # var(y_t | y_t-1), per target j
    # For target j and source i: b = [cov(y_t, y_t-1), cov(y_t, x_t-1)], S = cov of the lags.
    b1 = own[None, :]  # (i, j) -> own[j]
    b2 = lag.T  # lag[j, i] = cov(y_t = j, x_t-1 = i) at position (i, j)
    s11 = d[None, :]  # var(y_t-1)
    s22 = d[:, None]  # var(x_t-1)
    s12 = cov  # cov(y_t-1, x_t-1) = cov[i, j]
    det = s11 * s22 - s12**2
    with np.errstate(divide="ignore", invalid="ignore"):  # the diagonal (i = j) is singular
        explained = (b1**2 * s22 - 2 * b1 * b2 * s12 + b2**2 * s11) / det
        te = 0.5 * np.log(restricted[None, :] / (d[None, :] - explained))
    np.fill_diagonal(te, 0.0)
    return np.asarray(te)


class TransferEntropy(Indicator):
    """Mean information flow between all pairs: markets starting to lead and follow each
    other."""

    name = "transfer_entropy"
    family = "information"
    label = "causal information flow between markets"

    def compute(self, window: Window) -> float | None:
        m = window.moments
        n = m.cov.shape[0]
        if n < 2 or (np.diag(m.cov) <= 0).any():
            return None
        te = transfer_entropy_matrix(m.cov, m.lag)
        if not np.isfinite(te).all():
            return None
        return float(te.sum() / (n * (n - 1)))
