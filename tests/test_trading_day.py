"""The trading day: "today" for the daily loss starts at the desk's rollover, in its zone,
on both sides of a daylight-saving switch."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard import Guard, PortfolioState
from tradeguard.config import parse_config
from tradeguard.errors import ConfigError
from tradeguard.testing import FakeClock, MemoryStore
from tradeguard.tradingday import TradingDay

NEW_YORK = TradingDay("America/New_York", time(17, 0))


def at(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


@given(st.floats(min_value=946_684_800.0, max_value=7_258_118_400.0))
def test_default_when_any_time_then_the_utc_day_number_stores_have_always_held(
    ts: float,
) -> None:
    assert TradingDay().of(ts) == int(ts // 86_400)


@pytest.mark.parametrize(
    ("moment", "trading_date"),
    [
        ("2026-12-01T16:59:59-05:00", date(2026, 12, 1)),
        ("2026-12-01T17:00:00-05:00", date(2026, 12, 2)),  # the session opening at 17:00
        ("2026-12-01T23:59:59-05:00", date(2026, 12, 2)),
        ("2026-12-02T00:30:00-05:00", date(2026, 12, 2)),
        # spring forward (2026-03-08): the rollover stays at 17:00 local, 21:00 UTC after
        ("2026-03-06T21:59:59+00:00", date(2026, 3, 6)),
        ("2026-03-06T22:00:00+00:00", date(2026, 3, 7)),
        ("2026-03-09T20:59:59+00:00", date(2026, 3, 9)),
        ("2026-03-09T21:00:00+00:00", date(2026, 3, 10)),
        # fall back (2026-11-01): 21:00 UTC before, 22:00 UTC after
        ("2026-10-30T20:59:59+00:00", date(2026, 10, 30)),
        ("2026-10-30T21:00:00+00:00", date(2026, 10, 31)),
        ("2026-11-02T21:59:59+00:00", date(2026, 11, 2)),
        ("2026-11-02T22:00:00+00:00", date(2026, 11, 3)),
    ],
)
def test_new_york_1700_when_time_given_then_the_trading_date_it_falls_in(
    moment: str, trading_date: date
) -> None:
    assert NEW_YORK.date_of(at(moment)) == trading_date
    assert TradingDay.name(NEW_YORK.of(at(moment))) == trading_date.isoformat()


def guard(clock: FakeClock, trading_day: dict[str, str] | None) -> Guard:
    raw: dict[str, object] = {
        "triggers": {
            "portfolio_daily_loss": {"limit": 0.04},
            "portfolio_drawdown": {"limit": 0.5},
            "pnl_velocity": {"limit": 0.5},
        }
    }
    if trading_day is not None:
        raw["guard"] = {"trading_day": trading_day}
    return Guard(parse_config(raw), clock=clock, store=MemoryStore())


@pytest.mark.parametrize(
    ("trading_day", "expected"),
    [
        (None, PortfolioState.SOFT_HALT),  # midnight UTC: the 17:00 losses are still today's
        ({"timezone": "America/New_York", "rollover": "17:00"}, PortfolioState.NORMAL),
    ],
)
def test_daily_loss_when_the_desks_day_rolls_at_1700_new_york_then_measured_from_there(
    trading_day: dict[str, str] | None, expected: PortfolioState
) -> None:
    """3.9% down by 16:59 New York (under the 4% limit), then a little more after 17:00: a
    new trading day for the desk (0.5% down), the same UTC day for a midnight-UTC guard (4.4%)."""
    clock = FakeClock(at("2026-12-01T09:30:00-05:00"))
    with guard(clock, trading_day) as g:
        g.update_portfolio(equity=1_000_000.0)
        clock.advance(at("2026-12-01T16:59:00-05:00") - clock.time())
        g.update_portfolio(equity=961_000.0)
        assert g.portfolio_state == PortfolioState.NORMAL
        clock.advance(120)
        g.update_portfolio(equity=956_000.0)
        assert g.portfolio_state == expected
        if trading_day is not None:
            metrics = g.status()["portfolio"]["metrics"]
            assert metrics["trading_day"] == "2026-12-02"
            assert metrics["day_start_equity"] == 961_000.0


def test_status_when_trading_day_configured_then_shown(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-12-01T18:00:00-05:00"))
    with guard(clock, {"timezone": "America/New_York", "rollover": "17:00"}) as g:
        g.update_portfolio(equity=1.0)
        shown = g.status()
    assert shown["trading_day"] == {"timezone": "America/New_York", "rollover": "17:00"}
    assert shown["portfolio"]["metrics"]["trading_day"] == "2026-12-02"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"timezone": "America/Gotham"}, "unknown time zone"),
        ({"rollover": 1020}, "in quotes"),  # what YAML makes of an unquoted 17:00
        ({"rollover": "25:00"}, "between 00:00 and 23:59"),
        ({"rollover": "5pm"}, "HH:MM"),
    ],
)
def test_trading_day_when_misconfigured_then_config_error_says_how(
    value: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"guard": {"trading_day": value}})
    assert message in "\n".join(caught.value.errors)
