"""Memory indicators: DFA Hurst exponent and critical slowing down (lag-1 autocorrelation).

Both kinds of test: analytic properties on processes whose answer is known (white noise,
fractional Gaussian noise, AR(1)), and cross-checks against nolds and statsmodels on the same
data.
"""

from __future__ import annotations

import importlib.resources
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from statsmodels.tsa.stattools import acf

from tests.criticality.markets import window_from_returns
from tradeguard.criticality.indicators.memory import (
    CriticalSlowingDown,
    HurstDfa,
    dfa_hurst,
    lag1_autocorrelation,
)
from tradeguard.criticality.window import Matrix, Window


def fgn(hurst: float, length: int, columns: int, rng: np.random.Generator) -> Matrix:
    """Fractional Gaussian noise (unit variance) by the Davies-Harte circulant embedding: exact
    in distribution, one FFT per batch of columns."""
    k = np.arange(length + 1, dtype=float)
    gamma = 0.5 * ((k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    circulant = np.concatenate([gamma, gamma[-2:0:-1]])  # first row, length 2 * length
    eigenvalues = np.fft.fft(circulant).real
    assert (eigenvalues >= 0).all()  # holds for fGn with 0 < H < 1
    z = rng.standard_normal((2 * length, columns)) + 1j * rng.standard_normal((2 * length, columns))
    y = np.fft.fft(np.sqrt(eigenvalues / (2 * length))[:, None] * z, axis=0)[:length]
    return np.asarray(y.real)


def ar1(phi: float, length: int, columns: int, rng: np.random.Generator) -> Matrix:
    e = rng.standard_normal((length + 200, columns))
    x = np.zeros_like(e)
    for t in range(1, len(e)):
        x[t] = phi * x[t - 1] + e[t]
    return x[200:]  # burn-in: start from the stationary distribution


def dfa_sizes(length: int, min_box: int = 8, scales: int = 10) -> list[int]:
    """The box sizes dfa_hurst uses (log-spaced, min_box to a quarter of the length)."""
    return [int(n) for n in np.unique(np.geomspace(min_box, length // 4, scales).astype(int))]


@pytest.fixture(scope="module")
def nolds_dfa() -> Callable[..., Any]:
    """nolds.dfa, imported despite two faults of nolds 0.6.3 on Python 3.11: at import it
    loads its bundled data sets with ``importlib.resources.files("nolds.datasets")`` (a module,
    which only Python 3.12 accepts; there it means the module's folder, the package), and its
    docstrings hold invalid escapes (a warning at compile time, an error under our filter)."""
    real_files = importlib.resources.files

    def files(anchor: Any = None) -> Any:
        return real_files("nolds" if anchor == "nolds.datasets" else anchor)

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setattr(importlib.resources, "files", files)
        # invalid escapes: a DeprecationWarning on 3.11, a SyntaxWarning from 3.12
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        import nolds
    return nolds.dfa  # type: ignore[no-any-return]


class TestDfaHurst:
    def test_dfa_hurst_when_white_noise_then_one_half(self) -> None:
        """DFA of iid Gaussian increments gives an exponent of about 0.5."""
        x = np.random.default_rng(11).standard_normal((4096, 8))
        estimate = dfa_hurst(x)
        # Per series the estimate has a sd of ~0.02-0.03 at N = 4096 (10 box sizes, 8 to
        # 1024); the mean of 8 series has a sd of ~0.01, and DFA-1's small-box bias for white
        # noise is below 0.01: 0.04 is about four standard errors.
        assert estimate.mean() == pytest.approx(0.5, abs=0.04)
        assert (np.abs(estimate - 0.5) < 0.1).all()

    def test_dfa_hurst_when_fractional_gaussian_noise_then_its_hurst_exponent(self) -> None:
        """DFA of fractional Gaussian noise with H = 0.7 gives about 0.7."""
        x = fgn(0.7, 4096, 8, np.random.default_rng(12))
        estimate = dfa_hurst(x)
        # Same spread as for white noise (sd ~0.01 for the mean of 8 series of 4096); DFA-1's
        # finite-sample bias at H = 0.7 with boxes from 8 is within 0.01 here (measured over
        # seeds 0-4: means 0.691-0.717): 0.04.
        assert estimate.mean() == pytest.approx(0.7, abs=0.04)
        assert estimate.min() > 0.6

    def test_dfa_hurst_when_persistent_vs_antipersistent_then_ordered(self) -> None:
        """A persistent series (H = 0.8) scores above white noise, an anti-persistent one
        (H = 0.3) below it."""
        rng = np.random.default_rng(13)
        low, mid, high = (dfa_hurst(fgn(h, 2048, 4, rng)).mean() for h in (0.3, 0.5, 0.8))
        assert low < mid < high

    def test_dfa_hurst_when_compared_with_nolds_then_equal(
        self, nolds_dfa: Callable[..., Any]
    ) -> None:
        """On the same series and box sizes, non-overlapping boxes, least-squares fits,
        nolds.dfa gives the same exponent, column by column."""
        x = fgn(0.65, 3000, 4, np.random.default_rng(14))
        ours = dfa_hurst(x)
        sizes = dfa_sizes(len(x))
        theirs = [
            nolds_dfa(x[:, j], nvals=sizes, overlap=False, fit_trend="poly", fit_exp="poly")
            for j in range(x.shape[1])
        ]
        # Same definition (profile, per-box linear detrend, RMS over all boxes, OLS slope of
        # log F on log n): only float rounding differs (polyfit vs closed-form centred fits).
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


class TestHurstDfaIndicator:
    def test_compute_when_returns_are_white_noise_then_mean_exponent_near_one_half(
        self,
    ) -> None:
        """The indicator averages the assets' exponents: about 0.5 for iid returns."""
        r = 0.01 * np.random.default_rng(21).standard_normal((2000, 6))
        value = HurstDfa().compute(_window(r))
        assert value is not None
        # 6 series of 2000: per series sd ~0.035, mean sd ~0.015: 0.05 is over 3 sd.
        assert value == pytest.approx(0.5, abs=0.05)

    def test_compute_when_some_assets_never_move_then_they_are_left_out(self) -> None:
        """A flat asset (zero variance) does not enter the average, and does not make it NaN."""
        rng = np.random.default_rng(22)
        r = 0.01 * rng.standard_normal((1000, 3))
        flat = np.column_stack([r, np.zeros(1000)])
        assert HurstDfa().compute(_window(flat)) == pytest.approx(HurstDfa().compute(_window(r)))

    def test_compute_when_window_too_short_then_none(self) -> None:
        """Fewer than 64 returns cannot be measured."""
        r = np.random.default_rng(23).standard_normal((40, 2)) * 0.01
        assert HurstDfa().compute(_window(r)) is None


class TestLag1Autocorrelation:
    def test_lag1_autocorrelation_when_ar1_then_its_coefficient(self) -> None:
        """For AR(1) with phi = 0.6 the lag-1 autocorrelation is about 0.6."""
        x = ar1(0.6, 5000, 4, np.random.default_rng(31))
        rho = lag1_autocorrelation(x)
        # sd of the estimate is sqrt((1 - phi^2) / T) = 0.011 per series; its bias
        # -(1 + 3 phi) / T is 0.0006: 0.04 is over 3.5 sd for the worst of 4 series.
        np.testing.assert_allclose(rho, 0.6, atol=0.04)

    def test_lag1_autocorrelation_when_white_noise_then_zero(self) -> None:
        """For iid noise the lag-1 autocorrelation is about 0."""
        x = np.random.default_rng(32).standard_normal((5000, 4))
        # sd 1 / sqrt(T) = 0.014; bias -1 / T: 0.05 is 3.5 sd.
        np.testing.assert_allclose(lag1_autocorrelation(x), 0.0, atol=0.05)

    def test_lag1_autocorrelation_when_compared_with_statsmodels_acf_then_equal(self) -> None:
        """statsmodels' acf at lag 1 (demeaned, divided by the lag-0 sum) gives the same value."""
        x = ar1(0.3, 700, 3, np.random.default_rng(33))
        theirs = [acf(x[:, j], nlags=1, fft=False)[1] for j in range(x.shape[1])]
        # The same formula; only summation order differs.
        np.testing.assert_allclose(lag1_autocorrelation(x), theirs, rtol=0, atol=1e-12)


class TestCriticalSlowingDown:
    def test_compute_when_returns_are_ar1_then_mean_autocorrelation_is_phi(self) -> None:
        """On AR(1) returns with phi = 0.6 the indicator reads about 0.6 over its stretch."""
        r = 0.01 * ar1(0.6, 600, 20, np.random.default_rng(41))
        value = CriticalSlowingDown(stretch=250).compute(_window(r))
        assert value is not None
        # Over 250 returns the sd per asset is sqrt(0.64 / 250) = 0.05, the mean of 20 assets
        # has a sd of 0.011, and the small-sample bias is -(1 + 3 phi) / 250 = -0.011: 0.05.
        assert value == pytest.approx(0.6, abs=0.05)

    def test_compute_when_autocorrelation_rises_then_reads_only_the_recent_stretch(
        self,
    ) -> None:
        """White noise followed by 250 steps of AR(1) reads as the AR(1), not as the mixture."""
        rng = np.random.default_rng(42)
        calm = rng.standard_normal((1000, 10))
        slow = ar1(0.7, 250, 10, rng)
        r = 0.01 * np.vstack([calm, slow])
        value = CriticalSlowingDown(stretch=250).compute(_window(r))
        whole = lag1_autocorrelation(r).mean()
        assert value is not None
        assert value == pytest.approx(0.7, abs=0.06)  # as above, for phi = 0.7
        assert whole < 0.3

    def test_compute_when_white_noise_then_near_zero(self) -> None:
        """On iid returns the indicator reads about 0."""
        r = 0.01 * np.random.default_rng(43).standard_normal((600, 20))
        value = CriticalSlowingDown(stretch=250).compute(_window(r))
        assert value is not None
        # Mean of 20 series of 250: sd 0.014, bias -0.004: 0.05.
        assert value == pytest.approx(0.0, abs=0.05)


def _window(returns: Matrix) -> Window:
    return window_from_returns(returns, short=min(len(returns), 60))
