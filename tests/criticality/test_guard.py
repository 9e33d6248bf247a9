"""The monitor inside the guard: bars at the edge, the score as a breach, staleness, failure."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.conftest import MakeGuard
from tests.criticality.markets import market
from tradeguard import Guard, InvalidInput
from tradeguard.config import parse_config
from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.names import INDICATOR_NAMES
from tradeguard.criticality.window import Window
from tradeguard.errors import ConfigError
from tradeguard.testing import FakeClock

SMALL = {"window": 300, "long_window": 120, "min_observations": 120, "percentile_window": 300}


def bars_of(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {s: {k: v for k, v in b._asdict().items() if math.isfinite(v)} for s, b in row.items()}


def feed(guard: Guard, clock: FakeClock, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        clock.advance(60)
        guard.update_bars(bars_of(row))
        guard.criticality_tick()


@pytest.fixture
def monitored(make_guard: MakeGuard) -> Guard:
    # the guard's own price triggers would react to the crash first: off, to see the monitor
    quiet = {
        "volatility": {"limit": 3.0, "enabled": False},
        "correlation_spike": {"limit": 0.8, "enabled": False},
    }
    return make_guard(criticality=SMALL, triggers=quiet)


class TestBars:
    @pytest.mark.parametrize(
        ("bars", "words"),
        [
            ({"BTC": {"close": math.nan}}, "close must be finite"),
            ({"BTC": {"close": 100.0, "high": 90.0, "low": 95.0}}, "high 90 is below low 95"),
            ({"BTC": {"high": 100.0}}, "needs a close"),
            ({"BTC": {"close": 100.0, "volume": -1.0}}, "volume"),
            ({"BTC": {"close": 100.0, "depth": 3.0}}, r"unknown fields \['depth'\]"),
            ({"BTC": 100.0}, "must be a mapping"),
        ],
    )
    def test_bars_when_invalid_then_refused_and_book_halted(
        self, guard: Guard, bars: dict[str, Any], words: str
    ) -> None:
        """A bar that cannot be trusted is refused, and the book stops taking risk."""
        with pytest.raises(InvalidInput, match=words):
            guard.update_bars(bars)
        assert guard.portfolio_state == "soft_halt"

    def test_bars_when_valid_then_closes_count_as_prices(self, guard: Guard) -> None:
        """The closes are a price snapshot too: the pre-trade collar uses them."""
        guard.update_bars(
            {"BTC": {"close": 60_000.0, "high": 61_000.0, "low": 59_000.0, "volume": 10.0}}
        )
        assert guard.status()["portfolio"]["metrics"]["symbols"] == 1


class TestBreach:
    def test_score_when_past_threshold_then_soft_halt_naming_the_drivers(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """A crash drives the score past 0.30: the book is soft-halted by rule criticality,
        and the reason names the indicators behind it."""
        feed(monitored, clock, market(calm=500, crash=10))
        status = monitored.status()
        assert status["portfolio"]["state"] == "soft_halt"
        assert status["portfolio"]["reason"].startswith("criticality: criticality score")
        assert "driven by" in status["portfolio"]["reason"]
        reading = status["criticality"]
        assert reading["crossed"] and len(reading["indicators"]) == 15
        assert {"name", "raw", "stress", "contribution", "weight"} <= set(reading["indicators"][0])

    def test_score_when_reported_by_an_outside_monitor_then_judged_the_same(
        self, guard: Guard
    ) -> None:
        """A score from elsewhere (the seed's own monitor) goes through the same rule."""
        guard.update_portfolio_metrics(criticality=0.45)
        assert guard.portfolio_state == "soft_halt"
        with pytest.raises(InvalidInput):
            guard.update_portfolio_metrics(criticality=1.5)

    def test_action_when_configured_then_used(self, make_guard: MakeGuard) -> None:
        """The action is configurable: a hard halt here."""
        guard = make_guard(criticality={**SMALL, "action": "hard_halt"})
        guard.update_portfolio_metrics(criticality=0.9)
        assert guard.portfolio_state == "hard_halt"


class TestFailClosed:
    def test_market_when_observations_stop_then_criticality_stale_breach(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """Once the monitor has had data, its going quiet is a blind spot: a breach."""
        feed(monitored, clock, market(calm=5, crash=0))
        clock.advance(601)
        monitored.tick()
        assert "criticality_stale" in monitored.status()["portfolio"]["breaching"]

    def test_cycle_when_an_indicator_raises_then_book_halted(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """A cycle that fails is not skipped silently: the book stops taking risk."""

        class Exploding(Indicator):
            name = "exploding"
            family = "test"
            label = "raises"

            def compute(self, window: Window) -> float | None:
                raise RuntimeError("singular matrix")

        monitored.criticality.indicators.append(Exploding())
        feed(monitored, clock, market(calm=5, crash=0))
        assert monitored.portfolio_state == "soft_halt"
        assert "criticality monitor failed" in monitored.status()["portfolio"]["reason"]

    def test_cycle_when_no_bars_then_samples_the_price_feed(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """Without bars the monitor still watches: each cycle samples the last prices."""
        for i in range(5):
            clock.advance(60)
            monitored.update_prices({"A": 100.0 + i, "B": 50.0 - i})
            monitored.criticality_tick()
        assert monitored.criticality.panel.rows == 5


class TestConfig:
    @pytest.mark.parametrize(
        ("section", "words"),
        [
            ({"weights": {"vpn": 1.0}}, "unknown indicators ['vpn']"),
            ({"weights": {"vpin": -1.0}}, "weights must be >= 0"),
            (
                {"weights": dict.fromkeys(INDICATOR_NAMES, 0.0)},
                "at least one",
            ),
            ({"short_window": 300}, "short_window < long_window <= window"),
            ({"action": "halt_strategy"}, "soft_halt, hard_halt or emergency"),
            ({"avalanche_deploy_threshold": 30}, "write 0.3 for 30%"),
        ],
    )
    def test_criticality_when_invalid_then_config_error(
        self, section: dict[str, Any], words: str
    ) -> None:
        """Every mistake in the section is reported with its key path."""
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
            parse_config({"criticality": section})


class TestReviewFindings:
    def test_bars_when_sent_one_symbol_per_call_then_one_observation_per_cycle(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """A feed that calls update_bars per symbol still gives the monitor whole rows."""
        for row in market(calm=5, crash=0):
            clock.advance(60)
            for symbol, bar in bars_of(row).items():
                monitored.update_bars({symbol: bar})
            monitored.criticality_tick()
        window = monitored.criticality.panel.window(2, 1)
        assert window is not None and len(window.symbols) == 12 and window.close.shape[0] == 5

    def test_bars_when_one_symbol_misses_a_cycle_then_carried_not_dropped(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """A missing bar is carried forward (no volume) instead of blinding the cross-section."""
        rows = market(calm=6, crash=0)
        del rows[3]["A5"]
        feed(monitored, clock, rows)
        window = monitored.criticality.panel.window(2, 1)
        assert window is not None and "A5" in window.symbols
        assert window.volume[3, window.symbols.index("A5")] == 0.0

    def test_score_when_warmed_up_but_nothing_measurable_then_blind_breach(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Weights that leave only VPIN, on a feed without volume: the monitor is blind, and
        a blind monitor halts like a broken feed."""
        only_vpin = dict.fromkeys(INDICATOR_NAMES, 0.0) | {"vpin": 1.0}
        guard = make_guard(criticality={**SMALL, "weights": only_vpin})
        closes = [
            {s: {"close": b.close} for s, b in row.items()} for row in market(calm=130, crash=0)
        ]
        for row in closes:
            clock.advance(60)
            guard.update_bars(row)
            guard.criticality_tick()
        assert guard.portfolio_state == "soft_halt"
        assert "can measure no indicator: blind" in guard.status()["portfolio"]["reason"]

    def test_monitor_when_it_never_finishes_a_cycle_then_stale_breach(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """Bars arrive, but no cycle finishes (a hung or dead monitor thread): a breach."""
        for row in market(calm=12, crash=0):
            clock.advance(60)
            monitored.update_bars(bars_of(row))
        monitored.tick()
        assert "criticality_stale" in monitored.status()["portfolio"]["breaching"]

    def test_window_when_one_asset_never_moves_then_left_out_and_the_rest_measured(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """A pegged coin does not switch off the cross-sectional indicators for everyone."""
        rows = [
            {**row, "PEG": row["A0"]._replace(close=1.0, high=1.0, low=1.0)}
            for row in market(calm=150, crash=0)
        ]
        feed(monitored, clock, rows)
        reading = monitored.status()["criticality"]
        assert reading["assets"] == 12
        measured = {r["name"] for r in reading["indicators"] if r["raw"] is not None}
        assert {"absorption_ratio", "turbulence", "contagion", "bocpd"} <= measured

    def test_prices_when_bars_are_in_use_then_never_sampled_into_extra_rows(
        self, monitored: Guard, clock: FakeClock
    ) -> None:
        """Once bars feed the monitor, a cycle without a bar adds nothing (no zero-return rows
        from the price feed)."""
        feed(monitored, clock, market(calm=5, crash=0))
        monitored.update_prices({"A0": 123.0})
        monitored.criticality_tick()
        monitored.criticality_tick()
        assert monitored.criticality.panel.rows == 5

    @pytest.mark.parametrize(
        ("bar", "words"),
        [
            ({"close": 120.0, "high": 110.0, "low": 100.0}, "outside its range"),
            ({"close": 100.0, "bid": 100.2, "ask": 100.1}, "bid 100.2 is above ask 100.1"),
        ],
    )
    def test_bars_when_impossible_then_refused(
        self, guard: Guard, bar: dict[str, float], words: str
    ) -> None:
        """A close outside its range or a crossed quote is refused at the edge."""
        with pytest.raises(InvalidInput, match=words):
            guard.update_bars({"BTC": bar})

    def test_threshold_when_one_then_refused(self) -> None:
        """A threshold a score can never exceed is a config error, not a silent off switch."""
        with pytest.raises(ConfigError, match="would never fire"):
            parse_config({"criticality": {"avalanche_deploy_threshold": 1.0}})

    def test_status_when_read_from_another_process_then_stored_reading_shown(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A running guard stores its last reading: `status` elsewhere shows it."""
        running = make_guard(criticality=SMALL, breaker={"interval_seconds": 3600})
        running.start()
        try:
            feed(running, clock, market(calm=3, crash=0))
        finally:
            running.stop()
        reader = make_guard(criticality=SMALL)
        assert reader.status()["criticality"]["observations"] == 3
