"""The one bar check, shared by the live feed (Guard.update_bars) and the CSV replay."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tradeguard.criticality.data import DataUnavailable, bar_fields, load_csv


class TestBarFields:
    @pytest.mark.parametrize(
        ("bar", "words"),
        [
            ({"close": 0.0}, "close must be a finite positive number"),
            ({"close": 100.0, "volume": -1.0}, "volume must be a finite number >= 0"),
            ({"close": math.inf}, "close must be finite"),
            ({"close": True}, "close must be a number"),
            ({"close": 100.0, "bid": 101.0, "ask": 100.5}, r"bid 101 is above ask 100\.5"),
            ({"close": 100.0, "high": 99.0, "low": 98.0}, "close 100 is outside its range"),
            ({"high": 100.0}, "needs a close"),
            ({"close": 100.0, "depth": 1.0}, r"unknown fields \['depth'\]"),
        ],
    )
    def test_bar_when_impossible_then_refused_with_its_reason(
        self, bar: dict[str, object], words: str
    ) -> None:
        """Every way a bar can be untrustworthy is refused, saying which."""
        with pytest.raises(ValueError, match=words):
            bar_fields(bar)

    def test_bar_when_named_then_the_name_leads_each_message(self) -> None:
        """A feed's bar says which symbol it was for."""
        with pytest.raises(ValueError, match=r"bar of BTC\.close must be a finite positive"):
            bar_fields({"close": -5.0}, "bar of BTC")

    def test_volume_when_zero_then_accepted(self) -> None:
        """A bar with no trades is a bar (volume 0), not an error."""
        assert bar_fields({"close": 10.0, "volume": 0}) == {"close": 10.0, "volume": 0.0}

    def test_csv_when_row_has_crossed_quote_then_refused_by_the_same_check(
        self, tmp_path: Path
    ) -> None:
        """The CSV reader refuses what the live feed refuses, in the same words."""
        path = tmp_path / "h.csv"
        path.write_text("date,symbol,close,bid,ask\n2020-01-01,A,100,101,100.5\n")
        with pytest.raises(DataUnavailable, match=r"line 2: bid 101 is above ask 100\.5"):
            load_csv(path)
