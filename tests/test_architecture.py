"""The package layout: layers point down only, no import cycles, no bag folders.

The import graph is read with :mod:`ast` from the source (every ``import`` and ``from ...
import`` anywhere in a module, function-local ones included), so these rules hold whatever
is imported lazily. ``docs/architecture.md`` draws the same rooms and arrows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "aprior"

#: room -> the rooms it may import (besides itself). The order is the layering, bottom up.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "grids": {"core"},
    "a_priori": {"core", "grids"},
    "inputs": {"core", "grids", "a_priori"},
    "retrieval": {"core", "grids", "a_priori", "inputs"},
    "compare": {"core", "grids", "a_priori", "inputs", "retrieval"},
    "models": {"core", "grids", "a_priori", "inputs", "retrieval"},
    "synth": {"core", "grids", "a_priori", "inputs", "retrieval"},
    "app": {"core", "grids", "a_priori", "inputs", "retrieval", "compare", "models", "synth"},
}
CORE = {"aprior", "aprior.errors", "aprior._io", "aprior.config", "aprior.plugins",
        "aprior.constants", "aprior.units", "aprior.resources", "aprior.interrupts",
        "aprior.__main__"}
APP = {"aprior.demo", "aprior.__main__"}


def module_name(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str) -> str:
    if module in APP or module.startswith("aprior.cli"):
        return "app"
    if module in CORE:
        return "core"
    return module.split(".")[1]


def all_modules(root: Path = PKG) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The aprior modules that ``path`` imports (a ``from pkg import name`` of a submodule
    counts as an import of the submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                anchor = parts if is_pkg else parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name.startswith("aprior") and name != module:
                out.add(name)
    return out


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    mods = all_modules(root)
    known = set(mods)
    return {m: imports_of(p, m, known) for m, p in mods.items()}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        here = room_of(mod)
        for dep in deps:
            there = room_of(dep)
            if there != here and there not in ALLOWED[here]:
                bad.append(f"{mod} ({here}) imports {dep} ({there})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            # a package's __init__ importing its own submodules is not a cycle of ideas
            if w.startswith(v + "."):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


GRAPH = import_graph()


def test_every_module_is_in_a_room():
    rooms = {room_of(m) for m in GRAPH}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)


def test_layers_point_down_only():
    assert layer_violations(GRAPH) == []


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_no_folder_is_a_bag():
    for folder in sorted({p.parent for p in PKG.rglob("*.py")}):
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 16, f"{folder} holds {len(modules)} modules"


def test_no_module_over_500_lines():
    big = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert big == {}


# -- the checker itself must catch what it claims to catch -------------------------------
def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "aprior"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return root


@pytest.mark.parametrize(("files", "expected"), [
    ({"grids/grid.py": "from aprior.retrieval import amf\n", "retrieval/amf.py": ""},
     "aprior.grids.grid (grids) imports aprior.retrieval.amf (retrieval)"),
    ({"models/x.py": "def f():\n    from aprior.synth.world import g\n", "synth/world.py": ""},
     "aprior.models.x (models) imports aprior.synth.world (synth)"),
    ({"retrieval/r.py": "from aprior.cli import main\n", "cli/main.py": ""},
     "aprior.retrieval.r (retrieval) imports aprior.cli.main (app)"),
])
def test_the_checker_catches_an_upward_import(tmp_path, files, expected):
    root = _fake_package(tmp_path, files)
    graph = {m: imports_of(p, m, set(all_modules(root))) for m, p in all_modules(root).items()}
    assert expected in layer_violations(graph)


def test_the_checker_catches_a_cycle(tmp_path):
    root = _fake_package(tmp_path, {"grids/a.py": "from aprior.grids import b\n",
                                    "grids/b.py": "def f():\n    from aprior.grids.a import x\n"})
    graph = {m: imports_of(p, m, set(all_modules(root))) for m, p in all_modules(root).items()}
    assert cycles(graph) == [["aprior.grids.a", "aprior.grids.b"]]
