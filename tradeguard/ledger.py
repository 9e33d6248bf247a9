"""Derives the metrics rules compare from raw events: peaks, drawdowns, streaks, exposure.

The ledger trusts its inputs (the guard validates them first) and never reads a clock: every
method takes ``now``. A metric is one slot per name: derived events and directly reported
metrics (``update_strategy_metrics``) both write it, and the last write wins.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from tradeguard import inputs
from tradeguard.config import Triggers
from tradeguard.model import Scope, finite_or_none
from tradeguard.stats import CorrelationWindow, Extreme, Magnitudes, RollingVolatility, WindowMax
from tradeguard.tradingday import TradingDay

# Holders are indexed by their largest notional in groups 0.1% wide: an equity change judges
# the holders whose position size may have crossed the limit, and those within 0.1% of it.
SIZE_RESOLUTION = 1e-3
# Slack on the crossing band, far above the rounding of ``largest / equity > limit``.
_ROUNDING = 1e-9


@dataclass(frozen=True, slots=True)
class StageFloor:
    """The loss a recovering strategy may take in its current stage: the rule
    ``recovery_pnl_floor`` halts it when realized P&L since ``pnl_at_start`` is below ``floor``."""

    stage: str
    pnl_at_start: float
    floor: float


@dataclass(slots=True)
class StrategyMetrics:
    """Everything the strategy rules read about one strategy (or agent)."""

    scope: Scope
    allocated_capital: float | None = None
    equity: float | None = None
    peak_equity: float | None = None
    drawdown: float | None = None
    realized_pnl: float = 0.0
    trade_count: int = 0
    wins: int = 0
    consecutive_losses: int = 0
    win_rate: float | None = None
    gross_notional: float = 0.0
    largest_notional: float = 0.0
    last_heartbeat: float | None = None
    positions: dict[str, list[float]] = field(default_factory=dict)  # symbol -> [qty, mark]
    recovery_floor: StageFloor | None = None  # set while it climbs the recovery ladder
    # whose equity sizes the positions (shared by every strategy: not in repr or equality)
    portfolio: PortfolioMetrics | None = field(default=None, repr=False, compare=False)
    reported_size: float | None = None  # a position size reported directly...
    reported_at: int = 0  # ...and the portfolio's equity_updates when it was

    @property
    def position_size(self) -> float | None:
        """Largest position's notional over portfolio equity, computed when read: an equity
        update would otherwise rewrite every holder's. A reported size stands (last write
        wins) until the positions, their prices or, while it holds any, the equity move."""
        p = self.portfolio
        if self.reported_size is not None and (
            not self.positions or self.reported_at == (p.equity_updates if p else 0)
        ):
            return self.reported_size
        if not self.positions:
            return None
        equity = None if p is None else p.equity
        if equity is None or equity <= 0:
            return math.inf  # exposure with no equity to measure it against
        return self.largest_notional / equity

    @position_size.setter
    def position_size(self, value: float | None) -> None:
        self.reported_size = value
        self.reported_at = self.portfolio.equity_updates if self.portfolio else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "equity": self.equity,
            "peak_equity": self.peak_equity,
            "drawdown": finite_or_none(self.drawdown),
            "realized_pnl": self.realized_pnl,
            "trade_count": self.trade_count,
            "consecutive_losses": self.consecutive_losses,
            "win_rate": self.win_rate,
            "gross_notional": self.gross_notional,
            "position_size": finite_or_none(self.position_size),
            "allocated_capital": self.allocated_capital,
            "last_heartbeat": self.last_heartbeat,
            "positions": {s: {"quantity": q, "price": p} for s, (q, p) in self.positions.items()},
        }


@dataclass(slots=True)
class PortfolioMetrics:
    """Everything the portfolio rules read."""

    equity: float | None = None
    peak_equity: float | None = None
    drawdown: float | None = None
    day: int | None = None
    day_start_equity: float | None = None
    daily_loss: float | None = None
    pnl_velocity: float | None = None
    margin_used: float | None = None
    margin_available: float | None = None
    margin_utilization: float | None = None
    correlation: float | None = None
    volatility_ratio: float | None = None
    equity_at: float | None = None  # when equity was last reported (not across a restart)
    equity_updates: int = 0  # equity reports so far: a reported position size stands till one
    criticality: float | None = None  # the CriticalityMonitor's last score
    market_at: float | None = None  # when the monitor last had a market observation
    criticality_at: float | None = None  # its last finished cycle (from the first observation)
    criticality_drivers: str = ""  # the indicators that contributed most, for the breach
    prices: dict[str, float] = field(default_factory=dict)
    price_times: dict[str, float] = field(default_factory=dict)
    _stalest: Extreme[str] = field(default_factory=Extreme[str], init=False)

    def price_seen(self, symbol: str, price: float, ts: float) -> None:
        self.prices[symbol] = price
        self.price_times[symbol] = ts
        self._stalest.noted(self.price_times, symbol)

    def feed_age(self, now: float) -> tuple[str, float] | None:
        """The stalest price symbol and its age in seconds (O(log symbols), not a scan: the
        feed_stale rule reads it on every tick)."""
        stalest = self._stalest.top(self.price_times)
        return None if stalest is None else (stalest[0], now - stalest[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "equity": self.equity,
            "peak_equity": self.peak_equity,
            "drawdown": finite_or_none(self.drawdown),
            "trading_day": None if self.day is None else TradingDay.name(self.day),
            "day_start_equity": self.day_start_equity,
            "daily_loss": finite_or_none(self.daily_loss),
            "pnl_velocity": finite_or_none(self.pnl_velocity),
            "margin_used": self.margin_used,
            "margin_available": self.margin_available,
            "margin_utilization": finite_or_none(self.margin_utilization),
            "correlation": finite_or_none(self.correlation),
            "volatility_ratio": finite_or_none(self.volatility_ratio),
            "criticality": finite_or_none(self.criticality),
            "symbols": len(self.prices),
        }


# Directly reported metrics: the seed's names, the slot each writes, and its validator.
STRATEGY_METRICS: dict[str, tuple[str, inputs.Validator]] = {
    "max_drawdown": ("drawdown", inputs.non_negative),
    "drawdown": ("drawdown", inputs.non_negative),
    "consecutive_losses": ("consecutive_losses", inputs.count),
    "win_rate": ("win_rate", inputs.unit_interval),
    "trade_count": ("trade_count", inputs.count),
    "position_size": ("position_size", inputs.non_negative),
    "gross_notional": ("gross_notional", inputs.non_negative),
}
PORTFOLIO_METRICS: dict[str, tuple[str, inputs.Validator]] = {
    "drawdown": ("drawdown", inputs.non_negative),
    "max_drawdown": ("drawdown", inputs.non_negative),
    "daily_loss": ("daily_loss", inputs.number),
    "pnl_velocity": ("pnl_velocity", inputs.non_negative),
    "margin_utilization": ("margin_utilization", inputs.non_negative),
    "correlation": ("correlation", inputs.correlation),
    "volatility_ratio": ("volatility_ratio", inputs.non_negative),
    "criticality": ("criticality", inputs.unit_interval),  # an outside monitor's score
}


class Journal(Protocol):
    """Where every baseline change goes the moment it is made, so that no crash loses it
    (:class:`tradeguard.store.journal.BaselineJournal`); called under the guard's lock."""

    def strategy(self, sid: str, m: StrategyMetrics) -> None: ...

    def portfolio(self, p: PortfolioMetrics, at: float | None) -> None: ...

    def window_reset(self) -> None: ...


