"""A large book stays fail-closed: at 10,000 strategies over 1,000 symbols, a one-symbol tick
and a portfolio equity update judge only the holders whose verdict they can move, and every
holder they make breach is halted before the call returns (no batching: the next pre-trade
check already refuses it).

The sizes are the issue's; the expected sets are computed by brute force over every
strategy, so an index that missed a holder fails here. No timing: speed is in bench/.
"""

from __future__ import annotations

import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard, Order
from tradeguard.model import StrategyState

STRATEGIES = 10_000
SYMBOLS = 1_000
EQUITY = 10_000_000.0
LIMIT = 0.20  # the default position_size limit


def quantity(i: int) -> float:
    """Strategy i's quantity at 100: one unit, but for every 500th strategy (the holders of
    X0 and X500), 1 + 5 * (i // 500) units (notionals of 100 to 9,600). A test's crossings
    are then few, as every halt is a durable store write."""
    return 1.0 + 5 * (i // 500) if i % 500 == 0 else 1.0


@pytest.fixture
def book(make_guard: MakeGuard) -> Guard:
    """10,000 strategies, strategy i holding symbol i % 1,000 (10 holders each), plus one with
    a position-size limit of its own."""
    guard = make_guard(strategies={"tight": {"triggers": {"position_size": 0.001}}})
    guard.update_portfolio(equity=EQUITY)
    guard.update_prices({f"X{n}": 100.0 for n in range(SYMBOLS)})
    for i in range(STRATEGIES):
        guard.update_position(f"s{i}", f"X{i % SYMBOLS}", quantity(i), 100.0)
    guard.update_position("tight", "X0", 50.0, 100.0)  # 5,000: 0.05% of 10M
    return guard


def halted(guard: Guard) -> set[str]:
    return {
        sid
        for sid in [*(f"s{i}" for i in range(STRATEGIES)), "tight"]
        if guard.strategy_state(sid) is StrategyState.HALTED
    }


def oversized(guard: Guard) -> set[str]:
    """Brute force: every strategy whose largest position is over its limit right now."""
    ledger = guard._intake.ledger
    found = set()
    for sid, m in ledger.strategies.items():
        size = m.position_size
        limit = 0.001 if sid == "tight" else LIMIT
        if size is not None and not size <= limit:
            found.add(sid)
    return found


class TestTick:
    def test_tick_when_holders_cross_then_each_halted_before_return(self, book: Guard) -> None:
        """A one-symbol tick that makes its 10 holders oversized halts exactly them, and the
        next pre-trade check refuses them."""
        price = 25_000.0  # X500's holders hold 6 to 96 units: 86 and 96 are over 20%
        book.update_prices({"X500": price})
        expected = {f"s{i}" for i in range(500, STRATEGIES, SYMBOLS) if quantity(i) * price > 2e6}
        assert expected  # the tick must make some holders breach, and not all
        assert len(expected) < STRATEGIES // SYMBOLS
        assert halted(book) == expected == oversized(book)
        sid = min(expected)
        decision = book.check_order(Order(sid, "X500", "sell", 1.0, price))
        assert not decision.accepted

    def test_tick_when_no_holder_crosses_then_nobody_halted(self, book: Guard) -> None:
        """A tick inside every limit halts nothing, however large the book."""
        book.update_prices({"X7": 101.0})
        assert halted(book) == set()


class TestEquity:
    @pytest.mark.parametrize("equity", [40_000.0, 48_000.0, 3_000_000.0])
    def test_equity_when_falls_then_exactly_the_oversized_halted(
        self, book: Guard, equity: float
    ) -> None:
        """An equity fall halts every holder whose size it pushed over its limit, including
        one on a limit of its own, and leaves one exactly at the limit alone (48,000: s9500's
        9,600 notional is exactly 20%), before the call returns."""
        book.update_portfolio(equity=equity)
        expected = oversized(book)
        assert "tight" in expected
        assert halted(book) == expected

    def test_equity_when_rises_back_then_halts_stay_and_no_new_ones(self, book: Guard) -> None:
        """Only a human lifts a halt: an equity recovery neither lifts nor adds any."""
        book.update_portfolio(equity=40_000.0)
        before = halted(book)
        book.update_portfolio(equity=EQUITY)
        assert halted(book) == before

    def test_equity_when_not_positive_then_every_holder_halted(self, make_guard: MakeGuard) -> None:
        """Equity at zero sizes every position as unbounded: all holders halt (a smaller
        book: every halt is a store write)."""
        guard = make_guard()
        guard.update_portfolio(equity=EQUITY)
        for i in range(100):
            guard.update_position(f"s{i}", f"X{i % 10}", 1.0, 100.0)
        guard.update_position("flat", "X0", 0.0, 100.0)
        guard.update_portfolio(equity=0.0)
        states = {f"s{i}": guard.strategy_state(f"s{i}") for i in range(100)}
        assert set(states.values()) == {StrategyState.HALTED}
        assert guard.strategy_state("flat") is StrategyState.ACTIVE

    def test_equity_when_tick_moved_a_holder_then_its_new_size_is_judged(self, book: Guard) -> None:
        """The size index follows ticks: a holder a tick made larger is found by the next
        equity fall at its new size, not the one it had."""
        book.update_prices({"X3": 9_000.0})  # its holders' 1 unit: 9,000 notional, was 100
        book.update_portfolio(equity=40_000.0)  # threshold 8,000: they are over it now
        assert "s3" in halted(book)
        assert halted(book) == oversized(book)
