"""Portfolio circuit breakers: daily loss, drawdown, correlation spike and margin utilization.

Comparison semantics the code implements (``Rule.inside`` in ``tradeguard/rules/base.py``):
every portfolio rule here breaches when its value is strictly above the limit; a value equal
to the limit is inside. NaN and +inf breach (fail closed); ``None`` (not yet measurable, e.g.
no equity seen or too few price snapshots) never breaches. A negative daily loss is a gain.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard
from tradeguard.config import (
    CorrelationSpike,
    MarginUtilization,
    PortfolioDailyLoss,
    PortfolioDrawdown,
)
from tradeguard.errors import ConfigError
from tradeguard.ledger import PortfolioMetrics
from tradeguard.model import PORTFOLIO, Action, Breach, PortfolioState
from tradeguard.rules.portfolio import (
    MaxCorrelation,
    MaxDailyLoss,
    MaxMarginUtilization,
    MaxPortfolioDrawdown,
)
from tradeguard.testing import FakeClock

DAY = 86_400.0  # one trading day at the default rollover (midnight UTC)

NOW = 1_767_225_600.0
NAN = math.nan
INF = math.inf


def metrics(**values: object) -> PortfolioMetrics:
    """A portfolio view with the given fields set."""
    view = PortfolioMetrics()
    for name, value in values.items():
        setattr(view, name, value)
    return view


def reason(guard: Guard) -> str:
    """The reason recorded for the portfolio's current state."""
    return guard.status_of(PORTFOLIO).reason


def boundary_cases(limit: float) -> list[object]:
    """Just below, at and just above ``limit``, plus NaN, inf and None."""
    return [
        pytest.param(math.nextafter(limit, -INF), False, id="just-below"),
        pytest.param(limit, False, id="at-limit"),
        pytest.param(math.nextafter(limit, INF), True, id="just-above"),
        pytest.param(NAN, True, id="nan"),
        pytest.param(INF, True, id="inf"),
        pytest.param(None, False, id="none-not-applicable"),
    ]


