"""The monitor as a whole: warming up, the score on a calm and a crashing market, its state."""

from __future__ import annotations

import math

import pytest

from tests.criticality.markets import market
from tradeguard.config import CriticalityConfig
from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.monitor import Bar, CriticalityMonitor
from tradeguard.criticality.score import MIN_HISTORY, IndicatorReading, Score
from tradeguard.criticality.window import Window

T0 = 1_767_225_600.0
CONFIG = CriticalityConfig(window=300, long_window=120, min_observations=120, percentile_window=300)


def run(monitor: CriticalityMonitor, rows: list[dict[str, Bar]]) -> list[float | None]:
    scores = []
    for i, bars in enumerate(rows):
        monitor.observe(T0 + 60 * i, bars)
        scores.append(monitor.evaluate(T0 + 60 * i).score)
    return scores


@pytest.fixture(scope="module")
def scores() -> list[float | None]:
    return run(CriticalityMonitor(CONFIG), market(calm=700, crash=30))


class TestScoreOnMarkets:
    def test_warm_up_when_fewer_than_min_observations_then_no_score(
        self, scores: list[float | None]
    ) -> None:
        """No score until the window holds min_observations: a half-built history means little."""
        assert all(s is None for s in scores[: CONFIG.min_observations - 1])
        assert scores[CONFIG.min_observations] is not None

    def test_calm_when_assets_move_independently_then_rarely_above_threshold(
        self, scores: list[float | None]
    ) -> None:
        """Independent 1% moves: the score stays low (it is a rank of the monitor's own past)."""
        calm = [s for s in scores[400:700] if s is not None]
        assert sum(s > 0.30 for s in calm) / len(calm) < 0.02
        assert sum(calm) / len(calm) < 0.15

    def test_crash_when_one_factor_drives_everything_then_crosses_within_days(
        self, scores: list[float | None]
    ) -> None:
        """A falling, volatile common factor with surging volume crosses 0.30 within 5 cycles."""
        crash = scores[700:705]
        assert any(s is not None and s > 0.30 for s in crash), crash


class TestCycles:
    def test_evaluate_when_nothing_new_then_last_reading_returned(self) -> None:
        """A cycle without a new observation changes nothing (staleness is the guard's rule)."""
        monitor = CriticalityMonitor(CONFIG)
        run(monitor, market(calm=150, crash=0))
        last = monitor.evaluate(T0 + 10_000)
        assert monitor.evaluate(T0 + 20_000) is last

    def test_window_when_asset_joins_late_then_left_out_until_its_history_is_complete(
        self,
    ) -> None:
        """Cross-sectional measures need every asset on every row: a newcomer waits."""
        monitor = CriticalityMonitor(CONFIG)
        rows = market(calm=10, crash=0, assets=3)
        for i, bars in enumerate(rows):
            extra = {"NEW": Bar(50.0)} if i >= 5 else {}
            monitor.observe(T0 + i, {**bars, **extra})
        window = monitor.panel.window(5, 1)
        assert window is not None and window.symbols == ("A0", "A1", "A2")

    def test_window_when_ring_wraps_then_rows_stay_in_time_order(self) -> None:
        """Past its size the panel keeps the newest rows, oldest first."""
        monitor = CriticalityMonitor(CONFIG)
        for i in range(CONFIG.window + 7):
            monitor.observe(T0 + i, {"A": Bar(100.0 + i)})
        window = monitor.panel.window(5, 1)
        assert window is not None
        assert window.close[0, 0] == 107.0 and window.close[-1, 0] == 100.0 + CONFIG.window + 6

    def test_indicator_when_data_degenerate_then_unmeasurable_not_stress(self) -> None:
        """Prices that never move give no measurable indicator and no score, not a false alarm."""
        monitor = CriticalityMonitor(CONFIG)
        for i in range(200):
            monitor.observe(T0 + i, {"A": Bar(100.0), "B": Bar(50.0)})
        reading = monitor.evaluate(T0 + 200)
        assert reading.score is None
        assert all(r.contribution is None or r.contribution == 0 for r in reading.indicators)

    def test_indicator_when_it_returns_nan_then_treated_as_unmeasurable(self) -> None:
        """A NaN from an indicator never reaches the score as a number."""

        class Broken(Indicator):
            name = "broken"
            family = "test"
            label = "returns NaN"

            def compute(self, window: Window) -> float | None:
                return math.nan

        monitor = CriticalityMonitor(CONFIG)
        monitor.indicators = [Broken()]
        run(monitor, market(calm=130, crash=0))
        reading = monitor.evaluate(T0 + 1)
        assert reading.indicators[0].raw is None and reading.score is None


class TestScore:
    def test_rank_when_history_short_then_none(self) -> None:
        """A percentile of fewer than MIN_HISTORY past values is not used."""
        score = Score(CONFIG)
        ranks = [score.rank("x", float(v), True) for v in range(MIN_HISTORY + 1)]
        assert ranks[:MIN_HISTORY] == [None] * MIN_HISTORY and ranks[-1] == 1.0

    @pytest.mark.parametrize(("high_is_stress", "expected"), [(True, 0.0), (False, 1.0)])
    def test_rank_when_direction_given_then_low_values_rank_as_stress_for_low_indicators(
        self, high_is_stress: bool, expected: float
    ) -> None:
        """For entropy and depth, the lowest value in the history is the most stressed."""
        score = Score(CONFIG)
        for v in range(1, 41):
            score.rank("x", float(v), high_is_stress)
        assert score.rank("x", 0.0, high_is_stress) == expected

    @pytest.mark.parametrize(
        ("stress", "probability", "expected"),
        [
            (0.5, False, 0.0),
            (0.8, False, 0.0),
            (0.9, False, 0.5),
            (1.0, False, 1.0),
            (0.3, True, 0.3),
        ],
    )
    def test_contribution_when_ranked_then_only_above_calm_counts(
        self, stress: float, probability: bool, expected: float
    ) -> None:
        """Ranks and CDFs count above calm_quantile (0.8); probabilities count as they are."""
        assert Score(CONFIG).contribution(stress, probability) == pytest.approx(expected)

    def test_combine_when_some_unmeasured_then_weighted_mean_of_the_rest(self) -> None:
        """Weights apply to the indicators measured this cycle only."""
        config = CONFIG.model_copy(update={"weights": {"vpin": 3.0}})
        score = Score(config)
        readings = [
            IndicatorReading("vpin", "", 1.0, 1.0, 1.0, 3.0),
            IndicatorReading("hurst", "", 0.5, 0.5, 0.0, 1.0),
            IndicatorReading("amihud", "", None, None, None, 1.0),
        ]
        assert score.combine(readings) == pytest.approx(0.75)
        assert score.combine([readings[2]]) is None
