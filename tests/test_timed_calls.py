"""Calls bounded in time and in threads: a hung source must neither freeze nor exhaust us."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tradeguard.errors import SourceTimeout
from tradeguard.timed_calls import TimedCalls

FOREVER = 3600.0  # a timeout no test waits out: a call that needed it would hang the test


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Hung calls wait on this; set at the end so no test leaves a thread behind."""
    event = threading.Event()
    yield event
    event.set()


def workers(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


class TestCall:
    def test_call_when_fn_answers_then_its_value(self) -> None:
        """A normal call returns what the callable returned."""
        calls = TimedCalls(name="tg-test-value")
        assert calls.call(lambda: 42, FOREVER) == 42
        calls.close()

    def test_call_when_fn_raises_then_same_exception(self) -> None:
        """The callable's own exception reaches the caller unchanged, TimeoutError included:
        a source that raises one is not mistaken for a source that hung."""
        calls = TimedCalls(name="tg-test-raise")
        boom = ValueError("boom")

        def fails() -> None:
            raise boom

        def times_out() -> None:
            raise TimeoutError("its own")

        with pytest.raises(ValueError) as caught:
            calls.call(fails, FOREVER)
        assert caught.value is boom
        with pytest.raises(TimeoutError, match="its own") as timed:
            calls.call(times_out, FOREVER)
        assert not isinstance(timed.value, SourceTimeout)
        calls.close()

    def test_call_when_sequential_then_one_thread_reused(self) -> None:
        """No thread per call: calls one after another run on the same worker."""
        calls = TimedCalls(name="tg-test-reuse")
        seen = {calls.call(threading.current_thread, FOREVER) for _ in range(20)}
        assert len(seen) == 1
        (thread,) = seen
        assert thread is not threading.current_thread() and thread.daemon
        calls.close()

    def test_call_when_fn_hangs_then_source_timeout(self, release: threading.Event) -> None:
        """A call that does not answer in time raises SourceTimeout; the caller goes on."""
        calls = TimedCalls(name="tg-test-hang")
        with pytest.raises(SourceTimeout, match=r"no answer within 0\.01s"):
            calls.call(release.wait, 0.01)


class TestBound:
    def test_hung_calls_when_repeated_then_threads_stay_within_bound(
        self, release: threading.Event
    ) -> None:
        """A permanently hung source, called every tick, ties up at most ``workers`` threads
        (it leaked one per tick when each call had its own thread)."""
        calls = TimedCalls(workers=3, name="tg-test-bound")
        before = threading.active_count()
        for _ in range(3):
            with pytest.raises(SourceTimeout, match="no answer"):
                calls.call(release.wait, 0.01)
        for _ in range(50):
            with pytest.raises(SourceTimeout):
                calls.call(release.wait, FOREVER)
        assert threading.active_count() <= before + 3
        assert len(workers("tg-test-bound")) == 3

    def test_call_when_bound_reached_then_fails_at_once(self, release: threading.Event) -> None:
        """Over the bound the call is refused without waiting its timeout (fail closed: the
        caller halts on a failed source), and the callable is not even started."""
        calls = TimedCalls(workers=1, name="tg-test-refuse")
        with pytest.raises(SourceTimeout):
            calls.call(release.wait, 0.01)
        started = threading.Event()
        with pytest.raises(SourceTimeout, match="1 earlier call still running"):
            calls.call(started.set, FOREVER)
        assert not started.is_set()

    def test_workers_when_not_positive_then_refused(self) -> None:
        """A bound of zero would refuse every call: a configuration error, not a policy."""
        with pytest.raises(ValueError, match="workers must be >= 1"):
            TimedCalls(workers=0)


class TestClose:
    def test_close_when_idle_and_hung_workers_then_all_exit(self, release: threading.Event) -> None:
        """Closing lets idle workers go at once and hung ones as soon as their call returns:
        a closed owner leaves no thread behind."""
        calls = TimedCalls(workers=2, name="tg-test-close")
        with pytest.raises(SourceTimeout):
            calls.call(release.wait, 0.01)
        assert calls.call(lambda: "idle now", FOREVER) == "idle now"
        threads = workers("tg-test-close")
        assert len(threads) == 2
        calls.close()
        release.set()
        for thread in threads:
            thread.join(timeout=10)
        assert not any(t.is_alive() for t in threads)

    def test_call_when_closed_then_still_answers_without_keeping_a_thread(self) -> None:
        """A tick that runs after close still reads its sources; its worker does not stay."""
        calls = TimedCalls(name="tg-test-after-close")
        calls.close()
        assert calls.call(threading.current_thread, FOREVER).name == "tg-test-after-close"
        for thread in workers("tg-test-after-close"):
            thread.join(timeout=10)
        assert workers("tg-test-after-close") == []
