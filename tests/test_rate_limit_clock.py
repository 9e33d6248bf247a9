"""The emergency stop's pacing runs on the injected clock and sleep: driven by a FakeClock,
deterministic, no real waiting; and a wall clock stepped backwards cannot stall a stop."""

from __future__ import annotations

import asyncio

from tests.emergency_support import fake_sleep
from tradeguard.emergency import EmergencyStop, RateLimiter, StopPolicy
from tradeguard.testing import FakeClock
from tradeguard.venues import SimulatedVenue


async def _send(limiter: RateLimiter, n: int, clock: FakeClock) -> list[float]:
    """Send ``n`` requests that each finish at once; when each was let through."""
    sent = []
    for _ in range(n):
        await limiter.wait()
        sent.append(clock.time())
        limiter.finished()
    return sent


class TestRateLimiter:
    def test_wait_when_window_full_then_waits_on_the_given_clock(self) -> None:
        """Nine requests (90% of 10/s) go at once; the tenth waits until a second after the
        first finished, measured on the injected clock and waited out with the injected sleep."""
        clock = FakeClock()
        start = clock.time()
        limiter = RateLimiter(10, clock=clock, sleep=fake_sleep(clock))
        sent = asyncio.run(_send(limiter, 19, clock))
        assert sent[:9] == [start] * 9
        assert sent[9:18] == [start + 1.0] * 9
        assert sent[18] == start + 2.0

    def test_wait_when_clock_stepped_back_then_waits_at_most_a_second(self) -> None:
        """A wall clock stepped back an hour (NTP) must not hold an emergency stop for an
        hour: what finished 'in the future' counts as finished now."""

        class Stepped:
            now = 10_000.0

            def time(self) -> float:
                return self.now

        clock = Stepped()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.now += seconds

        async def scenario() -> None:
            limiter = RateLimiter(2, clock=clock, sleep=sleep)  # one request a second
            await limiter.wait()
            limiter.finished()
            clock.now -= 3600.0
            await limiter.wait()

        asyncio.run(scenario())
        assert slept and sum(slept) <= 1.0


class TestStopPacing:
    def test_stop_when_rate_limited_then_paced_on_simulated_time(self) -> None:
        """The whole stop, venue included, paces itself on simulated time: twelve closes
        against 10/s take simulated seconds and no 429, with no real second waited."""
        clock = FakeClock()
        start = clock.time()
        v = SimulatedVenue("slow", prices={"BTC": 1.0}, rate_limit=10, clock=clock)
        for i in range(12):
            v.set_position("BTC", 1.0 + i, strategy_id=f"s{i}")
        coordinator = EmergencyStop([v], clock=clock, policy=StopPolicy(), sleep=fake_sleep(clock))
        report = asyncio.run(coordinator.run(run_id="r1", reason="test"))
        assert report.flat
        assert not any("429" in e for e in report.venues[0].errors)
        assert clock.time() - start >= 1.0