class TestMaxDailyLoss:
    """``portfolio_daily_loss``: breaches when the loss since the day's start > 3%."""

    @pytest.mark.parametrize(
        ("loss", "breaches"),
        [
            *boundary_cases(0.03),
            pytest.param(-0.5, False, id="gain"),
            pytest.param(-INF, False, id="minus-inf"),
        ],
    )
    def test_evaluate_when_loss_around_limit_then_breaches_only_above(
        self, loss: float | None, breaches: bool
    ) -> None:
        """A 3% loss is inside; above 3%, NaN or inf breach; a gain never does."""
        rule = MaxDailyLoss(PortfolioDailyLoss())
        assert (rule.evaluate(metrics(daily_loss=loss), NOW) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The breach is about the portfolio and carries the default soft_halt action."""
        rule = MaxDailyLoss(PortfolioDailyLoss())
        assert rule.evaluate(metrics(daily_loss=0.04), NOW) == Breach(
            "portfolio_daily_loss",
            PORTFOLIO,
            0.04,
            0.03,
            Action.SOFT_HALT,
            "daily loss 4.00% > limit 3.00%",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxDailyLoss(PortfolioDailyLoss())
        assert rule.short_desc() == "daily loss above 3.00% -> soft_halt"

    def test_guard_when_daily_loss_passes_limit_then_soft_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A 3% loss on the day is inside; 3.01% soft-halts the portfolio."""
        guard = make_guard()
        guard.update_equity(100.0)
        clock.advance(120.0)  # beyond the 60 s velocity window: only the daily loss moves
        guard.update_equity(97.0)
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(120.0)
        guard.update_equity(96.99)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert reason(guard) == "portfolio_daily_loss: daily loss 3.01% > limit 3.00%"

    def test_guard_when_loss_spans_midnight_then_new_day_measured_from_last_close(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """After UTC midnight the loss counts from the last equity before midnight."""
        guard = make_guard()
        guard.update_equity(100.0)
        clock.advance(DAY - 3600.0)
        guard.update_equity(98.0)  # 2% down on day one
        clock.advance(7200.0)
        guard.update_equity(96.0)  # 4% from day one's start, 2.04% from day two's
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(600.0)
        guard.update_equity(95.0)  # 3.06% from day two's start
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert reason(guard).startswith("portfolio_daily_loss:")

    def test_guard_when_rule_disabled_then_daily_loss_ignored(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """``enabled: false`` turns the daily loss breaker off."""
        guard = make_guard(triggers={"portfolio_daily_loss": {"limit": 0.03, "enabled": False}})
        guard.update_equity(100.0)
        clock.advance(120.0)
        guard.update_equity(95.0)
        assert guard.portfolio_state is PortfolioState.NORMAL

    def test_guard_when_reported_daily_loss_then_soft_halt(self, make_guard: MakeGuard) -> None:
        """A directly reported daily loss above the limit soft-halts the portfolio."""
        guard = make_guard()
        guard.update_portfolio_metrics(daily_loss=0.031)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT


class TestMaxPortfolioDrawdown:
    """``portfolio_drawdown``: breaches when the loss from the peak equity > 10%."""

    @pytest.mark.parametrize(("drawdown", "breaches"), boundary_cases(0.10))
    def test_evaluate_when_drawdown_around_limit_then_breaches_only_above(
        self, drawdown: float | None, breaches: bool
    ) -> None:
        """A 10% drawdown is inside; above 10%, NaN or inf breach."""
        rule = MaxPortfolioDrawdown(PortfolioDrawdown())
        assert (rule.evaluate(metrics(drawdown=drawdown), NOW) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The default action of a portfolio drawdown is a hard halt."""
        rule = MaxPortfolioDrawdown(PortfolioDrawdown())
        assert rule.evaluate(metrics(drawdown=0.125), NOW) == Breach(
            "portfolio_drawdown",
            PORTFOLIO,
            0.125,
            0.1,
            Action.HARD_HALT,
            "portfolio drawdown 12.50% > limit 10.00%",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxPortfolioDrawdown(PortfolioDrawdown())
        assert rule.short_desc() == "portfolio drawdown above 10.00% -> hard_halt"

    def test_guard_when_slow_multi_day_decline_passes_limit_then_hard_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Losses under 3% a day add up: exactly 10% below the peak is inside, 10.01% halts."""
        guard = make_guard()
        for equity in (100.0, 97.0, 94.5, 92.0, 90.0):
            guard.update_equity(equity)
            clock.advance(DAY)
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.update_equity(89.99)
        assert guard.portfolio_state is PortfolioState.HARD_HALT
        assert reason(guard) == "portfolio_drawdown: portfolio drawdown 10.01% > limit 10.00%"

    def test_guard_when_reported_drawdown_then_hard_halt(self, make_guard: MakeGuard) -> None:
        """A directly reported ``max_drawdown`` above 10% hard-halts the portfolio."""
        guard = make_guard()
        guard.update_portfolio_metrics(max_drawdown=0.1001)
        assert guard.portfolio_state is PortfolioState.HARD_HALT
        assert reason(guard).startswith("portfolio_drawdown:")

    def test_override_when_action_emergency_then_breach_locks_down(
        self, make_guard: MakeGuard
    ) -> None:
        """An overridden limit and action apply: 6% with limit 5% and emergency locks down."""
        guard = make_guard(triggers={"portfolio_drawdown": {"limit": 0.05, "action": "emergency"}})
        guard.update_portfolio_metrics(drawdown=0.05)
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.update_portfolio_metrics(drawdown=0.06)
        assert guard.portfolio_state is PortfolioState.EMERGENCY

    def test_override_when_strategy_action_on_portfolio_trigger_then_config_refused(
        self, make_guard: MakeGuard
    ) -> None:
        """A portfolio trigger cannot be configured to halt only a strategy."""
        with pytest.raises(ConfigError, match="portfolio_drawdown"):
            make_guard(triggers={"portfolio_drawdown": {"limit": 0.1, "action": "halt_strategy"}})


class TestMaxCorrelation:
    """``correlation_spike``: breaches when average pairwise correlation > 0.8."""

    @pytest.mark.parametrize(
        ("correlation", "breaches"),
        [
            *boundary_cases(0.8),
            pytest.param(1.0, True, id="perfect"),
            pytest.param(-1.0, False, id="anti-correlated"),
        ],
    )
    def test_evaluate_when_correlation_around_limit_then_breaches_only_above(
        self, correlation: float | None, breaches: bool
    ) -> None:
        """Correlation 0.8 is inside; above it, NaN or inf breach; None is not applicable."""
        rule = MaxCorrelation(CorrelationSpike())
        assert (rule.evaluate(metrics(correlation=correlation), NOW) is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """A correlation has no unit: the message prints the bare number."""
        rule = MaxCorrelation(CorrelationSpike())
        assert rule.evaluate(metrics(correlation=0.95), NOW) == Breach(
            "correlation_spike",
            PORTFOLIO,
            0.95,
            0.8,
            Action.SOFT_HALT,
            "average pairwise correlation 0.95 > limit 0.8",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxCorrelation(CorrelationSpike())
        assert rule.short_desc() == "average pairwise correlation above 0.8 -> soft_halt"

    def test_guard_when_prices_move_together_then_soft_halt_after_min_observations(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Two symbols with identical returns soft-halt once three return snapshots are in."""
        guard = make_guard(triggers={"correlation_spike": {"window": 5, "min_observations": 3}})
        moves = [(100.0, 50.0), (101.0, 50.5), (100.5, 50.25)]
        for a, b in moves:
            guard.update_prices({"A": a, "B": b})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.NORMAL  # two snapshots: not measured
        guard.update_prices({"A": 102.0, "B": 51.0})
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert reason(guard) == ("correlation_spike: average pairwise correlation 1 > limit 0.8")

    def test_guard_when_one_symbol_frozen_and_two_move_together_then_soft_halt(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A frozen symbol (returns exactly 0) has no correlation and must not dilute the
        average: once B and C move identically for a whole window the portfolio soft-halts."""
        guard = make_guard(triggers={"correlation_spike": {"window": 10, "min_observations": 3}})
        rng = np.random.default_rng(5)
        a, b, c = 100.0, 50.0, 80.0
        for i in range(26):
            if i < 14:
                a *= math.exp(float(rng.normal(0.0, 0.02)))
            b *= math.exp(float(rng.normal(0.0, 0.01)))
            c = 2.0 * b if i >= 14 else c * math.exp(float(rng.normal(0.0, 0.01)))
            guard.update_prices({"A": a, "B": b, "C": c})
            clock.advance(1.0)
        correlation = guard.status()["portfolio"]["metrics"]["correlation"]
        assert guard.portfolio_state is PortfolioState.SOFT_HALT, f"correlation {correlation}"

    def test_guard_when_prices_move_opposite_then_normal(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Anti-correlated symbols are far below the limit: no halt."""
        guard = make_guard(triggers={"correlation_spike": {"window": 5, "min_observations": 3}})
        for a, b in [(100.0, 50.0), (101.0, 49.5), (100.5, 49.75), (102.0, 49.0), (101.0, 49.5)]:
            guard.update_prices({"A": a, "B": b})
            clock.advance(1.0)
        assert guard.portfolio_state is PortfolioState.NORMAL


class TestMaxMarginUtilization:
    """``margin_utilization``: used / (used + available), breaches when > 90%."""

    @pytest.mark.parametrize(("utilization", "breaches"), boundary_cases(0.9))
    def test_evaluate_when_utilization_around_limit_then_breaches_only_above(
        self, utilization: float | None, breaches: bool
    ) -> None:
        """90% utilization is inside; above it, NaN or inf breach."""
        rule = MaxMarginUtilization(MarginUtilization())
        assert (rule.evaluate(metrics(margin_utilization=utilization), NOW) is not None) is (
            breaches
        )

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The breach reports the utilization as a percentage."""
        rule = MaxMarginUtilization(MarginUtilization())
        assert rule.evaluate(metrics(margin_utilization=0.95), NOW) == Breach(
            "margin_utilization",
            PORTFOLIO,
            0.95,
            0.9,
            Action.SOFT_HALT,
            "margin utilization 95.00% > limit 90.00%",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxMarginUtilization(MarginUtilization())
        assert rule.short_desc() == "margin utilization above 90.00% -> soft_halt"

    def test_guard_when_margin_passes_limit_then_soft_halt(self, make_guard: MakeGuard) -> None:
        """90 used of 100 is inside; 91 of 100 soft-halts the portfolio."""
        guard = make_guard()
        guard.update_portfolio(margin_used=90.0, margin_available=10.0)
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.update_portfolio(margin_used=91.0, margin_available=9.0)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert reason(guard) == "margin_utilization: margin utilization 91.00% > limit 90.00%"

    def test_guard_when_only_used_margin_rises_then_last_available_is_kept(
        self, make_guard: MakeGuard
    ) -> None:
        """An update of used margin alone combines with the last available margin."""
        guard = make_guard()
        guard.update_portfolio(margin_used=80.0, margin_available=10.0)
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.update_portfolio(margin_used=95.0)  # 95 / 105 = 90.48%
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_override_when_action_hard_halt_then_breach_hard_halts(
        self, make_guard: MakeGuard
    ) -> None:
        """A lower limit and a hard_halt action from config take effect."""
        guard = make_guard(triggers={"margin_utilization": {"limit": 0.5, "action": "hard_halt"}})
        guard.update_portfolio(margin_used=50.0, margin_available=50.0)
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.update_portfolio(margin_used=51.0, margin_available=49.0)
        assert guard.portfolio_state is PortfolioState.HARD_HALT
