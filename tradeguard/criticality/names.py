"""The indicators' names, in the seed's order: config keys (weights) and status rows."""

INDICATOR_NAMES = (
    "correlation_convergence",
    "contagion",
    "hurst",
    "two_scale_volatility",
    "permutation_entropy",
    "transfer_entropy",
    "vpin",
    "liquidity",
    "spread_widening",
    "amihud",
    "bocpd",
    "cusum",
    "absorption_ratio",
    "turbulence",
    "critical_slowing_down",
)
