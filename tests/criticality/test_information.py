"""Information indicators: permutation entropy (Bandt-Pompe) and linear-Gaussian transfer
entropy (all pairs at once).

Analytic properties: iid noise has normalized permutation entropy ~1 and a monotone series 0;
for y_t = 0.8 x_{t-1} + 0.6 e_t the transfer entropy x -> y is -0.5 ln 0.36 and y -> x is 0.
Cross-checks: ordpy's permutation entropy, and statsmodels OLS residual variances
(0.5 ln(RSS_restricted / RSS_full)) pair by pair.
"""

from __future__ import annotations

import math

import numpy as np
import ordpy
import pytest
import statsmodels.api as sm

from tests.criticality.markets import window_from_returns
from tradeguard.criticality.indicators.information import (
    PermutationEntropy,
    TransferEntropy,
    permutation_entropy,
    transfer_entropy_matrix,
)
from tradeguard.criticality.window import Matrix

TE_X_TO_Y = -0.5 * math.log(0.36)  # 0.5108 nats: var(y | y_-1) = 1, var(y | y_-1, x_-1) = 0.36


def lagged_pair(length: int, seed: int) -> Matrix:
    """Columns (x, y) with x iid N(0, 1) and y_t = 0.8 x_{t-1} + 0.6 e_t."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(length + 1)
    e = rng.standard_normal(length + 1)
    y = 0.8 * x[:-1] + 0.6 * e[1:]
    return np.column_stack([x[1:], y])


def lead_lag_system(length: int, seed: int) -> Matrix:
    """Four assets: 0 iid, 1 led by 0, 2 led by 1 and by itself, 3 tied to 0 only at lag 0."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((length + 1, 4))
    r = np.zeros_like(e)
    for t in range(1, len(e)):
        r[t, 0] = e[t, 0]
        r[t, 1] = 0.5 * r[t - 1, 0] + e[t, 1]
        r[t, 2] = 0.3 * r[t - 1, 1] + 0.2 * r[t - 1, 2] + e[t, 2]
        r[t, 3] = 0.6 * e[t, 0] + 0.8 * e[t, 3]
    return r[1:]


def te_by_ols(returns: Matrix, source: int, target: int) -> float:
    """0.5 ln(RSS of target on its own lag / RSS with the source's lag added), by OLS with an
    intercept: the textbook Granger form of linear-Gaussian transfer entropy."""
    y = returns[1:, target]
    own = returns[:-1, target]
    other = returns[:-1, source]
    restricted = sm.OLS(y, sm.add_constant(own)).fit()
    full = sm.OLS(y, sm.add_constant(np.column_stack([own, other]))).fit()
    return 0.5 * math.log(restricted.ssr / full.ssr)


class TestPermutationEntropy:
    def test_permutation_entropy_when_iid_noise_then_one(self) -> None:
        """Every ordinal pattern is equally likely for iid noise: normalized entropy ~1."""
        x = np.random.default_rng(1).standard_normal((10_000, 3))
        # Plug-in bias: about -(m! - 1) / (2 L ln m!) = -0.0004 for m = 4, L = 10^4, and a
        # spread of the same order: 0.005.
        np.testing.assert_allclose(permutation_entropy(x, 4), 1.0, atol=0.005)

    def test_permutation_entropy_when_monotone_then_zero(self) -> None:
        """A monotone series has one ordinal pattern only: entropy exactly 0."""
        rising = np.linspace(1.0, 2.0, 300)
        series = np.column_stack([rising, -(rising**2)])
        np.testing.assert_array_equal(permutation_entropy(series, 3), [0.0, 0.0])

    def test_permutation_entropy_when_two_patterns_equally_likely_then_log2_over_log_m_factorial(
        self,
    ) -> None:
        """A zigzag (up, down, up, ...) of order 3 shows two patterns in equal shares: entropy
        ln 2 / ln 3!."""
        zigzag = np.tile([0.0, 1.0], 201)[:, None]
        assert permutation_entropy(zigzag, 3)[0] == pytest.approx(
            math.log(2) / math.log(6), abs=1e-3
        )

    @pytest.mark.parametrize("order", [3, 4, 5])
    def test_permutation_entropy_when_compared_with_ordpy_then_equal(self, order: int) -> None:
        """ordpy's normalized permutation entropy (delay 1, dx = order) matches on continuous
        data."""
        x = np.random.default_rng(2).standard_normal((800, 3)).cumsum(axis=0) ** 2
        theirs = [ordpy.permutation_entropy(x[:, j], dx=order) for j in range(x.shape[1])]
        # Same patterns counted, same Shannon sum divided by ln(order!): rounding only.
        np.testing.assert_allclose(permutation_entropy(x, order), theirs, rtol=0, atol=1e-12)

    def test_permutation_entropy_when_ties_then_broken_by_position_like_ordpy(self) -> None:
        """With ties (values on a coarse grid) both break them by position (stable sort), so
        they still agree."""
        x = np.random.default_rng(3).integers(0, 3, size=(600, 2)).astype(float)
        theirs = [ordpy.permutation_entropy(x[:, j], dx=3) for j in range(2)]
        np.testing.assert_allclose(permutation_entropy(x, 3), theirs, rtol=0, atol=1e-12)


