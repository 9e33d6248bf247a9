"""Every config section other than the triggers, and ``Config``, the whole file.

Each section is its own frozen model so that a component is handed only the part of the
configuration it acts on (the pre-trade checks their limits, the alert dispatcher its channels).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator

from tradeguard.config.fields import (
    PORTFOLIO_ACTIONS,
    Fraction,
    Frozen,
    HttpUrl,
    LaxAction,
    Positive,
    PositiveInt,
    SecretHttpUrl,
    fraction,
    non_negative,
)
from tradeguard.config.trading_day import TradingDayConfig
from tradeguard.config.triggers import STRATEGY_TRIGGERS, StrategyTriggerOverrides, Triggers
from tradeguard.model import Action, Role, user_key


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port, 1-65535")
    return value


def _role(value: Any) -> Role:
    if isinstance(value, Role):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a role name")
    return Role.parse(value)


RoleName = Annotated[Role, BeforeValidator(_role)]


class OnHalt(StrEnum):
    CANCEL_ORDERS = "cancel_orders"
    FLATTEN = "flatten"


LaxOnHalt = Annotated[OnHalt, Field(strict=False)]


class StrategyConfig(Frozen):
    allocated_capital: Positive | None = None
    on_halt: LaxOnHalt | None = None  # None: emergency.strategy_on_halt
    triggers: StrategyTriggerOverrides = StrategyTriggerOverrides()


class EmailConfig(Frozen):
    enabled: bool = False
    smtp_server: str | None = None
    username: str | None = None
    password: SecretStr | None = Field(default=None, strict=False)
    to_addresses: list[str] = []
    smtp_port: Annotated[int, AfterValidator(_port)] = 587
    use_tls: bool = True  # STARTTLS, or implicit TLS on port 465
    from_address: str | None = None  # default: username, else tradeguard@localhost

    @model_validator(mode="after")
    def _complete(self) -> EmailConfig:
        if self.enabled and (not self.smtp_server or not self.to_addresses):
            raise ValueError("an enabled email channel needs smtp_server and to_addresses")
        return self


class WebhookConfig(Frozen):
    url: HttpUrl
    secret: SecretStr | None = Field(default=None, strict=False)  # HMAC-SHA256 signature key


class AlertPriority(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


CHANNELS = ("slack", "email", "pagerduty", "webhook")


def _routes(value: dict[AlertPriority, list[str]]) -> dict[AlertPriority, list[str]]:
    unknown = sorted({c for channels in value.values() for c in channels} - set(CHANNELS))
    if unknown:
        raise ValueError(f"unknown channels {unknown}; known: {list(CHANNELS)}")
    return value


DEFAULT_ROUTING = {
    AlertPriority.CRITICAL: ["pagerduty", "slack", "email", "webhook"],
    AlertPriority.WARNING: ["slack", "email", "webhook"],
    AlertPriority.INFO: ["slack", "webhook"],
}


class AlertsConfig(Frozen):
    slack_webhook: SecretHttpUrl | None = None
    email: EmailConfig = EmailConfig()
    pagerduty_key: SecretStr | None = Field(default=None, strict=False)
    pagerduty_url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    webhooks: list[WebhookConfig] = []
    routing: Annotated[
        dict[Annotated[AlertPriority, Field(strict=False)], list[str]], AfterValidator(_routes)
    ] = DEFAULT_ROUTING
    cooldown_seconds: Annotated[float, AfterValidator(non_negative)] = 60.0
    timeout_seconds: Positive = 5.0  # one delivery attempt
    max_attempts: PositiveInt = 12  # then reported as failed
    dashboard_url: HttpUrl | None = None  # linked from every alert

    @property
    def configured(self) -> set[str]:
        """The channels that have what they need to send."""
        ready = set()
        if self.slack_webhook is not None:
            ready.add("slack")
        if self.email.enabled:
            ready.add("email")
        if self.pagerduty_key is not None:
            ready.add("pagerduty")
        if self.webhooks:
            ready.add("webhook")
        return ready


class StateConfig(Frozen):
    path: Path = Field(default=Path("tradeguard.db"), strict=False)
    # HMAC key for the audit chain: without it, nobody with write access to the database can
    # rewrite records and recompute the chain. Set it before the first record; via ${VAR}.
    audit_key: SecretStr | None = Field(default=None, strict=False)
    # How often the loss-baselines journal beside the store is fsynced: what a power cut may
    # lose (a SIGKILL loses nothing: every change is in the page cache when its update returns)
    baseline_fsync_seconds: Positive = 1.0


class EmergencyConfig(Frozen):
    """How the emergency stop flattens: deadline before escalating, retry pacing."""

    deadline_seconds: Positive = 30.0
    give_up_seconds: Positive = 300.0
    backoff_initial_seconds: Positive = 0.05
    backoff_max_seconds: Positive = 2.0
    max_in_flight: PositiveInt = 50
    call_timeout_seconds: Positive = 5.0  # a venue call slower than this counts as a timeout
    strategy_on_halt: LaxOnHalt = OnHalt.CANCEL_ORDERS

    @model_validator(mode="after")
    def _ordered(self) -> EmergencyConfig:
        if self.give_up_seconds < self.deadline_seconds:
            raise ValueError("give_up_seconds must be >= deadline_seconds")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError("backoff_max_seconds must be >= backoff_initial_seconds")
        return self


class BreakerConfig(Frozen):
    interval_seconds: Positive = 2.0
    source_timeout_seconds: Positive = 1.0  # a metrics source slower than this is failed
    # threads that read each metric source: a read that hangs holds one; when all of a source's
    # are held, its next read fails at once (and halts, like any failed source) instead of
    # leaking a thread; the other sources keep their own
    source_workers: PositiveInt = 4


class OrderLimits(Frozen):
    """Pre-trade limits; every key may be set globally, per strategy and per symbol (the most
    specific value set wins; ``null`` turns a limit off). The defaults sit on the fields, so
    setting one limit never silently drops the others."""

    price_collar: Fraction | None = 0.10  # bounds: price within this of the last price
    max_order_quantity: Positive | None = None  # limits
    max_order_notional: Positive | None = 1_000_000.0  # limits
    max_position_notional: Positive | None = None  # cap: the resulting position in the symbol
    max_gross_exposure: Positive | None = None  # cap: the strategy's gross after the order
    soft_drawdown: Fraction | None = 0.03  # drawdown: past it, only reducing orders


class RateLimit(Frozen):
    """Token buckets (orders per second, with a burst), per strategy and across all."""

    per_strategy: Positive = 50.0
    per_strategy_burst: PositiveInt = 100
    total: Positive = 500.0
    total_burst: PositiveInt = 1_000


class PretradeConfig(Frozen):
    limits: OrderLimits = OrderLimits()
    strategies: dict[str, OrderLimits] = {}
    symbols: dict[str, OrderLimits] = {}
    require_known_symbol: bool = True  # bounds: a symbol with no price yet is refused
    rate: RateLimit = RateLimit()
    dedup_window_seconds: Annotated[float, AfterValidator(non_negative)] = 1.0
    # An accepted order counts against caps and reduce-only until order_closed() says it is
    # done, or for this long at most (then its fill shows in the reported position).
    reservation_seconds: Positive = 30.0
    client_ids_remembered: PositiveInt = 100_000


def _stage_fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError("must be in [0, 1): 0 is paper; full size ends the ladder")
    return value


def _floor(value: float) -> float:
    if not value <= 0:
        raise ValueError("must be <= 0: the loss a stage may take before it fails")
    return value


class RecoveryStage(Frozen):
    """One rung of the ladder and the gate out of it: ``min_seconds`` in the stage and
    ``min_trades`` closed in it. Realized P&L within the stage below ``pnl_floor`` fails the
    recovery: the strategy is halted again and the next resume starts from the bottom."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_%.-]{1,32}$")]
    fraction: Annotated[float, AfterValidator(_stage_fraction)]
    min_seconds: Annotated[float, AfterValidator(non_negative)] = 0.0
    min_trades: Annotated[int, AfterValidator(non_negative)] = 0
    pnl_floor: Annotated[float, AfterValidator(_floor)] | None = None

    @model_validator(mode="after")
    def _paper_trades_nothing(self) -> RecoveryStage:
        if self.fraction == 0 and self.min_trades:
            raise ValueError(
                "a paper stage (fraction 0) sends no orders, so it cannot require trades"
            )
        return self


