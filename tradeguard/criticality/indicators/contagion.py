"""Contagion: the Diebold-Yilmaz (2012) total spillover index from a VAR(1)'s generalized
forecast-error variance decomposition (Pesaran-Shin): the share of every asset's forecast
error variance that comes from shocks to the others. With many assets the VAR is shrunk
(ridge, in proportion to N/T) so it stays estimable from the window."""

from __future__ import annotations

import numpy as np

from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.window import Matrix, Window


def var1(cov: Matrix, lag: Matrix, shrink: float) -> tuple[Matrix, Matrix]:
    """VAR(1) coefficients and residual covariance from the lag-0 and lag-1 moments (Yule-
    Walker, ridge-shrunk): A = Gamma1 (Gamma0 + R)^-1, and the covariance of r_t - A r_t-1,
    Sigma = Gamma0 - Gamma1 A' - A Gamma1' + A Gamma0 A' (which is Gamma0 - A Gamma0 A' only
    without the ridge)."""
    n = cov.shape[0]
    ridge = shrink * np.trace(cov) / n * np.eye(n)
    a = np.linalg.solve(cov + ridge, lag.T).T
    sigma = cov - lag @ a.T - a @ lag.T + a @ cov @ a.T
    return a, (sigma + sigma.T) / 2


def spillover_table(a: Matrix, sigma: Matrix, horizon: int) -> Matrix:
    """Row-normalized generalized FEVD: entry (i, j) is the share of i's H-step forecast
    error variance due to shocks to j."""
    n = a.shape[0]
    numerator = np.zeros((n, n))
    denominator = np.zeros(n)
    phi = np.eye(n)
    for _ in range(horizon):
        impact = phi @ sigma  # e_i' Phi_h Sigma e_j for all i, j
        numerator += impact**2
        denominator += np.einsum("ij,ij->i", impact, phi)  # e_i' Phi_h Sigma Phi_h' e_i
        phi = a @ phi
    theta = numerator / np.diag(sigma)[None, :] / denominator[:, None]
    return np.asarray(theta / theta.sum(axis=1, keepdims=True), dtype=np.float64)


def total_spillover(table: Matrix) -> float:
    n = table.shape[0]
    return float((table.sum() - np.trace(table)) / n)


class Contagion(Indicator):
    name = "contagion"
    family = "contagion"
    label = "stress spreading across markets (Diebold-Yilmaz spillover)"

    def __init__(self, horizon: int = 10) -> None:
        self.horizon = horizon

    def compute(self, window: Window) -> float | None:
        m = window.moments
        n, t = m.cov.shape[0], len(window.returns)
        if n < 2 or t < 3 * n or (np.diag(m.cov) <= 0).any():
            return None
        a, sigma = var1(m.cov, m.lag, shrink=n / t)
        if (np.diag(sigma) <= 0).any():
            return None
        return total_spillover(spillover_table(a, sigma, self.horizon))
