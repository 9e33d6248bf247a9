"""Refused attempts, bounded: one record and one alert per kind per window, the rest counted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import MakeConfig, MakeGuard
from tradeguard import Guard
from tradeguard.audit import AuditEntry
from tradeguard.engine.refusals import Key, RefusalWindows, kind_of
from tradeguard.errors import ConfigError
from tradeguard.testing import FakeClock

KEY: Key = ("10.0.0.1", "mallory", "refused:authenticate", "portfolio", "wrong token")


def entry(clock: FakeClock, reason: str = "wrong token") -> AuditEntry:
    return AuditEntry(
        clock.time(), "mallory", "refused:authenticate", "portfolio", None, None, reason
    )


def refused(guard: Guard) -> list[AuditEntry]:
    return [r.entry for r in guard.audit_records() if r.entry.action.startswith("refused:")]


class TestRefusalWindows:
    def test_note_when_first_of_its_kind_then_written_at_once(self, clock: FakeClock) -> None:
        """The first refusal of a kind is written (and alerted on) immediately."""
        windows = RefusalWindows(clock, lambda: 60.0)
        assert windows.note(KEY, entry(clock)) == (True, [])

    def test_note_when_repeated_within_window_then_only_counted(self, clock: FakeClock) -> None:
        """Repeats inside the window are not written; nothing is due before it closes."""
        windows = RefusalWindows(clock, lambda: 60.0)
        windows.note(KEY, entry(clock))
        clock.advance(59.9)
        assert windows.note(KEY, entry(clock)) == (False, [])
        assert windows.due() == []

    def test_due_when_window_closed_then_one_summary_with_the_count(self, clock: FakeClock) -> None:
        """At the window's end the repeats become one summary record carrying their count."""
        windows = RefusalWindows(clock, lambda: 60.0)
        windows.note(KEY, entry(clock))
        for _ in range(3):
            windows.note(KEY, entry(clock))
        clock.advance(60.0)
        (summary,) = windows.due()
        assert summary.details["repeated"] == 3 and summary.action == "refused:authenticate"
        assert (
            summary.reason.startswith("3 more like this within 60 s") and summary.ts == clock.time()
        )
        assert windows.due() == []

    def test_note_when_after_window_then_summary_due_and_new_window(self, clock: FakeClock) -> None:
        """The next refusal after the window writes the summary and opens a new window."""
        windows = RefusalWindows(clock, lambda: 60.0)
        windows.note(KEY, entry(clock))
        windows.note(KEY, entry(clock))
        clock.advance(61.0)
        first, closed = windows.note(KEY, entry(clock))
        assert first and [s.details["repeated"] for s in closed] == [1]

    def test_due_when_window_closed_without_repeats_then_nothing(self, clock: FakeClock) -> None:
        """A lone refusal needs no summary."""
        windows = RefusalWindows(clock, lambda: 60.0)
        windows.note(KEY, entry(clock))
        clock.advance(120.0)
        assert windows.due() == []

    def test_due_when_everything_then_open_windows_summarized(self, clock: FakeClock) -> None:
        """On close, windows still open give up their counts: nothing counted is lost."""
        windows = RefusalWindows(clock, lambda: 60.0)
        windows.note(KEY, entry(clock))
        windows.note(KEY, entry(clock))
        assert [s.details["repeated"] for s in windows.due(everything=True)] == [1]

    def test_note_when_other_kind_then_its_own_window(self, clock: FakeClock) -> None:
        """Another source, actor, action, scope or kind of reason is not a repeat."""
        windows = RefusalWindows(clock, lambda: 60.0)
        windows.note(KEY, entry(clock))
        for other in (("10.0.0.2", *KEY[1:]), (*KEY[:4], "unknown user _")):
            assert windows.note(other, entry(clock))[0]

    def test_kind_when_names_and_numbers_differ_then_same(self) -> None:
        """Quoted names and numbers do not make a new kind of refusal."""
        assert kind_of("unknown user 'a1'") == kind_of('unknown user "b2"')
        assert kind_of("wrong token") != kind_of("unknown user 'a1'")


class TestThroughTheGuard:
    def test_refuse_when_flooded_then_one_record_one_alert_then_summary(
        self, guard: Guard, clock: FakeClock
    ) -> None:
        """100 identical refusals in a window: one record and one ``refused`` event; the
        breaker tick after the window writes the count."""
        events: list[dict[str, Any]] = []
        guard.register_callback("refused", events.append)
        for _ in range(100):
            guard.refuse("mallory", "authenticate", "wrong token", source="10.0.0.1")
        guard.flush()
        assert len(refused(guard)) == 1 and len(events) == 1
        assert refused(guard)[0].details == {"source": "10.0.0.1"}
        clock.advance(60.0)
        guard.tick()
        guard.flush()
        assert [e.details.get("repeated") for e in refused(guard)] == [None, 99]
        assert len(events) == 1

    def test_close_when_window_open_then_count_written(
        self, make_guard: MakeGuard, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """Closing the guard writes the counts of windows still open."""
        guard = make_guard()
        guard.refuse("mallory", "authenticate", "wrong token")
        guard.refuse("mallory", "authenticate", "wrong token")
        guard.close()
        reader = make_guard()
        assert [e.details.get("repeated") for e in refused(reader)] == [None, 1]

    def test_window_when_configured_then_used(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """``auth.refusal_window_seconds`` sets the window."""
        guard = make_guard(auth={"refusal_window_seconds": 5})
        guard.refuse("mallory", "authenticate", "wrong token")
        clock.advance(5.0)
        guard.refuse("mallory", "authenticate", "wrong token")
        assert len(refused(guard)) == 2

    @pytest.mark.parametrize("bad", [0, -1])
    def test_window_when_not_positive_then_config_error(
        self, make_config: MakeConfig, bad: int
    ) -> None:
        """The window must be longer than nothing."""
        with pytest.raises(ConfigError, match="refusal_window_seconds"):
            make_config(auth={"refusal_window_seconds": bad})
