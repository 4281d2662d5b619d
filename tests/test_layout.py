"""The package's folders are its data path: no import cycles, and no layer imports one above it.

``LAYERS`` is the one statement of the allowed direction. Each key is a part
of the package (the longest matching prefix of a module's dotted name wins),
and its value names the parts it may import besides itself. Every import is
counted, also those inside functions (a lazy import is still a dependency);
only ``if TYPE_CHECKING:`` blocks are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "verifier"

# part -> the parts it may import (besides itself). Lower layers first.
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "exact.mirror": {"errors"},                                   # the vocabulary: torch name -> definition
    "cases": {"errors", "exact.mirror"},                          # files and Python -> Case
    "exact": {"errors", "cases", "exact.mirror"},                 # Case -> exact Jacobian and Jᵀv
    "fd": {"errors", "cases", "exact.mirror"},                    # Case -> finite differences
    "torch_side": {"errors", "cases", "exact", "exact.mirror", "verdict"},  # Case -> autograd (and its checks)
    "verdict": {"errors", "cases", "exact", "exact.mirror"},      # the three sides -> pass/fail and why
    "run": {"errors", "cases", "exact", "exact.mirror", "fd", "torch_side", "verdict"},
    "report": {"errors", "cases", "exact", "exact.mirror", "fd", "torch_side", "verdict", "run"},
    "audit": {"errors", "cases", "exact", "exact.mirror", "fd", "torch_side", "verdict", "run", "report"},
}
FACES = {"__init__", "__main__", "api", "cli", "pytest_plugin"}   # may import anything
TOP_LEVEL_LIMIT = 8
LINE_LIMIT = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _part(module: str) -> str:
    if module in FACES:
        return module
    for part in sorted(LAYERS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    raise AssertionError(f"verifier.{module} belongs to no layer: add it to LAYERS or FACES in {__file__}")


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The verifier modules ``module`` imports (dotted, without the ``verifier.`` prefix)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "__init__":
        package = []
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("verifier.")]
            found |= {n.removeprefix("verifier.") for n in names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "verifier" or node.module.startswith("verifier.")):
                target = node.module.removeprefix("verifier").lstrip(".")
            else:
                continue
            for alias in node.names:          # `from . import x` imports the module x
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in known else target)
    return {m for m in found if m in known and m != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, set(modules)) for m, p in modules.items()}


def test_every_module_belongs_to_a_layer():
    for module in _modules():
        if module != "__init__":
            _part(module)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep.startswith(node + "."):
                continue          # a package importing its own submodules is how packages work
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(f"verifier.{m}" for m in cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_lower_layers_never_import_higher_ones():
    bad = []
    for module, deps in _graph().items():
        if module == "__init__" or _part(module) in FACES:
            continue
        mine = _part(module)
        for dep in deps:
            theirs = _part(dep) if dep != "__init__" else "__init__"
            if theirs != mine and theirs not in LAYERS[mine]:
                bad.append(f"verifier.{module} ({mine}) imports verifier.{dep} ({theirs})")
    assert not bad, "imports against the data path:\n" + "\n".join(sorted(bad))


def test_the_rule_itself_is_a_direction():
    """LAYERS is acyclic, so 'lower' means something; the issue's two rules are in it."""
    for part, allowed in LAYERS.items():
        for other in allowed:
            assert part not in LAYERS[other], f"{part} and {other} may import each other"
    assert not LAYERS["exact"] & {"run", "report", "verdict", "torch_side"}
    assert not LAYERS["cases"] & {"run", "report"}


def test_the_top_level_is_small_and_modules_are_short():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= TOP_LEVEL_LIMIT, f"verifier/ holds {len(top)} modules: {sorted(top)}"
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > LINE_LIMIT}
    assert not long, f"modules over {LINE_LIMIT} lines: {long}"
