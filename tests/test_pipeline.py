"""The 8-point pre-trade pipeline: each check, its boundary, its configuration layers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard, Order
from tradeguard.config import PretradeConfig
from tradeguard.model import PortfolioState, StrategyState
from tradeguard.pretrade import Context, Pipeline
from tradeguard.testing import FakeClock


def order(
    side: str = "buy",
    quantity: float = 1.0,
    price: float = 100.0,
    strategy: str = "s1",
    symbol: str = "BTC",
    cid: str | None = None,
) -> Order:
    return Order(strategy, symbol, side, quantity, price, client_order_id=cid)


@pytest.fixture
def priced(make_guard: MakeGuard) -> Any:
    def build(**pretrade: Any) -> Guard:
        guard = make_guard(pretrade=pretrade) if pretrade else make_guard()
        guard.update_portfolio(equity=10_000_000.0)
        guard.update_prices({"BTC": 100.0, "ETH": 10.0})
        for sid in ("s0", "s1", "s2", "s3"):
            guard.register_strategy(sid)  # orders from unknown strategies are refused
        return guard

    return build


class TestBounds:
    @pytest.mark.parametrize(
        ("price", "accepted"), [(110.0, True), (90.0, True), (110.01, False), (89.99, False)]
    )
    def test_price_when_around_the_collar_then_edge_accepted(
        self, priced: Any, price: float, accepted: bool
    ) -> None:
        """The default 10% collar around the last price: at the edge in, past it out."""
        decision = priced().check_order(order(price=price))
        assert decision.accepted is accepted
        if not accepted:
            assert decision.check == "bounds" and "fat finger" in decision.reason

    def test_symbol_when_never_priced_then_unknown(self, priced: Any) -> None:
        """A symbol with no reference price is refused (require_known_symbol)."""
        decision = priced().check_order(order(symbol="DOGE"))
        assert (decision.check, decision.accepted) == (
            "bounds",
            False,
        ) and "unknown symbol" in decision.reason


class TestLimits:
    @pytest.mark.parametrize(("quantity", "accepted"), [(5, True), (5.0001, False)])
    def test_quantity_when_at_and_past_max_then_edge_accepted(
        self, priced: Any, quantity: float, accepted: bool
    ) -> None:
        """max_order_quantity: equal passes, more is refused."""
        guard = priced(limits={"max_order_quantity": 5})
        decision = guard.check_order(order(quantity=quantity))
        assert decision.accepted is accepted and (accepted or decision.check == "limits")

    def test_notional_when_past_max_then_refused(self, priced: Any) -> None:
        """max_order_notional, default 1,000,000."""
        assert priced().check_order(order(quantity=10_000, price=100.0)).accepted
        decision = priced().check_order(order(quantity=10_001, price=100.0))
        assert decision.check == "limits" and "max order notional" in decision.reason

    def test_layers_when_strategy_and_symbol_set_then_each_replaces_global_and_stricter_wins(
        self, priced: Any
    ) -> None:
        """A strategy's or a symbol's setting replaces the global one; when both set it, the stricter."""
        guard = priced(
            limits={"max_order_quantity": 100},
            strategies={"s1": {"max_order_quantity": 10}},
            symbols={"ETH": {"max_order_quantity": 50}},
        )
        assert not guard.check_order(order(quantity=11)).accepted  # s1 on BTC: 10
        assert guard.check_order(order(quantity=11, strategy="s2")).accepted  # s2 on BTC: 100
        assert guard.check_order(
            order(quantity=40, price=10.0, symbol="ETH", strategy="s2")
        ).accepted  # s2 on ETH: 50
        assert (
            guard.check_order(order(quantity=40, price=10.0, symbol="ETH")).check == "limits"
        )  # s1 on ETH: min(10, 50)


class TestCap:
    def test_position_when_past_cap_then_refused_but_reducing_allowed(self, priced: Any) -> None:
        """The resulting position is capped; getting smaller is always allowed."""
        guard = priced(limits={"max_position_notional": 1_000})
        guard.update_position("s1", "BTC", 9, 100.0)
        assert guard.check_order(order(quantity=1)).accepted  # 10 x 100 = cap
        assert guard.check_order(order(quantity=2)).check == "cap"
        assert guard.check_order(order(side="sell", quantity=20)).check == "cap"  # flips to -11
        assert guard.check_order(order(side="sell", quantity=5)).accepted

    def test_gross_when_past_cap_then_refused(self, priced: Any) -> None:
        """The strategy's gross exposure after the order is capped."""
        guard = priced(limits={"max_gross_exposure": 1_500})
        guard.update_position("s1", "ETH", 100, 10.0)  # 1,000 gross
        assert guard.check_order(order(quantity=5)).accepted
        assert guard.check_order(order(quantity=6)).check == "cap"

    def test_agent_when_past_allocated_capital_then_refused(
        self, priced: Any, make_guard: MakeGuard
    ) -> None:
        """An agent cannot put on more than its allocated capital (x the agent_capital limit)."""
        guard = make_guard(strategies={"s1": {"allocated_capital": 1_000}})  # registered
        guard.update_portfolio(equity=10_000_000.0)
        guard.update_prices({"BTC": 100.0})
        assert guard.check_order(order(quantity=10)).accepted
        decision = guard.check_order(order(quantity=11))
        assert decision.check == "cap" and "allocated capital" in decision.reason


