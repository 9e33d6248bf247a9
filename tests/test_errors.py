"""One exception tree: every exception tradeguard defines derives from TradeguardError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import tradeguard
from tradeguard.errors import TradeguardError


def _defined_exceptions() -> list[type[BaseException]]:
    """Every BaseException subclass defined (not merely imported) in a tradeguard module.

    A module whose optional dependency is missing cannot be checked here; it is skipped
    rather than failing, and the import of the installed ones still walks everything else."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(tradeguard.__path__, prefix="tradeguard."):
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] == "tradeguard":
                raise
            continue
        found += [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj)
            and issubclass(obj, BaseException)
            and obj.__module__ == module.__name__
        ]
    return found


class TestExceptionTree:
    def test_every_defined_exception_when_walked_then_derives_from_tradeguard_error(
        self,
    ) -> None:
        """A caller that catches TradeguardError catches everything tradeguard raises on
        purpose: no class may slip out of the tree (a plain Exception subclass would)."""
        defined = _defined_exceptions()
        assert len(defined) >= 15  # the walk reached the subpackages, not just errors.py
        outside = [
            f"{c.__module__}.{c.__qualname__}"
            for c in defined
            if not issubclass(c, TradeguardError)
        ]
        assert outside == []

    def test_tree_docstring_when_read_then_draws_every_error(self) -> None:
        """The tree drawn in errors.py is the map operators read: each class is on it."""
        from tradeguard import errors

        assert errors.__doc__ is not None
        missing = [
            c.__name__
            for c in _defined_exceptions()
            if not re.search(rf"\b{c.__name__}\b", errors.__doc__)
        ]
        assert missing == []
