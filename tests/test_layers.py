"""The package's shape: no import cycles (type-only and function-level imports included) and
no module past ~500 lines. The layers themselves are import-linter's contract in `make lint`."""

from __future__ import annotations

from pathlib import Path

import grimp

import tradeguard

PACKAGE = Path(tradeguard.__file__).parent
MAX_LINES = 500


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


class TestShape:
    def test_modules_when_imports_followed_then_no_cycle(self) -> None:
        """No two modules import each other, directly or through others, in any form."""
        graph = grimp.build_graph("tradeguard", exclude_type_checking_imports=False)
        assert _cycles(graph) == []

    def test_cycle_finder_when_two_modules_import_each_other_then_reports_them(self) -> None:
        """The cycle check can fail: a two-module cycle is found."""
        graph = grimp.ImportGraph()
        for name in ("p", "p.a", "p.b", "p.c"):
            graph.add_module(name)
        graph.add_import(importer="p.a", imported="p.b")
        graph.add_import(importer="p.b", imported="p.a")
        graph.add_import(importer="p.c", imported="p.a")
        assert _cycles(graph) == [["p.a", "p.b"]]

    def test_modules_when_counted_then_none_over_the_limit(self) -> None:
        """Small modules with one job: none past MAX_LINES lines."""
        long = {
            str(path.relative_to(PACKAGE)): n
            for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES
        }
        assert long == {}