class TestDrawdown:
    def test_strategy_when_past_soft_drawdown_then_reducing_only(self, priced: Any) -> None:
        """Past the soft drawdown (default 3%) no new risk, before the hard 5% halts it."""
        guard = priced()
        guard.update_position("s1", "BTC", 5, 100.0)
        guard.update_strategy_metrics("s1", max_drawdown=0.03)
        assert guard.check_order(order()).accepted  # at the limit
        guard.update_strategy_metrics("s1", max_drawdown=0.031)
        assert guard.check_order(order()).check == "drawdown"
        assert guard.check_order(order(side="sell", quantity=5)).accepted


class TestRate:
    def test_strategy_when_over_its_rate_then_refused_until_refilled(
        self, priced: Any, clock: FakeClock
    ) -> None:
        """A per-strategy token bucket on the injected clock: burst, then refusals, then refill."""
        guard = priced(rate={"per_strategy": 2, "per_strategy_burst": 3}, dedup_window_seconds=0)
        results = [guard.check_order(order(cid=f"c{i}")).accepted for i in range(4)]
        assert results == [True, True, True, False]
        assert guard.check_order(order(cid="c9")).check == "rate"
        assert guard.check_order(order(strategy="s2", cid="other")).accepted  # its own bucket
        clock.advance(0.5)  # 2/s: one token back
        assert guard.check_order(order(cid="c10")).accepted

    def test_total_when_over_global_rate_then_refused(self, priced: Any) -> None:
        """All strategies together have a budget too."""
        guard = priced(rate={"total": 1, "total_burst": 2}, dedup_window_seconds=0)
        assert [guard.check_order(order(strategy=f"s{i}")).accepted for i in range(3)] == [
            True,
            True,
            False,
        ]

    def test_refused_order_when_counted_then_consumes_no_rate(self, priced: Any) -> None:
        """Only accepted orders use tokens."""
        guard = priced(rate={"per_strategy": 1, "per_strategy_burst": 1})
        assert guard.check_order(order(price=500.0)).check == "bounds"
        assert guard.check_order(order()).accepted


class TestDedup:
    def test_client_id_when_reused_then_refused(self, priced: Any, clock: FakeClock) -> None:
        """A client order id is good once, at any distance in time."""
        guard = priced()
        assert guard.check_order(order(cid="x1")).accepted
        clock.advance(3600)
        assert guard.check_order(order(cid="x1", quantity=2)).check == "dedup"

    def test_identical_order_when_within_window_then_refused(
        self, priced: Any, clock: FakeClock
    ) -> None:
        """The same order again within the window (default 1 s) looks like a double send."""
        guard = priced()
        assert guard.check_order(order()).accepted
        clock.advance(1.0)
        assert guard.check_order(order()).check == "dedup"
        clock.advance(0.001)
        assert guard.check_order(order()).accepted


