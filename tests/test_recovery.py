"""Coming back after a halt: cool-downs, validation before a resume, the re-entry ladder."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeConfig, MakeGuard
from tests.emergency_support import venue
from tradeguard import Guard, Order, ResumeRefused
from tradeguard.config import parse_config
from tradeguard.errors import ConfigError, PermissionDenied
from tradeguard.testing import FakeClock
from tradeguard.venues import Faults

STAGES = [
    {"name": "paper", "fraction": 0.0, "min_seconds": 60},
    {"name": "25%", "fraction": 0.25, "min_seconds": 120, "min_trades": 2, "pnl_floor": -500},
    {"name": "50%", "fraction": 0.5, "min_seconds": 120, "min_trades": 2},
]
LADDER = {"enabled": True, "cooldown_seconds": 300, "stages": STAGES}
ORDER_LIMITS = {"limits": {"max_order_notional": 100_000, "price_collar": None}}


def buy(notional: float, strategy: str = "s1") -> Order:
    return Order(strategy, "BTC", "buy", notional / 100.0, 100.0)


@pytest.fixture
def ladder_guard(make_guard: MakeGuard) -> Guard:
    """A priced, halted strategy s1 whose halt has served its cool-down."""
    guard = make_guard(recovery=LADDER, pretrade=ORDER_LIMITS)
    feed(guard)
    guard.register_strategy("s1")
    guard.halt_strategy("s1", "trader1", "fills look wrong")
    return guard


def feed(guard: Guard) -> None:
    """Fresh prices and equity: time passes in these tests, and silent feeds halt the book."""
    guard.update_portfolio(equity=1_000_000.0)
    guard.update_prices({"BTC": 100.0})


def serve_cooldown(clock: FakeClock) -> None:
    clock.advance(301)


def audit_actions(guard: Guard) -> list[str]:
    return [r.entry.action for r in guard.audit_records()]


class TestCooldown:
    def test_resume_when_inside_cooldown_then_refused_with_time_left(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """Resuming 110 s after a halt with a 300 s cool-down is refused, saying 3m 10s left."""
        clock.advance(110)
        feed(ladder_guard)
        with pytest.raises(ResumeRefused, match="cool-down: 3m 10s left of 5m 00s") as info:
            ladder_guard.resume_strategy("s1", "senior1")
        assert len(info.value.problems) == 1
        assert ladder_guard.strategy_state("s1") == "halted"
        assert audit_actions(ladder_guard)[-1] == "refused:resume"

    def test_resume_when_cooldown_served_then_accepted(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """At the end of the cool-down the same resume goes through."""
        clock.advance(300)
        feed(ladder_guard)
        ladder_guard.resume_strategy("s1", "senior1")
        assert ladder_guard.strategy_state("s1") == "recovering"

    def test_resume_when_trigger_sets_its_own_cooldown_then_that_one_applies(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A drawdown halt with ``cooldown_seconds: 30`` may be lifted after 30 s, not 300."""
        guard = make_guard(
            recovery=LADDER,
            triggers={"strategy_drawdown": {"limit": 0.05, "cooldown_seconds": 30}},
        )
        guard.update_equity(100_000.0, strategy_id="s1")
        guard.update_equity(90_000.0, strategy_id="s1")
        assert guard.strategy_state("s1") == "halted"
        clock.advance(29)
        with pytest.raises(ResumeRefused, match="1s left of 30s after the halt by rule:"):
            guard.resume_strategy("s1", "senior1")
        clock.advance(1)
        guard.resume_strategy("s1", "senior1")
        assert guard.strategy_state("s1") == "recovering"

    def test_reset_when_inside_cooldown_then_refused_and_audited(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A portfolio halt serves its cool-down too: the reset says how long is left."""
        guard = make_guard(recovery=LADDER)
        guard.portfolio_close("trader1")
        clock.advance(60)
        with pytest.raises(ResumeRefused, match="cannot reset yet: cool-down: 4m 00s left"):
            guard.reset("risk1")
        assert guard.portfolio_state == "hard_halt"
        assert audit_actions(guard)[-1] == "refused:reset"
        clock.advance(240)
        assert guard.reset("risk1").status == "executed"

    def test_reset_when_emergency_inside_cooldown_then_no_request_opened(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """No two-person request can even be opened before an emergency's cool-down is over."""
        guard = make_guard(
            recovery=LADDER,
            triggers={
                "portfolio_drawdown": {"limit": 0.1, "action": "emergency", "cooldown_seconds": 900}
            },
        )
        guard.update_portfolio(equity=1_000_000.0)
        guard.update_portfolio(equity=850_000.0)
        assert guard.portfolio_state == "emergency"
        clock.advance(600)
        with pytest.raises(ResumeRefused, match="5m 00s left of 15m 00s"):
            guard.reset("risk1")
        assert guard.status()["pending_approvals"] == []


class TestValidation:
    def test_resume_when_feed_stale_then_refused_naming_it(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """A strategy does not come back on a price feed that has gone quiet."""
        serve_cooldown(clock)
        ladder_guard.update_portfolio(equity=1_000_000.0)  # equity fresh, prices not
        ladder_guard.tick()  # the price feed is now 301 s old: feed_stale breaches
        with pytest.raises(ResumeRefused, match=r"feeds are stale \(feed_stale\)"):
            ladder_guard.resume_strategy("s1", "senior1")

    def test_resume_when_portfolio_hard_halted_then_refused(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """A strategy cannot come back while the whole book is being closed."""
        ladder_guard.portfolio_close("trader1")
        serve_cooldown(clock)
        feed(ladder_guard)
        with pytest.raises(ResumeRefused, match="the portfolio is hard-halted: reset it first"):
            ladder_guard.resume_strategy("s1", "senior1")

    def test_resume_when_emergency_then_permission_denied(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """During an emergency nothing is resumed, whatever the validation would say."""
        ladder_guard.emergency("trader1")
        serve_cooldown(clock)
        with pytest.raises(PermissionDenied, match="lockdown"):
            ladder_guard.resume_strategy("s1", "senior1")

    def test_resume_when_limit_still_crossed_then_refused_naming_the_limit(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """A position still too large for the book is a reason to stay halted: it would halt
        again at once."""
        ladder_guard.update_position("s1", "BTC", 3_000.0, 100.0)  # 30% of equity > 20%
        serve_cooldown(clock)
        feed(ladder_guard)
        with pytest.raises(ResumeRefused, match="still breaching: largest position / equity"):
            ladder_guard.resume_strategy("s1", "senior1")

    def test_resume_when_venue_holds_unknown_position_then_refused(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """Positions are reconciled with the venues: one the guard does not know refuses."""
        v = venue("alpha", clock)
        v.set_position("BTC", 2.0, strategy_id="s1")
        v.set_position("ETH", 1.0, strategy_id="other")  # someone else's: not s1's business
        ladder_guard.add_venue(v)
        ladder_guard.update_position("s1", "BTC", 1.0, 100.0)
        serve_cooldown(clock)
        feed(ladder_guard)
        with pytest.raises(
            ResumeRefused, match="position in BTC: the venues hold 2, the guard knows 1"
        ):
            ladder_guard.resume_strategy("s1", "senior1")
        ladder_guard.update_position("s1", "BTC", 2.0, 100.0)
        ladder_guard.resume_strategy("s1", "senior1")
        assert ladder_guard.strategy_state("s1") == "recovering"

    def test_resume_when_venue_unreadable_then_refused(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """A venue that cannot be read cannot be reconciled: the halt stays."""
        ladder_guard.add_venue(venue("alpha", clock, Faults(down_until=clock.time() + 10_000)))
        serve_cooldown(clock)
        feed(ladder_guard)
        with pytest.raises(ResumeRefused, match="cannot reconcile positions with the venues"):
            ladder_guard.resume_strategy("s1", "senior1")

    def test_resume_when_its_stop_still_runs_then_refused_with_every_problem(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A halted strategy whose flatten is still fighting a dead venue stays halted; the
        refusal lists every failed check at once."""
        guard = make_guard(
            recovery=LADDER,
            strategies={"s1": {"on_halt": "flatten"}},
            emergency={"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.01},
        )
        v = venue("alpha", clock, Faults(down_until=clock.time() + 10_000))
        guard.add_venue(v)
        guard.update_portfolio(equity=1_000_000.0)
        feed(guard)
        guard.halt_strategy("s1", "trader1")  # its stop retries the venue until it is back
        clock.advance(100)
        with pytest.raises(ResumeRefused) as info:
            guard.resume_strategy("s1", "senior1")
        assert info.value.problems[0].startswith("cool-down: 3m 20s left")
        assert "its emergency stop is still running" in info.value.problems
        assert any("cannot reconcile" in p for p in info.value.problems)
        v.faults.down_until = None  # the venue is back: the stop finishes and frees the guard
        assert guard.flush(timeout=30)


class TestLadder:
    def test_resume_when_ladder_on_then_paper_sends_nothing(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """Right after a resume the strategy is in paper: every order is refused."""
        serve_cooldown(clock)
        feed(ladder_guard)
        change = ladder_guard.resume_strategy("s1", "senior1")
        assert (change.before, change.after) == ("halted", "recovering")
        decision = ladder_guard.check_order(buy(100.0))
        assert (decision.check, decision.reason) == (
            "allocation",
            "s1 is in its paper stage: orders are not sent",
        )
        recovery = ladder_guard.status()["strategies"]["s1"]["recovery"]
        assert recovery["stage"] == "paper" and recovery["next_gate"] == "1m 00s more in paper"

    def climb_to_25(self, guard: Guard, clock: FakeClock) -> None:
        serve_cooldown(clock)
        feed(guard)
        guard.resume_strategy("s1", "senior1")
        clock.advance(60)
        feed(guard)
        guard.tick()

    def test_tick_when_paper_gate_passed_then_25_percent_of_size(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """After paper's minute, a quarter of every size limit: 25,000 of 100,000 notional."""
        self.climb_to_25(ladder_guard, clock)
        assert ladder_guard.status()["strategies"]["s1"]["recovery"]["stage"] == "25%"
        assert ladder_guard.check_order(buy(25_000.0)).accepted
        refused = ladder_guard.check_order(buy(25_100.0))
        assert refused.check == "allocation" and "recovery stage 25%" in refused.reason
        step = ladder_guard.audit_records()[-1].entry
        assert (step.action, step.actor, step.before, step.after) == (
            "recovery_stage",
            "senior1",
            "paper",
            "25%",
        )

    def test_tick_when_gate_needs_trades_then_time_alone_does_not_climb(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """The 25% stage needs two closed trades besides its two minutes."""
        self.climb_to_25(ladder_guard, clock)
        clock.advance(500)
        feed(ladder_guard)
        ladder_guard.tick()
        recovery = ladder_guard.status()["strategies"]["s1"]["recovery"]
        assert (recovery["stage"], recovery["next_gate"]) == ("25%", "2 more closed trades")
        ladder_guard.record_trade("s1", 10.0)
        ladder_guard.record_trade("s1", -5.0)
        ladder_guard.tick()
        assert ladder_guard.status()["strategies"]["s1"]["recovery"]["stage"] == "50%"

    def test_tick_when_last_gate_passed_then_full_size_in_the_resumers_name(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """Past 50% the strategy is active again; the move is recorded as the resumer's."""
        self.climb_to_25(ladder_guard, clock)
        for _stage in ("25%", "50%"):
            clock.advance(120)
            feed(ladder_guard)
            ladder_guard.record_trade("s1", 10.0)
            ladder_guard.record_trade("s1", 10.0)
            ladder_guard.tick()
        assert ladder_guard.strategy_state("s1") == "active"
        assert ladder_guard.status()["strategies"]["s1"]["recovery"] is None
        assert ladder_guard.check_order(buy(99_000.0)).accepted
        last = ladder_guard.audit_records()[-1].entry
        assert (last.actor, last.before, last.after) == ("senior1", "recovering", "active")
        assert "recovery ladder complete" in last.reason

    def test_breach_when_recovering_then_halted_and_ladder_restarts(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """A drawdown at 25% halts it again; the next resume starts from paper."""
        self.climb_to_25(ladder_guard, clock)
        ladder_guard.update_equity(100_000.0, strategy_id="s1")
        ladder_guard.update_equity(94_000.0, strategy_id="s1")
        assert ladder_guard.strategy_state("s1") == "halted"
        assert ladder_guard.status()["strategies"]["s1"]["recovery"] is None
        ladder_guard.update_equity(100_000.0, strategy_id="s1")
        serve_cooldown(clock)
        feed(ladder_guard)
        ladder_guard.resume_strategy("s1", "senior1")
        assert ladder_guard.status()["strategies"]["s1"]["recovery"]["stage"] == "paper"

    def test_trade_when_stage_loss_below_floor_then_halted_at_once(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """The 25% stage may lose 500: the trade that takes it past -500 halts it, then and
        there, not at the next tick."""
        ladder_guard.record_trade("s1", -1_000.0)  # before the resume: not the stage's loss
        self.climb_to_25(ladder_guard, clock)
        ladder_guard.record_trade("s1", -300.0)
        assert ladder_guard.strategy_state("s1") == "recovering"
        ladder_guard.record_trade("s1", -250.0)
        status = ladder_guard.status()["strategies"]["s1"]
        assert status["state"] == "halted"
        assert status["reason"] == (
            "recovery_pnl_floor: recovery failed: P&L -550.00 since stage 25% began is below "
            "its floor -500.00"
        )

    def test_paper_when_losing_trades_reported_then_no_floor_applies(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """Paper has no floor configured: only the stages that set one are judged."""
        serve_cooldown(clock)
        feed(ladder_guard)
        ladder_guard.resume_strategy("s1", "senior1")
        ladder_guard.record_trade("s1", -400.0)
        ladder_guard.record_trade("s1", -400.0)
        assert ladder_guard.strategy_state("s1") == "recovering"


class TestDurability:
    def test_restart_when_recovering_then_stage_and_its_start_kept(
        self, ladder_guard: Guard, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A restart does not move a strategy up or down the ladder, nor restart its clock."""
        TestLadder().climb_to_25(ladder_guard, clock)
        since = ladder_guard.status()["strategies"]["s1"]["recovery"]["since"]
        ladder_guard.close()
        clock.advance(30)
        again = make_guard(recovery=LADDER, pretrade=ORDER_LIMITS)
        recovery = again.status()["strategies"]["s1"]["recovery"]
        assert (recovery["stage"], recovery["since"]) == ("25%", since)
        feed(again)
        assert again.check_order(buy(25_000.0)).accepted

    def test_restart_when_rung_lost_then_starts_from_paper(
        self, ladder_guard: Guard, make_guard: MakeGuard, clock: FakeClock, db_path: Path
    ) -> None:
        """A recovering state whose rung is missing (a crash, an old store) is in paper: the
        guard never guesses a larger size."""
        TestLadder().climb_to_25(ladder_guard, clock)
        ladder_guard.close()
        with closing(sqlite3.connect(db_path)) as db, db:
            db.execute("DELETE FROM recovery")
        again = make_guard(recovery=LADDER, pretrade=ORDER_LIMITS)
        feed(again)
        assert again.check_order(buy(100.0)).check == "allocation"
        recovery = again.status()["strategies"]["s1"]["recovery"]
        assert (recovery["stage"], recovery["resumed_by"]) == ("paper", "senior1")

    def test_resume_when_made_in_another_process_then_running_guard_starts_in_paper(
        self, ladder_guard: Guard, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A CLI resume reaches a running guard through the store with its rung: paper."""
        assert ladder_guard.check_order(buy(100.0)).check == "kill_switch"
        serve_cooldown(clock)
        feed(ladder_guard)
        cli = make_guard(recovery=LADDER)
        cli.resume_strategy("s1", "senior1")
        ladder_guard.tick()
        assert ladder_guard.strategy_state("s1") == "recovering"
        assert ladder_guard.check_order(buy(100.0)).check == "allocation"
        clock.advance(60)
        feed(ladder_guard)
        ladder_guard.tick()
        assert ladder_guard.check_order(buy(100.0)).accepted

    def test_tick_when_two_guards_share_a_store_then_each_step_recorded_once(
        self, ladder_guard: Guard, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Two guards on one store climb the same ladder: one step, one audit record."""
        other = make_guard(recovery=LADDER, pretrade=ORDER_LIMITS)
        TestLadder().climb_to_25(ladder_guard, clock)
        feed(other)
        other.tick()
        assert audit_actions(ladder_guard).count("recovery_stage") == 1
        assert other.status()["strategies"]["s1"]["recovery"]["stage"] == "25%"


class TestConfig:
    @pytest.mark.parametrize(
        ("recovery", "message"),
        [
            ({"stages": [{"name": "paper", "fraction": 0, "min_trades": 3}]}, "paper stage"),
            (
                {"stages": [{"name": "a", "fraction": 0.5}, {"name": "b", "fraction": 0.25}]},
                "must not shrink",
            ),
            (
                {"stages": [{"name": "a", "fraction": 0.25}, {"name": "a", "fraction": 0.5}]},
                "unique",
            ),
            ({"stages": [{"name": "a", "fraction": 0.25, "pnl_floor": 100}]}, "must be <= 0"),
            ({"stages": [{"name": "a", "fraction": 1.0}]}, "full size ends the ladder"),
            ({"stages": []}, "needs stages"),
            ({"enabled": False, "stages": []}, "needs stages"),
            ({"cooldown_seconds": -1}, "recovery.cooldown_seconds: must be >= 0"),
        ],
    )
    def test_recovery_when_invalid_then_config_error_names_it(
        self, recovery: dict[str, Any], message: str
    ) -> None:
        """Every ladder mistake is caught when the config is read, with its key path."""
        with pytest.raises(ConfigError, match=message):
            parse_config({"recovery": recovery})

    def test_trigger_cooldown_when_negative_then_config_error(self) -> None:
        """A trigger's cool-down is validated like every other threshold."""
        with pytest.raises(ConfigError, match=r"strategy_drawdown\.cooldown_seconds"):
            parse_config(
                {"triggers": {"strategy_drawdown": {"limit": 0.05, "cooldown_seconds": -5}}}
            )

    def test_defaults_when_unset_then_paper_25_50_and_five_minutes(
        self, make_config: MakeConfig
    ) -> None:
        """The defaults: a 5-minute cool-down and paper -> 25% -> 50% -> full."""
        config = parse_config({})
        assert config.recovery.cooldown_seconds == 300
        assert [s.fraction for s in config.recovery.stages] == [0.0, 0.25, 0.5]


class TestReviewFindings:
    def test_stage_when_only_quantity_limited_then_quantity_scaled(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A desk that limits size by quantity alone still gets a quarter of it at 25%."""
        guard = make_guard(
            recovery=LADDER,
            pretrade={"limits": {"max_order_quantity": 10, "max_order_notional": None}},
        )
        feed(guard)
        guard.register_strategy("s1")
        guard.halt_strategy("s1", "trader1")
        TestLadder().climb_to_25(guard, clock)
        assert guard.check_order(Order("s1", "BTC", "buy", 2.5, 100.0)).accepted
        refused = guard.check_order(Order("s1", "BTC", "buy", 2.6, 100.0))
        assert refused.check == "allocation" and "order quantity" in refused.reason

    def test_stage_when_no_caps_configured_then_position_size_limit_scaled(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """With the default limits, 25% cannot build the position full size may hold: the
        position_size trigger's 20% of equity becomes 5% at 25%."""
        guard = make_guard(recovery=LADDER)
        feed(guard)
        guard.register_strategy("s1")
        guard.halt_strategy("s1", "trader1")
        TestLadder().climb_to_25(guard, clock)
        assert guard.check_order(buy(50_000.0)).accepted  # 5% of 1,000,000
        guard.update_position("s1", "BTC", 500.0, 100.0)
        refused = guard.check_order(buy(200.0))
        assert refused.check == "allocation" and "against position_size" in refused.reason

    def test_resume_when_feeds_went_quiet_since_last_tick_then_refused(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """Staleness is judged at the resume, not taken from the last tick."""
        serve_cooldown(clock)
        with pytest.raises(ResumeRefused, match=r"feeds are stale \(equity_stale, feed_stale\)"):
            ladder_guard.resume_strategy("s1", "senior1")

    def test_cooldown_when_strategy_overrides_only_the_limit_then_global_cooldown_kept(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Overriding a trigger's limit for one strategy does not drop the trigger's wait."""
        guard = make_guard(
            recovery=LADDER,
            triggers={"strategy_drawdown": {"limit": 0.05, "cooldown_seconds": 900}},
            strategies={"s1": {"triggers": {"strategy_drawdown": 0.08}}},
        )
        guard.update_equity(100_000.0, strategy_id="s1")
        guard.update_equity(90_000.0, strategy_id="s1")
        clock.advance(301)
        with pytest.raises(ResumeRefused, match="left of 15m 00s"):
            guard.resume_strategy("s1", "senior1")

    def test_cooldown_when_rule_breaches_after_a_manual_halt_then_its_wait_applies(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A person halts first, then the drawdown trigger fires: its 15 minutes count."""
        guard = make_guard(
            recovery=LADDER,
            triggers={"strategy_drawdown": {"limit": 0.05, "cooldown_seconds": 900}},
        )
        guard.halt_strategy("s1", "trader1", "fills look wrong")
        guard.update_equity(100_000.0, strategy_id="s1")
        guard.update_equity(90_000.0, strategy_id="s1")
        clock.advance(305)
        with pytest.raises(ResumeRefused, match="left of 15m 00s"):
            guard.resume_strategy("s1", "senior1")

    def test_reset_when_trigger_sets_cooldown_then_that_one_applies(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """Portfolio triggers carry their own cool-down for the reset too."""
        guard = make_guard(
            recovery=LADDER, triggers={"margin_utilization": {"limit": 0.9, "cooldown_seconds": 30}}
        )
        guard.update_portfolio(equity=1_000_000.0, margin_used=95.0, margin_available=5.0)
        guard.update_portfolio(equity=1_000_000.0, margin_used=5.0, margin_available=95.0)
        clock.advance(30)
        assert guard.reset("risk1").status == "executed"

    def test_climb_when_portfolio_soft_halted_then_held_and_said_why(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """A strategy never grows while the book is in no-new-risk mode."""
        serve_cooldown(clock)
        feed(ladder_guard)
        ladder_guard.resume_strategy("s1", "senior1")
        ladder_guard.portfolio_halt("trader1")
        clock.advance(60)
        feed(ladder_guard)
        ladder_guard.tick()
        recovery = ladder_guard.status()["strategies"]["s1"]["recovery"]
        assert (recovery["stage"], recovery["next_gate"]) == (
            "paper",
            "held: the portfolio is in soft_halt",
        )

    def test_climb_when_resumer_lost_the_role_then_held(
        self, ladder_guard: Guard, clock: FakeClock
    ) -> None:
        """The ladder climbs on its resumer's authority only while they still hold it."""
        serve_cooldown(clock)
        feed(ladder_guard)
        ladder_guard.resume_strategy("s1", "senior1")
        ladder_guard.set_role("senior1", "trader", by="admin1")
        clock.advance(60)
        feed(ladder_guard)
        ladder_guard.tick()
        recovery = ladder_guard.status()["strategies"]["s1"]["recovery"]
        assert recovery["stage"] == "paper"
        assert "senior1, who resumed it, may no longer resume" in recovery["next_gate"]

    def test_cli_resume_when_venue_disagrees_then_running_guard_keeps_it_in_paper(
        self, ladder_guard: Guard, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A resume from a process without venues is validated again by the guard that has
        them before the strategy leaves paper."""
        v = venue("alpha", clock)
        v.set_position("BTC", 5.0, strategy_id="s1")
        ladder_guard.add_venue(v)
        serve_cooldown(clock)
        feed(ladder_guard)
        make_guard(recovery=LADDER).resume_strategy("s1", "senior1")  # a CLI: no venues
        clock.advance(60)
        feed(ladder_guard)
        ladder_guard.tick()
        recovery = ladder_guard.status()["strategies"]["s1"]["recovery"]
        assert recovery["stage"] == "paper"
        assert (
            recovery["next_gate"] == "held: position in BTC: the venues hold 5, the guard knows 0"
        )
        ladder_guard.update_position("s1", "BTC", 5.0, 100.0)
        ladder_guard.tick()
        assert ladder_guard.status()["strategies"]["s1"]["recovery"]["stage"] == "25%"

    def test_restart_when_right_after_resume_then_acknowledged_losses_stay_acknowledged(
        self, ladder_guard: Guard, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """The resume's fresh start on loss counters is saved with it, not at the next tick:
        a crash in between does not bring the old streak back."""
        for _ in range(5):
            ladder_guard.record_trade("s1", -10.0)
        ladder_guard.tick()  # the streak of 5 is saved
        serve_cooldown(clock)
        feed(ladder_guard)
        ladder_guard.resume_strategy("s1", "senior1")
        again = make_guard(recovery=LADDER)  # as if the process died right here
        feed(again)
        again.tick()
        assert again.strategy_state("s1") == "recovering"
