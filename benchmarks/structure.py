"""The package's import structure, measured from its source: modules, the imports between them,
levels, imports that point back up, and import circles.

An edge is one project module importing another, anywhere in the file (a function-level
import couples the two as much as a top-level one). Modules in one circle (a strongly
connected component) share a level; a module's level is one more than the highest level it
imports, so level 0 imports nothing of the project. An edge "back up" is one inside a circle:
it is what would have to go for the levels to order every import.

    python benchmarks/structure.py [--list]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sweeplab.code_identity import PACKAGE, SourceTree  # noqa: E402


def import_graph(tree: SourceTree) -> dict[str, set[str]]:
    """module -> the project modules it imports; a package's ``__init__`` counts as a module."""
    modules = tree.package_modules(PACKAGE)
    return {m: {i for i in tree.parsed(m)[1] if i in modules and i != m} for m in modules}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan), each as a set; singletons included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            found.append(component)

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def measure(graph: dict[str, set[str]]) -> dict:
    components = circles(graph)
    of = {m: i for i, c in enumerate(components) for m in c}
    level: dict[int, int] = {}
    for i, component in enumerate(components):  # Tarjan yields components dependencies-first
        below = {of[w] for v in component for w in graph[v]} - {i}
        level[i] = 1 + max((level[j] for j in below), default=-1)
    edges = sum(len(v) for v in graph.values())
    back = [(v, w) for v in graph for w in graph[v] if of[v] == of[w]]
    return {"modules": len(graph), "edges": edges, "edges_per_module": edges / len(graph),
            "levels": 1 + max(level.values()), "edges_back_up": back,
            "circles": [sorted(c) for c in components if len(c) > 1],
            "level": {m: level[of[m]] for m in graph}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="every module with its level and imports")
    args = parser.parse_args()
    graph = import_graph(SourceTree())
    result = measure(graph)
    print(f"modules {result['modules']}, import edges {result['edges']} ({result['edges_per_module']:.2f} per module), "  # noqa: T201
          f"levels {result['levels']}, edges back up {len(result['edges_back_up'])}, circles {len(result['circles'])}")
    for circle in result["circles"]:
        print("  circle:", " <-> ".join(circle))  # noqa: T201
    if args.list:
        for module in sorted(graph, key=lambda m: (result["level"][m], m)):
            print(f"{result['level'][module]:3d} {module}: {', '.join(sorted(graph[module]))}")  # noqa: T201


if __name__ == "__main__":
    main()
