"""Prometheus metrics: states, breaches, transitions, halt latency, pre-trade refusals."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from tradeguard.alerts.dispatcher import Delivery
from tradeguard.guard import Guard
from tradeguard.model import Breach, PortfolioState, StateChange, StrategyState


class _StateCollector(Collector):
    """Read at scrape time from the guard, so the numbers are never stale."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def collect(self) -> Iterator[Metric]:
        status = self._guard.status()
        portfolio = GaugeMetricFamily(
            "tradeguard_portfolio_state", "1 for the portfolio's current state", labels=["state"]
        )
        for state in PortfolioState:
            portfolio.add_metric([state.value], float(status["portfolio"]["state"] == state))
        yield portfolio
        strategies = GaugeMetricFamily(
            "tradeguard_strategy_state",
            "1 for each strategy's current state",
            labels=["strategy", "state"],
        )
        for sid, s in status["strategies"].items():
            for st in StrategyState:
                strategies.add_metric([sid, st.value], float(s["state"] == st))
        yield strategies
        age = status["breaker"]["last_tick_age_seconds"]
        yield GaugeMetricFamily(
            "tradeguard_breaker_last_tick_age_seconds",
            "seconds since the breaker thread last ticked (NaN: never)",
            value=float("nan") if age is None else age,
        )
        yield GaugeMetricFamily(
            "tradeguard_store_ok",
            "1 when the state store works",
            value=float(status["store"]["ok"]),
        )
        refusals = CounterMetricFamily(
            "tradeguard_pretrade_refusals",
            "orders refused before they were sent, by check",
            labels=["check"],
        )
        for check, count in sorted(self._guard.refusals.items()):
            refusals.add_metric([check], count)
        yield refusals


class Metrics:
    def __init__(self, guard: Guard) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(guard))
        self._breaches = Counter(
            "tradeguard_breaches", "limits crossed, by rule", ["rule"], registry=self.registry
        )
        self._transitions = Counter(
            "tradeguard_transitions", "state changes", ["scope", "after"], registry=self.registry
        )
        self._latency = Histogram(
            "tradeguard_transition_durable_seconds",
            "from the decision to the store's commit",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
            registry=self.registry,
        )
        self._delivery = Histogram(
            "tradeguard_alert_delivery_seconds",
            "one delivery attempt, by channel",
            ["channel"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self._deliveries = Counter(
            "tradeguard_alert_deliveries",
            "delivery attempts",
            ["channel", "outcome"],
            registry=self.registry,
        )
        guard.register_callback("breach", self._on_breach)
        guard.register_callback("state_change", self._on_change)
        guard.register_callback("alert_delivery", self._on_delivery)

    def _on_breach(self, breach: Breach) -> None:
        self._breaches.labels(breach.rule).inc()

    def _on_change(self, change: StateChange) -> None:
        self._transitions.labels(change.scope.kind.value, change.after).inc()
        if change.durable_seconds is not None:
            self._latency.observe(change.durable_seconds)

    def _on_delivery(self, outcome: Delivery) -> None:
        self._delivery.labels(outcome.channel).observe(outcome.latency_ms / 1e3)
        status = "delivered" if outcome.ok else ("failed" if outcome.final else "retrying")
        self._deliveries.labels(outcome.channel, status).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
