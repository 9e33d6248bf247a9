"""The 15 systemic-risk indicators, one module per family."""

from __future__ import annotations

from tradeguard.config import CriticalityConfig
from tradeguard.criticality.indicators.base import Indicator
from tradeguard.criticality.indicators.changepoint import BOCPD, Cusum
from tradeguard.criticality.indicators.contagion import Contagion
from tradeguard.criticality.indicators.cross_section import (
    AbsorptionRatio,
    CorrelationConvergence,
    Turbulence,
)
from tradeguard.criticality.indicators.information import PermutationEntropy, TransferEntropy
from tradeguard.criticality.indicators.liquidity import (
    Amihud,
    LiquidityScore,
    SpreadWidening,
    Vpin,
)
from tradeguard.criticality.indicators.memory import CriticalSlowingDown, HurstDfa
from tradeguard.criticality.indicators.volatility import TwoScaleVolatility

__all__ = ["Indicator", "build"]


def build(config: CriticalityConfig) -> list[Indicator]:
    """One instance of each indicator, in the seed's order, configured."""
    return [
        CorrelationConvergence(),
        Contagion(config.contagion_horizon),
        HurstDfa(),
        TwoScaleVolatility(config.tsrv_scale, config.long_window),
        PermutationEntropy(config.entropy_order, config.long_window),
        TransferEntropy(),
        Vpin(config.vpin_buckets),
        LiquidityScore(),
        SpreadWidening(),
        Amihud(),
        BOCPD(config.bocpd_hazard, config.bocpd_max_run, config.recent),
        Cusum(config.cusum_k, config.cusum_h, config.recent),
        AbsorptionRatio(config.absorption_fraction),
        Turbulence(config.recent),
        CriticalSlowingDown(config.long_window),
    ]
