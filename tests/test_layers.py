"""The module import graph (built with ast, no server): the library never imports the CLI edge, no import cycle."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

#: The edge: parse arguments, call the library, print. Everything else is the library, which never imports these.
#: Django's management commands are Django's CLI, the same edge as ours.
EDGE = (
    "pgwarden.__main__",
    "pgwarden.cli",
    "pgwarden.commands",
    "pgwarden.render",
    "pgwarden.ui",
    "pgwarden.contrib.django_app.management.commands",
)


@dataclass(frozen=True)
class Import:
    """One import of a module of the tree: where, what, and how it runs."""

    module: str
    target: str
    line: int
    #: "top" (runs on import), "function" (runs when the function is called: still a runtime edge),
    #: "type" (under `if TYPE_CHECKING:`: never runs)
    how: str


def modules(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under src (packages by their __init__.py)."""
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def lazy_names(src: Path, known: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Package -> {name: submodule} for the packages that import their names on first use (pgwarden.lazy:
    `_WHERE` read by `__getattr__`): `from pkg import Name` runs pkg's submodule then, an edge to it."""
    out: dict[str, dict[str, str]] = {}
    for module, path in known.items():
        if path.name != "__init__.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
            if isinstance(target, ast.Name) and target.id == "_WHERE" and isinstance(node, ast.Assign):
                out[module] = {k: f"{module}.{v}" for k, v in ast.literal_eval(node.value).items()}
    return out


def _loaded(target: str, module: str, known: dict[str, Path]) -> Iterator[str]:
    """`target` and the packages above it that importing it runs first (their `__init__.py`), but for
    the importing module's own packages, which are loaded (or loading) before it runs."""
    parts = target.split(".")
    for n in range(1, len(parts) + 1):
        name = ".".join(parts[:n])
        if name in known and not (n < len(parts) and (module == name or module.startswith(name + "."))):
            yield name


def _targets(
    node: ast.Import | ast.ImportFrom,
    module: str,
    is_package: bool,
    known: dict[str, Path],
    lazy: dict[str, dict[str, str]],
) -> Iterator[str]:
    """The modules of the tree an import statement loads: `from pkg import sub` names the submodule, a name
    of a lazy package the submodule that defines it, and every package above them runs its __init__."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield from _loaded(alias.name, module, known)
        return
    base = node.module or ""
    if node.level:
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - (node.level - 1)]
        base = ".".join([*parent, *([node.module] if node.module else [])])
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield from _loaded(sub if sub in known else lazy.get(base, {}).get(alias.name, base), module, known)


class _Walker:
    """Collects one module's imports of the tree, each classified top / function / type."""

    def __init__(self, module: str, is_package: bool, known: dict[str, Path], lazy: dict[str, dict[str, str]]) -> None:
        self.module, self.is_package, self.known, self.lazy = module, is_package, known, lazy
        self.found: list[Import] = []

    def walk(self, node: ast.AST, how: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    self.visit(stmt, "type")
                for stmt in child.orelse:
                    self.visit(stmt, how)
            else:
                self.visit(child, how)

    def visit(self, node: ast.AST, how: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            self.walk(node, "type" if how == "type" else "function")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for target in dict.fromkeys(_targets(node, self.module, self.is_package, self.known, self.lazy)):
                if target in self.known and target != self.module:
                    self.found.append(Import(self.module, target, node.lineno, how))
        else:
            self.walk(node, how)


def imports(src: Path) -> list[Import]:
    """Every import between modules of the tree, classified top / function / type."""
    known = modules(src)
    lazy = lazy_names(src, known)
    found: list[Import] = []
    for module, path in known.items():
        walker = _Walker(module, path.name == "__init__.py", known, lazy)
        walker.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)), "top")
        found += walker.found
    return found


def is_edge(module: str) -> bool:
    return any(module == e or module.startswith(e + ".") for e in EDGE)


def cross_layer(found: Iterable[Import]) -> list[Import]:
    """Imports of the edge from the library, at any place (a TYPE_CHECKING import is a leak too)."""
    return [i for i in found if not is_edge(i.module) and is_edge(i.target)]


