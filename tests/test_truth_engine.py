"""Other processes never make a guard less restrictive: halts are decided on the store's truth.

Two guards on one SQLite file are two processes' views of it (the second one is the CLI or
another trading process). Each test reproduces a way a halt was lost or a lift slipped through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import MakeGuard, MakeParts
from tradeguard import Order, PortfolioState, StrategyState
from tradeguard.assembly import Parts
from tradeguard.model import Scope

S1 = Scope.strategy("s1")


def buy(strategy: str = "s1") -> Order:
    return Order(strategy, "BTC", "buy", 1.0, 100.0)


def probe_orders(parts: Parts, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Judge an order at every point an adoption could expose a lift: as the ledger is
    rebased and at every published change; returns when one was accepted."""
    accepted: list[str] = []

    def probe(where: str) -> None:
        if parts.orders.check(buy()).accepted:
            accepted.append(where)

    def probing(name: str) -> Callable[..., None]:
        original = getattr(parts.intake.ledger, name)

        def wrapped(*args: object) -> None:
            probe(name)
            original(*args)
            probe(name)

        return wrapped

    for name in ("rebase_portfolio", "rebase_strategy"):
        monkeypatch.setattr(parts.intake.ledger, name, probing(name))
    parts.core.transitions.subscribe(lambda change: probe(f"{change.before}->{change.after}"))
    return accepted


def trading_parts(make_parts: MakeParts) -> Parts:
    parts = make_parts()
    parts.intake.update_prices({"BTC": 100.0})
    parts.commands.register_strategy("s1", None, None)
    return parts


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


class TestAdoptedLiftRechecked:
    def test_reset_elsewhere_when_margin_still_breaching_then_rehalted_with_no_order_accepted(
        self, make_parts: MakeParts, make_guard: MakeGuard, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reset adopted while margin stays at 95% halts again before any order is judged."""
        trading = trading_parts(make_parts)
        trading.intake.update_portfolio(equity=1e6, margin_used=95.0, margin_available=5.0)
        assert trading.core.book.portfolio_state is PortfolioState.SOFT_HALT
        accepted = probe_orders(trading, monkeypatch)
        cli = make_guard()
        cli.reset("risk1", reason="looked fine from here")
        assert cli.status()["portfolio"]["state"] == "normal"
        trading.sync.watch()
        assert accepted == []
        assert not trading.orders.check(buy()).accepted
        assert trading.core.book.portfolio_state is PortfolioState.SOFT_HALT
        cli.tick()
        assert cli.portfolio_state is PortfolioState.SOFT_HALT  # the re-halt is in the store

    def test_resume_elsewhere_when_position_still_too_big_then_rehalted_with_no_order_accepted(
        self, make_parts: MakeParts, make_guard: MakeGuard, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A resume adopted while a position stays at 50% (limit 20%) halts s1 again at once."""
        trading = trading_parts(make_parts)
        trading.intake.update_portfolio(equity=1_000.0)
        trading.intake.update_position("s1", "BTC", 5.0, 100.0)
        assert trading.core.book.status_of(S1).state == StrategyState.HALTED
        accepted = probe_orders(trading, monkeypatch)
        cli = make_guard()
        cli.resume_strategy("s1", "senior1", reason="looked fine from here")
        trading.sync.watch()
        assert accepted == []
        assert not trading.orders.check(buy()).accepted
        assert trading.core.book.status_of(S1).state == StrategyState.HALTED
        cli.tick()
        assert cli.strategy_state("s1") is StrategyState.HALTED

    def test_resume_elsewhere_when_nothing_breaches_then_adopted_and_trading(
        self, make_parts: MakeParts, make_guard: MakeGuard
    ) -> None:
        """A lift whose causes are gone is adopted as it is: the re-check only halts breaches."""
        trading = trading_parts(make_parts)
        trading.commands.halt_strategy("s1", "trader1", "look at it")
        make_guard().resume_strategy("s1", "senior1", reason="looked at it")
        assert trading.sync.watch()
        assert trading.core.book.status_of(S1).state == StrategyState.ACTIVE
        assert trading.orders.check(buy()).accepted

    def test_reset_elsewhere_when_strategy_rule_acts_on_portfolio_then_rehalted(
        self, make_parts: MakeParts, make_guard: MakeGuard
    ) -> None:
        """A strategy's rule whose action is a portfolio halt is judged on an adopted reset too."""
        trading = make_parts(triggers={"consecutive_losses": {"limit": 2, "action": "soft_halt"}})
        trading.commands.register_strategy("s1", None, None)
        for _ in range(3):
            trading.intake.record_trade("s1", -1.0)
        assert trading.core.book.portfolio_state is PortfolioState.SOFT_HALT
        make_guard().reset("risk1", reason="looked fine from here")
        trading.sync.watch()
        assert trading.core.book.portfolio_state is PortfolioState.SOFT_HALT


class TestEveryGuardWatches:
    def test_halt_elsewhere_when_guard_never_started_then_adopted_and_orders_refused(
        self, make_guard: MakeGuard
    ) -> None:
        """A guard nobody started still adopts a CLI halt by itself (its watcher runs from birth)."""
        trading = make_guard(guard={"watch_interval_seconds": 0.01})
        trading.update_prices({"BTC": 100.0})
        trading.register_strategy("s1")
        assert trading.check_order(buy()).accepted
        halted = threading.Event()
        trading.register_callback("strategy_halt", lambda _sid: halted.set())
        make_guard().halt_strategy("s1", user="trader1", reason="from the CLI")
        assert halted.wait(10.0), "the halt was never adopted"
        assert trading.strategy_state("s1") is StrategyState.HALTED
        assert not trading.check_order(buy()).accepted

    def test_guard_when_closed_then_its_watcher_is_gone(self, make_guard: MakeGuard) -> None:
        """The watcher a guard starts when built ends with ``close`` (a CLI leaves no thread)."""
        guard = make_guard()
        watchers = [t for t in threading.enumerate() if t.name == "tradeguard-watcher"]
        assert watchers and all(t.daemon for t in watchers)
        guard.stop()
        assert any(t.is_alive() for t in watchers)  # stop() ends monitoring, not watching
        guard.close()
        assert not any(t.is_alive() for t in watchers)

    def test_watcher_when_it_outlives_close_then_no_emergency_marker(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A watcher's late look after ``close`` finds no store: it reports no failure."""
        guard = make_guard()
        watch = guard._backstop._sync.watch  # what a watcher that missed its join would call
        guard.close()
        assert watch() is False
        assert not db_path.with_name(db_path.name + ".emergency").exists()
