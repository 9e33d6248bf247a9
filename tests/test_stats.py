"""Rolling statistics checked against numpy and brute force on seeded random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradeguard.stats import CorrelationWindow, Extreme, Magnitudes, RollingVolatility, WindowMax


def numpy_ratio(returns: list[float], window: int, baseline: int) -> float:
    """Sample std (ddof=1) of the last ``window`` returns over that of the ``baseline`` before."""
    recent = np.array(returns[-window:])
    base = np.array(returns[:-window][-baseline:])
    return float(np.std(recent, ddof=1) / np.std(base, ddof=1))


def numpy_mean_correlation(columns: list[list[float]]) -> float:
    """Mean off-diagonal entry of ``np.corrcoef`` over the given series."""
    corr = np.corrcoef(np.array(columns))
    n = corr.shape[0]
    return float(corr[~np.eye(n, dtype=bool)].mean())


class TestRollingVolatility:
    """Recent vs baseline realized volatility from running sums."""

    def test_ratio_when_windows_not_full_then_none(self) -> None:
        """The ratio is None until the recent window and ``min_baseline`` returns are in."""
        vol = RollingVolatility(window=5, baseline=10)
        rng = np.random.default_rng(7)
        seen = []
        for ret in rng.normal(0.0, 0.01, 12):
            vol.add(float(ret))
            seen.append(vol.ratio(min_baseline=4))
        assert seen[:8] == [None] * 8
        assert all(r is not None for r in seen[8:])

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_ratio_when_random_regimes_then_matches_numpy(self, seed: int) -> None:
        """Every ratio equals numpy's std(ddof=1) quotient over the same two windows."""
        window, baseline, min_baseline = 20, 200, 50
        rng = np.random.default_rng(seed)
        scales = np.repeat(rng.uniform(0.001, 0.05, 15), 100)  # volatility regimes
        returns = (rng.normal(0.0002, 1.0, scales.size) * scales).tolist()
        vol = RollingVolatility(window, baseline)
        compared = 0
        for i, ret in enumerate(returns, start=1):
            vol.add(ret)
            ratio = vol.ratio(min_baseline)
            if i < window + min_baseline:
                assert ratio is None
                continue
            assert ratio == pytest.approx(numpy_ratio(returns[:i], window, baseline), rel=1e-6)
            compared += 1
        assert compared == len(returns) - window - min_baseline + 1

    def test_ratio_when_baseline_flat_and_recent_moves_then_infinite(self) -> None:
        """A flat baseline with a moving recent window gives an unbounded ratio."""
        vol = RollingVolatility(window=3, baseline=5)
        for ret in [0.0] * 5 + [0.01, -0.01, 0.02]:
            vol.add(ret)
        assert vol.ratio(min_baseline=5) == math.inf

    def test_ratio_when_both_windows_flat_from_start_then_zero(self) -> None:
        """No movement at all is a zero ratio, not a breach-worthy infinity."""
        vol = RollingVolatility(window=3, baseline=5)
        for _ in range(8):
            vol.add(0.0)
        assert vol.ratio(min_baseline=5) == 0.0

    @pytest.mark.parametrize("seed", [0, 3])
    def test_ratio_when_price_freezes_after_activity_then_zero_like_numpy(self, seed: int) -> None:
        """Once every return in both windows is 0 the ratio is 0 (numpy: both stds are 0)."""
        window, baseline = 20, 200
        vol = RollingVolatility(window, baseline)
        rng = np.random.default_rng(seed)
        for ret in rng.normal(0.0, 0.01, 500):
            vol.add(float(ret))
        for _ in range(window + baseline):
            vol.add(0.0)
        assert np.std(np.zeros(window), ddof=1) == 0.0
        assert vol.ratio(min_baseline=50) == 0.0

    def test_ratio_when_baseline_full_then_oldest_returns_leave_it(self) -> None:
        """Returns older than window + baseline no longer affect the ratio."""
        window, baseline = 2, 3
        vol = RollingVolatility(window, baseline)
        returns = [0.5, -0.5, 0.001, -0.001, 0.001, 0.01, -0.01]
        for ret in returns:
            vol.add(ret)
        assert vol.ratio(min_baseline=3) == pytest.approx(
            numpy_ratio(returns, window, baseline), rel=1e-9
        )


