"""tradeguard: a kill switch and circuit breakers for algorithmic trading.

The public surface is small on purpose; everything here is covered by the README.
"""

import logging

from tradeguard.config import Config, load_config
from tradeguard.errors import (
    ApprovalRefused,
    ConfigError,
    GenomeBlacklisted,
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
    ResumeRefused,
    StoreUnavailable,
    TradeguardError,
    UnknownRequest,
    UnknownStrategy,
)
from tradeguard.guard import Guard, TickResult
from tradeguard.model import (
    Action,
    Breach,
    Decision,
    Order,
    PortfolioState,
    Role,
    Side,
    StateChange,
    StrategyState,
)
from tradeguard.singleton import get_kill_switch

# A library logs; the application decides where logs go (alerts are the operational channel).
logging.getLogger("tradeguard").addHandler(logging.NullHandler())

__all__ = [
    "Action",
    "ApprovalRefused",
    "Breach",
    "Config",
    "ConfigError",
    "Decision",
    "GenomeBlacklisted",
    "Guard",
    "InvalidInput",
    "InvalidTransition",
    "Order",
    "PermissionDenied",
    "PortfolioState",
    "ResumeRefused",
    "Role",
    "Side",
    "StateChange",
    "StoreUnavailable",
    "StrategyState",
    "TickResult",
    "TradeguardError",
    "UnknownRequest",
    "UnknownStrategy",
    "get_kill_switch",
    "load_config",
]
