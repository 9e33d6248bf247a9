"""Callbacks: the seed's register_callback, sync or async, never able to stop a halt."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

import pytest

import tradeguard.guard
from tests.conftest import MakeGuard
from tradeguard import Breach, Guard, StateChange, StrategyState
from tradeguard.assembly import Parts, assemble
from tradeguard.events import Actuator


class TestCallbacks:
    def test_strategy_halt_when_async_callback_then_called_with_strategy_id(
        self, guard: Guard
    ) -> None:
        """The seed's `async def on_strategy_halt(strategy_id)` works as written."""
        seen: list[str] = []

        async def on_strategy_halt(strategy_id: str) -> None:
            seen.append(strategy_id)

        guard.register_callback("strategy_halt", on_strategy_halt)
        guard.update_strategy_metrics("my_strategy", max_drawdown=0.06, consecutive_losses=6)
        assert guard.flush()
        assert seen == ["my_strategy"]

    def test_events_when_portfolio_moves_then_each_named_event_fires(self, guard: Guard) -> None:
        """Each portfolio transition publishes its seed event with the StateChange."""
        seen: list[tuple[str, str]] = []
        for event in ("portfolio_halt", "portfolio_close", "emergency_stop", "reset"):
            guard.register_callback(event, lambda c, e=event: seen.append((e, c.after)))
        guard.portfolio_halt("trader1")
        guard.portfolio_close("trader1")
        asyncio.run(guard.emergency_stop("trader1"))
        guard.approve(guard.reset("risk1").id, "risk2")
        guard.flush()
        assert seen == [
            ("portfolio_halt", "soft_halt"),
            ("portfolio_close", "hard_halt"),
            ("emergency_stop", "emergency"),
            ("reset", "normal"),
        ]

    def test_breach_when_rule_starts_breaching_then_one_event(self, guard: Guard) -> None:
        """breach fires when a rule starts breaching, not again while it stays breached."""
        seen: list[Breach] = []
        guard.register_callback("breach", seen.append)
        guard.update_strategy_metrics("s1", max_drawdown=0.07)
        guard.update_strategy_metrics("s1", max_drawdown=0.08)
        guard.flush()
        assert [(b.rule, str(b.scope), b.value) for b in seen] == [
            ("strategy_drawdown", "strategy:s1", 0.07)
        ]

    def test_resume_when_called_then_strategy_resume_event(self, guard: Guard) -> None:
        """strategy_resume carries the strategy id; state_change carries every change."""
        resumed: list[str] = []
        changes: list[StateChange] = []
        guard.register_callback("strategy_resume", resumed.append)
        guard.register_callback("state_change", changes.append)
        guard.halt_strategy("s1", user="trader1")
        guard.resume_strategy("s1", user="senior1")
        guard.flush()
        assert resumed == ["s1"]
        assert [(c.before, c.after) for c in changes] == [
            ("active", "halted"),
            ("halted", "active"),
        ]

    def test_callback_when_raises_then_logged_and_halt_stands(
        self, guard: Guard, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A raising callback is logged; the halt and the other callbacks are unaffected."""
        seen: list[str] = []

        def broken(_: str) -> None:
            raise RuntimeError("callback bug")

        guard.register_callback("strategy_halt", broken)
        guard.register_callback("strategy_halt", seen.append)
        with caplog.at_level(logging.ERROR, logger="tradeguard.events"):
            guard.halt_strategy("s1", user="trader1")
            guard.flush()
        assert guard.strategy_state("s1") is StrategyState.HALTED
        assert seen == ["s1"]
        assert "callback bug" in caplog.text

    def test_callback_when_hangs_then_halt_not_delayed_and_it_times_out(
        self, make_guard: MakeGuard, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The halt returns while a callback is stuck; the stuck one is timed out and logged."""
        guard = make_guard(guard={"callback_timeout_seconds": 0.05})
        release = threading.Event()
        entered = threading.Event()

        def stuck(_: str) -> None:
            entered.set()
            release.wait(timeout=30)

        async def stuck_async(_: str) -> None:
            await asyncio.Event().wait()

        guard.register_callback("strategy_halt", stuck)
        guard.register_callback("strategy_halt", stuck_async)
        try:
            with caplog.at_level(logging.ERROR, logger="tradeguard.events"):
                guard.halt_strategy("s1", user="trader1")
                assert guard.strategy_state("s1") is StrategyState.HALTED
                assert entered.wait(timeout=10)
                assert guard.flush(timeout=10)
            assert caplog.text.count("timed out") == 2
        finally:
            release.set()

    def test_register_when_unknown_event_then_error(self, guard: Guard) -> None:
        """A misspelt event name is an error, not a callback that never fires."""
        with pytest.raises(ValueError, match="unknown event"):
            guard.register_callback("strategy_hault", print)


class TestActuatorClose:
    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_close_when_grace_runs_out_then_callbacks_cancelled_none_left_unawaited(
        self, kind: str
    ) -> None:
        """Callbacks still queued when the grace runs out are cancelled cleanly: no coroutine
        is left that nobody awaits (a warning, and an error under pytest)."""
        for _ in range(20):  # the queued task's first step races the loop's stop
            actuator = Actuator(timeout=1.0)

            async def slow_async(_payload: object) -> None:
                await asyncio.sleep(60)

            actuator.register("strategy_halt", slow_async if kind == "async" else (lambda _p: None))
            for n in range(5):
                actuator.emit("strategy_halt", n)
            actuator.close(grace=0)
            del actuator
            gc.collect()  # an unawaited coroutine warns when collected

    def test_close_when_callbacks_queued_behind_busy_workers_then_all_run(self) -> None:
        """More sync callbacks than executor threads, emitted just before close: each still
        runs (it may be the one that acts on a venue), within the grace."""
        ran: list[object] = []
        release = threading.Event()
        actuator = Actuator(timeout=10.0)

        def blocked(payload: object) -> None:
            release.wait(5)
            ran.append(payload)

        actuator.register("strategy_halt", blocked)
        for n in range(40):  # the default executor has min(32, cores + 4) threads
            actuator.emit("strategy_halt", n)
        threading.Timer(0.05, release.set).start()  # the workers are freed during close
        actuator.close(grace=10)
        assert sorted(ran) == list(range(40))  # type: ignore[type-var]

    @pytest.mark.parametrize(("flushed", "grace"), [(True, 5.0), (False, 0.0)])
    def test_guard_close_when_its_flush_timed_out_then_no_second_wait(
        self, make_guard: MakeGuard, monkeypatch: pytest.MonkeyPatch, flushed: bool, grace: float
    ) -> None:
        """Guard.close gives late callbacks the actuator's grace, unless its own flush already
        waited out a hung one: then closing does not wait for it a second time."""
        built: list[Parts] = []

        def spy(*args: Any, **kwargs: Any) -> Parts:
            built.append(assemble(*args, **kwargs))
            return built[-1]

        monkeypatch.setattr(tradeguard.guard, "assemble", spy)  # to reach the guard's actuator
        guard = make_guard()
        (parts,) = built
        actuator = parts.core.actuator
        release = threading.Event()
        if not flushed:  # a callback that hangs: the flush in close cannot finish
            guard.register_callback("strategy_halt", lambda _sid: release.wait(30))
            guard.halt_strategy("s1", user="trader1")
        real_flush, real_close = actuator.flush, actuator.close
        # a hung callback times the flush out at once, not 5 s later
        monkeypatch.setattr(actuator, "flush", lambda timeout=30.0: real_flush(0))
        graces: list[float] = []

        def close(grace: float = 5.0) -> None:
            graces.append(grace)
            real_close(grace=grace)

        monkeypatch.setattr(actuator, "close", close)
        try:
            guard.close()
        finally:
            release.set()
        assert graces == [grace]

    def test_close_when_emit_races_it_then_flush_does_not_hang(self) -> None:
        """Callbacks emitted while close runs never leave the pending count stuck."""
        actuator = Actuator(timeout=1.0)
        actuator.register("strategy_halt", lambda _p: None)
        stop = threading.Event()

        def keep_emitting() -> None:
            while not stop.is_set():
                actuator.emit("strategy_halt", 0)

        emitter = threading.Thread(target=keep_emitting, daemon=True)
        emitter.start()
        try:
            actuator.close(grace=0)
        finally:
            stop.set()
            emitter.join()
        assert actuator.flush(timeout=2)
        actuator.close(grace=0)