class TestCorrelationWindow:
    """Average pairwise correlation over the last ``window`` return snapshots."""

    def test_value_when_below_min_observations_then_none(self) -> None:
        """Fewer snapshots than ``min_observations`` give no correlation."""
        corr = CorrelationWindow(window=10)
        for a, b in [(0.01, 0.02), (-0.01, -0.01), (0.02, 0.03)]:
            corr.add({"A": a, "B": b})
        assert corr.value(min_observations=4) is None
        corr.add({"A": 0.0, "B": 0.01})
        assert corr.value(min_observations=4) is not None

    @pytest.mark.parametrize("seed", [11, 12, 13])
    def test_value_when_random_returns_then_matches_numpy_corrcoef(self, seed: int) -> None:
        """The value is the mean off-diagonal of numpy's correlation matrix."""
        rng = np.random.default_rng(seed)
        common = rng.normal(0.0, 0.01, 30)
        symbols = ["A", "B", "C", "D"]
        series = {s: (common * rng.uniform(0, 2) + rng.normal(0, 0.01, 30)) for s in symbols}
        corr = CorrelationWindow(window=30)
        for i in range(30):
            corr.add({s: float(series[s][i]) for s in symbols})
        expected = numpy_mean_correlation([series[s].tolist() for s in symbols])
        assert corr.value(min_observations=3) == pytest.approx(expected, rel=1e-9, abs=1e-12)

    def test_value_when_window_rolls_then_only_last_snapshots_count(self) -> None:
        """Snapshots older than ``window`` are forgotten."""
        rng = np.random.default_rng(21)
        data = rng.normal(0.0, 0.01, (40, 3))
        corr = CorrelationWindow(window=15)
        for row in data:
            corr.add({"A": float(row[0]), "B": float(row[1]), "C": float(row[2])})
        expected = numpy_mean_correlation(data[-15:].T.tolist())
        assert corr.value(min_observations=3) == pytest.approx(expected, rel=1e-9, abs=1e-12)

    def test_value_when_symbol_missing_from_a_snapshot_then_it_is_left_out(self) -> None:
        """Only symbols present in every snapshot of the window take part."""
        rng = np.random.default_rng(31)
        data = rng.normal(0.0, 0.01, (10, 3))
        corr = CorrelationWindow(window=10)
        for i, row in enumerate(data):
            snapshot = {"A": float(row[0]), "B": float(row[1])}
            if i != 4:
                snapshot["C"] = float(row[2])
            corr.add(snapshot)
        expected = numpy_mean_correlation(data[:, :2].T.tolist())
        assert corr.value(min_observations=3) == pytest.approx(expected, rel=1e-9, abs=1e-12)

    def test_value_when_missing_snapshot_rolls_out_then_symbol_rejoins(self) -> None:
        """A symbol missing only from a snapshot that left the window counts again."""
        rng = np.random.default_rng(32)
        data = rng.normal(0.0, 0.01, (8, 3))
        corr = CorrelationWindow(window=5)
        corr.add({"A": 0.5, "B": -0.5})  # C absent; rolls out below
        for row in data:
            corr.add({"A": float(row[0]), "B": float(row[1]), "C": float(row[2])})
        expected = numpy_mean_correlation(data[-5:].T.tolist())
        assert corr.value(min_observations=3) == pytest.approx(expected, rel=1e-9, abs=1e-12)

    def test_value_when_a_series_is_flat_then_it_is_dropped(self) -> None:
        """A symbol whose return never changes has no correlation and is excluded."""
        rng = np.random.default_rng(41)
        data = rng.normal(0.0, 0.01, (12, 2))
        corr = CorrelationWindow(window=12)
        for row in data:
            corr.add({"A": float(row[0]), "B": float(row[1]), "FLAT": 0.001})
        expected = numpy_mean_correlation(data.T.tolist())
        assert corr.value(min_observations=3) == pytest.approx(expected, rel=1e-9, abs=1e-12)

    def test_value_when_series_froze_and_its_moves_left_the_window_then_it_is_dropped(
        self,
    ) -> None:
        """A symbol whose returns in the window are all exactly 0 is flat and excluded, as in
        numpy, even when it moved before: B and C move identically, so the value is 1."""
        rng = np.random.default_rng(7)
        corr = CorrelationWindow(window=10)
        rows = []
        for i in range(1, 26):
            a = float(rng.normal(0.0, 0.02)) if i < 14 else 0.0
            b = float(rng.normal(0.0, 0.01))
            c = b if i >= 14 else float(rng.normal(0.0, 0.01))
            corr.add({"A": a, "B": b, "C": c})
            rows.append((a, b, c))
        last = np.array(rows[-10:])
        assert np.ptp(last[:, 0]) == 0.0  # A is flat over the window
        expected = numpy_mean_correlation(last[:, 1:].T.tolist())
        assert expected == pytest.approx(1.0)
        assert corr.value(min_observations=3) == pytest.approx(expected, rel=1e-9)

    def test_value_when_only_one_series_moves_then_none(self) -> None:
        """With one moving series left there is no pair to correlate."""
        corr = CorrelationWindow(window=5)
        for ret in (0.01, -0.02, 0.03, 0.0):
            corr.add({"A": ret, "FLAT": 0.0})
        assert corr.value(min_observations=3) is None

    def test_value_when_fewer_than_two_common_symbols_then_none(self) -> None:
        """Snapshots that share fewer than two symbols give no correlation."""
        corr = CorrelationWindow(window=5)
        for i in range(5):
            corr.add({"A": 0.01 * i, "B" if i % 2 else "C": 0.02 * i})
        assert corr.value(min_observations=3) is None

    @pytest.mark.parametrize("seed", [51, 52, 53, 54])
    def test_value_when_ticks_and_snapshots_mix_then_matches_brute_force(self, seed: int) -> None:
        """One-symbol ticks (which touch no matrix), partial and full snapshots in any order,
        across rebuilds: each value is numpy's over the symbols present in every snapshot of
        the window."""
        rng = np.random.default_rng(seed)
        symbols = [f"S{n}" for n in range(8)]
        window, held, compared = 12, [], 0
        corr = CorrelationWindow(window)
        for _ in range(300):
            kind = rng.choice(3, p=[0.08, 0.12, 0.8])
            if kind == 0:
                chosen = [symbols[rng.integers(len(symbols))]]
            elif kind == 1:
                chosen = [s for s in symbols if rng.random() < 0.7]
            else:
                chosen = list(rng.permutation(symbols))  # full, in any order
            snapshot = {s: float(rng.normal(0.0, 0.01)) for s in chosen}
            if not snapshot:
                continue
            corr.add(snapshot)
            held = [*held, snapshot][-window:]
            common = [s for s in symbols if all(s in row for row in held)]
            expected = None
            if len(held) >= 3 and len(common) >= 2:
                expected = numpy_mean_correlation([[row[s] for row in held] for s in common])
            found = corr.value(min_observations=3)
            assert (found is None) == (expected is None)
            if expected is not None:
                assert found == pytest.approx(expected, rel=1e-9, abs=1e-12)
                compared += 1
        assert compared > 20  # the mix left windows with a common set to compare

    def test_add_when_empty_snapshot_then_ignored(self) -> None:
        """An empty snapshot neither counts as an observation nor empties the common set."""
        corr = CorrelationWindow(window=5)
        for a, b in [(0.01, 0.01), (-0.01, -0.01)]:
            corr.add({"A": a, "B": b})
        corr.add({})
        assert corr.value(min_observations=3) is None
        corr.add({"A": 0.02, "B": 0.02})
        assert corr.value(min_observations=3) == pytest.approx(1.0)


