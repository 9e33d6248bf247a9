"""The guard's emergency stop: which halts act on the venues, what is recorded, crash recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import MakeConfig, reading
from tests.emergency_support import book, fake_sleep, never_flipped, venue
from tradeguard import Guard, PortfolioState, StrategyState
from tradeguard.emergency import FlattenReport
from tradeguard.testing import FakeClock
from tradeguard.venues import Faults, SimulatedVenue

POSITIONS: dict[tuple[str | None, str], float] = {("mom", "BTC"): 2.0, ("arb", "ETH"): -30.0}


def armed(
    make_config: MakeConfig, clock: FakeClock, **sections: Any
) -> tuple[Guard, list[SimulatedVenue]]:
    guard = Guard(make_config(**sections), clock=clock, sleep=fake_sleep(clock))
    venues = [venue("v1", clock), venue("v2", clock)]
    for v in venues:
        book(v, POSITIONS)
        guard.add_venue(v)
    return guard, venues


def positions(v: SimulatedVenue) -> set[tuple[str | None, str]]:
    return {(p.strategy_id, p.symbol) for p in asyncio.run(v.positions())}


class TestWhatActsOnVenues:
    def test_hard_halt_when_rule_fires_then_book_taken_flat(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """A drawdown hard halt cancels every order and closes every position, audited."""
        guard, venues = armed(make_config, clock)
        try:
            done: list[FlattenReport] = []
            guard.register_callback("flatten_done", done.append)
            guard.update_portfolio(equity=100.0)
            guard.update_portfolio(equity=85.0)
            assert guard.flush(timeout=30)
            assert all(positions(v) == set() for v in venues)
            assert done and done[0].flat
            actions = [r.entry.action for r in guard.audit_records()]
            assert actions[0] == "state_change"
            assert {
                "flatten:started",
                "flatten:venue_cancelled",
                "flatten:venue_flat",
                "flatten:finished",
            } <= set(actions)
            assert guard.status()["emergency_stop"]["last"]["flat"] is True
        finally:
            guard.close()

    def test_emergency_stop_when_awaited_then_returns_verified_report(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """The seed's `await emergency_stop(...)` returns once the book is verified flat."""
        guard, venues = armed(make_config, clock)
        try:
            report = asyncio.run(guard.emergency_stop(initiator="trader1", reason="drill"))
            assert report.flat and [r.venue for r in report.venues] == ["v1", "v2"]
            assert guard.portfolio_state is PortfolioState.EMERGENCY
            assert all(positions(v) == set() for v in venues)
        finally:
            guard.close()

    def test_soft_halt_when_applied_then_nothing_cancelled_or_closed(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """Reduce-only means keep the book: a soft halt touches no order and no position."""
        guard, venues = armed(make_config, clock)
        try:
            guard.portfolio_halt("trader1")
            guard.flush()
            assert all(len(asyncio.run(v.open_orders())) == 2 for v in venues)
            assert all(positions(v) == set(POSITIONS) for v in venues)
        finally:
            guard.close()

    def test_strategy_halt_when_default_policy_then_its_orders_cancelled_positions_kept(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """on_halt: cancel_orders (the default) cancels that strategy's orders only."""
        guard, venues = armed(make_config, clock)
        try:
            guard.halt_strategy("mom", user="trader1")
            guard.flush()
            for v in venues:
                assert {o.strategy_id for o in asyncio.run(v.open_orders())} == {"arb"}
                assert positions(v) == set(POSITIONS)
        finally:
            guard.close()

    def test_strategy_halt_when_cancel_policy_then_every_report_says_positions_kept(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """The audit, the event, the status and the stored run all say the position was kept,
        none says flat; the breaker does not take "kept" for a stop to redo."""
        guard, _venues = armed(make_config, clock)
        try:
            done: list[FlattenReport] = []
            guard.register_callback("flatten_done", done.append)
            guard.halt_strategy("mom", user="trader1")
            assert guard.flush(timeout=30)
            kept = "orders cancelled; positions kept: 2 open (BTC)"
            assert [(r.flat, r.done, r.outcome) for r in done] == [(False, True, kept)]
            last = guard.status()["emergency_stop"]["last"]
            assert (last["flat"], last["outcome"]) == (False, kept)
            steps = {r.entry.action: r.entry.reason for r in guard.audit_records()}
            assert "flatten:venue_flat" not in steps
            assert steps["flatten:venue_kept"].endswith(
                "orders cancelled; positions kept: 1 open (BTC)"
            )
            assert steps["flatten:finished"].startswith(kept)
            with reading(guard.config.state.path) as store:
                assert [r.status for r in store.flatten_runs()] == ["positions_kept"]
            guard.tick()
            assert guard.flush(timeout=30) and len(done) == 1
        finally:
            guard.close()

    def test_strategy_halt_when_flatten_policy_then_its_positions_closed(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """on_halt: flatten closes that strategy's positions as well."""
        guard, venues = armed(make_config, clock, strategies={"mom": {"on_halt": "flatten"}})
        try:
            for _ in range(5):
                guard.record_trade("mom", -1.0)
            assert guard.strategy_state("mom") is StrategyState.HALTED
            guard.flush()
            assert all(positions(v) == {("arb", "ETH")} for v in venues)
        finally:
            guard.close()

    def test_flatten_when_past_deadline_then_escalates_hard_halt_to_emergency(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """A hard halt that cannot get flat in time becomes an emergency, announced."""
        guard, venues = armed(
            make_config, clock, emergency={"deadline_seconds": 5, "give_up_seconds": 20}
        )
        escalations: list[Any] = []
        guard.register_callback("escalation", escalations.append)
        try:
            venues[1].faults = Faults(down_until=float("inf"))
            guard.portfolio_close("trader1")
            assert guard.flush(timeout=30)
            assert guard.portfolio_state is PortfolioState.EMERGENCY
            assert escalations and escalations[0].rule == "flatten_deadline"
            last = guard.status()["emergency_stop"]["last"]
            assert last["flat"] is False and last["escalated"] is True
            assert [v["flat"] for v in last["venues"]] == [True, False]
        finally:
            guard.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tradeguard import Guard, load_config
    from tradeguard.venues import SimulatedVenue

    class Loud(SimulatedVenue):
        async def submit_order(self, **order):
            placed = await super().submit_order(**order)
            if placed.filled:
                print("fill", flush=True)
            return placed

    config, journal = sys.argv[1], Path(sys.argv[2])
    venue = Loud("v1", prices={"BTC": 100.0}, latency=0.02, journal=journal)
    guard = Guard(load_config(config))
    guard.add_venue(venue)
    guard.portfolio_close("trader1", reason="crash test")
    asyncio.run(asyncio.sleep(3600))
    """
)


class TestCrashMidFlatten:
    def test_kill_when_flattening_then_restart_resumes_without_double_close(
        self, tmp_path: Path
    ) -> None:
        """SIGKILL mid-flatten: after restart still halted, flattening resumes, nothing closed twice."""
        journal = tmp_path / "venue.json"
        seeded = SimulatedVenue("v1", prices={"BTC": 100.0}, journal=journal)
        initial = {(f"s{i}", "BTC"): float(i + 1) * (1 if i % 2 else -1) for i in range(40)}
        for (sid, symbol), qty in initial.items():
            seeded.set_position(symbol, qty, strategy_id=sid)
        config = tmp_path / "c.yaml"
        config.write_text(
            "users: {trader1: trader, r1: risk_manager, r2: admin}\nemergency: {max_in_flight: 1}\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(config), str(journal)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        try:
            assert child.stdout is not None
            fills = 0
            while fills < 5:
                line = child.stdout.readline()
                assert line, child.stderr.read() if child.stderr else "child exited"
                fills += line.strip() == "fill"
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.communicate(timeout=30)

        survivor = SimulatedVenue("v1", prices={"BTC": 100.0}, journal=journal)
        # killed part-way (a fill is printed once the venue journaled it)
        assert 4 <= len(survivor.fills) < len(initial)
        guard = Guard(_load(config))
        try:
            assert guard.portfolio_state is PortfolioState.HARD_HALT
            with reading(guard.config.state.path) as store:
                assert [r.status for r in store.flatten_runs()] == ["running"]
            guard.add_venue(survivor)
            guard.start()
            assert guard.flush(timeout=60)
            assert asyncio.run(survivor.positions()) == []
            assert never_flipped(survivor, initial)
            closed: dict[tuple[str | None, str], float] = {}
            for sid, symbol, qty, _after in survivor.fills:
                closed[(sid, symbol)] = closed.get((sid, symbol), 0.0) + qty
            assert closed == {k: -q for k, q in initial.items()}
            with reading(guard.config.state.path) as store:
                statuses = sorted(r.status for r in store.flatten_runs())
            assert statuses == ["flat", "interrupted"]
        finally:
            guard.close()


def _load(path: Path) -> Any:
    from tradeguard import load_config

    return load_config(path)
