"""Bad input raises a clear error and halts the scope it concerns: the guard fails closed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard, InvalidInput, PortfolioState, StrategyState, UnknownStrategy
from tradeguard.testing import FakeClock

NAN, INF = math.nan, math.inf

StrategyCall = Callable[[Guard], Any]

# (description, call, fragment of the error message); each concerns strategy "s1".
STRATEGY_CASES: list[tuple[str, StrategyCall, str]] = [
    ("pnl NaN", lambda g: g.record_trade("s1", NAN), "pnl must be finite"),
    ("pnl inf", lambda g: g.record_trade("s1", -INF), "pnl must be finite"),
    ("pnl string", lambda g: g.record_trade("s1", "12"), "pnl must be a number"),
    ("pnl bool", lambda g: g.record_trade("s1", True), "pnl must be a number"),
    ("pnl None", lambda g: g.record_trade("s1", None), "pnl must be a number"),
    ("equity NaN", lambda g: g.update_equity(NAN, strategy_id="s1"), "equity must be finite"),
    (
        "quantity NaN",
        lambda g: g.update_position("s1", "BTC", NAN, 10.0),
        "quantity must be finite",
    ),
    ("price zero", lambda g: g.update_position("s1", "BTC", 1, 0), "price must be > 0"),
    ("price negative", lambda g: g.update_position("s1", "BTC", 1, -5.0), "price must be > 0"),
    ("symbol empty", lambda g: g.update_position("s1", "", 1, 5.0), "symbol must be"),
    (
        "metric NaN",
        lambda g: g.update_strategy_metrics("s1", max_drawdown=NAN),
        "max_drawdown must be finite",
    ),
    (
        "metric negative",
        lambda g: g.update_strategy_metrics("s1", max_drawdown=-0.1),
        "max_drawdown must be >= 0",
    ),
    (
        "losses float",
        lambda g: g.update_strategy_metrics("s1", consecutive_losses=6.0),
        "whole number",
    ),
    ("losses negative", lambda g: g.update_strategy_metrics("s1", consecutive_losses=-1), ">= 0"),
    (
        "win rate > 1",
        lambda g: g.update_strategy_metrics("s1", win_rate=1.2),
        "win_rate must be in [0, 1]",
    ),
    (
        "unknown metric",
        lambda g: g.update_strategy_metrics("s1", max_drawdwn=0.01),
        "unknown metrics ['max_drawdwn']",
    ),
]

PORTFOLIO_CASES: list[tuple[str, Callable[[Guard], Any], str]] = [
    ("equity NaN", lambda g: g.update_equity(NAN), "equity must be finite"),
    ("equity string", lambda g: g.update_portfolio(equity="1e6"), "equity must be a number"),
    ("margin negative", lambda g: g.update_portfolio(margin_used=-1.0), "margin_used must be >= 0"),
    ("margin inf", lambda g: g.update_portfolio(margin_available=INF), "must be finite"),
    ("nothing given", lambda g: g.update_portfolio(), "update_portfolio needs"),
    ("price NaN", lambda g: g.update_prices({"BTC": NAN}), "price of BTC must be finite"),
    ("price negative", lambda g: g.update_prices({"BTC": -1.0}), "price of BTC must be > 0"),
    ("prices not a mapping", lambda g: g.update_prices([("BTC", 1.0)]), "must be a mapping"),
    ("symbol not a string", lambda g: g.update_prices({5: 1.0}), "symbol must be"),
    (
        "naive timestamp",
        lambda g: g.update_prices({"BTC": 1.0}, ts=datetime(2026, 1, 1)),
        "timezone-aware",
    ),
    ("timestamp garbage", lambda g: g.update_prices({"BTC": 1.0}, ts="noon"), "timestamp must be"),
    ("correlation > 1", lambda g: g.update_portfolio_metrics(correlation=1.5), "in [-1, 1]"),
    (
        "unknown metric",
        lambda g: g.update_portfolio_metrics(dailyloss=0.01),
        "unknown metrics ['dailyloss']",
    ),
    ("strategy id empty", lambda g: g.record_trade("", 1.0), "strategy_id must be"),
    ("strategy id not str", lambda g: g.heartbeat(42), "strategy_id must be"),
]


class TestStrategyInputs:
    @pytest.mark.parametrize(
        ("case", "call", "message"), STRATEGY_CASES, ids=[c[0] for c in STRATEGY_CASES]
    )
    def test_bad_strategy_input_when_given_then_raises_and_halts_strategy(
        self, guard: Guard, case: str, call: StrategyCall, message: str
    ) -> None:
        """The error names the field, and the strategy is halted with reason invalid_input."""
        guard.register_strategy("s1")
        with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
            call(guard)
        assert caught.value.scope == "strategy:s1"
        assert guard.strategy_state("s1") is StrategyState.HALTED
        assert guard.status()["strategies"]["s1"]["reason"].startswith("invalid_input: ")
        assert guard.portfolio_state is PortfolioState.NORMAL

    def test_bad_input_when_rejected_then_ledger_unchanged(self, guard: Guard) -> None:
        """A rejected update is not half-applied: the valid fields of it are not recorded."""
        guard.update_position("s1", "BTC", 1, 100.0)
        with pytest.raises(InvalidInput):
            guard.update_position("s1", "BTC", 5, NAN)
        positions = guard.status()["strategies"]["s1"]["metrics"]["positions"]
        assert positions == {"BTC": {"quantity": 1.0, "price": 100.0}}

    def test_numeric_types_when_valid_then_accepted(self, guard: Guard) -> None:
        """ints, Decimals and numpy floats are numbers; only bool and non-numbers are refused."""
        import numpy as np

        guard.record_trade("s1", 5)
        guard.record_trade("s1", Decimal("2.5"))
        guard.record_trade("s1", np.float64(1.0))
        assert guard.status()["strategies"]["s1"]["metrics"]["realized_pnl"] == 8.5
        assert guard.strategy_state("s1") is StrategyState.ACTIVE


class TestPortfolioInputs:
    @pytest.mark.parametrize(
        ("case", "call", "message"), PORTFOLIO_CASES, ids=[c[0] for c in PORTFOLIO_CASES]
    )
    def test_bad_portfolio_input_when_given_then_raises_and_soft_halts(
        self, guard: Guard, case: str, call: StrategyCall, message: str
    ) -> None:
        """Input the portfolio depends on fails closed to the configured invalid_input_action."""
        with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
            call(guard)
        assert caught.value.scope == "portfolio"
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert guard.status()["portfolio"]["reason"].startswith("invalid_input: ")

    def test_invalid_input_action_when_configured_then_used(self, make_guard: MakeGuard) -> None:
        """invalid_input_action chooses how hard the portfolio halts on bad input."""
        guard = make_guard(guard={"invalid_input_action": "hard_halt"})
        with pytest.raises(InvalidInput):
            guard.update_equity(NAN)
        assert guard.portfolio_state is PortfolioState.HARD_HALT

    def test_future_timestamp_when_beyond_skew_then_rejected(
        self, guard: Guard, clock: FakeClock
    ) -> None:
        """A price stamped in the future would hide staleness: refused beyond the allowed skew."""
        guard.update_prices({"BTC": 1.0}, ts=clock.time() + 5)  # at the limit: accepted
        assert guard.portfolio_state is PortfolioState.NORMAL
        with pytest.raises(InvalidInput, match="in the future"):
            guard.update_prices({"BTC": 1.0}, ts=clock.time() + 6)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_out_of_order_price_when_older_then_ignored(
        self, guard: Guard, clock: FakeClock
    ) -> None:
        """An older tick arriving late does not overwrite a newer price."""
        guard.update_position("s1", "BTC", 1, 90.0)  # a holder: its mark is the latest price
        now = clock.time()
        guard.update_prices({"BTC": 100.0}, ts=now)
        guard.update_prices({"BTC": 50.0}, ts=now - 10)
        assert guard.status()["strategies"]["s1"]["metrics"]["positions"]["BTC"]["price"] == 100.0


class TestStrictStrategies:
    def test_unknown_strategy_when_strict_then_raises_and_halts_it(
        self, make_guard: MakeGuard
    ) -> None:
        """In strict mode an unregistered strategy is refused and held halted."""
        guard = make_guard(guard={"strict_strategies": True}, strategies={"known": {}})
        guard.record_trade("known", 1.0)
        with pytest.raises(UnknownStrategy, match="unknown strategy 'rogue'"):
            guard.record_trade("rogue", 1.0)
        assert guard.strategy_state("rogue") is StrategyState.HALTED
        assert guard.status()["strategies"]["rogue"]["state"] == "halted"
        assert guard.strategy_state("known") is StrategyState.ACTIVE

    def test_registered_strategy_when_strict_then_accepted(self, make_guard: MakeGuard) -> None:
        """register_strategy makes a strategy known at run time."""
        guard = make_guard(guard={"strict_strategies": True})
        guard.register_strategy("late", allocated_capital=1000)
        guard.record_trade("late", -1.0)
        assert guard.strategy_state("late") is StrategyState.ACTIVE

    def test_unknown_strategy_when_not_strict_then_registered_on_first_use(
        self, guard: Guard
    ) -> None:
        """Without strict mode, strategies appear as they report."""
        guard.heartbeat("agent-7")
        assert "agent-7" in guard.status()["strategies"]


class TestHostileStrings:
    def test_id_when_a_str_subclass_lies_about_equality_then_no_other_id_passes(
        self, guard: Guard
    ) -> None:
        """A str subclass that claims to equal everything is not remembered as a valid id, so
        a malformed id looked up later is still refused, and the strategy is not created."""

        class Liar(str):
            def __hash__(self) -> int:
                return hash("bad id\n")

            def __eq__(self, other: object) -> bool:
                return True

        guard.update_position("s1", Liar("AAPL"), 1, 100.0)
        with pytest.raises(InvalidInput, match="1-128 characters"):
            guard.update_strategy_metrics("bad id\n", max_drawdown=0.0)
        assert "bad id\n" not in guard.status()["strategies"]