class TestWindowMax:
    """Maximum over the last ``seconds`` by a monotonic deque."""

    @pytest.mark.parametrize("seed", [101, 102, 103, 104])
    def test_add_when_random_samples_then_matches_brute_force(self, seed: int) -> None:
        """Each returned maximum equals the max of samples no older than ``seconds``."""
        rng = np.random.default_rng(seed)
        seconds = 60.0
        gaps = rng.choice([0.0, 1.0, 5.0, 30.0, 60.0, 61.0], size=2000)
        times = (1_767_225_600.0 + np.cumsum(gaps)).tolist()
        values = rng.integers(90, 110, size=2000).astype(float).tolist()  # many ties
        wmax = WindowMax(seconds)
        for i, (t, v) in enumerate(zip(times, values, strict=True)):
            expected = max(values[j] for j in range(i + 1) if times[j] >= t - seconds)
            assert wmax.add(t, v) == expected

    def test_add_when_sample_exactly_window_old_then_still_counts(self) -> None:
        """The window is closed at its far end: a sample exactly ``seconds`` old counts."""
        wmax = WindowMax(60.0)
        wmax.add(0.0, 100.0)
        assert wmax.add(60.0, 90.0) == 100.0
        assert wmax.add(60.5, 80.0) == 90.0

    def test_add_when_new_value_is_highest_then_returned(self) -> None:
        """A new high replaces older, lower samples."""
        wmax = WindowMax(60.0)
        wmax.add(0.0, 100.0)
        assert wmax.add(1.0, 120.0) == 120.0
        assert wmax.add(2.0, 110.0) == 120.0