class TestAllocation:
    def context(self, stage: float | None, position: float = 0.0) -> Context:
        return Context(
            PortfolioState.NORMAL,
            StrategyState.RECOVERING,
            position,
            0.0,
            None,
            100.0,
            10_000.0,
            stage,
        )

    @pytest.mark.parametrize(
        ("stage", "quantity", "accepted"),
        [
            (0.0, 1, False),
            (0.25, 25, True),
            (0.25, 26, False),
            (0.5, 50, True),
            (0.5, 51, False),
            (None, 100, True),
        ],
    )
    def test_stage_when_recovering_then_size_scaled(
        self, clock: FakeClock, stage: float | None, quantity: float, accepted: bool
    ) -> None:
        """paper sends nothing; 25% and 50% scale what may be put on; full size is unscaled."""
        pipeline = Pipeline(PretradeConfig(), clock.time())
        decision = pipeline.check(order(quantity=quantity), self.context(stage), clock.time())
        assert decision.accepted is accepted and (accepted or decision.check == "allocation")

    @pytest.mark.parametrize(
        ("limit", "quantity", "accepted", "words"),
        [
            ("max_position_notional", 50, True, ""),
            (
                "max_position_notional",
                51,
                False,
                "BTC position 5,100.00 > 50% of its limit 10,000.00",
            ),
            ("max_gross_exposure", 50, True, ""),
            ("max_gross_exposure", 51, False, "gross exposure 5,100.00 > 50% of its limit"),
        ],
    )
    def test_stage_when_caps_set_then_each_scaled(
        self, clock: FakeClock, limit: str, quantity: float, accepted: bool, words: str
    ) -> None:
        """Every size limit the strategy has is scaled, not only the order's notional."""
        config = PretradeConfig.model_validate({"limits": {limit: 10_000.0}})
        pipeline = Pipeline(config, clock.time())
        context = self.context(0.5)._replace(capital_cap=None)
        decision = pipeline.check(order(quantity=quantity), context, clock.time())
        assert decision.accepted is accepted
        assert words in decision.reason

    def test_stage_when_order_flips_the_position_then_judged_on_the_new_side(
        self, clock: FakeClock
    ) -> None:
        """Selling 80 of a +20 position is not a reduction: the -60 left is new risk."""
        pipeline = Pipeline(PretradeConfig(), clock.time())
        decision = pipeline.check(
            order(side="sell", quantity=80), self.context(0.25, position=20), clock.time()
        )
        assert decision.check == "allocation" and "allocated capital" in decision.reason

    def test_stage_when_orders_pending_then_they_count_against_the_scaled_limits(
        self, clock: FakeClock
    ) -> None:
        """At 50% of a 10,000 position cap, two unfilled buys of 30 (6,000) do not both fit."""
        config = PretradeConfig.model_validate(
            {"limits": {"max_position_notional": 10_000.0}, "dedup_window_seconds": 0}
        )
        pipeline = Pipeline(config, clock.time())
        context = self.context(0.5)._replace(capital_cap=None)
        assert pipeline.check(order(quantity=30, cid="a"), context, clock.time()).accepted
        decision = pipeline.check(order(quantity=30, cid="b"), context, clock.time())
        assert decision.check == "allocation" and "position 6,000.00" in decision.reason

    def test_stage_when_reducing_then_allowed(self, clock: FakeClock) -> None:
        """Getting out is never limited by the stage (except paper, which sends nothing)."""
        pipeline = Pipeline(PretradeConfig(), clock.time())
        assert pipeline.check(
            order(side="sell", quantity=80), self.context(0.25, position=80), clock.time()
        ).accepted


class TestCounting:
    def test_refusals_when_made_then_counted_by_check(self, priced: Any) -> None:
        """Rejections are counted per check (and exported in /metrics)."""
        guard = priced()
        guard.check_order(order(price=500.0))
        guard.check_order(order(symbol="DOGE"))
        guard.check_order(order(quantity=10_001))
        assert guard.refusals == {"bounds": 2, "limits": 1}


class TestConfiguration:
    def test_limits_when_no_override_for_the_pair_then_the_global_object(
        self, clock: FakeClock
    ) -> None:
        """Pairs with no strategy or symbol override share the global limits (no per-pair
        resolution on the hot path); pairs with one resolve once per layer combination."""
        config = PretradeConfig.model_validate(
            {"strategies": {"s1": {"max_order_quantity": 5}}, "symbols": {"ETH": {}}}
        )
        pipeline = Pipeline(config, clock.time())
        assert pipeline.limits("s2", "BTC") is config.limits
        assert pipeline.limits("s1", "BTC").max_order_quantity == 5
        assert pipeline.limits("s1", "BTC") is pipeline.limits("s1", "SOL") is not config.limits
        assert pipeline.limits("s1", "ETH").max_order_quantity == 5

    def test_limits_when_one_set_then_the_other_defaults_stay(self, priced: Any) -> None:
        """Setting one limit must not switch the others off (the collar still applies)."""
        guard = priced(limits={"max_position_notional": 5_000_000})
        assert guard.check_order(order(price=150.0)).check == "bounds"
        assert guard.check_order(order(quantity=20_000)).check == "limits"

    def test_limit_when_set_to_null_then_off(self, priced: Any) -> None:
        """null turns a limit off, explicitly."""
        guard = priced(limits={"price_collar": None})
        assert guard.check_order(order(price=150.0)).accepted


