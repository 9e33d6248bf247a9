"""Changepoint indicators: Bayesian online changepoint detection and Page's two-sided CUSUM.

Both kinds of test: analytic properties (a run length that resets after a mean shift and stays
long on iid noise, a normalized posterior, CUSUM run lengths near Siegmund's approximation) and
cross-checks against independent implementations on the same data (the bocd package's
Adams-MacKay recursion, plain Python loops of Page's CUSUM and of the indicators' bookkeeping).
"""

from __future__ import annotations

import math

import numpy as np
from bocd import BayesianOnlineChangePointDetection, ConstantHazard, StudentT
from numpy.typing import NDArray
from scipy.special import logsumexp

from tradeguard.criticality.indicators.changepoint import BOCPD, Cusum, RunLength, cusum_step
from tradeguard.criticality.window import Matrix, Window


def closes(returns: Matrix) -> Matrix:
    """Closes starting at 100 whose log returns are ``returns``."""
    log_prices = np.vstack([np.zeros((1, returns.shape[1])), np.cumsum(returns, axis=0)])
    return np.asarray(100.0 * np.exp(log_prices))


def window(close: Matrix, new: int = 1) -> Window:
    """A window of closes only (the changepoint indicators read nothing else)."""
    nan = np.full_like(close, np.nan)
    symbols = tuple(f"A{j}" for j in range(close.shape[1]))
    return Window(close, nan, nan, nan, nan, nan, symbols, short=20, new=new)


def siegmund_arl(k: float, h: float, mean: float = 0.0) -> float:
    """Siegmund's (1985) approximation of a one-sided upper CUSUM's average run length for
    N(mean, 1) observations, reference value k and threshold h."""
    b = h + 1.166
    d = mean - k
    if d == 0:
        return b * b
    return (math.exp(-2 * d * b) + 2 * d * b - 1) / (2 * d * d)


def run_lengths(
    rng: np.random.Generator,
    runs: int,
    k: float,
    h: float,
    mean: float = 0.0,
    *,
    one_sided: bool = False,
) -> NDArray[np.int64]:
    """Observations until each of ``runs`` independent CUSUMs (started at zero) first signals
    on N(mean, 1) data; ``one_sided`` keeps the lower sum at zero so only the upper signals."""
    length = np.zeros(runs, dtype=np.int64)
    active = np.arange(runs)
    high, low = np.zeros(runs), np.zeros(runs)
    t = 0
    while active.size:
        t += 1
        if one_sided:
            low = np.full(active.size, -np.inf)
        high, low, alarm = cusum_step(high, low, rng.normal(mean, 1.0, active.size), k, h)
        done = alarm > 0
        length[active[done]] = t
        active, high, low = active[~done], high[~done], low[~done]
    return length


class FixedStudentT(StudentT):  # type: ignore[misc]
    """bocd 0.1.2's StudentT with its beta update corrected: it adds kappa where the
    Normal-Gamma posterior adds beta (github.com/y-bar/bocd issue #34, fix in open PR #35)."""

    def update_params(self, x: float) -> None:
        beta = self.betaT + self.kappaT * (x - self.muT) ** 2 / (2 * (self.kappaT + 1))
        self.betaT = np.concatenate([self.beta0, beta])
        self.muT = np.concatenate([self.mu0, (self.kappaT * self.muT + x) / (self.kappaT + 1)])
        self.kappaT = np.concatenate([self.kappa0, self.kappaT + 1])
        self.alphaT = np.concatenate([self.alpha0, self.alphaT + 0.5])