class TestExtreme:
    """The lowest or highest value of a dict changed in place, by a lazy heap."""

    @pytest.mark.parametrize("highest", [False, True])
    def test_top_when_random_writes_then_matches_brute_force(self, highest: bool) -> None:
        """After every write (new keys, rewrites, repeats, ties) ``top`` is the dict's
        extreme, through the heap's compactions."""
        rng = np.random.default_rng(61)
        values: dict[str, float] = {}
        extreme = Extreme[str](highest=highest)
        for _ in range(3000):
            key = f"k{rng.integers(40)}"
            values[key] = float(rng.integers(0, 50))
            extreme.noted(values, key)
            found = extreme.top(values)
            assert found is not None
            pick = max if highest else min
            assert found[1] == pick(values.values())
            assert values[found[0]] == found[1]

    def test_top_when_dict_replaced_then_follows_the_new_one(self) -> None:
        """A view whose dict was replaced whole (or never noted) is read from that dict."""
        extreme = Extreme[str]()
        assert extreme.top({}) is None
        first = {"A": 5.0}
        extreme.noted(first, "A")
        assert extreme.top({"B": 9.0, "C": 2.0}) == ("C", 2.0)


class TestMagnitudes:
    """Keys by the magnitude of a value: a range names every key inside it."""

    def test_within_when_random_values_then_never_misses_and_stays_near(self) -> None:
        """Every key with a value in the range is named; any other is within the resolution
        of it; moved and dropped keys are found where they are now."""
        rng = np.random.default_rng(71)
        resolution = 1e-3
        index = Magnitudes[str](resolution)
        values: dict[str, float] = {}
        for step in range(4000):
            key = f"k{rng.integers(300)}"
            if rng.random() < 0.1:
                values.pop(key, None)
                index.set(key, None)
            else:
                values[key] = float(10 ** rng.uniform(0, 6))
                index.set(key, values[key])
            if step % 50:
                continue
            lo = float(10 ** rng.uniform(0, 6))
            hi = lo * float(10 ** rng.uniform(0, 2))
            named = index.within(lo, hi)
            assert len(named) == len(set(named))
            inside = {k for k, v in values.items() if lo <= v <= hi}
            assert inside <= set(named)
            for k in set(named) - inside:
                assert lo * (1 - 2 * resolution) <= values[k] <= hi * (1 + 2 * resolution)

    def test_within_when_unbounded_or_empty_range_then_as_asked(self) -> None:
        """An infinite top takes everything above the bottom; an empty or infinite range
        names nothing; non-finite values are not indexed."""
        index = Magnitudes[str](1e-3)
        for key, value in {"a": 1.0, "b": 100.0, "c": math.inf}.items():
            index.set(key, value)
        assert index.within(50.0, math.inf) == ["b"]
        assert index.within(math.inf, math.inf) == []
        assert index.within(5.0, 1.0) == []
        assert sorted(index.within(0.0, 1e9)) == ["a", "b"]