class RecoveryConfig(Frozen):
    """Graduated re-entry after a resume: paper -> 25% -> 50% -> full, each gated; and the
    cool-down a halt must serve before anyone may lift it (a trigger's own
    ``cooldown_seconds`` replaces this one for the halts it caused)."""

    enabled: bool = True
    cooldown_seconds: Annotated[float, AfterValidator(non_negative)] = 300.0
    stages: list[RecoveryStage] = [
        RecoveryStage(name="paper", fraction=0.0, min_seconds=300.0),
        RecoveryStage(name="25%", fraction=0.25, min_seconds=900.0, min_trades=5),
        RecoveryStage(name="50%", fraction=0.5, min_seconds=1800.0, min_trades=10),
    ]

    @model_validator(mode="after")
    def _rising(self) -> RecoveryConfig:
        fractions = [s.fraction for s in self.stages]
        if fractions != sorted(fractions):
            raise ValueError("stages must not shrink: each fraction >= the one before")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        if not self.stages:  # strategies resumed under it may still be climbing them
            raise ValueError("the ladder needs stages; turn it off with enabled: false")
        return self


def _below_one(value: float) -> float:
    """A fraction a score can still exceed: 1.0 would never fire."""
    fraction(value)
    if value >= 1:
        raise ValueError("must be below 1: a score never exceeds 1, so it would never fire")
    return value