class TestRunLength:
    def test_map_run_length_when_mean_shifts_three_sigma_then_resets_within_five_observations(
        self,
    ) -> None:
        """Five observations after a 3-sigma mean shift, the most likely run length of every
        series is short again (it was the whole history before the shift)."""
        rng = np.random.default_rng(1)
        x = rng.normal(size=(305, 50))
        x[300:] += 3.0
        model = RunLength(50, hazard=1 / 250, max_run=500)
        for row in x[:300]:
            model.update(row)
        before = model.most_likely()
        for row in x[300:]:
            model.update(row)
        after = model.most_likely()

        assert np.median(before) == 300
        # A run of 5 starts exactly at the shift. A few series, whose last draws before it ran
        # high, date the change some observations earlier (measured: at most 13); none keeps
        # the pre-shift run of 300.
        assert np.median(after) == 5
        assert after.max() < 20

    def test_recent_change_when_iid_noise_then_raises_no_alarm(self) -> None:
        """On 2,000 iid N(0, 1) observations the probability of a change within the last five
        observations, averaged over 8 series as the indicator does, stays below 0.5."""
        rng = np.random.default_rng(2)
        x = rng.normal(size=(2000, 8))
        model = RunLength(8, hazard=1 / 250, max_run=500)
        recent = []
        for row in x:
            model.update(row)
            recent.append(model.recent_change(5))
        after_start = np.array(recent)[10:]  # the first 5 runs cannot tell a change from the start

        # Measured: the 8-series average peaks near 0.10 (3 seeds).
        assert after_start.mean(axis=1).max() < 0.5
        # One series alone does cross 0.5 now and then (a 3-sigma draw is better explained by a
        # fresh, wide Student t), but rarely: measured at most 0.2% of the time per series.
        assert (after_start > 0.5).mean(axis=0).max() < 0.01
        assert after_start.mean() < 0.03  # measured 0.015

    def test_posterior_when_updated_then_stays_normalized(self) -> None:
        """After every update, including those that fold the tail, the run-length posterior of
        each series sums to one."""
        rng = np.random.default_rng(3)
        x = rng.normal(size=(120, 4))
        x[60:] += 2.0
        model = RunLength(4, hazard=1 / 100, max_run=40)
        for row in x:
            model.update(row)
            # Only rounding: logsumexp normalization leaves about 1e-15.
            np.testing.assert_allclose(np.exp(model.log_p).sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert model.log_p.shape == (4, 41)

    def test_truncation_when_run_exceeds_max_run_then_tail_mass_is_kept(self) -> None:
        """Folding run lengths beyond ``max_run`` into the last one keeps their mass: exactly at
        the first fold, and close to an untruncated posterior afterwards."""
        rng = np.random.default_rng(5)
        x = rng.normal(size=(400, 3))
        short = RunLength(3, hazard=1 / 250, max_run=50)
        full = RunLength(3, hazard=1 / 250, max_run=10_000)
        for t, row in enumerate(x):
            short.update(row)
            full.update(row)
            if t == 50:  # the first fold: nothing approximated yet
                tail = np.exp(logsumexp(full.log_p[:, 50:], axis=1))
                np.testing.assert_allclose(np.exp(short.log_p[:, -1]), tail, rtol=1e-12)
                np.testing.assert_allclose(short.log_p[:, :50], full.log_p[:, :50], rtol=1e-12)

        # Later the folded bin predicts with run length 50's statistics instead of a mixture of
        # longer runs, so it drifts a little: measured 0.01 on the tail mass, 0.004 on the
        # recent-change probability after 400 observations.
        tail = np.exp(logsumexp(full.log_p[:, 50:], axis=1))
        np.testing.assert_allclose(np.exp(short.log_p[:, -1]), tail, atol=0.05)
        np.testing.assert_allclose(short.recent_change(5), full.recent_change(5), atol=0.02)

    def test_posterior_when_compared_with_bocd_package_then_identical(self) -> None:
        """On the same series with a mean shift, the run-length posterior equals that of the
        bocd package (Student t predictive, Normal-Gamma(0, 1, 1, 1) prior, hazard 1/250) at
        every step."""
        rng = np.random.default_rng(0)
        x = rng.normal(size=400)
        x[250:] += 3.0
        reference = BayesianOnlineChangePointDetection(
            ConstantHazard(250), FixedStudentT(mu=0, kappa=1, alpha=1, beta=1)
        )
        model = RunLength(1, hazard=1 / 250, max_run=1000)  # no truncation: bocd has none
        worst = 0.0
        for value in x:
            reference.update(value)
            model.update(np.array([value]))
            worst = max(worst, float(np.abs(reference.belief - np.exp(model.log_p[0])).max()))

        # The same recursion in linear (bocd) and log (ours) space: only rounding separates
        # them (measured 4e-15).
        assert worst < 1e-10


class TestBOCPD:
    def test_compute_when_fed_cycle_by_cycle_then_matches_run_length_on_standardized_stream(
        self,
    ) -> None:
        """Fed a rolling window one new row per cycle, the indicator equals a RunLength fed the
        whole stream standardized by the first window's mean and deviation."""
        rng = np.random.default_rng(4)
        returns = rng.normal(0.0, 0.01, size=(400, 3))
        close = closes(returns)
        indicator = BOCPD(hazard=1 / 100, max_run=80, recent=5)
        values = [indicator.compute(window(close[:201]))]
        values += [indicator.compute(window(close[t - 200 : t + 1])) for t in range(201, 401)]

        r = np.diff(np.log(close), axis=0)
        centre, scale = r[:200].mean(axis=0), r[:200].std(axis=0)
        model = RunLength(3, hazard=1 / 100, max_run=80)
        expected = []
        for t, row in enumerate((r - centre) / scale):
            model.update(row)
            if t >= 199:
                expected.append(float(model.recent_change(5).mean()))
        # Same arithmetic in the same order: only rounding of the rebuilt log returns.
        np.testing.assert_allclose(np.array(values, dtype=float), expected, rtol=1e-9, atol=1e-12)

    def test_compute_when_all_assets_shift_then_probability_rises_above_half(self) -> None:
        """Quiet on iid returns, the changepoint probability exceeds 0.5 within five cycles of a
        3-sigma mean shift in every asset."""
        rng = np.random.default_rng(6)
        returns = rng.normal(0.0, 0.01, size=(500, 6))
        returns[450:] += 0.03
        close = closes(returns)
        indicator = BOCPD()
        indicator.compute(window(close[:251]))
        values = [indicator.compute(window(close[t - 250 : t + 1])) for t in range(251, 501)]
        calm, shifted = np.array(values[:199]), np.array(values[199:])

        assert calm.max() < 0.5
        assert shifted[4] > 0.5  # the fifth shifted observation


class TestCusumStep:
    def test_sums_when_compared_with_plain_loop_then_identical(self) -> None:
        """Vectorized over series, the sums and signals equal a scalar loop of Page's two-sided
        CUSUM with restart at zero after a signal."""
        rng = np.random.default_rng(7)
        z = rng.normal(size=(1000, 3))
        z[500:, 1] += 1.0
        k, h = 0.5, 4.0
        high, low = np.zeros(3), np.zeros(3)
        sums, alarms = [], []
        for row in z:
            high, low, alarm = cusum_step(high, low, row, k, h)
            sums.append(np.concatenate([high, low]))
            alarms.append(alarm)

        expected_sums, expected_alarms = [], []
        up, down = [0.0] * 3, [0.0] * 3
        for row in z.tolist():
            signals = []
            for j, value in enumerate(row):
                up[j] = max(0.0, up[j] + value - k)
                down[j] = max(0.0, down[j] - value - k)
                signal = up[j] > h or down[j] > h
                if signal:
                    up[j] = down[j] = 0.0
                signals.append(float(signal))
            expected_sums.append(up + down)
            expected_alarms.append(signals)

        # The same floating-point operations in the same order: exact.
        np.testing.assert_array_equal(np.array(sums), np.array(expected_sums))
        np.testing.assert_array_equal(np.array(alarms), np.array(expected_alarms))
        assert np.array(alarms).sum() > 0

    def test_run_length_when_in_control_one_sided_then_near_siegmund(self) -> None:
        """Under N(0, 1) with k = 0.5 and h = 4, the upper CUSUM's average run length is near
        Siegmund's approximation (about 338)."""
        lengths = run_lengths(np.random.default_rng(8), 10_000, 0.5, 4.0, one_sided=True)
        # 10,000 runs of a near-geometric length: standard error about 1% of the mean, so 5%
        # is 3 standard errors plus Siegmund's own error of 1-2% at these parameters.
        assert abs(lengths.mean() / siegmund_arl(0.5, 4.0) - 1) < 0.05

    def test_run_length_when_in_control_two_sided_then_half_of_one_sided(self) -> None:
        """Under N(0, 1) the two-sided CUSUM's average run length is near 1 / (1/ARL+ + 1/ARL-),
        half of Siegmund's one-sided value (about 169)."""
        lengths = run_lengths(np.random.default_rng(9), 10_000, 0.5, 4.0)
        expected = 1 / (2 / siegmund_arl(0.5, 4.0))
        # As above: 1% standard error, 3 of them plus the approximation's 1-2% (measured -1%).
        assert abs(lengths.mean() / expected - 1) < 0.05

    def test_run_length_when_mean_shifts_one_sigma_then_detects_within_expected_delay(
        self,
    ) -> None:
        """After a 1-sigma mean shift the CUSUM signals after about 8.3 observations on average
        (Siegmund), and almost always within 25."""
        lengths = run_lengths(np.random.default_rng(10), 10_000, 0.5, 4.0, mean=1.0)
        # Delays have a standard deviation near 4, so the mean's standard error is 0.5%; 5%
        # leaves room for the approximation (Montgomery's table gives 8.38 against 8.34).
        assert abs(lengths.mean() / siegmund_arl(0.5, 4.0, mean=1.0) - 1) < 0.05
        assert np.quantile(lengths, 0.99) <= 25  # measured 25


class TestCusum:
    def test_compute_when_first_window_ends_in_a_shift_then_every_asset_signals(self) -> None:
        """Seen for the first time, a window whose last five returns jump by 3 sigma in every
        asset signals in all of them."""
        rng = np.random.default_rng(0)
        returns = rng.normal(0.0, 0.01, size=(300, 4))
        returns[-5:] += 0.03

        assert Cusum().compute(window(closes(returns))) == 1.0

    def test_compute_when_fed_cycle_by_cycle_then_matches_plain_loop(self) -> None:
        """Fed a rolling window one new row per cycle, the share of assets that signalled in
        the last five observations equals a scalar loop that standardizes each new return by
        the window before it."""
        rng = np.random.default_rng(12)
        returns = rng.normal(0.0, 0.01, size=(500, 5))
        returns[350:, :3] += 0.012  # a 1.2-sigma shift in three assets
        close = closes(returns)
        indicator = Cusum(k=0.5, h=5.0, recent=5)
        values = [indicator.compute(window(close[:201]))]
        values += [indicator.compute(window(close[t - 200 : t + 1])) for t in range(201, 501)]

        r = np.diff(np.log(close), axis=0)
        up, down, since = [0.0] * 5, [0.0] * 5, [math.inf] * 5
        expected = []
        stream = [(r[:200], r[1:200])] + [(r[t - 199 : t], r[t : t + 1]) for t in range(200, 500)]
        for history, rows in stream:
            centre, scale = history.mean(axis=0), history.std(axis=0)
            for row in rows:
                for j in range(5):
                    z = (row[j] - centre[j]) / scale[j]
                    up[j] = max(0.0, up[j] + z - 0.5)
                    down[j] = max(0.0, down[j] - z - 0.5)
                    if up[j] > 5.0 or down[j] > 5.0:
                        up[j] = down[j] = 0.0
                        since[j] = 0.0
                    else:
                        since[j] += 1
            expected.append(sum(s < 5 for s in since) / 5)

        # A share of five assets: any difference would be a whole signal, not rounding.
        assert values == expected
        assert max(expected[150:]) > 0  # the shifted assets did signal
