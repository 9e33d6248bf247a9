"""The ledger's derivations: drawdowns, the trading day, velocity, margin, streaks, exposure,
rebasing and the baselines that survive a restart."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tradeguard.config import Triggers, parse_config
from tradeguard.ledger import Ledger

DAY = 86_400.0  # one trading day at the default rollover (midnight UTC)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a UTC midnight
SID = "s1"


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(Triggers())


class TestPortfolioDrawdown:
    """Portfolio peak equity and the drawdown from it."""

    def test_drawdown_when_equity_falls_from_peak_then_fraction_of_peak(
        self, ledger: Ledger
    ) -> None:
        """Drawdown is (peak - equity) / peak, with the peak the highest equity seen."""
        for equity in (100.0, 120.0, 90.0):
            ledger.update_portfolio_equity(equity, T0)
        assert ledger.portfolio.peak_equity == 120.0
        assert ledger.portfolio.drawdown == pytest.approx(0.25)

    def test_drawdown_when_new_high_then_zero(self, ledger: Ledger) -> None:
        """A new peak resets the drawdown to zero."""
        for equity in (100.0, 80.0, 130.0):
            ledger.update_portfolio_equity(equity, T0)
        assert ledger.portfolio.peak_equity == 130.0
        assert ledger.portfolio.drawdown == 0.0

    @pytest.mark.parametrize(
        ("equities", "expected"),
        [
            pytest.param((0.0,), 1.0, id="zero-equity"),
            pytest.param((-50.0, -10.0), 1.0, id="never-positive"),
            pytest.param((100.0, -20.0), 1.2, id="negative-after-positive"),
        ],
    )
    def test_drawdown_when_equity_not_positive_then_total_loss_or_worse(
        self, ledger: Ledger, equities: tuple[float, ...], expected: float
    ) -> None:
        """Equity that was never positive counts as total loss; below zero is more than 100%."""
        for equity in equities:
            ledger.update_portfolio_equity(equity, T0)
        assert ledger.portfolio.drawdown == pytest.approx(expected)


class TestDayRollover:
    """The trading day is the UTC calendar day; its start is the last equity before midnight."""

    def test_daily_loss_when_first_equity_then_it_is_the_day_start(self, ledger: Ledger) -> None:
        """The first equity ever seen starts the day: no loss yet."""
        ledger.update_portfolio_equity(100.0, T0 + 3600.0)
        assert ledger.portfolio.day == int(T0 // DAY)
        assert ledger.portfolio.day_start_equity == 100.0
        assert ledger.portfolio.daily_loss == 0.0

    def test_daily_loss_when_same_day_then_measured_from_day_start(self, ledger: Ledger) -> None:
        """Within a day the loss is (start - equity) / start; a gain is negative."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(96.0, T0 + 3600.0)
        assert ledger.portfolio.daily_loss == pytest.approx(0.04)
        ledger.update_portfolio_equity(105.0, T0 + 7200.0)
        assert ledger.portfolio.daily_loss == pytest.approx(-0.05)

    def test_day_start_when_midnight_passes_then_last_equity_before_midnight(
        self, ledger: Ledger
    ) -> None:
        """The new day starts from the last equity of the previous day, not the new reading."""
        ledger.update_portfolio_equity(100.0, T0 + 60.0)
        ledger.update_portfolio_equity(90.0, T0 + DAY - 1.0)
        ledger.update_portfolio_equity(88.2, T0 + DAY + 60.0)
        assert ledger.portfolio.day == int(T0 // DAY) + 1
        assert ledger.portfolio.day_start_equity == 90.0
        assert ledger.portfolio.daily_loss == pytest.approx(0.02)

    def test_day_start_when_update_exactly_at_midnight_then_new_day(self, ledger: Ledger) -> None:
        """A reading at 00:00:00 UTC belongs to the new day."""
        ledger.update_portfolio_equity(100.0, T0 + DAY - 0.5)
        ledger.update_portfolio_equity(99.0, T0 + DAY)
        assert ledger.portfolio.day == int(T0 // DAY) + 1
        assert ledger.portfolio.day_start_equity == 100.0
        assert ledger.portfolio.daily_loss == pytest.approx(0.01)

    def test_day_start_when_days_skipped_then_last_known_equity(self, ledger: Ledger) -> None:
        """After days without readings the day starts from the last equity known."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(95.0, T0 + 3600.0)
        ledger.update_portfolio_equity(94.0, T0 + 3 * DAY + 3600.0)
        assert ledger.portfolio.day_start_equity == 95.0
        assert ledger.portfolio.daily_loss == pytest.approx(1.0 / 95.0)

    def test_daily_loss_when_day_start_not_positive_then_total_loss(self, ledger: Ledger) -> None:
        """A day that starts at zero equity cannot be measured against: total loss."""
        ledger.update_portfolio_equity(0.0, T0)
        ledger.update_portfolio_equity(10.0, T0 + 60.0)
        assert ledger.portfolio.daily_loss == 1.0


class TestPnlVelocity:
    """Loss from the highest equity within the last ``window_seconds`` (default 60 s)."""

    def test_velocity_when_loss_inside_window_then_measured_from_window_high(
        self, ledger: Ledger
    ) -> None:
        """The loss is measured from the window's highest equity, not its first."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(104.0, T0 + 10.0)
        ledger.update_portfolio_equity(101.4, T0 + 20.0)
        assert ledger.portfolio.pnl_velocity == pytest.approx(0.025)

    def test_velocity_when_high_left_window_then_loss_not_counted(self, ledger: Ledger) -> None:
        """A high older than the window no longer counts."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(97.0, T0 + 61.0)
        assert ledger.portfolio.pnl_velocity == 0.0

    def test_velocity_when_high_exactly_window_old_then_counted(self, ledger: Ledger) -> None:
        """A high exactly ``window_seconds`` old is still in the window."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(97.0, T0 + 60.0)
        assert ledger.portfolio.pnl_velocity == pytest.approx(0.03)

    def test_velocity_when_window_configured_then_used(self) -> None:
        """``window_seconds`` from config sets the window."""
        config = parse_config({"triggers": {"pnl_velocity": {"limit": 0.02, "window_seconds": 5}}})
        ledger = Ledger(config.triggers)
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(99.0, T0 + 5.0)
        assert ledger.portfolio.pnl_velocity == pytest.approx(0.01)
        ledger.update_portfolio_equity(98.0, T0 + 10.5)
        assert ledger.portfolio.pnl_velocity == 0.0

    def test_velocity_when_window_high_not_positive_then_zero(self, ledger: Ledger) -> None:
        """With no positive equity in the window the velocity is reported as 0."""
        ledger.update_portfolio_equity(-10.0, T0)
        ledger.update_portfolio_equity(-1000.0, T0 + 1.0)
        assert ledger.portfolio.pnl_velocity == 0.0
        assert ledger.portfolio.drawdown == 1.0  # the drawdown rule still sees total loss


class TestMargin:
    """Margin utilization is used / (used + available)."""

    def test_utilization_when_both_known_then_used_over_total(self, ledger: Ledger) -> None:
        """30 used and 70 available is 30% utilization."""
        ledger.update_margin(30.0, 70.0)
        assert ledger.portfolio.margin_utilization == pytest.approx(0.3)

    def test_utilization_when_only_one_side_known_then_none(self, ledger: Ledger) -> None:
        """Utilization is unknown until both used and available margin were reported."""
        ledger.update_margin(30.0, None)
        assert ledger.portfolio.margin_utilization is None
        ledger.update_margin(None, 10.0)
        assert ledger.portfolio.margin_utilization == pytest.approx(0.75)

    def test_utilization_when_one_side_updated_then_other_kept(self, ledger: Ledger) -> None:
        """A partial update combines with the last value of the other side."""
        ledger.update_margin(30.0, 70.0)
        ledger.update_margin(None, 20.0)
        assert ledger.portfolio.margin_utilization == pytest.approx(0.6)
        ledger.update_margin(80.0, None)
        assert ledger.portfolio.margin_utilization == pytest.approx(0.8)

    def test_utilization_when_no_margin_at_all_then_zero(self, ledger: Ledger) -> None:
        """Zero used and zero available is reported as 0% (no division by zero)."""
        ledger.update_margin(0.0, 0.0)
        assert ledger.portfolio.margin_utilization == 0.0


class TestTradeStatistics:
    """Trade count, wins, win rate, realized P&L and the losing streak."""

    def test_win_rate_when_trades_recorded_then_wins_over_trades(self, ledger: Ledger) -> None:
        """A breakeven trade counts as a trade but not as a win."""
        for pnl in (10.0, -5.0, 0.0, 20.0):
            ledger.record_trade(SID, pnl)
        m = ledger.strategy(SID)
        assert (m.trade_count, m.wins) == (4, 2)
        assert m.win_rate == 0.5
        assert m.realized_pnl == 25.0

    @pytest.mark.parametrize(
        ("pnls", "streak"),
        [
            pytest.param([-1.0, -1.0, -1.0], 3, id="losses-extend"),
            pytest.param([-1.0, -1.0, 1.0], 0, id="win-resets"),
            pytest.param([-1.0, -1.0, 0.0], 2, id="zero-does-not-reset"),
            pytest.param([-1.0, 0.0, 0.0, -1.0], 2, id="zero-does-not-extend"),
            pytest.param([0.0, 0.0], 0, id="only-zeros"),
            pytest.param([-1.0, 1.0, -1.0, -1.0], 2, id="streak-restarts-after-win"),
        ],
    )
    def test_streak_when_trades_recorded_then_counts_losses_since_last_win(
        self, ledger: Ledger, pnls: list[float], streak: int
    ) -> None:
        """Losses extend the streak, a win resets it, a zero P&L does neither."""
        for pnl in pnls:
            ledger.record_trade(SID, pnl)
        assert ledger.strategy(SID).consecutive_losses == streak

    def test_win_rate_when_no_trades_then_none(self, ledger: Ledger) -> None:
        """A strategy without trades has no win rate."""
        assert ledger.strategy(SID).win_rate is None


class TestStrategyEquity:
    """Strategy equity, peak and drawdown, reported or derived from allocated capital."""

    def test_drawdown_when_equity_reported_then_from_strategy_peak(self, ledger: Ledger) -> None:
        """Reported strategy equity tracks its own peak and drawdown."""
        for equity in (50.0, 60.0, 45.0):
            ledger.update_strategy_equity(SID, equity)
        m = ledger.strategy(SID)
        assert (m.equity, m.peak_equity) == (45.0, 60.0)
        assert m.drawdown == pytest.approx(0.25)

    def test_equity_when_allocated_then_capital_plus_realized_pnl(self, ledger: Ledger) -> None:
        """With allocated capital, each trade sets equity to capital + realized P&L."""
        ledger.strategy(SID).allocated_capital = 1000.0
        ledger.record_trade(SID, 100.0)
        ledger.record_trade(SID, -56.0)
        m = ledger.strategy(SID)
        assert m.equity == 1044.0
        assert m.peak_equity == 1100.0
        assert m.drawdown == pytest.approx(56.0 / 1100.0)

    def test_drawdown_when_allocated_and_first_trade_loses_then_measured_from_capital(
        self, ledger: Ledger
    ) -> None:
        """The allocated capital is the first peak: losing 60 of 1000 is a 6% drawdown."""
        ledger.strategy(SID).allocated_capital = 1000.0
        ledger.record_trade(SID, -60.0)
        m = ledger.strategy(SID)
        assert m.equity == 940.0
        assert m.drawdown == pytest.approx(0.06)

    def test_equity_when_no_allocation_then_trades_leave_it_unknown(self, ledger: Ledger) -> None:
        """Without allocated capital, trades do not invent an equity."""
        ledger.record_trade(SID, -10.0)
        m = ledger.strategy(SID)
        assert m.equity is None
        assert m.drawdown is None

    def test_metrics_when_reported_then_last_write_wins(self, ledger: Ledger) -> None:
        """A reported metric overwrites the derived slot until the next derived event."""
        ledger.update_strategy_equity(SID, 100.0)
        ledger.update_strategy_equity(SID, 99.0)
        ledger.set_strategy_metrics(SID, {"max_drawdown": 0.2})
        assert ledger.strategy(SID).drawdown == 0.2
        ledger.update_strategy_equity(SID, 98.0)
        assert ledger.strategy(SID).drawdown == pytest.approx(0.02)


class TestPositions:
    """Gross notional, largest position / portfolio equity, and re-marking by prices."""

    def test_exposure_when_long_and_short_then_gross_of_absolute_notionals(
        self, ledger: Ledger
    ) -> None:
        """Gross sums |qty| * price; position size is the largest over portfolio equity."""
        ledger.update_portfolio_equity(10_000.0, T0)
        ledger.update_position(SID, "A", 10.0, 100.0)
        ledger.update_position(SID, "B", -30.0, 50.0)
        m = ledger.strategy(SID)
        assert m.gross_notional == 2500.0
        assert m.position_size == pytest.approx(0.15)

    def test_position_size_when_equity_unknown_then_infinite(self, ledger: Ledger) -> None:
        """A position with no portfolio equity to size it against is infinitely large."""
        ledger.update_position(SID, "A", 1.0, 1.0)
        assert ledger.strategy(SID).position_size == math.inf

    @pytest.mark.parametrize("equity", [0.0, -100.0])
    def test_position_size_when_equity_not_positive_then_infinite(
        self, ledger: Ledger, equity: float
    ) -> None:
        """Zero or negative portfolio equity cannot size a position either."""
        ledger.update_portfolio_equity(equity, T0)
        ledger.update_position(SID, "A", 1.0, 1.0)
        assert ledger.strategy(SID).position_size == math.inf

    def test_position_size_when_equity_arrives_then_held_positions_resized(
        self, ledger: Ledger
    ) -> None:
        """A portfolio equity update re-sizes every strategy holding a position."""
        ledger.update_position(SID, "A", 2.0, 100.0)
        ledger.update_position("flat", "A", 0.0, 100.0)
        held = ledger.update_portfolio_equity(1000.0, T0)
        assert held == [SID]
        assert ledger.strategy(SID).position_size == pytest.approx(0.2)

    def test_position_when_quantity_zero_then_removed(self, ledger: Ledger) -> None:
        """Going flat removes the position; with none left there is no size."""
        ledger.update_portfolio_equity(1000.0, T0)
        ledger.update_position(SID, "A", 2.0, 100.0)
        ledger.update_position(SID, "A", 0.0, 100.0)
        m = ledger.strategy(SID)
        assert m.positions == {}
        assert m.gross_notional == 0.0
        assert m.position_size is None
        assert ledger.update_prices({"A": 200.0}, T0) == set()

    def test_update_prices_when_symbol_held_then_position_remarked(self, ledger: Ledger) -> None:
        """A price update re-marks every holder's notional and reports who moved."""
        ledger.update_portfolio_equity(1000.0, T0)
        ledger.update_position(SID, "A", -2.0, 100.0)
        ledger.update_position("other", "B", 1.0, 10.0)
        touched = ledger.update_prices({"A": 150.0}, T0 + 1.0)
        assert touched == {SID}
        m = ledger.strategy(SID)
        assert m.positions["A"] == [-2.0, 150.0]
        assert m.gross_notional == 300.0
        assert m.position_size == pytest.approx(0.3)
        assert ledger.strategy("other").gross_notional == 10.0

    def test_position_size_when_reported_then_stands_until_exposure_or_equity_moves(
        self, ledger: Ledger
    ) -> None:
        """A reported size is the last write until the positions, their prices or (for a
        holder) the equity move; without positions an equity update leaves it standing."""
        ledger.update_portfolio_equity(1000.0, T0)
        ledger.set_strategy_metrics("flat", {"position_size": 0.5})
        ledger.update_position(SID, "A", 2.0, 100.0)
        ledger.set_strategy_metrics(SID, {"position_size": 0.7})
        assert ledger.strategy(SID).position_size == 0.7
        ledger.update_portfolio_equity(2000.0, T0)
        assert ledger.strategy(SID).position_size == pytest.approx(0.1)
        assert ledger.strategy("flat").position_size == 0.5
        ledger.set_strategy_metrics(SID, {"position_size": 0.7})
        ledger.update_prices({"A": 150.0}, T0)
        assert ledger.strategy(SID).position_size == pytest.approx(0.15)

    def test_update_portfolio_equity_when_limit_given_then_only_those_crossing(
        self, ledger: Ledger
    ) -> None:
        """With a limit, an equity change names the holders whose size may have crossed it
        (within the index's 0.1%), not every holder."""
        ledger.update_portfolio_equity(10_000.0, T0)
        for sid, notional in {"small": 100.0, "edge": 1_800.0, "big": 5_000.0}.items():
            ledger.update_position(sid, "A", notional / 10.0, 10.0)
        assert ledger.update_portfolio_equity(8_000.0, T0, 0.2) == ["edge"]  # 2,000 -> 1,600
        assert ledger.update_portfolio_equity(7_900.0, T0, 0.2) == []
        assert ledger.update_portfolio_equity(7_900.0, T0, math.inf) == []

    def test_update_portfolio_equity_when_size_was_reported_then_holder_named(
        self, ledger: Ledger
    ) -> None:
        """A holder whose size stands as reported is named by the next equity update, however
        far its notional is from the limit: its size is the derived one from then on."""
        ledger.update_portfolio_equity(10_000.0, T0)
        ledger.update_position(SID, "A", 500.0, 10.0)  # 5,000: 50%, far over 20%
        ledger.set_strategy_metrics(SID, {"position_size": 0.0})
        assert ledger.update_portfolio_equity(10_001.0, T0, 0.2) == [SID]
        assert ledger.strategy(SID).position_size == pytest.approx(5_000.0 / 10_001.0)
        assert ledger.update_portfolio_equity(10_002.0, T0, 0.2) == []

    def test_update_prices_when_called_then_prices_and_times_recorded(self, ledger: Ledger) -> None:
        """Each symbol's last price and timestamp are kept; feed age is of the stalest."""
        ledger.update_prices({"A": 1.0, "B": 2.0}, T0)
        ledger.update_prices({"A": 1.5}, T0 + 10.0)
        assert ledger.portfolio.prices == {"A": 1.5, "B": 2.0}
        assert ledger.portfolio.feed_age(T0 + 12.0) == ("B", 12.0)


class TestRebase:
    """A human resume or reset acknowledges losses: limits are measured from here on."""

    def test_rebase_strategy_when_losses_then_counters_restart(self, ledger: Ledger) -> None:
        """Peak moves to current equity; streak, trades, wins and win rate restart."""
        ledger.update_strategy_equity(SID, 100.0)
        ledger.update_strategy_equity(SID, 80.0)
        for pnl in (1.0, -1.0, -1.0):
            ledger.record_trade(SID, pnl)
        ledger.rebase_strategy(SID)
        m = ledger.strategy(SID)
        assert (m.peak_equity, m.drawdown) == (80.0, 0.0)
        assert (m.consecutive_losses, m.trade_count, m.wins, m.win_rate) == (0, 0, 0, None)
        assert m.realized_pnl == -1.0
        ledger.update_strategy_equity(SID, 76.0)
        assert m.drawdown == pytest.approx(0.05)

    def test_rebase_strategy_when_no_equity_then_drawdown_unknown(self, ledger: Ledger) -> None:
        """Without an equity there is nothing to rebase the drawdown on."""
        ledger.record_trade(SID, -1.0)
        ledger.rebase_strategy(SID)
        assert ledger.strategy(SID).drawdown is None

    def test_rebase_portfolio_when_losses_then_peak_and_day_start_move(
        self, ledger: Ledger
    ) -> None:
        """Peak and day start move to the current equity; drawdown and daily loss become 0."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(85.0, T0 + 10.0)
        ledger.rebase_portfolio()
        p = ledger.portfolio
        assert (p.peak_equity, p.day_start_equity) == (85.0, 85.0)
        assert (p.drawdown, p.daily_loss, p.pnl_velocity) == (0.0, 0.0, 0.0)
        ledger.update_portfolio_equity(84.15, T0 + 20.0)
        assert p.drawdown == pytest.approx(0.01)
        assert p.daily_loss == pytest.approx(0.01)

    def test_rebase_portfolio_when_old_high_in_window_then_it_no_longer_counts(
        self, ledger: Ledger
    ) -> None:
        """After a reset the pre-reset high does not count towards velocity."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(95.0, T0 + 10.0)
        ledger.rebase_portfolio()
        ledger.update_portfolio_equity(95.0, T0 + 20.0)
        assert ledger.portfolio.pnl_velocity == 0.0

    def test_rebase_portfolio_when_equity_falls_right_after_then_velocity_counts_it(
        self, ledger: Ledger
    ) -> None:
        """The equity at the reset is the new window high: falling 3% from it is velocity."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.rebase_portfolio()
        ledger.update_portfolio_equity(97.0, T0 + 5.0)
        assert ledger.portfolio.pnl_velocity == pytest.approx(0.03)


class TestBaselines:
    """What a restart must remember, and reloading it."""

    def test_restore_when_round_tripped_then_baselines_equal(self, ledger: Ledger) -> None:
        """Restoring saved baselines into a fresh ledger reproduces them and the derived values."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(90.0, T0 + DAY + 60.0)
        ledger.update_strategy_equity(SID, 50.0)
        ledger.update_strategy_equity(SID, 40.0)
        for pnl in (2.0, -1.0, -1.0, 0.0):
            ledger.record_trade(SID, pnl)
        saved = ledger.baselines()
        fresh = Ledger(Triggers())
        fresh.restore(saved)
        assert fresh.baselines() == saved
        assert fresh.portfolio.drawdown == pytest.approx(0.1)
        m = fresh.strategy(SID)
        assert m.drawdown == pytest.approx(0.2)
        assert m.win_rate == 0.25
        assert m.consecutive_losses == 2

    def test_restore_when_same_day_then_daily_loss_from_saved_day_start(
        self, ledger: Ledger
    ) -> None:
        """After a restart on the same day the loss still counts from the saved day start."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(98.0, T0 + 60.0)
        fresh = Ledger(Triggers())
        fresh.restore(ledger.baselines())
        fresh.update_portfolio_equity(96.5, T0 + 120.0)
        assert fresh.portfolio.daily_loss == pytest.approx(0.035)
        assert fresh.portfolio.drawdown == pytest.approx(0.035)

    def test_restore_when_next_day_then_day_starts_from_saved_equity(self, ledger: Ledger) -> None:
        """After a restart on a later day the day starts from the last saved equity."""
        ledger.update_portfolio_equity(100.0, T0)
        ledger.update_portfolio_equity(98.0, T0 + 60.0)
        fresh = Ledger(Triggers())
        fresh.restore(ledger.baselines())
        fresh.update_portfolio_equity(97.0, T0 + DAY + 60.0)
        assert fresh.portfolio.day_start_equity == 98.0

    def test_restore_when_empty_ledger_saved_then_round_trips(self, ledger: Ledger) -> None:
        """An empty ledger's baselines (all None) restore cleanly."""
        saved = ledger.baselines()
        fresh = Ledger(Triggers())
        fresh.restore(saved)
        assert fresh.baselines() == saved
        assert fresh.portfolio.drawdown is None

    @pytest.mark.parametrize(
        ("key", "data", "error"),
        [
            pytest.param("portfolio", {"equity": "lots"}, ValueError, id="non-number"),
            pytest.param("portfolio", {"equity": math.nan}, ValueError, id="nan"),
            pytest.param("portfolio", {"day": -1}, ValueError, id="negative-day"),
            pytest.param("strategy:s1", {"equity": 1.0}, KeyError, id="missing-field"),
            pytest.param("bogus", {}, ValueError, id="bad-scope"),
        ],
    )
    def test_restore_when_malformed_then_raises(
        self, ledger: Ledger, key: str, data: dict[str, Any], error: type[Exception]
    ) -> None:
        """Malformed saved data raises, so the guard can fail closed."""
        with pytest.raises(error):
            ledger.restore({key: data})
