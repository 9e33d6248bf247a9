"""Several processes on one store: each guard adopts what the others wrote, on its next tick."""

from __future__ import annotations

from tests.conftest import MakeGuard
from tradeguard import PortfolioState, StrategyState


class TestSharedStore:
    def test_halt_in_one_guard_when_other_ticks_then_adopted_with_callback(
        self, make_guard: MakeGuard
    ) -> None:
        """A halt written elsewhere reaches this process and fires its own strategy_halt callback."""
        trading, operator = make_guard(), make_guard()
        halted: list[str] = []
        trading.register_callback("strategy_halt", halted.append)
        trading.record_trade("mom", 1.0)
        operator.halt_strategy("mom", user="trader1", reason="from the desk")
        assert trading.strategy_state("mom") is StrategyState.ACTIVE  # tests watch hourly: the tick
        trading.tick()
        trading.flush()
        assert trading.strategy_state("mom") is StrategyState.HALTED
        assert trading.status()["strategies"]["mom"]["reason"] == "from the desk"
        assert halted == ["mom"]

    def test_emergency_elsewhere_when_ticked_then_local_halt_cannot_weaken_it(
        self, make_guard: MakeGuard
    ) -> None:
        """An emergency from another process stays; a later local soft halt is a no-op on top."""
        trading, operator = make_guard(), make_guard()
        operator.emergency("trader1")
        trading.tick()
        trading.portfolio_halt("trader1")
        assert trading.portfolio_state is PortfolioState.EMERGENCY
        assert operator.verify_audit().ok

    def test_reset_elsewhere_when_ticked_then_adopted_and_baselines_rebased(
        self, make_guard: MakeGuard
    ) -> None:
        """A two-person reset done in another process lifts this guard too, from the current equity."""
        trading, operator = make_guard(), make_guard()
        trading.update_portfolio(equity=100.0)
        trading.update_portfolio(equity=85.0)  # drawdown 15%: hard halt
        operator.tick()
        assert operator.portfolio_state is PortfolioState.HARD_HALT
        operator.reset("risk1", reason="reviewed")
        trading.tick()
        assert trading.portfolio_state is PortfolioState.NORMAL
        trading.update_portfolio(equity=84.0)  # -1.2% from the rebased 85: inside every limit
        assert trading.portfolio_state is PortfolioState.NORMAL

    def test_stale_write_when_other_guard_changed_scope_then_retried_not_lost(
        self, make_guard: MakeGuard
    ) -> None:
        """A guard whose memory is behind the store re-reads and re-decides instead of overwriting."""
        first, second = make_guard(), make_guard()
        first.emergency("trader1")
        second.portfolio_close("trader1")  # second still believes normal; the store says emergency
        assert second.portfolio_state is PortfolioState.EMERGENCY
        changes = [r.entry for r in second.audit_records() if r.entry.action == "state_change"]
        assert [(e.before, e.after) for e in changes] == [("normal", "emergency")]
