"""The kill-switch check of the pre-trade pipeline, and the risk freeze during an emergency."""

from __future__ import annotations

import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard, Order, PermissionDenied, PortfolioState
from tradeguard.errors import BadRequest


def order(side: str = "buy", quantity: float = 1.0, strategy: str = "s1") -> Order:
    return Order(strategy, "BTC", side, quantity, 100.0)


class TestKillSwitchCheck:
    @pytest.fixture(autouse=True)
    def _priced(self, guard: Guard) -> None:
        guard.update_prices({"BTC": 100.0})  # a known symbol: the bounds check needs a price
        guard.register_strategy("s1")  # and a known strategy
        guard.register_strategy("s2")

    def test_order_when_all_clear_then_accepted(self, guard: Guard) -> None:
        """Normal portfolio, active strategy: the kill switch lets the order through."""
        decision = guard.check_order(order())
        assert (decision.accepted, decision.check, decision.reason) == (True, None, "accepted")

    @pytest.mark.parametrize("halt", ["portfolio_close", "emergency"])
    def test_order_when_portfolio_hard_halted_then_every_order_refused(
        self, guard: Guard, halt: str
    ) -> None:
        """Hard halt and emergency refuse everything, reducing orders included."""
        guard.update_portfolio(equity=1_000_000.0)
        guard.update_position("s1", "BTC", 5, 100.0)
        getattr(guard, halt)("trader1")
        decision = guard.check_order(order("sell", 1.0))
        assert (decision.accepted, decision.check) == (False, "kill_switch")
        assert "no orders" in decision.reason

    def test_order_when_strategy_halted_then_refused_naming_it(self, guard: Guard) -> None:
        """The most restrictive scope wins: a halted strategy cannot trade in a normal book."""
        guard.halt_strategy("s1", user="trader1")
        decision = guard.check_order(order())
        assert not decision.accepted and decision.reason == "strategy s1 is halted"
        assert guard.check_order(order(strategy="s2")).accepted

    @pytest.mark.parametrize(
        ("position", "side", "quantity", "accepted"),
        [
            (5.0, "sell", 5.0, True),  # closes exactly
            (5.0, "sell", 2.0, True),  # reduces
            (5.0, "sell", 5.5, False),  # would flip to short: adds exposure
            (5.0, "buy", 1.0, False),  # adds to the long
            (-3.0, "buy", 3.0, True),  # covers the short
            (-3.0, "sell", 1.0, False),
            (0.0, "sell", 1.0, False),  # opens a short
        ],
    )
    def test_order_when_soft_halt_then_reduce_only(
        self, guard: Guard, position: float, side: str, quantity: float, accepted: bool
    ) -> None:
        """A soft halt passes only orders that reduce the strategy's position in the symbol."""
        guard.update_portfolio(equity=1_000_000.0)  # so the position can be sized
        if position:
            guard.update_position("s1", "BTC", position, 100.0)
        guard.portfolio_halt("trader1")
        decision = guard.check_order(order(side, quantity))
        assert decision.accepted is accepted
        if not accepted:
            assert decision.check == "kill_switch" and "reduce-only" in decision.reason

    @pytest.mark.parametrize(
        "bad",
        [order(side="hold"), order(quantity=float("nan")), order(quantity=0), order(quantity=-1)],
    )
    def test_order_when_malformed_then_refused_by_bounds(self, guard: Guard, bad: Order) -> None:
        """An order the kill switch cannot judge is refused, never waved through."""
        decision = guard.check_order(bad)
        assert (decision.accepted, decision.check) == (False, "bounds")


class TestRiskFreeze:
    def test_set_limit_when_risk_manager_then_applied_audited_and_evaluated(
        self, guard: Guard
    ) -> None:
        """A tighter limit takes effect at once, on the metrics already known."""
        guard.update_strategy_metrics("s1", max_drawdown=0.03)
        guard.set_limit("strategy_drawdown", "risk1", limit=0.02, reason="vol regime")
        assert guard.strategy_state("s1") == "halted"
        configure = [r.entry for r in guard.audit_records() if r.entry.action == "configure"]
        assert (
            configure
            and configure[0].scope == "trigger:strategy_drawdown"
            and '"limit": 0.02' in str(configure[0].after)
        )

    def test_set_limit_when_trader_then_denied(self, guard: Guard) -> None:
        """Changing limits needs risk_manager."""
        with pytest.raises(PermissionDenied):
            guard.set_limit("strategy_drawdown", "trader1", limit=0.5)

    @pytest.mark.parametrize(
        ("trigger", "change"),
        [("strategy_drawdown", {"limit": 2.0}), ("nope", {"limit": 0.1}), ("win_rate", {})],
    )
    def test_set_limit_when_invalid_then_bad_request_audited(
        self, guard: Guard, trigger: str, change: dict[str, float]
    ) -> None:
        """An invalid change is refused with the reason, and the attempt is on record."""
        with pytest.raises(BadRequest):
            guard.set_limit(trigger, "risk1", **change)
        assert [r.entry.action for r in guard.audit_records()] == ["refused:configure"]

    @pytest.mark.parametrize(
        ("trigger", "change", "allowed"),
        [
            ("portfolio_drawdown", {"limit": 0.05}, True),
            ("portfolio_drawdown", {"limit": 0.2}, False),
            ("win_rate", {"limit": 0.4}, True),
            ("win_rate", {"limit": 0.2}, False),
            ("portfolio_daily_loss", {"action": "hard_halt"}, True),
            ("portfolio_drawdown", {"action": "soft_halt"}, False),
            ("feed_stale", {"enabled": False}, False),
        ],
    )
    def test_set_limit_when_emergency_then_only_stricter_accepted(
        self, guard: Guard, trigger: str, change: dict[str, object], allowed: bool
    ) -> None:
        """During lockdown only changes that make things safer are accepted."""
        guard.emergency("trader1")
        if allowed:
            guard.set_limit(trigger, "risk1", **change)  # type: ignore[arg-type]
        else:
            with pytest.raises(PermissionDenied, match="lockdown"):
                guard.set_limit(trigger, "risk1", **change)  # type: ignore[arg-type]
        assert guard.portfolio_state is PortfolioState.EMERGENCY

    def test_resume_when_emergency_then_refused_lockdown(self, guard: Guard) -> None:
        """Nothing is resumed while the book is locked down."""
        guard.halt_strategy("s1", user="trader1")
        guard.emergency("trader1")
        with pytest.raises(PermissionDenied, match="lockdown"):
            guard.resume_strategy("s1", user="admin1")
        assert guard.strategy_state("s1") == "halted"


class TestMagnitudeBound:
    @pytest.mark.parametrize("quantity", [1e300, 1e16, 10**20])
    def test_order_when_quantity_beyond_magnitude_and_no_notional_limit_then_refused_by_bounds(
        self, make_guard: MakeGuard, quantity: float
    ) -> None:
        """A quantity past the magnitude bound is refused even when no limit would catch it."""
        guard = make_guard(pretrade={"limits": {"max_order_notional": None}})
        guard.update_prices({"BTC": 100.0})
        guard.register_strategy("s1")
        decision = guard.check_order(order(quantity=quantity))
        assert (decision.accepted, decision.check) == (False, "bounds")
        assert "quantity" in decision.reason