class TestReviewFindings:
    def test_strategy_when_unregistered_or_disguised_then_refused(self, priced: Any) -> None:
        """An id the guard does not know, or a halted one with a trailing newline, cannot trade."""
        guard = priced()
        guard.halt_strategy("s1", user="trader1")
        for sid in ("never-registered", "s1\n"):
            decision = guard.check_order(order(strategy=sid))
            assert not decision.accepted, sid

    def test_layers_when_symbol_looser_than_strategy_then_strategy_limit_holds(
        self, priced: Any
    ) -> None:
        """Where a strategy and a symbol both set a limit, the stricter applies."""
        guard = priced(
            strategies={"s1": {"max_order_quantity": 10}},
            symbols={"BTC": {"max_order_quantity": None}},
        )
        assert guard.check_order(order(quantity=11)).check == "limits"

    def test_clock_when_stepped_back_then_rate_still_flows(self, clock: FakeClock) -> None:
        """A wall clock stepped back by NTP must not starve the buckets."""
        pipeline = Pipeline(
            PretradeConfig.model_validate(
                {"rate": {"per_strategy": 1, "per_strategy_burst": 1}, "dedup_window_seconds": 0}
            ),
            clock.time(),
        )
        ctx = Context("normal", "active", 0.0, 0.0, None, 100.0, None, None)
        now = clock.time()
        assert pipeline.check(order(cid="a"), ctx, now).accepted
        assert pipeline.check(order(cid="b"), ctx, now - 3600).check == "rate"
        assert pipeline.check(order(cid="c"), ctx, now - 3599).accepted

    def test_client_id_when_other_strategy_uses_it_then_fine(self, priced: Any) -> None:
        """Client order ids are per strategy."""
        guard = priced()
        assert guard.check_order(order(cid="1")).accepted
        assert guard.check_order(order(strategy="s2", cid="1")).accepted

    @pytest.mark.parametrize(
        "bad",
        [
            order(quantity=10**400),
            order(price=10**400),
            Order("s1", "BTC", "buy", 1.0, 100.0, client_order_id=[1]),
        ],
    )  # type: ignore[arg-type]
    def test_values_when_absurd_then_refused_not_raised(self, priced: Any, bad: Order) -> None:
        """Enormous numbers and a client id that is not a string are refusals, not exceptions."""
        decision = priced().check_order(bad)
        assert (decision.accepted, decision.check) == (False, "bounds")

    def test_client_id_when_not_a_string_then_refused_by_name(self, priced: Any) -> None:
        """A numeric client order id is refused, saying which field is wrong."""
        bad = Order("s1", "BTC", "buy", 1.0, 100.0, client_order_id=7)  # type: ignore[arg-type]
        decision = priced().check_order(bad)
        assert decision.check == "bounds" and "client_order_id must be a string" in decision.reason

    def test_exit_when_symbol_priced_only_by_the_position_then_allowed(self, priced: Any) -> None:
        """A position reported before any market price can still be closed in a soft halt."""
        guard = priced()
        guard.update_position("s1", "SOL", 10, 150.0)
        guard.portfolio_halt("trader1")
        assert guard.check_order(
            order(side="sell", quantity=10, price=150.0, symbol="SOL")
        ).accepted

    def test_agent_capital_when_tightened_then_pipeline_follows(
        self, make_guard: MakeGuard
    ) -> None:
        """set_limit on agent_capital reaches the pre-trade cap at once."""
        guard = make_guard(strategies={"s1": {"allocated_capital": 100_000}})
        guard.update_portfolio(equity=10_000_000.0)
        guard.update_prices({"BTC": 100.0})
        assert guard.check_order(order(quantity=600)).accepted
        guard.set_limit("agent_capital", "risk1", limit=0.25)
        assert guard.check_order(order(quantity=600, cid="x")).check == "cap"