def _indicator_weights(value: dict[str, float]) -> dict[str, float]:
    from tradeguard.criticality.names import INDICATOR_NAMES

    unknown = sorted(set(value) - set(INDICATOR_NAMES))
    if unknown:
        raise ValueError(f"unknown indicators {unknown}; known: {list(INDICATOR_NAMES)}")
    if any(not (w >= 0) for w in value.values()):
        raise ValueError("weights must be >= 0")
    if value and not any(value.get(n, 1.0) > 0 for n in INDICATOR_NAMES):
        raise ValueError("at least one indicator needs a weight > 0")
    return value


class CriticalityConfig(Frozen):
    """The CriticalityMonitor: 15 systemic-risk indicators every ``interval_seconds``, one
    score in [0, 1]; past ``avalanche_deploy_threshold`` it is a breach (``action``)."""

    enabled: bool = True  # it runs once it has ``min_observations`` of market data
    interval_seconds: Positive = 60.0
    avalanche_deploy_threshold: Annotated[float, AfterValidator(_below_one)] = 0.30
    action: LaxAction = Action.SOFT_HALT
    window: PositiveInt = 500  # observations (one per cycle) kept per asset
    short_window: PositiveInt = 20  # the recent stretch: spreads, Amihud, depth, correlation
    long_window: PositiveInt = 250  # entropy, TSRV, autocorrelation
    min_observations: PositiveInt = 120  # before that: warming up, no score
    percentile_window: PositiveInt = 500  # each indicator is ranked in this much of its past
    calm_quantile: Annotated[float, AfterValidator(_stage_fraction)] = 0.8  # below: no stress
    stale_after_seconds: Positive = 600.0  # no observation, or no finished cycle: a breach
    carry_cycles: Annotated[int, Field(ge=0)] = 5  # a symbol's missing bars carried forward
    weights: Annotated[dict[str, float], AfterValidator(_indicator_weights)] = {}  # default 1
    recent: PositiveInt = 5  # changepoint, CUSUM and turbulence look back this many
    entropy_order: Annotated[int, Field(ge=3, le=6)] = 4
    tsrv_scale: Annotated[int, Field(ge=2)] = 5
    contagion_horizon: PositiveInt = 10
    absorption_fraction: Fraction = 0.2
    vpin_buckets: PositiveInt = 50
    bocpd_hazard: Annotated[float, Field(gt=0, lt=1)] = 1 / 250
    bocpd_max_run: PositiveInt = 500
    cusum_k: Annotated[float, Field(ge=0)] = 0.5
    cusum_h: Positive = 5.0

    @model_validator(mode="after")
    def _windows_fit(self) -> CriticalityConfig:
        if not self.short_window < self.long_window <= self.window:
            raise ValueError("need short_window < long_window <= window")
        if self.min_observations > self.window:
            raise ValueError("min_observations must be <= window")
        if self.min_observations < 3 * self.entropy_order:
            raise ValueError("min_observations is too small for the entropy order")
        if self.action not in PORTFOLIO_ACTIONS:
            raise ValueError("action must be soft_halt, hard_halt or emergency")
        return self


class Remedy(StrEnum):
    """What the KillChain's remediation does to the strategy the evidence ties to the cause:
    ``disable`` it for good and blacklist its genome, keep it ``halt``ed (a person decides),
    or ``none`` (containment alone)."""

    DISABLE = "disable"
    HALT = "halt"
    NONE = "none"


LaxRemedy = Annotated[Remedy, Field(strict=False)]


class RemediationConfig(Frozen):
    """The remedy per cause: an incident a rule's breach started (``rule``), the criticality
    score's crossing (``criticality``), or one a person, an automated principal or the guard
    itself declared (``person``). Disabling is permanent: by default only a rule's breach
    that names a strategy earns it."""

    rule: LaxRemedy = Remedy.DISABLE
    criticality: LaxRemedy = Remedy.HALT
    person: LaxRemedy = Remedy.HALT


