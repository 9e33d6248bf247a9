"""Automated health triggers: P&L velocity, volatility, stale feeds, stuck agents, agent capital.

Comparison semantics the code implements (``Rule.inside`` in ``tradeguard/rules/base.py``):
every rule here breaches when its value is strictly above the limit; equal is inside. NaN and
+inf breach (fail closed). ``None`` means "not applicable" and never breaches: no price seen yet
(``feed_stale``), no heartbeat ever sent (``stuck_agent``), no allocated capital
(``agent_capital``), windows not yet full (``volatility``), no equity yet (``pnl_velocity``).
The time-based rules (``feed_stale``, ``stuck_agent``) are re-checked by ``guard.tick()``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import MakeConfig, MakeGuard
from tradeguard import Guard
from tradeguard.config import AgentCapital, FeedStale, PnlVelocity, StuckAgent, Volatility
from tradeguard.errors import ConfigError, InvalidInput
from tradeguard.ledger import PortfolioMetrics, StrategyMetrics
from tradeguard.model import PORTFOLIO, Action, Breach, PortfolioState, Scope, StrategyState
from tradeguard.rules.health import (
    MaxAgentCapital,
    MaxFeedAge,
    MaxPnlVelocity,
    MaxSilence,
    MaxVolatility,
)
from tradeguard.testing import FakeClock

SID = "agent1"
SCOPE = Scope.strategy(SID)
NOW = 1_767_225_600.0
NAN = math.nan
INF = math.inf
VOL_CONFIG = {"volatility": {"window": 2, "baseline_window": 3, "min_baseline": 3}}


def portfolio(**values: object) -> PortfolioMetrics:
    """A portfolio view with the given fields set."""
    view = PortfolioMetrics()
    for name, value in values.items():
        setattr(view, name, value)
    return view


def strategy(**values: object) -> StrategyMetrics:
    """A strategy view for ``SID`` with the given fields set."""
    view = StrategyMetrics(SCOPE)
    for name, value in values.items():
        setattr(view, name, value)
    return view


def portfolio_reason(guard: Guard) -> str:
    """The reason recorded for the portfolio's current state."""
    return guard.status_of(PORTFOLIO).reason


def strategy_reason(guard: Guard, sid: str = SID) -> str:
    """The reason recorded for a strategy's current state."""
    return guard.status_of(Scope.strategy(sid)).reason


def prices_from_returns(start: float, returns: list[float]) -> list[float]:
    """A price path that starts at ``start`` and then moves by the given log returns."""
    path = [start]
    for ret in returns:
        path.append(path[-1] * math.exp(ret))
    return path