class TestPendingOrders:
    def test_caps_when_orders_pending_then_they_count(self, priced: Any) -> None:
        """Accepted but unfilled orders count against the cap: the second 90k does not fit 100k."""
        guard = priced(limits={"max_position_notional": 100_000})
        assert guard.check_order(order(quantity=900, cid="a")).accepted
        assert guard.check_order(order(quantity=900, cid="b")).check == "cap"

    def test_gross_when_orders_pending_on_a_symbol_then_they_count(self, priced: Any) -> None:
        """Unfilled buys grow the gross exposure the next order is judged against."""
        guard = priced(limits={"max_gross_exposure": 150_000}, dedup_window_seconds=0)
        assert guard.check_order(order(quantity=900, cid="a")).accepted
        decision = guard.check_order(order(quantity=900, cid="b"))
        assert decision.check == "cap" and "gross exposure would be 180,000.00" in decision.reason

    def test_soft_halt_when_refused_then_reason_counts_open_orders(self, priced: Any) -> None:
        """The position a reduce-only refusal quotes includes the open orders, and says so."""
        guard = priced(dedup_window_seconds=0)
        guard.update_position("s1", "BTC", 2, 100.0)
        assert guard.check_order(order(quantity=1, cid="a")).accepted
        guard.portfolio_halt("trader1")
        reason = guard.check_order(order(quantity=1, cid="b")).reason
        assert "(position 3, counting open orders as filled)" in reason

    def test_soft_halt_when_sells_pending_then_no_flip(self, priced: Any) -> None:
        """Five sells of a +100 position: only the first reduces; the rest would go short."""
        guard = priced(dedup_window_seconds=0)
        guard.update_position("s1", "BTC", 100, 100.0)
        guard.portfolio_halt("trader1")
        results = [
            guard.check_order(order(side="sell", quantity=100, cid=f"s{i}")).accepted
            for i in range(5)
        ]
        assert results == [True, False, False, False, False]

    def test_order_closed_when_reported_then_released(self, priced: Any) -> None:
        """order_closed ends the reservation at once; the fill is then in the position."""
        guard = priced(limits={"max_position_notional": 100_000}, dedup_window_seconds=0)
        assert guard.check_order(order(quantity=900, cid="a")).accepted
        assert guard.order_closed("s1", "a") and not guard.order_closed("s1", "a")
        assert guard.check_order(order(quantity=900, cid="b")).accepted

    def test_reservation_when_never_closed_then_expires(
        self, priced: Any, clock: FakeClock
    ) -> None:
        """Without order_closed, a reservation lasts reservation_seconds (default 30 s)."""
        guard = priced(limits={"max_position_notional": 100_000})
        assert guard.check_order(order(quantity=900)).accepted
        clock.advance(29)
        assert guard.check_order(order(quantity=900, price=100.0, cid="x")).check == "cap"
        clock.advance(1.5)
        assert guard.check_order(order(quantity=900, cid="y")).accepted

    def test_client_id_when_forgotten_but_still_open_then_refused_until_closed(
        self, priced: Any
    ) -> None:
        """The dedup memory is bounded (client_ids_remembered), but an id whose order is still
        open is never reusable: two open orders under one id would make order_closed release
        the wrong one, and leave the other counting for ever."""
        guard = priced(client_ids_remembered=1, dedup_window_seconds=0)
        assert guard.check_order(order(quantity=4, cid="x")).accepted
        assert guard.check_order(order(quantity=1, price=10.0, symbol="ETH", cid="y")).accepted
        assert guard.check_order(order(quantity=5, cid="x")).check == "dedup"  # forgotten, open
        assert guard.order_closed("s1", "x")
        assert guard.check_order(order(quantity=5, cid="x")).accepted  # forgotten and closed

    def test_reservation_when_closed_then_its_reused_id_expires_then_later_order_kept(
        self, priced: Any, clock: FakeClock
    ) -> None:
        """A closed order's expiry must not release the order that reused its id since (the
        memory forgot it): that order still counts, and order_closed still finds it."""
        guard = priced(
            limits={"max_position_notional": 1000}, client_ids_remembered=1, dedup_window_seconds=0
        )
        assert guard.check_order(order(quantity=5, cid="x")).accepted
        assert guard.order_closed("s1", "x")
        assert guard.check_order(order(quantity=1, price=10.0, symbol="ETH", cid="y")).accepted
        clock.advance(1)
        assert guard.check_order(order(quantity=5, cid="x")).accepted  # 500 pending
        clock.advance(29.5)  # the first "x" expires; the second has 1 s to go
        assert guard.check_order(order(quantity=6, cid="z")).check == "cap"  # 500 + 600 > 1000
        assert guard.order_closed("s1", "x")

    def test_pending_sell_when_checking_a_buy_then_not_counted_as_smaller(
        self, priced: Any
    ) -> None:
        """A resting sell may never fill: it does not make room under the cap for more buys."""
        guard = priced(limits={"max_position_notional": 100_000}, dedup_window_seconds=0)
        guard.update_position("s1", "BTC", 1000, 100.0)  # at the cap
        assert guard.check_order(order(side="sell", quantity=500, cid="tp")).accepted
        assert guard.check_order(order(quantity=100, cid="more")).check == "cap"