class KillChainConfig(Frozen):
    """Incident response: how long a phase callback may take, how far back diagnosis looks
    for the first breach, what remediation does per cause, and how long ``close`` lets a
    running phase finish before the chain is parked (resumed at the next start)."""

    callback_timeout_seconds: Positive = 10.0
    lookback_seconds: Positive = 3600.0
    remediation: RemediationConfig = RemediationConfig()
    close_grace_seconds: Positive = 10.0


class ReserveConfig(Frozen):
    """The avalanche reserve: the share of capital ``guard.allocate`` holds back, released
    once when the criticality score crosses its threshold; and the cap per agent."""

    share: Annotated[float, Field(ge=0, lt=1)] = 0.15
    max_agent_share: Fraction = 0.25


AGENT_TRUST = range(4)  # 0 observe, 1 halt strategies, 2 + soft halt and incidents, 3 + all halts


class Principal(Frozen):
    trust: Annotated[int, Field(ge=0, le=3)] = 0


class AutonomyConfig(Frozen):
    """Automated principals (an AI or agent layer, "the hive") and their trust levels: what
    they may ask for. None may ever lift, resume, unblock or approve, whatever its level."""

    principals: dict[str, Principal] = {}


class AuthConfig(Frozen):
    """Tokens for the CLI and the HTTP API. Off only for demos: every command then says so."""

    enabled: bool = True
    refusal_window_seconds: Positive = 60.0  # a refusal's repeats are counted, not each written
    failed_logins_per_second: PositiveInt = 5  # per client address; then 429 (halts go through)
    halt_credential_wait_seconds: Positive = 0.5  # for its hash; then a halt is unauthenticated
    # How long a one-time enrollment code (or both shares of a split one) can be redeemed.
    enrollment_ttl_seconds: Positive = 86_400.0


class GuardConfig(Frozen):
    strict_strategies: bool = False
    trading_day: TradingDayConfig = TradingDayConfig()
    watch_interval_seconds: Positive = 0.1  # how often a running guard looks for outside writes
    invalid_input_action: LaxAction = Action.SOFT_HALT
    approval_ttl_seconds: Positive = 900.0
    callback_timeout_seconds: Positive = 10.0
    max_clock_skew_seconds: Positive = 5.0

    @model_validator(mode="after")
    def _portfolio_action(self) -> GuardConfig:
        if self.invalid_input_action not in PORTFOLIO_ACTIONS:
            raise ValueError("invalid_input_action must be soft_halt, hard_halt or emergency")
        return self


USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}\Z")  # \Z: "$" would let a trailing newline in


class Config(Frozen):
    alerts: AlertsConfig = AlertsConfig()
    triggers: Triggers = Triggers()
    users: dict[str, RoleName] = {}
    strategies: dict[str, StrategyConfig] = {}
    state: StateConfig = StateConfig()
    breaker: BreakerConfig = BreakerConfig()
    emergency: EmergencyConfig = EmergencyConfig()
    auth: AuthConfig = AuthConfig()
    pretrade: PretradeConfig = PretradeConfig()
    recovery: RecoveryConfig = RecoveryConfig()
    criticality: CriticalityConfig = CriticalityConfig()
    killchain: KillChainConfig = KillChainConfig()
    reserve: ReserveConfig = ReserveConfig()
    autonomy: AutonomyConfig = AutonomyConfig()
    guard: GuardConfig = GuardConfig()

    def on_halt(self, strategy_id: str) -> OnHalt:
        strategy = self.strategies.get(strategy_id)
        if strategy is not None and strategy.on_halt is not None:
            return strategy.on_halt
        return self.emergency.strategy_on_halt

    def triggers_for(self, strategy_id: str) -> Triggers:
        """The global triggers with this strategy's overrides applied."""
        overrides = self.strategies.get(strategy_id)
        if overrides is None:
            return self.triggers
        changed = {
            name: value
            for name in STRATEGY_TRIGGERS
            if (value := getattr(overrides.triggers, name)) is not None
        }
        return self.triggers.model_copy(update=changed) if changed else self.triggers

    @model_validator(mode="after")
    def _user_names(self) -> Config:
        bad = [n for n in [*self.users, *self.autonomy.principals] if not USER_NAME.match(n)]
        if bad:
            raise ValueError(f"invalid user names {bad}: use letters, digits and _.@-")
        seen: dict[str, str] = {}
        for name in self.users:
            if (first := seen.setdefault(user_key(name), name)) != name:
                raise ValueError(
                    f"users {first!r} and {name!r} are one person (names are compared "
                    "ignoring case and Unicode form): keep one"
                )
        both = sorted(n for n in self.autonomy.principals if user_key(n) in seen)
        if both:
            raise ValueError(f"{both} are both users and automated principals: one name, one kind")
        return self