class TestMaxPnlVelocity:
    """``pnl_velocity``: loss from the highest equity in the last 60 s, breaches when > 2%."""

    @pytest.mark.parametrize(
        ("velocity", "breaches"),
        [
            pytest.param(0.0, False, id="at-high"),
            pytest.param(math.nextafter(0.02, 0.0), False, id="just-below"),
            pytest.param(0.02, False, id="at-limit"),
            pytest.param(math.nextafter(0.02, 1.0), True, id="just-above"),
            pytest.param(NAN, True, id="nan"),
            pytest.param(INF, True, id="inf"),
            pytest.param(None, False, id="none-no-equity"),
        ],
    )
    def test_evaluate_when_velocity_around_limit_then_breaches_only_above(
        self, velocity: float | None, breaches: bool
    ) -> None:
        """A 2% fall from the window high is inside; more, NaN or inf breach."""
        rule = MaxPnlVelocity(PnlVelocity())
        assert (rule.evaluate(portfolio(pnl_velocity=velocity), NOW) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The breach is a portfolio soft halt with a percentage message."""
        rule = MaxPnlVelocity(PnlVelocity())
        assert rule.evaluate(portfolio(pnl_velocity=0.025), NOW) == Breach(
            "pnl_velocity",
            PORTFOLIO,
            0.025,
            0.02,
            Action.SOFT_HALT,
            "loss from the window's equity high 2.50% > limit 2.00%",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxPnlVelocity(PnlVelocity())
        assert rule.short_desc() == "loss from the window's equity high above 2.00% -> soft_halt"

    def test_guard_when_fast_loss_passes_limit_then_soft_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Within a minute a 2% fall is inside and a 2.01% fall soft-halts."""
        guard = make_guard()
        guard.update_equity(100.0)
        clock.advance(30.0)
        guard.update_equity(98.0)
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(10.0)
        guard.update_equity(97.99)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert portfolio_reason(guard) == (
            "pnl_velocity: loss from the window's equity high 2.01% > limit 2.00%"
        )

    def test_guard_when_high_is_older_than_window_then_loss_not_counted(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A 2.5% fall measured against a high 61 s old is not velocity (daily loss is 2.5%)."""
        guard = make_guard()
        guard.update_equity(100.0)
        clock.advance(61.0)
        guard.update_equity(97.5)
        assert guard.portfolio_state is PortfolioState.NORMAL

    def test_guard_when_high_is_exactly_window_old_then_loss_counted(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A sample exactly ``window_seconds`` old is still inside the window."""
        guard = make_guard()
        guard.update_equity(100.0)
        clock.advance(60.0)
        guard.update_equity(97.5)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert portfolio_reason(guard).startswith("pnl_velocity:")

    def test_override_when_window_longer_then_slower_loss_counted(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """With a 300 s window the same fall 61 s later does breach."""
        guard = make_guard(triggers={"pnl_velocity": {"limit": 0.02, "window_seconds": 300.0}})
        guard.update_equity(100.0)
        clock.advance(61.0)
        guard.update_equity(97.5)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_guard_when_equity_falls_fast_right_after_reset_then_soft_halt_again(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A reset rebases the window on the current equity: a 2.45% fall 10 s later halts."""
        guard = make_guard()
        guard.update_equity(100.0)
        clock.advance(10.0)
        guard.update_equity(97.9)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        guard.reset("risk1", "loss acknowledged")
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(10.0)
        guard.update_equity(95.5)  # 2.45% below the equity at the reset, within 60 s
        assert guard.portfolio_state is PortfolioState.SOFT_HALT


class TestMaxVolatility:
    """``volatility``: recent realized volatility / baseline, breaches when > 3x."""

    @pytest.mark.parametrize(
        ("ratio", "breaches"),
        [
            pytest.param(math.nextafter(3.0, 0.0), False, id="just-below"),
            pytest.param(3.0, False, id="at-limit"),
            pytest.param(math.nextafter(3.0, INF), True, id="just-above"),
            pytest.param(NAN, True, id="nan"),
            pytest.param(INF, True, id="inf-flat-baseline"),
            pytest.param(None, False, id="none-windows-not-full"),
            pytest.param(0.0, False, id="flat"),
        ],
    )
    def test_evaluate_when_ratio_around_limit_then_breaches_only_above(
        self, ratio: float | None, breaches: bool
    ) -> None:
        """A 3x ratio is inside; above it, NaN or inf breach."""
        rule = MaxVolatility(Volatility())
        assert (rule.evaluate(portfolio(volatility_ratio=ratio), NOW) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The ratio is printed as a multiple."""
        rule = MaxVolatility(Volatility())
        assert rule.evaluate(portfolio(volatility_ratio=4.0), NOW) == Breach(
            "volatility",
            PORTFOLIO,
            4.0,
            3.0,
            Action.SOFT_HALT,
            "realized volatility vs baseline 4.00x > limit 3.00x",
            NOW,  # detected at the evaluation time
        )

    def test_evaluate_when_ratio_infinite_then_message_says_unbounded(self) -> None:
        """An infinite ratio (flat baseline) is reported as unbounded."""
        rule = MaxVolatility(Volatility())
        breach = rule.evaluate(portfolio(volatility_ratio=INF), NOW)
        assert breach is not None
        assert breach.message == "realized volatility vs baseline unbounded > limit 3.00x"

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxVolatility(Volatility())
        assert rule.short_desc() == "realized volatility vs baseline above 3.00x -> soft_halt"

    def test_guard_when_returns_stay_calm_then_normal(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Returns as volatile as the baseline leave the portfolio normal."""
        guard = make_guard(triggers=VOL_CONFIG)
        for price in prices_from_returns(100.0, [0.001, -0.001, 0.001, -0.001, 0.001, -0.001]):
            guard.update_prices({"X": price})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.NORMAL

    def test_guard_when_recent_returns_spike_then_soft_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Two 2% moves after a 0.1% baseline are ~24x the baseline and soft-halt."""
        guard = make_guard(triggers=VOL_CONFIG)
        for price in prices_from_returns(100.0, [0.001, -0.001, 0.001, 0.02]):
            guard.update_prices({"X": price})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.NORMAL  # baseline not full yet
        guard.update_prices({"X": 100.0})
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert portfolio_reason(guard).startswith("volatility: realized volatility vs baseline")

    def test_guard_when_baseline_flat_and_price_moves_then_unbounded_soft_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A price that never moved and then moves has an unbounded ratio: fail closed."""
        guard = make_guard(triggers=VOL_CONFIG)
        for price in (100.0, 100.0, 100.0, 100.0, 100.0, 101.0):
            guard.update_prices({"X": price})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert "unbounded" in portfolio_reason(guard)

    def test_guard_when_price_freezes_after_activity_then_no_volatility_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A random walk that then stops moving has zero volatility in both windows: no halt."""
        guard = make_guard()
        rng = np.random.default_rng(0)
        price = 100.0
        for ret in rng.normal(0.0, 0.01, 300):
            price *= math.exp(float(ret))
            guard.update_prices({"X": price})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.NORMAL
        for _ in range(221):  # default window 20 + baseline 200 returns, all exactly 0
            guard.update_prices({"X": price})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.NORMAL, portfolio_reason(guard)


class TestMaxFeedAge:
    """``feed_stale``: seconds since the stalest symbol's last price, breaches when > 30 s."""

    @pytest.mark.parametrize(
        ("now", "breaches"),
        [
            pytest.param(math.nextafter(30.0, 0.0), False, id="just-below"),
            pytest.param(30.0, False, id="at-limit"),
            pytest.param(math.nextafter(30.0, INF), True, id="just-above"),
            pytest.param(NAN, True, id="nan-now"),
            pytest.param(INF, True, id="inf-now"),
            pytest.param(-5.0, False, id="price-from-the-future"),
        ],
    )
    def test_evaluate_when_age_around_limit_then_breaches_only_above(
        self, now: float, breaches: bool
    ) -> None:
        """A price exactly 30 s old is inside; older, or an unmeasurable age, breaches."""
        rule = MaxFeedAge(FeedStale())
        assert (rule.evaluate(portfolio(price_times={"A": 0.0}), now) is not None) is breaches

    def test_evaluate_when_no_price_seen_then_not_applicable(self) -> None:
        """With no symbol ever priced there is no feed to call stale."""
        rule = MaxFeedAge(FeedStale())
        assert rule.evaluate(portfolio(), NOW) is None

    def test_evaluate_when_one_symbol_stale_then_stalest_governs(self) -> None:
        """A fresh symbol does not hide a stale one; the breach reports the stalest age."""
        rule = MaxFeedAge(FeedStale())
        view = portfolio(price_times={"FRESH": NOW - 1.0, "OLD": NOW - 50.0})
        assert rule.evaluate(view, NOW) == Breach(
            "feed_stale",
            PORTFOLIO,
            50.0,
            30.0,
            Action.SOFT_HALT,
            "price feed silent for 50.0s > limit 30.0s",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxFeedAge(FeedStale())
        assert rule.short_desc() == "price feed age above 30.0s -> soft_halt"

    def test_guard_when_symbol_silent_past_limit_then_tick_soft_halts(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """One symbol kept fresh, one silent: the tick halts once the silent one is 30.5 s old."""
        guard = make_guard()
        guard.update_prices({"A": 1.0, "B": 2.0})
        clock.advance(30.0)
        guard.update_prices({"A": 1.0})
        guard.tick()
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(0.5)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert portfolio_reason(guard) == ("feed_stale: price feed silent for 30.5s > limit 30.0s")

    def test_guard_when_snapshot_already_old_then_halts_without_tick(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A snapshot timestamped 31 s ago is stale on arrival (the price topic checks it)."""
        guard = make_guard()
        guard.update_prices({"A": 1.0}, ts=clock.time() - 31.0)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_guard_when_snapshot_timestamp_nan_then_refused_and_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A NaN timestamp is invalid input: refused, and the portfolio fails closed."""
        guard = make_guard()
        with pytest.raises(InvalidInput):
            guard.update_prices({"A": 1.0}, ts=NAN)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_override_when_rule_disabled_then_silence_ignored(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """``enabled: false`` turns the stale-feed breaker off."""
        guard = make_guard(triggers={"feed_stale": {"limit": 30.0, "enabled": False}})
        guard.update_prices({"A": 1.0})
        clock.advance(3600.0)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.NORMAL


class TestMaxSilence:
    """``stuck_agent``: seconds since an agent's last heartbeat, breaches when > 300 s."""

    @pytest.mark.parametrize(
        ("last_heartbeat", "now", "breaches"),
        [
            pytest.param(0.0, math.nextafter(300.0, 0.0), False, id="just-below"),
            pytest.param(0.0, 300.0, False, id="at-limit"),
            pytest.param(0.0, math.nextafter(300.0, INF), True, id="just-above"),
            pytest.param(None, 1e9, False, id="never-beaten-not-watched"),
            pytest.param(NAN, 0.0, True, id="nan-heartbeat"),
            pytest.param(-INF, 0.0, True, id="minus-inf-heartbeat"),
            pytest.param(10.0, 5.0, False, id="heartbeat-from-the-future"),
        ],
    )
    def test_evaluate_when_silence_around_limit_then_breaches_only_above(
        self, last_heartbeat: float | None, now: float, breaches: bool
    ) -> None:
        """Exactly 300 s of silence is inside; longer, NaN or inf breach."""
        rule = MaxSilence(StuckAgent())
        view = strategy(last_heartbeat=last_heartbeat)
        assert (rule.evaluate(view, now) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The breach halts only the stuck agent and says how long it has been silent."""
        rule = MaxSilence(StuckAgent())
        assert rule.evaluate(strategy(last_heartbeat=0.0), 301.0) == Breach(
            "stuck_agent",
            SCOPE,
            301.0,
            300.0,
            Action.HALT_STRATEGY,
            "stuck: no heartbeat for 301.0s > limit 300.0s",
            301.0,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxSilence(StuckAgent())
        assert rule.short_desc() == "time since heartbeat above 300.0s -> halt_strategy"

    def test_guard_when_silent_past_limit_then_tick_halts_agent(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """300 s of silence is inside; at 301 s the tick halts the agent."""
        guard = make_guard()
        guard.heartbeat(SID)
        clock.advance(300.0)
        guard.tick()
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        clock.advance(1.0)
        guard.tick()
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert guard.portfolio_state is PortfolioState.NORMAL
        assert strategy_reason(guard) == (
            "stuck_agent: stuck: no heartbeat for 301.0s > limit 300.0s"
        )

    def test_guard_when_heartbeats_keep_coming_then_agent_active(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Each heartbeat restarts the silence timer."""
        guard = make_guard()
        for _ in range(5):
            guard.heartbeat(SID)
            clock.advance(200.0)
            guard.tick()
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_guard_when_agent_never_beat_then_never_stuck(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """An agent that never sent a heartbeat is not watched for silence."""
        guard = make_guard()
        guard.record_trade(SID, 1.0)
        clock.advance(10_000.0)
        guard.tick()
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_per_strategy_override_when_tighter_then_only_that_agent_halts(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A 10 s limit for one agent halts it at 11 s while another agent keeps 300 s."""
        guard = make_guard(strategies={"fast": {"triggers": {"stuck_agent": 10.0}}})
        guard.heartbeat("fast")
        guard.heartbeat("slow")
        clock.advance(11.0)
        guard.tick()
        assert guard.strategy_state("fast") is StrategyState.HALTED
        assert guard.strategy_state("slow") is StrategyState.ACTIVE


class TestMaxAgentCapital:
    """``agent_capital``: gross notional / allocated capital, breaches when > 1x."""

    @pytest.mark.parametrize(
        ("allocated", "gross", "breaches"),
        [
            pytest.param(1000.0, 0.0, False, id="flat"),
            pytest.param(1000.0, math.nextafter(1000.0, 0.0), False, id="just-below"),
            pytest.param(1000.0, 1000.0, False, id="at-limit"),
            pytest.param(1000.0, math.nextafter(1000.0, INF), True, id="just-above"),
            pytest.param(1000.0, NAN, True, id="nan-gross"),
            pytest.param(1000.0, INF, True, id="inf-gross"),
            pytest.param(None, 1e12, False, id="no-allocation-not-applicable"),
        ],
    )
    def test_evaluate_when_exposure_around_limit_then_breaches_only_above(
        self, allocated: float | None, gross: float, breaches: bool
    ) -> None:
        """Gross notional equal to the allocation is inside; more, NaN or inf breach."""
        rule = MaxAgentCapital(AgentCapital())
        view = strategy(allocated_capital=allocated, gross_notional=gross)
        assert (rule.evaluate(view, NOW) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The breach reports the multiple of the allocation."""
        rule = MaxAgentCapital(AgentCapital())
        view = strategy(allocated_capital=1000.0, gross_notional=1500.0)
        assert rule.evaluate(view, NOW) == Breach(
            "agent_capital",
            SCOPE,
            1.5,
            1.0,
            Action.HALT_STRATEGY,
            "gross notional / allocated capital 1.50x > limit 1.00x",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxAgentCapital(AgentCapital())
        assert (
            rule.short_desc() == "gross notional / allocated capital above 1.00x -> halt_strategy"
        )

    def test_config_when_allocated_capital_zero_then_refused(self, make_config: MakeConfig) -> None:
        """A zero allocation (which the rule would divide by) is refused by the config."""
        with pytest.raises(ConfigError, match="allocated_capital"):
            make_config(strategies={SID: {"allocated_capital": 0.0}})

    def test_guard_when_exposure_passes_allocation_then_halted(self, make_guard: MakeGuard) -> None:
        """Exposure equal to the allocation is inside; a re-mark above it halts the agent."""
        guard = make_guard(strategies={SID: {"allocated_capital": 1000.0}})
        guard.update_equity(100_000.0)
        guard.update_position(SID, "X", 10.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.update_prices({"X": 100.01})
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert strategy_reason(guard).startswith("agent_capital: gross notional / allocated")

    def test_guard_when_long_and_short_positions_then_gross_adds_both(
        self, make_guard: MakeGuard
    ) -> None:
        """Gross notional sums absolute exposures: 500 long plus 600 short exceed 1000."""
        guard = make_guard()
        guard.register_strategy(SID, allocated_capital=1000.0)
        guard.update_equity(100_000.0)
        guard.update_position(SID, "X", 5.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.update_position(SID, "Y", -6.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert strategy_reason(guard).startswith("agent_capital:")

    def test_guard_when_no_allocation_then_exposure_not_capped(self, make_guard: MakeGuard) -> None:
        """A strategy without allocated capital is not judged by this rule."""
        guard = make_guard()
        guard.update_equity(1_000_000.0)
        guard.update_position(SID, "X", 1000.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_override_when_limit_raised_then_leverage_allowed(self, make_guard: MakeGuard) -> None:
        """With a 2x limit, 1.5x the allocation is allowed and 2.5x halts."""
        guard = make_guard(
            triggers={"agent_capital": 2.0}, strategies={SID: {"allocated_capital": 1000.0}}
        )
        guard.update_equity(100_000.0)
        guard.update_position(SID, "X", 15.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.update_position(SID, "X", 25.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED


class TestMaxEquityAge:
    """A silent equity feed halts the book, once equity has been reported."""

    def test_guard_when_equity_stops_then_soft_halt_only_past_limit(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """At the 120 s limit nothing happens; past it the breaker's tick soft-halts."""
        guard = make_guard()
        guard.update_portfolio(equity=100.0)
        clock.advance(120)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(0.5)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert guard.status()["portfolio"]["reason"].startswith("equity_stale: no equity report")

    def test_guard_when_equity_never_reported_then_not_watched(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Hosts that report metrics instead of equity are not halted for silence."""
        guard = make_guard()
        clock.advance(10_000)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.NORMAL
