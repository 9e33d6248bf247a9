"""Cross-sectional indicators read off the window's one covariance: correlation convergence,
absorption ratio (Kritzman et al. 2011) and financial turbulence (Kritzman-Li 2010).

Analytic properties on equicorrelated (one-factor) returns: mean pairwise correlation ~rho, top
eigenvalue share (1 + (N - 1) rho) / N, turbulence averaging N with a ~uniform chi-square CDF.
Cross-checks: pandas correlations, an SVD of the returns, scipy's Mahalanobis distance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import mahalanobis

from tests.criticality.markets import window_from_returns
from tradeguard.criticality.indicators.cross_section import (
    AbsorptionRatio,
    CorrelationConvergence,
    Turbulence,
    mean_off_diagonal,
)
from tradeguard.criticality.window import Matrix


def equicorrelated(length: int, assets: int, rho: float, rng: np.random.Generator) -> Matrix:
    """One-factor returns, 1% volatility, every pair correlated rho."""
    factor = rng.standard_normal((length, 1))
    own = rng.standard_normal((length, assets))
    return np.asarray(0.01 * (np.sqrt(rho) * factor + np.sqrt(1 - rho) * own))


class TestCorrelationConvergence:
    def test_mean_off_diagonal_when_equicorrelated_then_rho(self) -> None:
        """The mean pairwise correlation of equicorrelated assets is about rho."""
        window = window_from_returns(equicorrelated(2000, 10, 0.4, np.random.default_rng(1)))
        # Over 50 seeds at T = 2000, N = 10 the mean pairwise correlation has a sd of 0.009
        # (the common factor's sampling error does not average out across pairs): 0.04.
        assert mean_off_diagonal(window.moments.corr) == pytest.approx(0.4, abs=0.04)

    def test_mean_off_diagonal_when_compared_with_pandas_then_equal(self) -> None:
        """pandas' correlation matrix gives the same mean of the off-diagonal entries."""
        r = equicorrelated(300, 7, 0.2, np.random.default_rng(2))
        corr = pd.DataFrame(r).corr().to_numpy()
        theirs = corr[~np.eye(7, dtype=bool)].mean()
        # Same Pearson correlations; rounding only.
        assert mean_off_diagonal(window_from_returns(r).moments.corr) == pytest.approx(
            theirs, abs=1e-12
        )

    def test_compute_when_recent_stretch_more_correlated_then_positive(self) -> None:
        """When the last stretch moves together (rho 0.8 after 0.1), convergence is positive:
        recent correlation minus the whole window's."""
        rng = np.random.default_rng(3)
        r = np.vstack([equicorrelated(750, 10, 0.1, rng), equicorrelated(250, 10, 0.8, rng)])
        value = CorrelationConvergence().compute(window_from_returns(r, short=250))
        assert value is not None
        # Recent ~0.8, the whole window ~0.3 (a variance-weighted mix): ~0.5, sd ~0.03.
        assert value > 0.3

    def test_compute_when_correlation_stable_then_near_zero(self) -> None:
        """With the same correlation throughout, the recent stretch reads like the baseline."""
        r = equicorrelated(1000, 10, 0.4, np.random.default_rng(4))
        value = CorrelationConvergence().compute(window_from_returns(r, short=250))
        assert value is not None
        # Over 50 seeds the difference has a sd of 0.024 (250 recent vs 1000 returns): 0.1.
        assert value == pytest.approx(0.0, abs=0.1)

    def test_compute_when_compared_with_pandas_then_equal(self) -> None:
        """It equals pandas' mean pairwise correlation of the last ``short`` returns minus
        that of all returns."""
        rng = np.random.default_rng(5)
        r = np.vstack([equicorrelated(200, 6, 0.1, rng), equicorrelated(60, 6, 0.6, rng)])
        off = ~np.eye(6, dtype=bool)
        recent = pd.DataFrame(r[-60:]).corr().to_numpy()[off].mean()
        whole = pd.DataFrame(r).corr().to_numpy()[off].mean()
        value = CorrelationConvergence().compute(window_from_returns(r, short=60))
        assert value == pytest.approx(recent - whole, abs=1e-12)  # rounding only

    def test_compute_when_single_asset_then_none(self) -> None:
        """One asset has no pairs."""
        r = equicorrelated(100, 1, 0.0, np.random.default_rng(6))
        assert CorrelationConvergence().compute(window_from_returns(r)) is None


