"""Contagion: the Diebold-Yilmaz (2012) total spillover index from a VAR(1)'s generalized
forecast-error variance decomposition (Pesaran-Shin).

Analytic properties: independent assets spill nothing; every row of the table sums to 1; a VAR
where one asset drives all others has a spillover known in closed form. Cross-checks:
statsmodels' VAR (OLS, trend 'c', one lag) and its moving-average matrices fed to a GFEVD
written plainly with loops, against the indicator's table and its Yule-Walker VAR.
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.api import VAR
from statsmodels.tsa.vector_ar.var_model import ma_rep

from tests.criticality.markets import window_from_returns
from tradeguard.criticality.indicators.contagion import (
    Contagion,
    spillover_table,
    total_spillover,
    var1,
)
from tradeguard.criticality.window import Matrix


def driven(length: int, assets: int, seed: int) -> Matrix:
    """Asset 0 iid; every other asset r_i,t = 0.9 r_0,t-1 + 0.3 e_i,t: a VAR(1) with
    A[i, 0] = 0.9 and Sigma = diag(1, 0.09, ...), scaled to 1% volatility."""
    e = np.random.default_rng(seed).standard_normal((length + 1, assets))
    r = np.empty_like(e)
    r[:, 0] = e[:, 0]
    r[1:, 1:] = 0.9 * e[:-1, [0]] + 0.3 * e[1:, 1:]
    return 0.01 * r[1:]


def coupled(length: int, seed: int) -> Matrix:
    """A stable 5-asset VAR(1) with mixed cross-effects and correlated shocks."""
    rng = np.random.default_rng(seed)
    a = np.array(
        [
            [0.3, 0.1, 0.0, 0.0, 0.0],
            [0.2, 0.1, 0.0, 0.1, 0.0],
            [0.0, 0.3, 0.2, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.1, 0.4],
            [0.1, 0.0, 0.0, 0.0, 0.2],
        ]
    )
    chol = np.linalg.cholesky(0.5 * np.eye(5) + 0.5 * np.full((5, 5), 0.3))
    shocks = rng.standard_normal((length, 5)) @ chol.T
    r = np.zeros((length, 5))
    for t in range(1, length):
        r[t] = a @ r[t - 1] + shocks[t]
    return 0.01 * r


def gfevd_by_loops(a: Matrix, sigma: Matrix, horizon: int) -> Matrix:
    """The generalized FEVD as Diebold and Yilmaz write it, entry by entry, with the
    moving-average matrices Phi_0..Phi_{H-1} from statsmodels:
    theta_ij = sigma_jj^-1 sum_h (e_i' Phi_h Sigma e_j)^2 / sum_h e_i' Phi_h Sigma Phi_h' e_i,
    then each row divided by its sum."""
    phis = ma_rep(a[None], maxn=horizon - 1)  # (H, N, N), Phi_0 = I
    n = len(sigma)
    theta = np.zeros((n, n))
    for i in range(n):
        denominator = sum(phis[h][i] @ sigma @ phis[h][i] for h in range(horizon))
        for j in range(n):
            numerator = sum((phis[h][i] @ sigma[:, j]) ** 2 for h in range(horizon))
            theta[i, j] = numerator / sigma[j, j] / denominator
    return np.asarray(theta / theta.sum(axis=1, keepdims=True))


def spillover_by_loops(table: Matrix) -> float:
    n = len(table)
    return float(sum(table[i, j] for i in range(n) for j in range(n) if i != j) / n)


class TestSpilloverTable:
    def test_spillover_table_when_any_var_then_rows_sum_to_one(self) -> None:
        """Each row is a decomposition of one asset's forecast error variance: it sums to 1
        and every share lies in [0, 1]."""
        rng = np.random.default_rng(1)
        a = 0.15 * rng.standard_normal((6, 6))
        b = rng.standard_normal((6, 6))
        sigma = b @ b.T + 0.5 * np.eye(6)
        table = spillover_table(a, sigma, horizon=10)
        np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert ((table >= 0) & (table <= 1)).all()

    def test_spillover_table_when_independent_shocks_and_no_dynamics_then_identity(
        self,
    ) -> None:
        """With A = 0 and a diagonal Sigma each asset's variance is its own: no spillover."""
        table = spillover_table(np.zeros((4, 4)), np.diag([1.0, 2.0, 0.5, 3.0]), horizon=10)
        np.testing.assert_allclose(table, np.eye(4), atol=1e-15)
        assert total_spillover(table) == pytest.approx(0.0, abs=1e-15)

    def test_spillover_table_when_one_asset_drives_all_then_closed_form(self) -> None:
        """With A[i, 0] = 0.9 and Sigma = diag(1, 0.09, ...), each follower owes
        0.81 / (0.81 + 0.09) = 90% of its variance to asset 0 (A^2 = 0): the total is
        (N - 1) 0.9 / N."""
        n = 5
        a = np.zeros((n, n))
        a[1:, 0] = 0.9
        sigma = np.diag([1.0] + [0.09] * (n - 1))
        table = spillover_table(a, sigma, horizon=10)
        np.testing.assert_allclose(table[1:, 0], 0.9, atol=1e-12)
        assert total_spillover(table) == pytest.approx((n - 1) * 0.9 / n, abs=1e-12)

    @pytest.mark.parametrize("horizon", [1, 2, 10])
    def test_spillover_table_when_fed_statsmodels_var_then_equals_loop_gfevd(
        self, horizon: int
    ) -> None:
        """On statsmodels' OLS VAR(1) (coefficients and sigma_u) the vectorized table equals
        the plain-loop GFEVD."""
        res = VAR(coupled(1500, 2)).fit(1, trend="c")
        a, sigma = res.coefs[0], np.asarray(res.sigma_u)
        ours = spillover_table(a, sigma, horizon)
        # The same sums in another order: rounding only.
        np.testing.assert_allclose(ours, gfevd_by_loops(a, sigma, horizon), rtol=0, atol=1e-12)
        assert total_spillover(ours) == pytest.approx(spillover_by_loops(ours), abs=1e-12)


class TestVar1:
    def test_var1_when_compared_with_statsmodels_ols_then_close(self) -> None:
        """The Yule-Walker VAR(1) from the window's moments matches statsmodels' OLS fit."""
        r = coupled(5000, 3)
        m = window_from_returns(r).moments
        a, sigma = var1(m.cov, m.lag, shrink=0.0)
        res = VAR(r).fit(1, trend="c")
        # Yule-Walker and OLS differ by O(1/T) = 2e-4 in the moments (full-sample variance
        # for the lag, denominators T - 1 and T - 2): measured 6e-5 on the coefficients,
        # whose standard errors are ~0.015 at T = 5000; 1e-3 keeps far inside that noise.
        np.testing.assert_allclose(a, res.coefs[0], rtol=0, atol=1e-3)
        # statsmodels divides the residual cross-products by T - 1 - N (4993; 6 regressors),
        # the moments by T - 1: 0.1% apart (measured 0.13% at most): 0.5%.
        np.testing.assert_allclose(sigma, res.sigma_u, rtol=0.005, atol=1e-9)


class TestContagion:
    def test_compute_when_independent_assets_then_near_zero(self) -> None:
        """Independent iid assets spill nothing onto each other."""
        r = 0.01 * np.random.default_rng(11).standard_normal((1000, 5))
        value = Contagion().compute(window_from_returns(r))
        assert value is not None
        # Sample cross-correlations of ~1 / sqrt(T) give each off-diagonal share ~1 / T, so
        # the total is ~(N - 1) H / T-ish: 0.007 on average over 20 seeds, 0.014 at most.
        assert value == pytest.approx(0.0, abs=0.03)

    def test_compute_when_one_asset_drives_all_then_high_spillover(self) -> None:
        """When one asset drives the four others the spillover is about (N - 1) 0.9 / N =
        0.72."""
        value = Contagion().compute(window_from_returns(driven(1000, 5, 12)))
        assert value is not None
        # 20 seeds at T = 1000: mean 0.714, sd 0.004; the ridge (N / T) shrinks A a little,
        # biasing it ~0.006 low: 0.03.
        assert value == pytest.approx(0.72, abs=0.03)

    def test_compute_when_compared_with_statsmodels_var_and_loop_gfevd_then_close(
        self,
    ) -> None:
        """The indicator (Yule-Walker VAR with ridge, vectorized GFEVD) agrees with
        statsmodels' OLS VAR fed to the loop GFEVD, on coupled and driven systems."""
        for r in (coupled(1000, 13), driven(1000, 5, 14)):
            res = VAR(r).fit(1, trend="c")
            theirs = spillover_by_loops(gfevd_by_loops(res.coefs[0], np.asarray(res.sigma_u), 10))
            value = Contagion(horizon=10).compute(window_from_returns(r))
            # The indicator shrinks its VAR by a ridge of N / T = 0.005 and uses Yule-Walker
            # moments: both O(N / T). Measured gaps at T = 1000: 0.001-0.006: 0.02.
            assert value == pytest.approx(theirs, abs=0.02)

    def test_compute_when_too_few_observations_then_none(self) -> None:
        """Fewer than 3 observations per asset cannot carry a VAR."""
        r = 0.01 * np.random.default_rng(15).standard_normal((20, 10))
        assert Contagion().compute(window_from_returns(r)) is None
