"""The field types and the base model every config section is built from.

Kept apart from the sections so that the trigger models and the other sections share one
definition of "a fraction", "a positive number" and "an immutable section with no unknown keys".
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from tradeguard.model import Action


def fraction(value: float) -> float:
    if not 0 < value <= 1:
        hint = f"; write {value / 100:g} for {value:g}%" if 1 < value <= 100 else ""
        raise ValueError(f"must be in (0, 1]{hint}")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError("must be > 0")
    return value


def non_negative(value: float) -> float:
    if not value >= 0:
        raise ValueError("must be >= 0")
    return value


def http_url(value: str) -> str:
    """Alerts and links travel over HTTP(S): ``ftp://x`` or a bare host is a typo to catch when
    the file loads, not an alert lost when it matters. The value is never echoed (it may hold a
    token)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _secret_http_url(value: SecretStr) -> SecretStr:
    http_url(value.get_secret_value())
    return value


Fraction = Annotated[float, AfterValidator(fraction)]
HttpUrl = Annotated[str, AfterValidator(http_url)]
SecretHttpUrl = Annotated[SecretStr, Field(strict=False), AfterValidator(_secret_http_url)]
Positive = Annotated[float, AfterValidator(_positive)]
PositiveInt = Annotated[int, AfterValidator(_positive)]
LaxAction = Annotated[Action, Field(strict=False)]

PORTFOLIO_ACTIONS = (Action.SOFT_HALT, Action.HARD_HALT, Action.EMERGENCY)


class Frozen(BaseModel):
    """Base for every config section: immutable, keyword-only, no unknown keys, no NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