class _Tarjan:
    """Strongly connected components of a directed graph (the graph is ~120 modules: recursion is fine)."""

    def __init__(self, graph: dict[str, set[str]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.components: list[list[str]] = []
        for v in sorted(graph):
            if v not in self.index:
                self.connect(v)

    def connect(self, v: str) -> None:
        self.index[v] = self.low[v] = len(self.index)
        self.stack.append(v)
        self.on_stack.add(v)
        for w in sorted(self.graph[v]):
            if w not in self.index:
                self.connect(w)
                self.low[v] = min(self.low[v], self.low[w])
            elif w in self.on_stack:
                self.low[v] = min(self.low[v], self.index[w])
        if self.low[v] == self.index[v]:
            component = []
            while True:
                w = self.stack.pop()
                self.on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            self.components.append(sorted(component))


def cycles(found: Iterable[Import]) -> list[list[str]]:
    """The import cycles among runtime imports (top level and inside functions): strongly connected
    components of more than one module."""
    graph: dict[str, set[str]] = {}
    for i in found:
        if i.how != "type":
            graph.setdefault(i.module, set()).add(i.target)
            graph.setdefault(i.target, set())
    return [c for c in _Tarjan(graph).components if len(c) > 1]


def _describe(component: list[str], found: Iterable[Import]) -> str:
    inside = set(component)
    edges = [f"{i.module}:{i.line} -> {i.target} ({i.how})" for i in found if {i.module, i.target} <= inside]
    return f"{component}: " + "; ".join(sorted(edges))


def test_the_library_never_imports_the_cli_or_the_renderers() -> None:
    leaks = [f"{i.module}:{i.line} imports {i.target} ({i.how})" for i in cross_layer(imports(SRC))]
    assert not leaks, "the library (all but cli, commands, render, ui) imports the edge:\n" + "\n".join(leaks)


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    found = imports(SRC)
    assert not cycles(found), "import cycles:\n" + "\n".join(_describe(c, found) for c in cycles(found))


def test_the_graph_is_the_whole_package() -> None:
    """The checks above see every module and the imports that make them a program (not an empty graph)."""
    known = modules(SRC)
    found = imports(SRC)
    assert {"pgwarden.cli", "pgwarden.plan", "pgwarden.snapshot", "pgwarden.render.plan"} <= set(known)
    assert any(i.module == "pgwarden.cli" and i.how == "top" for i in found)
    assert any(i.how == "function" for i in found)
    assert {i.module for i in found if not is_edge(i.module)} >= {"pgwarden.apply", "pgwarden.check"}


# The checker itself, on a small made-up tree: it would fail on the faults it is meant to find.


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pgwarden" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pgwarden import b\n",
            "b.py": "def f():\n    from pgwarden.a import x\n",
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pgwarden import d\n",
            "d.py": "import pgwarden.c\n",
        },
    )
    found = imports(src)
    assert Import("pgwarden.b", "pgwarden.a", 2, "function") in found
    assert Import("pgwarden.c", "pgwarden.d", 3, "type") in found
    assert cycles(found) == [["pgwarden.a", "pgwarden.b"]]  # c <-> d only under TYPE_CHECKING: no cycle


#: a package that imports its names on first use, as pgwarden.lazy's users do
LAZY_INIT = "_WHERE = {'Model': 'model'}\n\n\ndef __getattr__(name):\n    return attribute(__name__, _WHERE, name)\n"


def test_a_cycle_through_a_package_init_or_a_lazy_name_is_found(tmp_path: Path) -> None:
    """Importing pkg.sub runs pkg/__init__.py first, and a lazy package's name runs the submodule that
    defines it (pgwarden.lazy): both are edges, so these two cycles are found (the one
    policy.labels -> policy/__init__ -> policy.model -> access.labels was only seen this way)."""
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "pol/__init__.py": "from pgwarden.pol.model import Policy\n",
            "pol/model.py": "def f():\n    from pgwarden.acc.labels import check\n",
            "pol/names.py": "",
            "acc/__init__.py": "",
            "acc/labels.py": "from pgwarden.pol.names import LocatedError\n",
            "lz/__init__.py": LAZY_INIT,
            "lz/model.py": "from pgwarden.user import x\n",
            "user.py": "def g():\n    from pgwarden.lz import Model\n",
        },
    )
    found = imports(src)
    assert Import("pgwarden.acc.labels", "pgwarden.pol", 1, "top") in found
    assert Import("pgwarden.user", "pgwarden.lz.model", 2, "function") in found
    assert Import("pgwarden.pol", "pgwarden.pol.model", 1, "top") in found  # its own package: loaded already
    assert not any(i.module == "pgwarden.pol.model" and i.target == "pgwarden.pol" for i in found)
    assert cycles(found) == [
        ["pgwarden.acc.labels", "pgwarden.pol", "pgwarden.pol.model"],
        ["pgwarden.lz.model", "pgwarden.user"],
    ]


@pytest.mark.parametrize("how", ["top", "function", "type"])
def test_a_library_module_importing_a_renderer_is_found(tmp_path: Path, how: str) -> None:
    line = {
        "top": "from .render.plan import plan_text\n",
        "function": "def f():\n    from pgwarden.render import plan\n",
        "type": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pgwarden.cli\n",
    }[how]
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "cli.py": "from pgwarden import check\n",
            "check.py": line,
            "render/__init__.py": "",
            "render/plan.py": "from pgwarden.check import y\n",
        },
    )
    leaks = cross_layer(imports(src))
    assert {(i.module, i.how) for i in leaks} == {("pgwarden.check", how)}


def _module_map() -> str:
    text = (SRC.parent / "docs" / "design.md").read_text(encoding="utf-8")
    start = text.index("| module | what it does |")
    return text[start : text.index("\n## ", start)]


def test_the_module_map_in_design_md_names_every_module_and_only_modules_that_exist() -> None:
    package = SRC / "pgwarden"
    actual = {str(p.relative_to(package)) for p in package.rglob("*.py") if p.name != "__init__.py"}
    named = set(re.findall(r"`([\w/]+\.py)`", _module_map()))
    assert not actual - named, f"docs/design.md's module map does not name {sorted(actual - named)}"
    assert not named - actual, f"docs/design.md's module map names modules that do not exist: {sorted(named - actual)}"


def test_the_module_map_puts_exactly_the_edge_in_its_edge_row() -> None:
    rows = [line for line in _module_map().splitlines() if line.startswith("| **the edge:**")]
    assert len(rows) == 1
    in_row = {"pgwarden." + m.removesuffix(".py").replace("/", ".") for m in re.findall(r"`([\w/]+\.py)`", rows[0])}
    edge = {m for m in modules(SRC) if is_edge(m) and not (SRC / (m.replace(".", "/") + "/__init__.py")).exists()}
    assert in_row == edge


#: The largest a module may grow (docs/design.md): past it, a module holds more than one idea.
MAX_MODULE_LINES = 450


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text("utf-8").splitlines()) for p in sorted(SRC.rglob("*.py"))}
    assert len(sizes) > 100, "the package was not found"
    over = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert over == {}, f"split these modules (at most {MAX_MODULE_LINES} lines): {over}"
