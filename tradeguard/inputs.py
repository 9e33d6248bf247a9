"""Validation of every number and name that enters the guard.

``NaN > limit`` is False in Python, so an unvalidated NaN would silently pass every check.
Each function here returns a clean value or raises ``ValueError`` with a message that names
the field; the guard turns that into ``InvalidInput`` and halts the scope (fail closed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from numbers import Integral, Real
from typing import Any, TypeGuard

# Larger than any real price, quantity or amount of money; beyond it sums can overflow to inf.
MAX_MAGNITUDE = 1e15

IDENTIFIER = re.compile(r"[A-Za-z0-9_.:/@-]{1,128}\Z")  # \Z: "$" would let "id\n" through


def number(name: str, value: object) -> float:
    # float and int first: the ABC check costs more than the rest of the function
    if type(value) is float or type(value) is int:
        result = float(value)
    elif isinstance(value, bool) or not isinstance(value, Real | Decimal):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    else:
        result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(result) > MAX_MAGNITUDE:
        raise ValueError(f"{name} must be within +/-{MAX_MAGNITUDE:g}, got {value!r}")
    return result


def non_negative(name: str, value: object) -> float:
    result = number(name, value)
    if result < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return result


def positive(name: str, value: object) -> float:
    result = number(name, value)
    if result <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return result


def unit_interval(name: str, value: object) -> float:
    result = number(name, value)
    if not 0 <= result <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return result


def correlation(name: str, value: object) -> float:
    result = number(name, value)
    if not -1 <= result <= 1:
        raise ValueError(f"{name} must be in [-1, 1], got {value!r}")
    return result


def count(name: str, value: object) -> int:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, Integral)):
        raise ValueError(f"{name} must be a whole number, got {type(value).__name__} {value!r}")
    result = int(value)
    if result < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return result


_KNOWN_IDS: set[str] = set()  # ids already seen to be valid: the regex runs once per id


def is_identifier(value: object) -> TypeGuard[str]:
    if type(value) is str and value in _KNOWN_IDS:
        return True
    if isinstance(value, str) and IDENTIFIER.match(value):
        # only plain strings are remembered: a str subclass can define its own __eq__ and
        # __hash__, and once in the set would vouch for whatever is looked up next
        if type(value) is str and len(_KNOWN_IDS) < 100_000:
            _KNOWN_IDS.add(value)
        return True
    return False


def identifier(name: str, value: object) -> str:
    if not is_identifier(value):
        raise ValueError(
            f"{name} must be 1-128 characters of letters, digits and _.:/@-, got {value!r}"
        )
    # a plain copy of a str subclass: what the guard stores and compares is only the text
    return value if type(value) is str else str.__str__(value)


def plain_value(value: Any) -> Any:
    """The plain float, int or str a subclass holds (its own operators may lie); bool and
    every other type as given, for the caller's validation to refuse."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, str):
        return str.__str__(value)
    return value


Validator = Callable[[str, object], float | int]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def text(value: object, limit: int = 500) -> str:
    """Free text from people (reasons): never refused, always made storable and printable:
    valid UTF-8, no control characters, at most ``limit`` characters."""
    cleaned = str(value).encode("utf-8", "replace").decode("utf-8")
    cleaned = _CONTROL.sub(" ", cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."
