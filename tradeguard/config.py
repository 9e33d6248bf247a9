"""The YAML configuration, validated by frozen pydantic models.

The seed's file is accepted as it is (``triggers.strategy_drawdown: 0.05`` is shorthand for
``{limit: 0.05}``), and every trigger also takes a full form with its action and parameters.
Unknown keys are errors: a typo in a risk limit must never fall back to a default silently.
Every error is reported with its key path, all at once.
"""

from __future__ import annotations

import difflib
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from tradeguard.errors import ConfigError
from tradeguard.model import Action, Role


def _fraction(value: float) -> float:
    if not 0 < value <= 1:
        hint = f"; write {value / 100:g} for {value:g}%" if 1 < value <= 100 else ""
        raise ValueError(f"must be in (0, 1]{hint}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port, 1-65535")
    return value


def _non_negative(value: float) -> float:
    if not value >= 0:
        raise ValueError("must be >= 0")
    return value


def _correlation(value: float) -> float:
    if not -1 < value < 1:
        raise ValueError("must be in (-1, 1)")
    return value


Fraction = Annotated[float, AfterValidator(_fraction)]
Positive = Annotated[float, AfterValidator(_positive)]
PositiveInt = Annotated[int, AfterValidator(_positive)]
LaxAction = Annotated[Action, Field(strict=False)]


def _role(value: Any) -> Role:
    if isinstance(value, Role):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a role name")
    return Role.parse(value)


RoleName = Annotated[Role, BeforeValidator(_role)]

PORTFOLIO_ACTIONS = (Action.SOFT_HALT, Action.HARD_HALT, Action.EMERGENCY)