class TestPermutationEntropyIndicator:
    def test_compute_when_iid_returns_then_near_one(self) -> None:
        """On iid returns the indicator reads about 1 over its stretch."""
        r = 0.01 * np.random.default_rng(11).standard_normal((400, 10))
        value = PermutationEntropy(order=4, stretch=250).compute(window_from_returns(r))
        assert value is not None
        # 247 patterns of 24: plug-in bias -(23) / (2 * 247 * ln 24) = -0.015, sd per asset
        # ~0.007: 0.03 below 1.
        assert value == pytest.approx(1.0, abs=0.03)

    def test_compute_when_one_way_market_then_low(self) -> None:
        """Returns that keep rising (a one-way market) read far lower than noise."""
        rng = np.random.default_rng(12)
        r = np.abs(0.01 * rng.standard_normal((400, 5))).cumsum(axis=0) * 1e-3
        value = PermutationEntropy(order=4, stretch=250).compute(window_from_returns(r))
        assert value is not None
        assert value < 0.05

    def test_compute_when_too_few_returns_then_none(self) -> None:
        """Fewer than 10 x order! returns cannot be measured."""
        r = 0.01 * np.random.default_rng(13).standard_normal((200, 2))
        assert PermutationEntropy(order=4).compute(window_from_returns(r)) is None


class TestTransferEntropyMatrix:
    def test_transfer_entropy_when_y_driven_by_lagged_x_then_minus_half_log_036(self) -> None:
        """For y_t = 0.8 x_{t-1} + 0.6 e_t the flow x -> y is -0.5 ln 0.36 and y -> x is ~0."""
        window = window_from_returns(0.01 * lagged_pair(20_000, 21))
        te = transfer_entropy_matrix(window.moments.cov, window.moments.lag)
        # Entry (i, j) is the flow i -> j. The estimate's sd is ~sqrt(2 (1 - 0.36) / T) / 2 ~
        # 0.005 at T = 20,000 (delta method on the log variance ratio): 0.025 is 5 sd.
        assert te[0, 1] == pytest.approx(TE_X_TO_Y, abs=0.025)
        # Under no flow 2 T TE is ~chi-square(1): TE ~ 1 / (2 T) = 2.5e-5; 0.002 is ~80
        # times that, yet 250 times smaller than the real flow.
        assert te[1, 0] == pytest.approx(0.0, abs=0.002)
        assert np.diag(te).tolist() == [0.0, 0.0]

    def test_transfer_entropy_when_compared_with_ols_residual_variances_then_close(
        self,
    ) -> None:
        """All 12 ordered pairs of a 4-asset lead-lag system agree with 0.5 ln(RSS_restricted
        / RSS_full) from statsmodels OLS regressions, pair by pair."""
        r = 0.01 * lead_lag_system(5_000, 22)
        m = window_from_returns(r).moments
        ours = transfer_entropy_matrix(m.cov, m.lag)
        theirs = np.zeros((4, 4))
        for i in range(4):
            for j in range(4):
                if i != j:
                    theirs[i, j] = te_by_ols(r, source=i, target=j)
        # The vectorized form uses the window's moments: the lag covariance over T - 1 pairs
        # divided by T - 2, and var(x_{t-1}) taken equal to var(x_t) (stationarity), where OLS
        # uses the exact lagged sub-samples. The two differ by O(1/T) = 2e-4 relative to the
        # variances (measured: at most 4e-5 nats over three seeds); 3e-4 bounds that.
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=3e-4)
        assert ours[0, 1] > 0.05  # the real flows show
        assert ours[1, 2] > 0.02
        assert abs(ours[0, 3]) < 0.002  # lag-0 co-movement is not a flow

    def test_transfer_entropy_when_many_assets_then_vectorized_equals_pairwise(self) -> None:
        """For 30 assets the all-pairs result equals a per-pair 2 x 2 computation from the
        same moments."""
        rng = np.random.default_rng(23)
        r = 0.01 * (rng.standard_normal((600, 30)) + 0.3 * rng.standard_normal((600, 1)))
        m = window_from_returns(r).moments
        ours = transfer_entropy_matrix(m.cov, m.lag)
        d = np.diag(m.cov)
        for i, j in [(0, 1), (5, 2), (29, 7), (13, 28)]:
            s = np.array([[d[j], m.cov[j, i]], [m.cov[i, j], d[i]]])
            b = np.array([m.lag[j, j], m.lag[j, i]])
            full = d[j] - b @ np.linalg.solve(s, b)
            restricted = d[j] - m.lag[j, j] ** 2 / d[j]
            # The same algebra, solved instead of written out: rounding only.
            assert ours[i, j] == pytest.approx(0.5 * math.log(restricted / full), abs=1e-12)


class TestTransferEntropyIndicator:
    def test_compute_when_one_flow_between_two_assets_then_mean_of_both_directions(
        self,
    ) -> None:
        """The indicator is the mean over ordered pairs: (TE x -> y + TE y -> x) / 2."""
        window = window_from_returns(0.01 * lagged_pair(20_000, 31))
        value = TransferEntropy().compute(window)
        assert value is not None
        assert value == pytest.approx(TE_X_TO_Y / 2, abs=0.015)  # half the tolerance above

    def test_compute_when_single_asset_then_none(self) -> None:
        """One asset has no pairs."""
        r = 0.01 * np.random.default_rng(32).standard_normal((300, 1))
        assert TransferEntropy().compute(window_from_returns(r)) is None

    def test_compute_when_an_asset_never_moves_then_none(self) -> None:
        """A flat asset has no variance to explain."""
        r = 0.01 * np.random.default_rng(33).standard_normal((300, 3))
        r[:, 1] = 0.0
        assert TransferEntropy().compute(window_from_returns(r)) is None
