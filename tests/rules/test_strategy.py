"""Strategy kill switches: drawdown, consecutive losses, win rate and position size.

Comparison semantics the code implements (``Rule.inside`` in ``tradeguard/rules/base.py``):

* ``strategy_drawdown`` and ``position_size`` breach when the value is strictly above the limit;
  a value equal to the limit is inside.
* ``consecutive_losses`` is inclusive: reaching the limit (``>=``) is a breach.
* ``win_rate`` breaches strictly below the limit, and only once ``trade_count >= min_trades``.
* NaN and +inf always breach (fail closed); ``None`` means "not applicable" and never breaches.
"""

from __future__ import annotations

import math

import pytest

from tests.conftest import MakeConfig, MakeGuard
from tradeguard import Guard
from tradeguard.config import ConsecutiveLosses, PositionSize, StrategyDrawdown, WinRate
from tradeguard.ledger import StrategyMetrics
from tradeguard.model import PORTFOLIO, Action, Breach, PortfolioState, Scope, StrategyState
from tradeguard.rules import RuleSet, Topic
from tradeguard.rules.strategy import (
    MaxConsecutiveLosses,
    MaxPositionSize,
    MaxStrategyDrawdown,
    MinWinRate,
)

SID = "s1"
SCOPE = Scope.strategy(SID)
NOW = 1_767_225_600.0
NAN = math.nan
INF = math.inf


def metrics(**values: object) -> StrategyMetrics:
    """A strategy view for ``SID`` with the given fields set."""
    view = StrategyMetrics(SCOPE)
    for name, value in values.items():
        setattr(view, name, value)
    return view


def reason(guard: Guard, sid: str = SID) -> str:
    """The reason recorded for a strategy's current state."""
    return guard.status_of(Scope.strategy(sid)).reason


