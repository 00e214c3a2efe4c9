"""The structure of ``koderz/``, read statically with ``ast``: no import cycles, no hidden state.

Imports: every ``import`` and ``from ... import`` in every module counts, wherever it stands (a
function-local or ``TYPE_CHECKING`` import is a dependency too). Two levels are checked:
top-level packages and modules (``koderz.sandbox`` -> ``koderz.datasets``) and modules
(``koderz.tracking.logger`` -> ``koderz.tracking.mlflow_tracker``).

State: a module-level list, dict or set that the module mutates (a method such as ``append`` or
``update``, an item assignment or deletion) or a name it rebinds with ``global`` is process state
hidden in a module. (Attributes of module-level objects are not seen.)
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import koderz

PACKAGE = Path(koderz.__file__).resolve().parent

# a cycle another change removes: listed here so every other cycle fails now
KNOWN_MODULE_CYCLES: dict[frozenset[str], str] = {}

# module-level state that stays on purpose, each with its reason
ALLOWED_STATE = {
    ("koderz.sandbox.child", "_SOURCES"): "the child is one short-lived process run as a script",
    ("koderz.sandbox.judge", "_REPLAYS"): "compiled checks cached in the judge server process",
    ("koderz.sandbox.judge_server", "_LIBC"): "libc loaded once per judge server process",
    ("koderz.sandbox.sandbox", "_CHOSEN"): "the containment a machine allows, probed once per process",
    ("koderz.bench.bcb_harness", "_STATE"): "the test outcomes of one attempt, in its sandboxed child",
    ("koderz.bench.lcb_harness", "_STATE"): "the test outcomes of one attempt, in its sandboxed child",
}
# module-level state other changes remove (issue 24); drop an entry once its state is gone
KNOWN_STATE: dict[tuple[str, str], str] = {}
MUTATORS = {"append", "extend", "insert", "pop", "popitem", "clear", "update", "add", "discard", "remove", "setdefault"}
CONTAINERS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
CONTAINER_CALLS = {"list", "dict", "set", "defaultdict", "deque", "OrderedDict", "Counter"}

Graph = dict[str, set[str]]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("koderz", *path.relative_to(PACKAGE).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The koderz modules an import statement names (``from p import m`` names module ``p.m``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
    else:
        return []
    found = []
    for name in names:
        while name and name not in modules:  # a name inside a module: the module
            name = name.rpartition(".")[0]
        if name.split(".")[0] == "koderz":
            found.append(name)
    return found


def module_graph() -> Graph:
    modules = _modules()
    graph: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            graph[name].update(m for m in _imported(node, modules) if m != name)
    return graph


def package_graph(modules: Graph) -> Graph:
    """``koderz.X`` -> ``koderz.Y`` when a module of X imports one of Y (X != Y)."""

    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph: Graph = defaultdict(set)
    for name, targets in modules.items():
        graph[top(name)].update(top(t) for t in targets if top(t) != top(name))
    return dict(graph)


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one node, as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_through(graph, component) for component in components]


def _path_through(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle from the component's first node back to itself, inside the component."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph.get(node, set()) & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle in component {component}")


def _shown(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_graph_sees_the_imports_it_must() -> None:
    """The walk resolves ``import a.b``, ``from a import module`` and ``from a.b import name``."""
    modules = module_graph()
    assert "koderz.datasets.problem" in modules["koderz.sandbox.judge"]  # from koderz.datasets.problem import Problem
    assert "koderz.report" in modules["koderz.runner"]  # from koderz import report
    assert "koderz.answers.wire" in modules["koderz.sandbox.child"]  # a TYPE_CHECKING import counts


def test_cycles_are_found_and_listed() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_cycle_between_top_level_packages() -> None:
    found = cycles(package_graph(module_graph()))
    assert not found, "import cycles between koderz's packages:\n" + _shown(found)


def test_no_cycle_between_modules() -> None:
    found = [c for c in cycles(module_graph()) if frozenset(c) not in KNOWN_MODULE_CYCLES]
    assert not found, "import cycles between koderz's modules:\n" + _shown(found)


@pytest.mark.parametrize(
    "cycle",
    [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=r)) for c, r in KNOWN_MODULE_CYCLES.items()],
)
def test_known_cycle_is_gone(cycle: frozenset[str]) -> None:
    """Strict xfail: passes (and so fails the suite) once the cycle is removed; then drop it from the list."""
    assert cycle not in {frozenset(c) for c in cycles(module_graph())}


def test_answers_is_a_leaf() -> None:
    """``koderz.answers`` imports no other koderz module (its wire.py runs inside the stdlib-only child)."""
    graph = module_graph()
    outside = {m: sorted(t for t in graph[m] if not t.startswith("koderz.answers")) for m in graph}
    assert not {m: t for m, t in outside.items() if m.startswith("koderz.answers") and t}


def _containers(tree: ast.Module) -> set[str]:
    """Names the module binds, at its top level, to a new list, dict or set."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        call = isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in CONTAINER_CALLS
        if isinstance(value, CONTAINERS) or call:
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def module_state(source: str) -> set[str]:
    """Module-level containers the module mutates, and names it rebinds with ``global``."""
    tree = ast.parse(source)
    containers = _containers(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.update(node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            if isinstance(node.func.value, ast.Name) and node.func.value.id in containers:
                found.add(node.func.value.id)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            found.update(
                t.value.id
                for t in targets
                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id in containers
            )
    return found


def koderz_state() -> set[tuple[str, str]]:
    return {(module, name) for module, path in _modules().items() for name in module_state(path.read_text())}


def test_the_state_scan_sees_mutation_and_global() -> None:
    source = """
A = []
B: dict[str, int] = {}
C = set()
D = ()
E = []
F = None
G = {}
def f():
    global F
    A.append(1)
    B["k"] = 2
    C.add(3)
    F = 4
    print(E, G.get("k"))
"""
    assert module_state(source) == {"A", "B", "C", "F"}


def test_no_module_level_mutable_state() -> None:
    found = koderz_state() - ALLOWED_STATE.keys() - KNOWN_STATE.keys()
    assert not found, f"module-level mutable state (pass it in, or keep it on an object): {sorted(found)}"


def test_listed_state_is_still_there() -> None:
    """A stale entry in ALLOWED_STATE or KNOWN_STATE fails here: delete it from the list."""
    gone = (ALLOWED_STATE.keys() | KNOWN_STATE.keys()) - koderz_state()
    assert not gone, f"no longer module-level state, remove from the lists: {sorted(gone)}"
