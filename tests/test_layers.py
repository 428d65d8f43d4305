"""The package's shape: no import cycle anywhere, function-level and TYPE_CHECKING imports included.

The floors' order itself is import-linter's job (pyproject's [tool.importlinter], `lint-imports` in the README's
test command); layers cannot see a cycle between two modules of one floor, so this test looks for any cycle."""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. every import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph.find_modules_directly_imported_by(m) & modules:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return found


def test_no_import_cycles_anywhere_in_the_package() -> None:
    graph = grimp.build_graph("reasonany_gui", cache_dir=None)
    # a package's __init__ is not a module of its own for this purpose: `from . import x` in a sibling imports it
    modules = {m for m in graph.modules if not graph.find_children(m)}
    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: two modules importing each other (as live.py and pipeline.py once did) are a cycle."""
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph, {"pkg.a", "pkg.b", "pkg.c"}) == [["pkg.a", "pkg.b"]]


def test_no_source_file_over_500_lines_and_a_thin_main_window() -> None:
    """Issue 20: a module past 500 lines mixes ideas; the main window only wires screens, menus and jobs."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "reasonany_gui"
    lines = {
        f.relative_to(package).as_posix(): len(f.read_text(encoding="utf-8").splitlines())
        for f in package.rglob("*.py")
    }
    assert {f: n for f, n in lines.items() if n > 500} == {}
    assert lines["ui/main_window.py"] <= 300