class Frozen(BaseModel):
    """Base for every config section: immutable, keyword-only, no unknown keys, no NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Trigger(Frozen):
    """A trigger's limit and the action taken when it is crossed.

    A bare number in YAML is shorthand for ``{limit: number}`` (the seed's form).
    """

    portfolio_scope: ClassVar[bool] = False

    enabled: bool = True
    limit: float
    action: LaxAction
    # how long a halt this trigger caused must stand before it may be lifted (None: the
    # global recovery.cooldown_seconds)
    cooldown_seconds: Annotated[float, AfterValidator(_non_negative)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"limit": data}
        return data

    @model_validator(mode="after")
    def _action_fits_scope(self) -> Trigger:
        if self.portfolio_scope and self.action not in PORTFOLIO_ACTIONS:
            allowed = ", ".join(a.value for a in PORTFOLIO_ACTIONS)
            raise ValueError(f"action of a portfolio trigger must be one of {allowed}")
        return self


class StrategyDrawdown(Trigger):
    limit: Fraction = 0.05
    action: LaxAction = Action.HALT_STRATEGY


class ConsecutiveLosses(Trigger):
    limit: PositiveInt = 5  # a count: int narrows float
    action: LaxAction = Action.HALT_STRATEGY


class WinRate(Trigger):
    limit: Fraction = 0.30
    action: LaxAction = Action.HALT_STRATEGY
    min_trades: PositiveInt = 20


class PositionSize(Trigger):
    """Largest single position's notional as a fraction of portfolio equity."""

    limit: Positive = 0.20
    action: LaxAction = Action.HALT_STRATEGY


class AgentCapital(Trigger):
    """Gross notional as a multiple of the strategy's allocated capital."""

    limit: Positive = 1.0
    action: LaxAction = Action.HALT_STRATEGY


class StuckAgent(Trigger):
    """Seconds without a heartbeat before an agent that has sent one is called stuck."""

    limit: Positive = 300.0
    action: LaxAction = Action.HALT_STRATEGY


class PortfolioDailyLoss(Trigger):
    portfolio_scope = True
    limit: Fraction = 0.03
    action: LaxAction = Action.SOFT_HALT


class PortfolioDrawdown(Trigger):
    portfolio_scope = True
    limit: Fraction = 0.10
    action: LaxAction = Action.HARD_HALT


class CorrelationSpike(Trigger):
    """Average pairwise correlation of log returns over the last ``window`` price snapshots."""

    portfolio_scope = True
    limit: Annotated[float, AfterValidator(_correlation)] = 0.80
    action: LaxAction = Action.SOFT_HALT
    window: PositiveInt = 60
    min_observations: PositiveInt = 20

    @model_validator(mode="after")
    def _window_holds_minimum(self) -> CorrelationSpike:
        if self.min_observations > self.window:
            raise ValueError("min_observations must be <= window")
        if self.min_observations < 3:
            raise ValueError("min_observations must be >= 3 for a correlation to mean anything")
        return self


class MarginUtilization(Trigger):
    """margin_used / (margin_used + margin_available)."""

    portfolio_scope = True
    limit: Fraction = 0.90
    action: LaxAction = Action.SOFT_HALT


class PnlVelocity(Trigger):
    """Loss of ``limit`` (fraction of equity) from the highest equity within ``window_seconds``."""

    portfolio_scope = True
    limit: Fraction = 0.02
    action: LaxAction = Action.SOFT_HALT
    window_seconds: Positive = 60.0


class Volatility(Trigger):
    """Realized volatility of the last ``window`` returns as a multiple of the baseline before."""

    portfolio_scope = True
    limit: Positive = 3.0
    action: LaxAction = Action.SOFT_HALT
    window: PositiveInt = 20
    baseline_window: PositiveInt = 200
    min_baseline: PositiveInt = 50

    @model_validator(mode="after")
    def _baseline_fits(self) -> Volatility:
        if self.min_baseline > self.baseline_window:
            raise ValueError("min_baseline must be <= baseline_window")
        if self.window < 2 or self.min_baseline < 2:
            raise ValueError("window and min_baseline must be >= 2")
        return self


class FeedStale(Trigger):
    """Seconds since a price symbol's last update."""

    portfolio_scope = True
    limit: Positive = 30.0
    action: LaxAction = Action.SOFT_HALT


class EquityStale(Trigger):
    """Seconds since portfolio equity was last reported, once it has been: a silent equity
    feed hides every loss limit."""

    portfolio_scope = True
    limit: Positive = 120.0
    action: LaxAction = Action.SOFT_HALT


class Triggers(Frozen):
    strategy_drawdown: StrategyDrawdown = StrategyDrawdown()
    consecutive_losses: ConsecutiveLosses = ConsecutiveLosses()
    win_rate: WinRate = WinRate()
    position_size: PositionSize = PositionSize()
    agent_capital: AgentCapital = AgentCapital()
    stuck_agent: StuckAgent = StuckAgent()
    portfolio_daily_loss: PortfolioDailyLoss = PortfolioDailyLoss()
    portfolio_drawdown: PortfolioDrawdown = PortfolioDrawdown()
    correlation_spike: CorrelationSpike = CorrelationSpike()
    margin_utilization: MarginUtilization = MarginUtilization()
    pnl_velocity: PnlVelocity = PnlVelocity()
    volatility: Volatility = Volatility()
    feed_stale: FeedStale = FeedStale()
    equity_stale: EquityStale = EquityStale()


STRATEGY_TRIGGERS = (
    "strategy_drawdown",
    "consecutive_losses",
    "win_rate",
    "position_size",
    "agent_capital",
    "stuck_agent",
)


class StrategyTriggerOverrides(Frozen):
    """Per-strategy replacements for strategy-level triggers; absent keys keep the global one."""

    strategy_drawdown: StrategyDrawdown | None = None
    consecutive_losses: ConsecutiveLosses | None = None
    win_rate: WinRate | None = None
    position_size: PositionSize | None = None
    agent_capital: AgentCapital | None = None
    stuck_agent: StuckAgent | None = None


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
    url: str
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
    slack_webhook: SecretStr | None = Field(default=None, strict=False)
    email: EmailConfig = EmailConfig()
    pagerduty_key: SecretStr | None = Field(default=None, strict=False)
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    webhooks: list[WebhookConfig] = []
    routing: Annotated[
        dict[Annotated[AlertPriority, Field(strict=False)], list[str]], AfterValidator(_routes)
    ] = DEFAULT_ROUTING
    cooldown_seconds: Annotated[float, AfterValidator(_non_negative)] = 60.0
    timeout_seconds: Positive = 5.0  # one delivery attempt
    max_attempts: PositiveInt = 12  # then reported as failed
    dashboard_url: str | None = None  # linked from every alert

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
    dedup_window_seconds: Annotated[float, AfterValidator(_non_negative)] = 1.0
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
    min_seconds: Annotated[float, AfterValidator(_non_negative)] = 0.0
    min_trades: Annotated[int, AfterValidator(_non_negative)] = 0
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
    cooldown_seconds: Annotated[float, AfterValidator(_non_negative)] = 300.0
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
    _fraction(value)
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


class KillChainConfig(Frozen):
    """Incident response: how long a phase callback may take, and how far back diagnosis
    looks for the first breach."""

    callback_timeout_seconds: Positive = 10.0
    lookback_seconds: Positive = 3600.0


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


class GuardConfig(Frozen):
    strict_strategies: bool = False
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


USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


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
        both = sorted(set(self.users) & set(self.autonomy.principals))
        if both:
            raise ValueError(f"{both} are both users and automated principals: one name, one kind")
        return self


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(node: Any, path: str, env: dict[str, str], errors: list[str]) -> Any:
    """Replace ``${VAR}`` in every string; a missing variable is an error naming it and its key."""
    if isinstance(node, dict):
        return {
            k: _expand_env(v, f"{path}.{k}" if path else str(k), env, errors)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", env, errors) for i, v in enumerate(node)]
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                errors.append(f"{path}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(substitute, node)
    return node


def _raw_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    for key in loc:
        if not isinstance(data, dict | list):
            return None
        try:
            data = data[key]  # type: ignore[index]  # a wrong key type is caught below
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _format_errors(exc: ValidationError, raw: Any) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # A shorthand trigger (`strategy_drawdown: 0.05`) reports at its own key, not `.limit`.
        if loc and loc[-1] == "limit" and not isinstance(_raw_at(raw, loc[:-1]), dict):
            loc = loc[:-1]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; unknown keys are not ignored)"
            near = _known_keys_near(loc)
            if near:
                message += f"; did you mean {near}?"
        key = ".".join(str(p) for p in loc) or "(top level)"
        out.append(f"{key}: {message}")
    return out


def _known_keys_near(loc: tuple[int | str, ...]) -> str | None:
    """The closest valid key at the same place, for a misspelt one."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = None if field is None else field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return close[0] if close else None


def config_warnings(config: Config) -> list[str]:
    """Valid, but probably not what the operator wants."""
    warnings = []
    if not config.users:
        warnings.append(
            "no users: nobody can halt by hand, and no halt can be lifted; "
            "add `users: {name: role}`"
        )
    elif not any(r >= Role.RISK_MANAGER for r in config.users.values()):
        warnings.append("no risk_manager or admin: a portfolio halt can never be lifted")
    elif sum(r >= Role.RISK_MANAGER for r in config.users.values()) < 2:
        warnings.append(
            "fewer than two risk_manager/admin users: an emergency can never be "
            "lifted (it needs two different people)"
        )
    routed = {c for channels in config.alerts.routing.values() for c in channels}
    if not config.alerts.configured & routed:
        warnings.append("alerts: no channel is configured: halts will alert nobody")
    return warnings


def parse_config(
    data: Any, *, base_dir: Path | None = None, env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed YAML document; relative state paths resolve against base_dir."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping of sections"])
    errors: list[str] = []
    expanded = _expand_env(data, "", dict(os.environ) if env is None else env, errors)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        errors.extend(_format_errors(exc, expanded))
        raise ConfigError(errors) from None
    if errors:
        raise ConfigError(errors)
    if base_dir is not None and not config.state.path.is_absolute():
        state = config.state.model_copy(update={"path": base_dir / config.state.path})
        config = config.model_copy(update={"state": state})
    return config


def load_config(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> Config:
    """Read and validate a YAML file. The state DB defaults to ``tradeguard.db`` beside it."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: not valid YAML: {exc}"]) from exc
    return parse_config(data, base_dir=file.resolve().parent, env=env)
