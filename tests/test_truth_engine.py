"""Other processes never make a guard less restrictive: halts are decided on the store's truth.

Two guards on one SQLite file are two processes' views of it (the second one is the CLI or
another trading process). Each test reproduces a way a halt was lost or a lift slipped through.
"""

from __future__ import annotations

from tests.conftest import MakeGuard
from tradeguard import Order, PortfolioState, StrategyState


def buy(strategy: str = "s1") -> Order:
    return Order(strategy, "BTC", "buy", 1.0, 100.0)


class TestHaltOnStoredTruth:
    def test_halt_when_other_process_resumed_then_written_and_strategy_stays_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A person's halt after a resume elsewhere is written, not dropped as "already halted"."""
        trading, cli = make_guard(), make_guard()
        trading.update_prices({"BTC": 100.0})
        trading.register_strategy("s1")
        trading.halt_strategy("s1", user="trader1", reason="first")
        cli.resume_strategy("s1", "senior1", reason="looked fine")
        change = trading.halt_strategy("s1", user="trader1", reason="stop it again")
        assert change is not None and change.after == StrategyState.HALTED
        trading.tick()
        assert trading.strategy_state("s1") is StrategyState.HALTED
        assert not trading.check_order(buy()).accepted
        cli.tick()
        assert cli.strategy_state("s1") is StrategyState.HALTED
        assert cli.status()["strategies"]["s1"]["reason"] == "stop it again"

    def test_portfolio_halt_when_other_process_reset_then_written_and_book_stays_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A soft halt after a reset elsewhere is written and holds after adopting the store."""
        trading, cli = make_guard(), make_guard()
        trading.portfolio_halt("trader1", reason="first")
        cli.reset("risk1", reason="reviewed")
        change = trading.portfolio_halt("trader1", reason="again")
        assert change is not None and change.after == PortfolioState.SOFT_HALT
        trading.tick()
        assert trading.portfolio_state is PortfolioState.SOFT_HALT
        cli.tick()
        assert cli.portfolio_state is PortfolioState.SOFT_HALT

    def test_halt_when_store_already_halted_then_repeated_and_nothing_written(
        self, make_guard: MakeGuard
    ) -> None:
        """ "Already halted" is said when the store says so: a repeat, recorded as one."""
        trading, cli = make_guard(), make_guard()
        trading.register_strategy("s1")
        cli.halt_strategy("s1", user="trader1", reason="from the desk")
        trading.tick()
        assert trading.halt_strategy("s1", user="trader1", reason="me too") is None
        actions = [r.entry.action for r in trading.audit_records()]
        assert actions.count("state_change") == 1 and "repeated:halt" in actions
