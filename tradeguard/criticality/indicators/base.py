"""What every criticality indicator shares: a name, a direction, and ``compute(window)``.

An indicator returns its raw value (what a quant would quote: a correlation, a Hurst exponent,
a spread), or None when the window lacks what it needs (too few assets, no volume). How the raw
value becomes a stress contribution in [0, 1] is the score's business (``score.py``): bounded
probabilities pass as they are (``stress``), turbulence through the chi-square CDF, the rest by
their percentile in their own trailing history, in the direction that means stress.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from tradeguard.criticality.window import Window


class Indicator(ABC):
    name: ClassVar[str]
    family: ClassVar[str]
    label: ClassVar[str]  # one line for status pages: what it detects
    high_is_stress: ClassVar[bool] = True
    probability: ClassVar[bool] = False  # its stress is a probability: counted as it is

    @abstractmethod
    def compute(self, window: Window) -> float | None:
        """The raw value for this cycle; None when it cannot be measured on this window."""

    def stress(self, raw: float, window: Window) -> float | None:
        """A stress level in [0, 1] that needs no history (a probability, a CDF), or None:
        the score then ranks the raw value in the indicator's own trailing history."""
        return None
