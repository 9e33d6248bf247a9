"""parse_iso: the one reader of ISO dates and times typed by operators or found in CSV files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tradeguard.clock import NaiveTime, parse_iso


class TestParseIso:
    def test_parse_iso_when_date_alone_then_midnight_utc(self) -> None:
        """A ten-character date is midnight UTC on that day."""
        assert parse_iso("2026-11-21") == datetime(2026, 11, 21, tzinfo=UTC)

    def test_parse_iso_when_time_with_zone_then_keeps_its_zone(self) -> None:
        """A time with an offset keeps it, so it names the instant that was written."""
        at = parse_iso("2026-11-21T09:30+01:00")
        assert at.utcoffset() == timedelta(hours=1)
        assert at == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)

    def test_parse_iso_when_z_suffix_then_utc(self) -> None:
        """A trailing Z is UTC."""
        assert parse_iso("2026-11-21T09:00Z") == datetime(2026, 11, 21, 9, tzinfo=UTC)

    def test_parse_iso_when_time_without_zone_then_naive_time(self) -> None:
        """A time with no zone is refused, never guessed."""
        with pytest.raises(NaiveTime):
            parse_iso("2026-11-21T09:00")

    def test_parse_iso_when_either_and_basic_date_then_read_as_naive_time(self) -> None:
        """Only ten characters are a date alone: a basic-format date is read as a naive time."""
        with pytest.raises(NaiveTime):
            parse_iso("20261121")

    def test_parse_iso_when_garbage_then_value_error_not_naive(self) -> None:
        """Text that is no ISO date or time raises a plain ValueError."""
        for text in ("tomorrow", "2026-13-01", "2026-11-21T25:00+00:00", ""):
            with pytest.raises(ValueError) as caught:
                parse_iso(text)
            assert not isinstance(caught.value, NaiveTime), text

    def test_parse_iso_when_surrounding_space_then_refused(self) -> None:
        """The text is taken as given: callers strip it if they mean to."""
        with pytest.raises(ValueError):
            parse_iso(" 2026-11-21")

    def test_parse_iso_when_date_form_then_any_iso_date_is_midnight_utc(self) -> None:
        """form="date" reads every date form date.fromisoformat reads, basic and week dates too."""
        for text in ("2026-11-21", "20261121", "2026-W47-6"):
            assert parse_iso(text, "date") == datetime(2026, 11, 21, tzinfo=UTC), text

    def test_parse_iso_when_date_form_and_time_given_then_refused(self) -> None:
        """form="date" refuses a date with a time, even one with a zone."""
        with pytest.raises(ValueError):
            parse_iso("2026-11-21T09:00+00:00", "date")

    def test_parse_iso_when_time_form_and_date_alone_then_naive_time(self) -> None:
        """form="time" wants an instant: a date alone is a time without a zone."""
        with pytest.raises(NaiveTime):
            parse_iso("2026-11-21", "time")

    def test_parse_iso_when_time_form_and_zone_then_same_instant(self) -> None:
        """form="time" returns the instant written, in the zone written."""
        zone = timezone(timedelta(hours=-5))
        assert parse_iso("2026-11-21T04:00-05:00", "time") == datetime(2026, 11, 21, 4, tzinfo=zone)
