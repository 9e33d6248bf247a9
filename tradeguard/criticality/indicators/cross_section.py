"""Diversification collapse, read off the one covariance of the window: correlation
convergence, the absorption ratio (Kritzman, Li, Page, Rigobon 2011) and financial turbulence
(Kritzman, Li 2010)."""

from __future__ import annotations

import numpy as np
from scipy.special import chdtr

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


def mean_off_diagonal(corr: Matrix) -> float:
    n = corr.shape[0]
    return float((corr.sum() - np.trace(corr)) / (n * (n - 1)))


def _varying(window: Window) -> bool:
    """Cross-sectional measures need two assets that both moved."""
    return window.assets >= 2 and bool((np.diag(window.moments.cov) > 0).all())


class CorrelationConvergence(Indicator):
    """Mean pairwise correlation over the recent stretch minus its baseline over the whole
    window: assets starting to move together."""

    name = "correlation_convergence"
    family = "cross_section"
    label = "all assets moving together (diversification collapse)"

    def compute(self, window: Window) -> float | None:
        if not _varying(window):
            return None
        recent = window.returns[-window.short :]
        if len(recent) < 3 or (recent.std(axis=0) == 0).any():
            return None
        recent_corr = np.asarray(np.corrcoef(recent, rowvar=False), dtype=np.float64)
        return mean_off_diagonal(recent_corr) - mean_off_diagonal(window.moments.corr)


class AbsorptionRatio(Indicator):
    """Share of total variance absorbed by the first ``fraction`` of eigenvectors: a market
    driven by few factors is tightly coupled and fragile."""

    name = "absorption_ratio"
    family = "cross_section"
    label = "variance absorbed by a few factors (tight coupling)"

    def __init__(self, fraction: float = 0.2) -> None:
        self.fraction = fraction

    def compute(self, window: Window) -> float | None:
        if not _varying(window):
            return None
        eigenvalues = np.linalg.eigvalsh(window.moments.cov)[::-1]
        k = max(1, round(self.fraction * len(eigenvalues)))
        return float(eigenvalues[:k].sum() / eigenvalues.sum())


class Turbulence(Indicator):
    """Mahalanobis distance of the latest returns from the window's mean and covariance,
    averaged over the last ``days`` observations; its stress is the chi-square CDF (with
    N x days degrees of freedom): how unusual the moves are jointly, given how assets
    usually co-move."""

    name = "turbulence"
    family = "cross_section"
    label = "unusual joint moves given normal co-movement"

    def __init__(self, days: int = 5) -> None:
        self.days = days

    def compute(self, window: Window) -> float | None:
        if not _varying(window):
            return None
        m = window.moments
        n = m.cov.shape[0]
        ridge = 1e-8 * np.trace(m.cov) / n  # keeps a near-singular covariance invertible
        x = (window.returns[-self.days :] - m.mean).T
        solved = np.linalg.solve(m.cov + ridge * np.eye(n), x)
        return float((x * solved).sum(axis=0).mean())

    def stress(self, raw: float, window: Window) -> float | None:
        days = min(self.days, len(window.returns))
        return float(chdtr(window.assets * days, raw * days))
