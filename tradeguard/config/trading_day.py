"""``guard.trading_day``: when "today" starts for the daily loss (:mod:`tradeguard.tradingday`)."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any
from zoneinfo import ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator

from tradeguard.config.fields import Frozen
from tradeguard.tradingday import TradingDay


def _zone(value: str) -> str:
    try:
        TradingDay(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as America/New_York or UTC"
        ) from exc
    return value


def _wall_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 17:00 as 1020
        raise ValueError('write the rollover in quotes, as "HH:MM" (e.g. "17:00")')
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
        raise ValueError('must be a wall-clock time "HH:MM", e.g. "17:00"')
    hour, minute = int(value[:2]), int(value[3:])
    if hour > 23 or minute > 59:
        raise ValueError("must be a wall-clock time between 00:00 and 23:59")
    return time(hour, minute)


class TradingDayConfig(Frozen):
    """When "today" starts for the daily loss: ``rollover`` wall-clock time in ``timezone``."""

    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    rollover: Annotated[time, BeforeValidator(_wall_time)] = time(0, 0)

    def calendar(self) -> TradingDay:
        return TradingDay(self.timezone, self.rollover)
