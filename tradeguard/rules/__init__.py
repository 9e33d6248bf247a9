"""Triggers, one small class each, and the set the guard evaluates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from tradeguard.config import Config, CriticalityConfig, Trigger, Triggers
from tradeguard.rules.base import PortfolioRule, Rule, StrategyRule, Topic
from tradeguard.rules.criticality import MaxCriticality, MaxMarketAge
from tradeguard.rules.health import (
    MaxAgentCapital,
    MaxEquityAge,
    MaxFeedAge,
    MaxPnlVelocity,
    MaxSilence,
    MaxVolatility,
)
from tradeguard.rules.portfolio import (
    MaxCorrelation,
    MaxDailyLoss,
    MaxMarginUtilization,
    MaxPortfolioDrawdown,
)
from tradeguard.rules.strategy import (
    MaxConsecutiveLosses,
    MaxPositionSize,
    MaxStrategyDrawdown,
    MinWinRate,
    RecoveryPnlFloor,
)

__all__ = ["PortfolioRule", "Rule", "RuleSet", "StrategyRule", "Topic"]


def _strategy_rules(t: Triggers, floors: bool) -> list[StrategyRule]:
    candidates: list[tuple[bool, StrategyRule]] = [
        (t.strategy_drawdown.enabled, MaxStrategyDrawdown(t.strategy_drawdown)),
        (t.consecutive_losses.enabled, MaxConsecutiveLosses(t.consecutive_losses)),
        (t.win_rate.enabled, MinWinRate(t.win_rate)),
        (t.position_size.enabled, MaxPositionSize(t.position_size)),
        (t.agent_capital.enabled, MaxAgentCapital(t.agent_capital)),
        (t.stuck_agent.enabled, MaxSilence(t.stuck_agent)),
        (floors, RecoveryPnlFloor()),
    ]
    return [rule for enabled, rule in candidates if enabled]


def _criticality_rules(c: CriticalityConfig) -> list[PortfolioRule]:
    if not c.enabled:
        return []
    return [
        MaxCriticality(Trigger(limit=c.avalanche_deploy_threshold, action=c.action)),
        MaxMarketAge(Trigger(limit=c.stale_after_seconds, action=c.action)),
    ]


def _portfolio_rules(t: Triggers) -> list[PortfolioRule]:
    candidates: list[tuple[bool, PortfolioRule]] = [
        (t.portfolio_daily_loss.enabled, MaxDailyLoss(t.portfolio_daily_loss)),
        (t.portfolio_drawdown.enabled, MaxPortfolioDrawdown(t.portfolio_drawdown)),
        (t.correlation_spike.enabled, MaxCorrelation(t.correlation_spike)),
        (t.margin_utilization.enabled, MaxMarginUtilization(t.margin_utilization)),
        (t.pnl_velocity.enabled, MaxPnlVelocity(t.pnl_velocity)),
        (t.volatility.enabled, MaxVolatility(t.volatility)),
        (t.feed_stale.enabled, MaxFeedAge(t.feed_stale)),
        (t.equity_stale.enabled, MaxEquityAge(t.equity_stale)),
    ]
    return [rule for enabled, rule in candidates if enabled]


R = TypeVar("R", StrategyRule, PortfolioRule)


def _by_topic(rules: Sequence[R]) -> dict[Topic, list[R]]:
    return {topic: [r for r in rules if topic in r.watches] for topic in Topic}


class RuleSet:
    """The rules built from a config, indexed by the topics that can move them. Strategies on
    the defaults share one table: nothing here grows with the number of strategies."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.portfolio = _portfolio_rules(config.triggers) + _criticality_rules(config.criticality)
        recovery = config.recovery
        floors = recovery.enabled and any(s.pnl_floor is not None for s in recovery.stages)
        self._default_strategy = _strategy_rules(config.triggers, floors)
        own = {sid: config.triggers_for(sid) for sid in config.strategies}
        self._strategy: dict[str, list[StrategyRule]] = {
            sid: _strategy_rules(triggers, floors)
            for sid, triggers in own.items()
            if triggers != config.triggers  # a capital-only entry stays on the defaults
        }
        self._portfolio_by_topic = _by_topic(self.portfolio)
        self._default_by_topic = _by_topic(self._default_strategy)
        self._strategy_by_topic = {sid: _by_topic(r) for sid, r in self._strategy.items()}
        sizing = [r for r in self._default_strategy if isinstance(r, MaxPositionSize)]
        # the default position-size limit, whose crossings an equity change looks up
        self.size_limit = sizing[0].limit if sizing else math.inf

    def for_strategy(self, strategy_id: str) -> list[StrategyRule]:
        return self._strategy.get(strategy_id, self._default_strategy)

    def strategy_watching(self, strategy_id: str, topic: Topic) -> list[StrategyRule]:
        return self._strategy_by_topic.get(strategy_id, self._default_by_topic)[topic]

    @property
    def configured(self) -> tuple[str, ...]:
        """The strategies with triggers of their own (not on the shared defaults)."""
        return tuple(self._strategy)

    def portfolio_watching(self, topic: Topic) -> list[PortfolioRule]:
        return self._portfolio_by_topic[topic]

    def describe(self) -> dict[str, str]:
        described = {r.name: r.short_desc() for r in self.portfolio}
        described.update((r.name, r.short_desc()) for r in self._default_strategy)
        return described
