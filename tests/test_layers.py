"""The layers import downwards only (``../shared/DESIGN.md``, the README's design table): a module
never imports, even inside a function, from a layer above its own, so the layers have no loop."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kpinb"

# lowest first; a layer may import its own and the ones before it. The data checks compute metrics
# (engine) and the analytics reuse the plan checks, so checks sit between the two.
ORDER = ("_foundation", "definitions", "data", "engine", "checks", "analytics", "scorecard", "outputs", "views",
         "widgets", "runs")  # fmt: skip
FOUNDATION = {"errors", "_io", "_numbers", "_shared", "_yaml", "__init__"}


def _layer(parts: tuple[str, ...]) -> str:
    """The layer of ``kpinb.<parts...>`` (a module path inside the package)."""
    head = parts[0].removesuffix(".py")
    if head in FOUNDATION:
        return "_foundation"
    return "runs" if head == "cli" else head


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every ``kpinb`` import outside an ``if TYPE_CHECKING:`` block."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kpinb":
            if node.module == "kpinb":  # from kpinb import errors, report...: each name is a module or facade
                found.extend((node.lineno, f"kpinb.{a.name}") for a in node.names)
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "kpinb")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_every_import_points_down_the_layers():
    wrong = []
    for file in sorted(PACKAGE.rglob("*.py")):
        own = _layer(file.relative_to(PACKAGE).parts)
        assert own in ORDER, f"{file}: a module outside the layer table; add its folder to ORDER"
        for line, module in _runtime_imports(ast.parse(file.read_text(encoding="utf-8"))):
            parts = tuple(module.split(".")[1:])
            if not parts or (own == "_foundation" and file.name == "__init__.py" and file.parent == PACKAGE):
                continue  # the package facade re-exports lazily from every layer
            target = _layer(parts)
            if target in ORDER and ORDER.index(target) > ORDER.index(own):
                wrong.append(f"{file.relative_to(PACKAGE.parent)}:{line} ({own}) imports {module} ({target})")
    assert not wrong, "imports that point up the layers:\n" + "\n".join(wrong)
