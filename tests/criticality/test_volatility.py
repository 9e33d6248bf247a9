"""Two-scale realized volatility (Zhang, Mykland, Ait-Sahalia 2005).

Analytic property: on a Brownian log-price observed with iid noise of variance omega^2, plain
realized variance is biased by about 2 n omega^2 while TSRV recovers the integrated variance.
Cross-check: a brute-force loop over the K offset subgrids, written from the paper.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradeguard.criticality.indicators.volatility import TwoScaleVolatility, tsrv
from tradeguard.criticality.window import Matrix, Window


def noisy_paths(
    steps: int, sigma: float, omega: float, paths: int, seed: int
) -> tuple[Matrix, Matrix]:
    """(efficient log-price, observed log-price): Brownian with ``sigma`` per step, plus iid
    N(0, omega^2) noise on every observation. Shapes (steps + 1, paths)."""
    rng = np.random.default_rng(seed)
    increments = sigma * rng.standard_normal((steps, paths))
    efficient = np.vstack([np.zeros((1, paths)), np.cumsum(increments, axis=0)])
    return efficient, efficient + omega * rng.standard_normal(efficient.shape)


def realized_variance(log_prices: Matrix) -> Matrix:
    return np.asarray((np.diff(log_prices, axis=0) ** 2).sum(axis=0))


def tsrv_by_subgrids(log_prices: Matrix, scale: int) -> Matrix:
    """TSRV as the paper writes it, one column and one subgrid at a time: the average of the
    K sparse realized variances (grid k = observations k, k + K, ...), minus nbar / n times the
    all-data realized variance, times 1 / (1 - nbar / n)."""
    n = len(log_prices) - 1
    out = np.empty(log_prices.shape[1])
    for j in range(log_prices.shape[1]):
        p = log_prices[:, j]
        sparse = []
        for k in range(scale):
            grid = p[k::scale]
            sparse.append(sum((grid[i + 1] - grid[i]) ** 2 for i in range(len(grid) - 1)))
        rv_avg = sum(sparse) / scale
        rv_all = sum((p[i + 1] - p[i]) ** 2 for i in range(n))
        nbar = (n - scale + 1) / scale  # average number of returns per subgrid
        out[j] = (rv_avg - nbar / n * rv_all) / (1 - nbar / n)
    return out


def window_from_log_prices(log_prices: Matrix) -> Window:
    close = np.exp(log_prices)
    nan = np.full_like(close, np.nan)
    symbols = tuple(f"A{i}" for i in range(close.shape[1]))
    return Window(close, nan, nan, nan, nan, nan, symbols, short=60)


class TestTsrv:
    # A day of one-second observations: daily volatility 1%, noise sd 5 bp. The noise
    # dominates: 2 n omega^2 = 0.0117 against an integrated variance of 0.0001.
    STEPS, SIGMA, OMEGA, PATHS = 23_400, 0.01 / np.sqrt(23_400), 5e-4, 20

    def test_realized_variance_when_noisy_then_biased_by_two_n_omega_squared(self) -> None:
        """Plain realized variance on noisy prices measures the noise: IV + 2 n omega^2."""
        efficient, observed = noisy_paths(self.STEPS, self.SIGMA, self.OMEGA, self.PATHS, 1)
        expected = realized_variance(efficient).mean() + 2 * self.STEPS * self.OMEGA**2
        # Per path the noise part has a relative sd of about sqrt(3 / n) ~ 1%; the mean of
        # 20 paths is within 1% with room to spare.
        assert realized_variance(observed).mean() == pytest.approx(expected, rel=0.01)
        assert realized_variance(observed).mean() > 100 * realized_variance(efficient).mean()

    def test_tsrv_when_noisy_then_close_to_integrated_variance(self) -> None:
        """TSRV on the same noisy prices recovers the integrated variance of the efficient
        price, on average over paths."""
        efficient, observed = noisy_paths(self.STEPS, self.SIGMA, self.OMEGA, self.PATHS, 2)
        integrated = realized_variance(efficient)  # the path's own quadratic variation
        ratio = tsrv(observed, scale=100) / integrated
        # With K = 100 the per-path relative error has a sd of ~0.11 (measured; the
        # discretisation and noise terms of ZMA's asymptotic variance); the mean of 20 paths
        # has a sd of ~0.025 and the finite-sample bias is under 1%: 10% is 4 sd.
        assert ratio.mean() == pytest.approx(1.0, abs=0.10)
        assert (ratio > 0.5).all()
        assert (ratio < 1.5).all()

    def test_tsrv_when_no_noise_then_close_to_realized_variance(self) -> None:
        """Without noise TSRV and plain realized variance agree (both estimate the IV)."""
        efficient, _ = noisy_paths(5_000, 0.01, 0.0, 10, 3)
        ratio = tsrv(efficient, scale=20) / realized_variance(efficient)
        # Without noise the sparse grids only add discretisation error: relative sd
        # ~sqrt(4 K / 3 n) = 0.07 per path, 0.02 for the mean of 10: 0.08.
        assert ratio.mean() == pytest.approx(1.0, abs=0.08)

    @pytest.mark.parametrize("scale", [2, 7, 50])
    def test_tsrv_when_compared_with_subgrid_loop_then_equal(self, scale: int) -> None:
        """The vectorized TSRV equals the brute-force sum over the K offset subgrids."""
        _, observed = noisy_paths(997, 0.001, 0.0005, 3, 4)  # n = 997: uneven subgrids
        # Same sums in a different order: float rounding only.
        np.testing.assert_allclose(
            tsrv(observed, scale), tsrv_by_subgrids(observed, scale), rtol=1e-10
        )


class TestTwoScaleVolatility:
    def test_compute_when_noisy_prices_then_per_observation_variance_net_of_noise(
        self,
    ) -> None:
        """Over the default stretch of 250, the indicator reads the efficient price's variance
        per observation, where plain realized variance reads sigma^2 + 2 omega^2."""
        sigma, omega = 0.01, 0.005  # noise adds 2 omega^2 = 0.5 sigma^2 per return
        _, observed = noisy_paths(400, sigma, omega, 200, 5)
        window = window_from_log_prices(observed)
        value = TwoScaleVolatility(scale=5, stretch=250).compute(window)
        plain = float((np.diff(observed[-251:], axis=0) ** 2).mean())
        assert value is not None
        # With K = 5 over 250 returns the per-asset relative sd is ~0.2 (measured); the mean
        # of 200 assets has a sd of ~0.015, and the bias is ~-1%: 0.08 relative.
        assert value == pytest.approx(sigma**2, rel=0.08)
        assert plain == pytest.approx(sigma**2 + 2 * omega**2, rel=0.05)

    def test_compute_when_window_too_short_then_none(self) -> None:
        """Fewer than four scales of prices cannot be measured."""
        _, observed = noisy_paths(10, 0.01, 0.0, 2, 6)
        assert TwoScaleVolatility(scale=5).compute(window_from_log_prices(observed)) is None

    def test_compute_when_stretch_set_then_reads_only_the_last_stretch(self) -> None:
        """Only the last ``stretch`` returns count: a calm past does not dilute a volatile
        present."""
        rng = np.random.default_rng(7)
        calm = np.cumsum(0.001 * rng.standard_normal((1000, 50)), axis=0)
        wild = calm[-1] + np.cumsum(0.02 * rng.standard_normal((250, 50)), axis=0)
        log_prices = np.vstack([np.zeros((1, 50)), calm, wild])
        value = TwoScaleVolatility(scale=5, stretch=250).compute(window_from_log_prices(log_prices))
        assert value is not None
        # No noise: per-asset relative sd ~0.2, mean of 50 ~0.03; 0.2 leaves room for the
        # one calm-to-wild return inside the stretch.
        assert value == pytest.approx(0.02**2, rel=0.2)