class NoJournal:
    """A ledger's journal until the guard gives it one (a memory store keeps none)."""

    def strategy(self, *_: object) -> None:
        pass

    def portfolio(self, *_: object) -> None:
        pass

    def window_reset(self) -> None:
        pass


# The strategy slots a directly reported metric may set that are baselines too.
_BASELINE_SLOTS = frozenset({"consecutive_losses", "trade_count"})


def _drawdown(peak: float, equity: float) -> float:
    # Equity that was never positive cannot be measured against a peak: treat it as total loss.
    return (peak - equity) / peak if peak > 0 else 1.0


class Ledger:
    def __init__(self, triggers: Triggers, calendar: TradingDay | None = None) -> None:
        self._triggers = triggers
        self._calendar = calendar if calendar is not None else TradingDay()
        self.portfolio = PortfolioMetrics()
        self.strategies: dict[str, StrategyMetrics] = {}
        self._holders: dict[str, set[str]] = {}  # symbol -> strategies holding it
        self._velocity = WindowMax(triggers.pnl_velocity.window_seconds)
        self._correlation = CorrelationWindow(triggers.correlation_spike.window)
        self._volatility: dict[str, RollingVolatility] = {}
        self._vol_ratios: dict[str, float] = {}
        self._highest_ratio = Extreme[str](highest=True)
        self._sizes = Magnitudes[str](SIZE_RESOLUTION)  # holders by their largest notional
        # holders whose size stands as reported: the next equity update makes it derived again,
        # so it judges them whatever their notional (ordered: the same order on every run)
        self._reported: dict[str, None] = {}
        self._equity_at: float | None = None
        self.journal: Journal = NoJournal()

    def strategy(self, strategy_id: str) -> StrategyMetrics:
        metrics = self.strategies.get(strategy_id)
        if metrics is None:
            metrics = self.strategies[strategy_id] = StrategyMetrics(
                Scope.strategy(strategy_id), portfolio=self.portfolio
            )
        return metrics

    # -- strategy events ------------------------------------------------------------------

    def record_trade(self, strategy_id: str, pnl: float) -> None:
        m = self.strategy(strategy_id)
        m.trade_count += 1
        m.realized_pnl += pnl
        if pnl > 0:
            m.wins += 1
            m.consecutive_losses = 0
        elif pnl < 0:
            m.consecutive_losses += 1
        m.win_rate = m.wins / m.trade_count
        if m.allocated_capital is not None:
            if m.peak_equity is None:  # the capital it started with is its first peak
                m.peak_equity = m.allocated_capital
            self._strategy_equity(m, m.allocated_capital + m.realized_pnl)
        self.journal.strategy(strategy_id, m)

    def update_strategy_equity(self, strategy_id: str, equity: float) -> None:
        m = self.strategy(strategy_id)
        self._strategy_equity(m, equity)
        self.journal.strategy(strategy_id, m)

    @staticmethod
    def _strategy_equity(m: StrategyMetrics, equity: float) -> None:
        m.equity = equity
        m.peak_equity = equity if m.peak_equity is None else max(m.peak_equity, equity)
        m.drawdown = _drawdown(m.peak_equity, equity)

    def update_position(self, strategy_id: str, symbol: str, quantity: float, price: float) -> None:
        m = self.strategy(strategy_id)
        if quantity == 0:
            m.positions.pop(symbol, None)
            self._holders.get(symbol, set()).discard(strategy_id)
        else:
            m.positions[symbol] = [quantity, price]
            self._holders.setdefault(symbol, set()).add(strategy_id)
        self._exposure(strategy_id, m)

    def heartbeat(self, strategy_id: str, now: float) -> None:
        self.strategy(strategy_id).last_heartbeat = now

    def set_strategy_metrics(self, strategy_id: str, values: dict[str, float | int]) -> None:
        m = self.strategy(strategy_id)
        changed = False
        for name, value in values.items():
            slot = STRATEGY_METRICS[name][0]
            changed = changed or (slot in _BASELINE_SLOTS and getattr(m, slot) != value)
            setattr(m, slot, value)
        if changed:
            self.journal.strategy(m.scope.id, m)
        if "position_size" in values and m.positions:
            self._reported[strategy_id] = None

    def _exposure(self, sid: str, m: StrategyMetrics) -> None:
        """Re-derive a strategy's notionals: on every tick of a symbol it holds, so lean."""
        gross = largest = 0.0
        for quantity, mark in m.positions.values():
            notional = abs(quantity) * mark
            gross += notional
            largest = max(largest, notional)
        m.gross_notional = gross
        m.largest_notional = largest
        m.reported_size = None  # the derived size is the last write now
        self._reported.pop(sid, None)
        self._sizes.set(sid, largest if m.positions else None)

    # -- portfolio events -----------------------------------------------------------------

    def update_portfolio_equity(
        self, equity: float, now: float, size_limit: float | None = None
    ) -> list[str]:
        """Returns the holders whose position size may have crossed ``size_limit`` with the
        new equity (O(log n + those), as a size crosses it when its largest notional lies
        between the old and the new equity times the limit; ``math.inf``: none), and those
        whose reported size it replaces by the derived one. Every holder when no limit is
        given or when the equity was or is not positive (sizes unbounded)."""
        p = self.portfolio
        before = p.equity
        day = self._calendar.of(now)
        if p.day != day:
            p.day = day
            p.day_start_equity = p.equity if p.equity is not None else equity
        p.equity = equity
        p.peak_equity = equity if p.peak_equity is None else max(p.peak_equity, equity)
        p.drawdown = _drawdown(p.peak_equity, equity)
        start = p.day_start_equity
        p.daily_loss = (start - equity) / start if start and start > 0 else _drawdown(0, equity)
        self._equity_at = p.equity_at = now
        high = self._velocity.add(now, equity)
        p.pnl_velocity = (high - equity) / high if high > 0 else 0.0
        self.journal.portfolio(p, now)
        p.equity_updates += 1
        reported, self._reported = list(self._reported), {}
        if size_limit is None or before is None or before <= 0 or equity <= 0:
            return [sid for sid, m in self.strategies.items() if m.positions]
        lo, hi = sorted((before, equity))
        crossed = self._sizes.within(
            size_limit * lo * (1 - _ROUNDING), size_limit * hi * (1 + _ROUNDING)
        )
        return list(dict.fromkeys(crossed + reported)) if reported else crossed

    def update_margin(self, used: float | None, available: float | None) -> None:
        p = self.portfolio
        if used is not None:
            p.margin_used = used
        if available is not None:
            p.margin_available = available
        if p.margin_used is not None and p.margin_available is not None:
            total = p.margin_used + p.margin_available
            p.margin_utilization = p.margin_used / total if total > 0 else 0.0

    def update_prices(self, prices: dict[str, float], ts: float) -> set[str]:
        """Returns the strategies whose positions were re-marked."""
        p = self.portfolio
        vol = self._triggers.volatility
        returns: dict[str, float] = {}
        touched: set[str] = set()
        for symbol, price in prices.items():
            previous = p.prices.get(symbol)
            p.price_seen(symbol, price, ts)
            if previous is not None:
                ret = math.log(price / previous)
                returns[symbol] = ret
                window = self._volatility.get(symbol)
                if window is None:
                    window = self._volatility[symbol] = RollingVolatility(
                        vol.window, vol.baseline_window
                    )
                window.add(ret)
                ratio = window.ratio(vol.min_baseline)
                if ratio is not None:
                    self._vol_ratios[symbol] = ratio
                    self._highest_ratio.noted(self._vol_ratios, symbol)
            for sid in self._holders.get(symbol, ()):
                self.strategies[sid].positions[symbol][1] = price
                touched.add(sid)
        for sid in touched:
            self._exposure(sid, self.strategies[sid])
        if returns:
            self._correlation.add(returns)
            p.correlation = self._correlation.value(
                self._triggers.correlation_spike.min_observations
            )
            highest = self._highest_ratio.top(self._vol_ratios)
            p.volatility_ratio = None if highest is None else highest[1]
        return touched

    def set_portfolio_metrics(self, values: dict[str, float | int]) -> None:
        for name, value in values.items():
            setattr(self.portfolio, PORTFOLIO_METRICS[name][0], value)

    # -- human acknowledgement ------------------------------------------------------------

    def rebase_strategy(self, strategy_id: str) -> None:
        """A resume acknowledges the losses so far: limits are measured from here on."""
        m = self.strategy(strategy_id)
        _acknowledge_losses(m)
        self.journal.strategy(m.scope.id, m)

    def rebased(self, strategy_id: str) -> StrategyMetrics:
        """A copy of the strategy's metrics as a resume would leave them: what a resume is
        judged on (a limit still crossed after that would halt it again at once)."""
        m = self.strategy(strategy_id)
        copy = dataclasses.replace(
            m, positions={s: list(entry) for s, entry in m.positions.items()}, recovery_floor=None
        )
        _acknowledge_losses(copy)
        return copy

    def rebase_portfolio(self) -> None:
        """A portfolio reset acknowledges the losses so far: peak and day start move to now."""
        p = self.portfolio
        p.peak_equity = p.day_start_equity = p.equity
        p.drawdown = p.daily_loss = 0.0 if p.equity is not None else None
        p.pnl_velocity = 0.0 if p.equity is not None else None
        self._velocity = WindowMax(self._triggers.pnl_velocity.window_seconds)
        self.journal.window_reset()
        at = None
        if p.equity is not None and self._equity_at is not None:
            at = self._equity_at
            self._velocity.add(at, p.equity)  # the next fall is measured from here
        self.journal.portfolio(p, at)

    # -- baselines that must survive a restart --------------------------------------------

    def baselines(self) -> dict[str, dict[str, Any]]:
        """What a restart must not forget: peaks, the day's start, loss streaks. Without them a
        restarted guard would measure drawdown from the equity it first sees after the restart."""
        p = self.portfolio
        out: dict[str, dict[str, Any]] = {
            "portfolio": {
                "equity": p.equity,
                "peak_equity": p.peak_equity,
                "day": p.day,
                "day_start_equity": p.day_start_equity,
            }
        }
        for m in self.strategies.values():
            out[str(m.scope)] = {
                "equity": m.equity,
                "peak_equity": m.peak_equity,
                "realized_pnl": m.realized_pnl,
                "trade_count": m.trade_count,
                "wins": m.wins,
                "consecutive_losses": m.consecutive_losses,
            }
        return out

    def restore(self, saved: dict[str, dict[str, Any]]) -> None:
        """Reload baselines; malformed data raises (the guard then fails closed)."""
        for key, data in saved.items():
            if not isinstance(data, dict):
                raise ValueError(f"baseline for {key} is not an object")
            if key == "portfolio":
                p = self.portfolio
                p.equity, p.peak_equity = _opt(data, "equity"), _opt(data, "peak_equity")
                p.day_start_equity = _opt(data, "day_start_equity")
                p.day = None if data.get("day") is None else inputs.count("day", data["day"])
                if p.equity is not None and p.peak_equity is not None:
                    p.drawdown = _drawdown(p.peak_equity, p.equity)
                continue
            m = self.strategy(Scope.parse(key).id)
            m.equity, m.peak_equity = _opt(data, "equity"), _opt(data, "peak_equity")
            m.realized_pnl = inputs.number("realized_pnl", data["realized_pnl"])
            m.trade_count = inputs.count("trade_count", data["trade_count"])
            m.wins = inputs.count("wins", data["wins"])
            m.consecutive_losses = inputs.count("consecutive_losses", data["consecutive_losses"])
            m.win_rate = m.wins / m.trade_count if m.trade_count else None
            if m.equity is not None and m.peak_equity is not None:
                m.drawdown = _drawdown(m.peak_equity, m.equity)

    def velocity_samples(self) -> list[tuple[float, float]]:
        """The equity samples the velocity window holds: a restart keeps measuring from them."""
        return self._velocity.samples()

    def restore_window(self, samples: list[tuple[float, float]]) -> None:
        self._velocity = WindowMax(self._triggers.pnl_velocity.window_seconds)
        for at, value in samples:
            self._velocity.add(at, value)


def _acknowledge_losses(m: StrategyMetrics) -> None:
    m.peak_equity = m.equity
    m.drawdown = 0.0 if m.equity is not None else None
    m.consecutive_losses = 0
    m.trade_count = m.wins = 0
    m.win_rate = None


def _opt(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    return None if value is None else inputs.number(name, value)