class TestAbsorptionRatio:
    def test_compute_when_one_factor_model_then_top_eigenvalue_share(self) -> None:
        """With k = 1 the ratio is the top eigenvalue's share, (1 + (N - 1) rho) / N for
        equicorrelated assets."""
        n, rho = 10, 0.4
        r = equicorrelated(2000, n, rho, np.random.default_rng(11))
        value = AbsorptionRatio(fraction=0.1).compute(window_from_returns(r))
        # The top eigenvalue's relative sd is ~sqrt(2 / T) = 0.03, so the share's is ~0.01
        # (0.0104 over 50 seeds): 0.04.
        assert value == pytest.approx((1 + (n - 1) * rho) / n, abs=0.04)

    def test_compute_when_independent_assets_then_near_k_over_n(self) -> None:
        """Without a common factor no eigenvector dominates: the first 20% of them absorb
        a little more than 20% of the variance (the sample eigenvalues spread)."""
        r = equicorrelated(2000, 20, 0.0, np.random.default_rng(12))
        value = AbsorptionRatio(fraction=0.2).compute(window_from_returns(r))
        assert value is not None
        # Marchenko-Pastur: with N / T = 0.01 the top eigenvalues sit below
        # (1 + sqrt(0.01))^2 = 1.21, so 4 of 20 absorb at most 0.24.
        assert 0.2 < value < 0.25

    def test_compute_when_compared_with_svd_of_returns_then_equal(self) -> None:
        """The same share from the singular values of the demeaned returns (no covariance
        formed), k = round(0.2 N)."""
        r = equicorrelated(400, 12, 0.3, np.random.default_rng(13))
        singular = np.linalg.svd(r - r.mean(axis=0), compute_uv=False)  # descending
        variance = singular**2
        k = round(0.2 * 12)
        value = AbsorptionRatio(fraction=0.2).compute(window_from_returns(r))
        # Two routes to the same eigenvalues: rounding only.
        assert value == pytest.approx(variance[:k].sum() / variance.sum(), abs=1e-10)


class TestTurbulence:
    def test_compute_when_all_days_then_mean_is_n_times_t_minus_one_over_t(self) -> None:
        """Averaged over every row of the window, the in-sample squared Mahalanobis distance
        is exactly N (T - 1) / T: the trace identity sum x' S^-1 x = (T - 1) N."""
        n, t = 8, 500
        r = equicorrelated(t, n, 0.5, np.random.default_rng(21))
        value = Turbulence(days=t).compute(window_from_returns(r))
        # Exact up to the 1e-8 relative ridge that keeps the covariance invertible.
        assert value == pytest.approx(n * (t - 1) / t, rel=1e-6)

    def test_stress_when_returns_follow_the_model_then_chi_square_cdf_is_uniform(
        self,
    ) -> None:
        """Under the model, one day's turbulence is ~chi-square(N), so its stress (the CDF)
        is ~uniform: mean ~0.5 over many windows."""
        rng = np.random.default_rng(22)
        indicator = Turbulence(days=1)
        levels = []
        for _ in range(400):
            window = window_from_returns(equicorrelated(500, 5, 0.4, rng))
            raw = indicator.compute(window)
            assert raw is not None
            level = indicator.stress(raw, window)
            assert level is not None
            levels.append(level)
        # 400 uniforms: the mean's sd is 0.29 / 20 = 0.014, so 0.05 is 3.5 sd; the last day
        # is inside the covariance it is measured with, which pulls the distance down by a
        # factor ~(T - 1) / T only.
        assert np.mean(levels) == pytest.approx(0.5, abs=0.05)
        assert stats.kstest(levels, "uniform").pvalue > 0.01

    def test_stress_when_a_joint_shock_against_the_correlation_then_near_one(self) -> None:
        """Assets that usually move together splitting 3 sigma apart is extreme: stress ~1."""
        r = equicorrelated(500, 6, 0.8, np.random.default_rng(23))
        r[-1] = 0.03 * np.array([1, -1, 1, -1, 1, -1])
        indicator = Turbulence(days=1)
        window = window_from_returns(r)
        raw = indicator.compute(window)
        assert raw is not None
        # 3 sigma each, but against the factor: only the idiosyncratic sd (sqrt(0.2) of the
        # total) absorbs it, (3 / 0.447)^2 = 45 per asset, ~270 in all.
        assert raw > 100
        assert indicator.stress(raw, window) == pytest.approx(1.0, abs=1e-6)

    @pytest.mark.parametrize("days", [1, 5])
    def test_compute_when_compared_with_scipy_mahalanobis_then_equal(self, days: int) -> None:
        """It is the mean over the last ``days`` rows of scipy's Mahalanobis distance squared,
        with the returns' mean and inverse sample covariance."""
        r = equicorrelated(300, 7, 0.3, np.random.default_rng(24))
        inverse = np.linalg.inv(np.cov(r, rowvar=False))
        mean = r.mean(axis=0)
        theirs = np.mean([mahalanobis(row, mean, inverse) ** 2 for row in r[-days:]])
        value = Turbulence(days=days).compute(window_from_returns(r))
        # The indicator adds a ridge of 1e-8 x the mean variance before solving; with a
        # condition number ~10 here that moves the distance by ~1e-7 relative: 1e-6.
        assert value == pytest.approx(theirs, rel=1e-6)

    def test_compute_when_an_asset_never_moves_then_none(self) -> None:
        """A flat asset makes the covariance singular: no reading."""
        r = equicorrelated(100, 3, 0.3, np.random.default_rng(25))
        r[:, 2] = 0.0
        assert Turbulence().compute(window_from_returns(r)) is None
