"""The trading day: when "today" starts for the daily loss and every other daily figure.

Desks close their day at a wall-clock time in a zone (17:00 New York for FX and many futures,
midnight UTC for crypto), not at midnight UTC. A trading day that rolls at 17:00 runs from
17:00 one day to 17:00 the next and is named by the date it ends on (the session that opens
Monday 17:00 is Tuesday's). Wall-clock arithmetic in the zone keeps the rollover at 17:00
local on both sides of a daylight-saving switch, so those days are 23 or 25 hours long.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

EPOCH = date(1970, 1, 1).toordinal()
WHOLE_DAY = timedelta(days=1)


class TradingDay:
    __slots__ = ("_shift", "_zone", "rollover", "timezone")

    def __init__(self, timezone: str = "UTC", rollover: time = time(0, 0)) -> None:
        self.timezone = timezone
        self.rollover = rollover
        self._zone = UTC if timezone == "UTC" else ZoneInfo(timezone)
        since_midnight = timedelta(hours=rollover.hour, minutes=rollover.minute)
        # a day that rolls before midnight is named by the date it ends on
        self._shift = WHOLE_DAY - since_midnight if since_midnight else timedelta(0)

    def date_of(self, ts: float) -> date:
        """The trading date ``ts`` (epoch seconds) falls in."""
        local = datetime.fromtimestamp(ts, self._zone).replace(tzinfo=None)
        return (local + self._shift).date()

    def of(self, ts: float) -> int:
        """The trading day as days since 1970-01-01: with the default (midnight UTC) this is
        ``int(ts // 86400)``, what stores from before trading days hold."""
        return self.date_of(ts).toordinal() - EPOCH

    @staticmethod
    def name(day: int) -> str:
        """The ISO date of a day number from :meth:`of`."""
        return date.fromordinal(day + EPOCH).isoformat()