class TestMaxStrategyDrawdown:
    """``strategy_drawdown``: breaches when drawdown > limit (default 5%)."""

    @pytest.mark.parametrize(
        ("drawdown", "breaches"),
        [
            pytest.param(0.0, False, id="zero"),
            pytest.param(math.nextafter(0.05, 0.0), False, id="just-below"),
            pytest.param(0.05, False, id="at-limit"),
            pytest.param(math.nextafter(0.05, 1.0), True, id="just-above"),
            pytest.param(1.0, True, id="total-loss"),
            pytest.param(NAN, True, id="nan"),
            pytest.param(INF, True, id="inf"),
            pytest.param(None, False, id="none-not-applicable"),
        ],
    )
    def test_evaluate_when_drawdown_around_limit_then_breaches_only_above(
        self, drawdown: float | None, breaches: bool
    ) -> None:
        """Drawdown equal to the limit is inside; strictly above, NaN or inf is a breach."""
        rule = MaxStrategyDrawdown(StrategyDrawdown())
        result = rule.evaluate(metrics(drawdown=drawdown), NOW)
        assert (result is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """A breach names the rule, the strategy scope, value, limit, action and a message."""
        rule = MaxStrategyDrawdown(StrategyDrawdown())
        result = rule.evaluate(metrics(drawdown=0.06), NOW)
        assert result == Breach(
            "strategy_drawdown",
            SCOPE,
            0.06,
            0.05,
            Action.HALT_STRATEGY,
            "strategy drawdown 6.00% > limit 5.00%",
            NOW,  # detected at the evaluation time
        )

    def test_evaluate_when_nan_then_message_says_unknown(self) -> None:
        """An unmeasurable (NaN) drawdown breaches and is reported as unknown."""
        rule = MaxStrategyDrawdown(StrategyDrawdown())
        result = rule.evaluate(metrics(drawdown=NAN), NOW)
        assert result is not None
        assert result.value is not None
        assert math.isnan(result.value)
        assert result.message == "strategy drawdown unknown > limit 5.00%"

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line says what trips the rule and what then happens."""
        rule = MaxStrategyDrawdown(StrategyDrawdown())
        assert rule.short_desc() == "strategy drawdown above 5.00% -> halt_strategy"

    def test_guard_when_equity_falls_to_limit_then_strategy_stays_active(
        self, guard: Guard
    ) -> None:
        """A 5% drop from the strategy's peak is exactly at the limit: no halt."""
        guard.update_equity(100.0, strategy_id=SID)
        guard.update_equity(95.0, strategy_id=SID)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_guard_when_equity_falls_past_limit_then_strategy_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """Falling just past 5% below the peak halts the strategy, not the portfolio."""
        guard = make_guard()
        guard.update_equity(100.0, strategy_id=SID)
        guard.update_equity(110.0, strategy_id=SID)
        guard.update_equity(104.4, strategy_id=SID)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert guard.portfolio_state is PortfolioState.NORMAL
        assert reason(guard).startswith("strategy_drawdown: strategy drawdown 5.09% > limit")

    def test_guard_when_allocated_strategy_loses_then_drawdown_counts_from_allocation(
        self, make_guard: MakeGuard
    ) -> None:
        """With allocated capital 1000, a first trade losing 60 is a 6% drawdown and halts."""
        guard = make_guard(strategies={SID: {"allocated_capital": 1000.0}})
        guard.record_trade(SID, -60.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED

    def test_guard_when_drawdown_reported_as_metric_then_strategy_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A directly reported ``max_drawdown`` above the limit halts the strategy."""
        guard = make_guard()
        guard.update_strategy_metrics(SID, max_drawdown=0.051)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert reason(guard).startswith("strategy_drawdown:")


class TestMaxConsecutiveLosses:
    """``consecutive_losses``: inclusive, reaching the limit (default 5) is a breach."""

    @pytest.mark.parametrize(
        ("losses", "breaches"),
        [
            pytest.param(0, False, id="none"),
            pytest.param(4, False, id="just-below"),
            pytest.param(5, True, id="at-limit"),
            pytest.param(6, True, id="just-above"),
            pytest.param(NAN, True, id="nan"),
            pytest.param(INF, True, id="inf"),
        ],
    )
    def test_evaluate_when_losses_around_limit_then_breaches_at_limit(
        self, losses: float, breaches: bool
    ) -> None:
        """Four losses are inside; the fifth reaches the limit and breaches."""
        rule = MaxConsecutiveLosses(ConsecutiveLosses())
        result = rule.evaluate(metrics(consecutive_losses=losses), NOW)
        assert (result is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """The breach reports the count as a float, the limit and a '>=' message."""
        rule = MaxConsecutiveLosses(ConsecutiveLosses())
        result = rule.evaluate(metrics(consecutive_losses=5), NOW)
        assert result == Breach(
            "consecutive_losses",
            SCOPE,
            5.0,
            5.0,
            Action.HALT_STRATEGY,
            "consecutive losses 5 >= limit 5",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_says_reaches(self) -> None:
        """An inclusive rule's status line says 'reaches', not 'above'."""
        rule = MaxConsecutiveLosses(ConsecutiveLosses())
        assert rule.short_desc() == "consecutive losses reaches 5 -> halt_strategy"

    def test_guard_when_four_losses_then_strategy_active(self, make_guard: MakeGuard) -> None:
        """Four losing trades in a row stay under the default limit of five."""
        guard = make_guard()
        for _ in range(4):
            guard.record_trade(SID, -1.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_guard_when_fifth_loss_then_strategy_halted(self, make_guard: MakeGuard) -> None:
        """The fifth losing trade in a row halts the strategy with the rule as reason."""
        guard = make_guard()
        for _ in range(5):
            guard.record_trade(SID, -1.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert reason(guard) == "consecutive_losses: consecutive losses 5 >= limit 5"

    def test_guard_when_win_interrupts_streak_then_strategy_active(
        self, make_guard: MakeGuard
    ) -> None:
        """A win resets the streak, so 4 losses, a win and 4 losses do not halt."""
        guard = make_guard()
        for pnl in [-1.0] * 4 + [1.0] + [-1.0] * 4:
            guard.record_trade(SID, pnl)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_guard_when_breakeven_trades_between_losses_then_streak_continues(
        self, make_guard: MakeGuard
    ) -> None:
        """A zero-P&L trade neither resets nor extends the streak: 5 losses still halt."""
        guard = make_guard()
        for pnl in [-1.0, 0.0, -1.0, 0.0, -1.0, -1.0, 0.0]:
            guard.record_trade(SID, pnl)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.record_trade(SID, -1.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED


class TestMinWinRate:
    """``win_rate``: breaches strictly below the limit (30%), once min_trades (20) are in."""

    @pytest.mark.parametrize(
        ("trade_count", "win_rate", "breaches"),
        [
            pytest.param(19, 0.0, False, id="below-min-trades-not-judged"),
            pytest.param(20, 0.0, True, id="min-trades-zero-wins"),
            pytest.param(20, math.nextafter(0.3, 0.0), True, id="just-below"),
            pytest.param(20, 0.3, False, id="at-limit"),
            pytest.param(20, math.nextafter(0.3, 1.0), False, id="just-above"),
            pytest.param(500, 0.9, False, id="healthy"),
            pytest.param(20, NAN, True, id="nan"),
            pytest.param(20, -INF, True, id="minus-inf"),
            pytest.param(20, None, False, id="none-not-applicable"),
            pytest.param(19, NAN, False, id="nan-before-min-trades-not-judged"),
        ],
    )
    def test_evaluate_when_win_rate_around_limit_then_breaches_only_below(
        self, trade_count: int, win_rate: float | None, breaches: bool
    ) -> None:
        """At or above the limit is inside; below, NaN or -inf breach after min_trades."""
        rule = MinWinRate(WinRate())
        result = rule.evaluate(metrics(trade_count=trade_count, win_rate=win_rate), NOW)
        assert (result is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """A low win rate breach uses '<' in its message."""
        rule = MinWinRate(WinRate())
        result = rule.evaluate(metrics(trade_count=20, win_rate=0.25), NOW)
        assert result == Breach(
            "win_rate",
            SCOPE,
            0.25,
            0.3,
            Action.HALT_STRATEGY,
            "win rate 25.00% < limit 30.00%",
            NOW,  # detected at the evaluation time
        )

    def test_short_desc_when_default_then_mentions_min_trades(self) -> None:
        """The status line says 'below' and how many trades must be in first."""
        rule = MinWinRate(WinRate())
        assert rule.short_desc() == "win rate below 30.00% -> halt_strategy (after 20 trades)"

    def test_guard_when_win_rate_at_limit_then_strategy_active(self, make_guard: MakeGuard) -> None:
        """Two wins in four trades is exactly the 50% limit: no halt."""
        guard = make_guard(triggers={"win_rate": {"limit": 0.5, "min_trades": 4}})
        for pnl in (1.0, -1.0, 1.0, -1.0):
            guard.record_trade(SID, pnl)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE

    def test_guard_when_win_rate_below_limit_after_min_trades_then_strategy_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """One win in four trades is below 50% and halts once the fourth trade is in."""
        guard = make_guard(triggers={"win_rate": {"limit": 0.5, "min_trades": 4}})
        for pnl in (1.0, -1.0, -1.0):
            guard.record_trade(SID, pnl)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE  # 3 < min_trades
        guard.record_trade(SID, 0.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert reason(guard) == "win_rate: win rate 25.00% < limit 50.00%"

    def test_guard_when_reported_win_rate_without_trade_count_then_not_judged(
        self, make_guard: MakeGuard
    ) -> None:
        """A reported win rate alone is ignored while the trade count is below min_trades."""
        guard = make_guard()
        guard.update_strategy_metrics(SID, win_rate=0.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.update_strategy_metrics(SID, trade_count=20)
        assert guard.strategy_state(SID) is StrategyState.HALTED


class TestMaxPositionSize:
    """``position_size``: largest notional / portfolio equity, breaches when > limit (20%)."""

    @pytest.mark.parametrize(
        ("size", "breaches"),
        [
            pytest.param(0.0, False, id="zero"),
            pytest.param(math.nextafter(0.2, 0.0), False, id="just-below"),
            pytest.param(0.2, False, id="at-limit"),
            pytest.param(math.nextafter(0.2, 1.0), True, id="just-above"),
            pytest.param(NAN, True, id="nan"),
            pytest.param(INF, True, id="inf-unknown-equity"),
            pytest.param(None, False, id="none-no-positions"),
        ],
    )
    def test_evaluate_when_size_around_limit_then_breaches_only_above(
        self, size: float | None, breaches: bool
    ) -> None:
        """A position exactly at 20% of equity is inside; above it, NaN or inf breach."""
        rule = MaxPositionSize(PositionSize())
        result = rule.evaluate(metrics(position_size=size), NOW)
        assert (result is not None) is breaches

    def test_evaluate_when_breached_then_breach_fields_describe_it(self) -> None:
        """A finite breach reports the fraction against the limit."""
        rule = MaxPositionSize(PositionSize())
        result = rule.evaluate(metrics(position_size=0.25), NOW)
        assert result == Breach(
            "position_size",
            SCOPE,
            0.25,
            0.2,
            Action.HALT_STRATEGY,
            "largest position / equity 25.00% > limit 20.00%",
            NOW,  # detected at the evaluation time
        )

    def test_evaluate_when_equity_unknown_then_message_says_cannot_size(self) -> None:
        """An infinite size (position but no equity) explains that it cannot be measured."""
        rule = MaxPositionSize(PositionSize())
        result = rule.evaluate(metrics(position_size=INF), NOW)
        assert result is not None
        assert result.value == INF
        assert result.message == (
            "position held but portfolio equity unknown or not positive: cannot size it"
        )

    def test_short_desc_when_default_then_names_limit_and_action(self) -> None:
        """The status line names the measure, the limit and the action."""
        rule = MaxPositionSize(PositionSize())
        assert rule.short_desc() == "largest position / equity above 20.00% -> halt_strategy"

    def test_guard_when_price_remarks_position_past_limit_then_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """20% of equity is inside; a price move re-marks it above 20% and halts."""
        guard = make_guard()
        guard.update_equity(1000.0)
        guard.update_position(SID, "AAPL", 2.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.update_prices({"AAPL": 100.5})
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert reason(guard) == "position_size: largest position / equity 20.10% > limit 20.00%"

    def test_guard_when_position_without_portfolio_equity_then_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A position while portfolio equity is unknown cannot be sized: fail closed."""
        guard = make_guard()
        guard.update_position(SID, "AAPL", 1.0, 1.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert "cannot size it" in reason(guard)

    def test_guard_when_portfolio_equity_falls_then_held_position_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A portfolio equity drop re-sizes held positions: 200 of 990 exceeds 20%."""
        guard = make_guard()
        guard.update_equity(1000.0)
        guard.update_position(SID, "AAPL", -2.0, 100.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        guard.update_equity(990.0)
        assert guard.strategy_state(SID) is StrategyState.HALTED
        assert reason(guard).startswith("position_size:")


class TestRuleSetConfiguration:
    """The rule set built from config: overrides, disabling and per-strategy triggers."""

    def test_override_when_limit_and_action_changed_then_rule_uses_them(
        self, make_guard: MakeGuard
    ) -> None:
        """A 20%/hard_halt drawdown override ignores 10% and hard-halts the portfolio at 25%."""
        guard = make_guard(triggers={"strategy_drawdown": {"limit": 0.2, "action": "hard_halt"}})
        guard.update_equity(100.0, strategy_id=SID)
        guard.update_equity(90.0, strategy_id=SID)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.update_equity(75.0, strategy_id=SID)
        assert guard.portfolio_state is PortfolioState.HARD_HALT
        assert guard.strategy_state(SID) is StrategyState.ACTIVE  # the action targets portfolio
        assert guard.status_of(PORTFOLIO).reason.startswith("strategy_drawdown:")

    def test_override_when_shorthand_number_then_only_limit_changes(
        self, make_config: MakeConfig
    ) -> None:
        """The bare-number form sets the limit and keeps the default action."""
        config = make_config(triggers={"consecutive_losses": 3})
        rules = {r.name: r for r in RuleSet(config).for_strategy(SID)}
        assert rules["consecutive_losses"].limit == 3.0
        assert rules["consecutive_losses"].action is Action.HALT_STRATEGY

    def test_enabled_false_when_rule_disabled_then_never_breaches(
        self, make_guard: MakeGuard
    ) -> None:
        """With consecutive_losses disabled, ten losses in a row do not halt."""
        guard = make_guard(triggers={"consecutive_losses": {"limit": 5, "enabled": False}})
        for _ in range(10):
            guard.record_trade(SID, -1.0)
        assert guard.strategy_state(SID) is StrategyState.ACTIVE
        names = {r.name for r in RuleSet(guard.config).for_strategy(SID)}
        assert "consecutive_losses" not in names

    def test_per_strategy_override_when_set_then_applies_only_to_that_strategy(
        self, make_guard: MakeGuard
    ) -> None:
        """A tighter loss streak for one strategy halts it while another strategy trades on."""
        guard = make_guard(strategies={"tight": {"triggers": {"consecutive_losses": 2}}})
        for _ in range(2):
            guard.record_trade("tight", -1.0)
            guard.record_trade("loose", -1.0)
        assert guard.strategy_state("tight") is StrategyState.HALTED
        assert guard.strategy_state("loose") is StrategyState.ACTIVE
        assert reason(guard, "tight") == "consecutive_losses: consecutive losses 2 >= limit 2"

    def test_per_strategy_override_when_other_trigger_absent_then_global_kept(
        self, make_config: MakeConfig
    ) -> None:
        """Overriding one trigger for a strategy keeps the global values of the others."""
        config = make_config(
            triggers={"strategy_drawdown": 0.07},
            strategies={"tight": {"triggers": {"consecutive_losses": 2}}},
        )
        rules = RuleSet(config)
        tight = {r.name: r.limit for r in rules.for_strategy("tight")}
        other = {r.name: r.limit for r in rules.for_strategy("other")}
        assert tight["consecutive_losses"] == 2.0
        assert tight["strategy_drawdown"] == 0.07
        assert other["consecutive_losses"] == 5.0

    def test_per_strategy_disable_when_set_then_other_strategies_still_watched(
        self, make_guard: MakeGuard
    ) -> None:
        """Disabling drawdown for one strategy leaves it on for the rest."""
        guard = make_guard(
            strategies={"free": {"triggers": {"strategy_drawdown": {"enabled": False}}}}
        )
        for sid in ("free", "watched"):
            guard.update_equity(100.0, strategy_id=sid)
            guard.update_equity(50.0, strategy_id=sid)
        assert guard.strategy_state("free") is StrategyState.ACTIVE
        assert guard.strategy_state("watched") is StrategyState.HALTED

    def test_strategies_on_defaults_when_many_then_one_shared_table(
        self, make_config: MakeConfig
    ) -> None:
        """Strategies on the defaults, and one configured with capital only, share one rule
        table (nothing per strategy); one with its own trigger has its own."""
        config = make_config(
            strategies={
                "funded": {"allocated_capital": 1000},
                "tight": {"triggers": {"consecutive_losses": 2}},
            }
        )
        rules = RuleSet(config)
        shared = rules.strategy_watching("a", Topic.PRICES)
        assert rules.strategy_watching("b", Topic.PRICES) is shared
        assert rules.strategy_watching("funded", Topic.PRICES) is shared
        assert rules.configured == ("tight",)
        assert rules.strategy_watching("tight", Topic.TRADES) is not rules.strategy_watching(
            "a", Topic.TRADES
        )
        assert rules.size_limit == 0.20

    def test_size_limit_when_position_size_disabled_then_unbounded(
        self, make_config: MakeConfig
    ) -> None:
        """With the default position-size rule off, no equity change crosses it."""
        config = make_config(triggers={"position_size": {"limit": 0.2, "enabled": False}})
        assert RuleSet(config).size_limit == math.inf
