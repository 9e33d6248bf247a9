"""The criticality package sits below the guard: the guard imports it, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import tradeguard.criticality

PACKAGE = Path(tradeguard.criticality.__file__).parent


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at any depth (inside functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


class TestLayers:
    def test_criticality_when_imports_read_then_none_reaches_up_to_the_guard(self) -> None:
        """An import of the guard from below makes a cycle that only lazy imports hide; the
        replay gets its guard from the caller instead."""
        upward = {
            f"{path.name}: {module}"
            for path in sorted(PACKAGE.glob("*.py"))
            for module in _imported(path)
            if module == "tradeguard.guard" or module.startswith("tradeguard.guard.")
        }
        assert upward == set()
