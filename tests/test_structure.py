"""The package's shape: no module imports itself through others (lazy imports included), and none
reaches into another module's private (``_name``) parts."""

from __future__ import annotations

import ast
from pathlib import Path

import imdb_sentiment

PACKAGE_DIR = Path(imdb_sentiment.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _import_target(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` statement reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _import_graph() -> dict[str, set[str]]:
    modules = _package_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = _package_of(name, path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = _import_target(node, package)
                for alias in node.names:  # `from . import training` names a module
                    candidate = f"{target}.{alias.name}"
                    graph[name].add(candidate if candidate in modules else target)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
    return {name: {t for t in targets if t in modules and t != name} for name, targets in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "active"
        for target in sorted(graph[node]):
            if state.get(target) == "active":
                found.append([*trail[trail.index(target):], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_graph_sees_lazy_imports() -> None:
    graph = _import_graph()
    assert "imdb_sentiment.training" in graph["imdb_sentiment.cli.train_cmds"]  # imported inside a function
    assert "imdb_sentiment.errors" in graph["imdb_sentiment.config"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles() -> None:
    # The package __init__ is a leaf (version only), so `from . import __version__` is not a cycle.
    graph = _import_graph()
    graph["imdb_sentiment"] -= {name for name in graph if name.startswith("imdb_sentiment.")}
    assert _cycles(graph) == []


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_uses(name: str, package: str, source: str, modules: set[str]) -> list[str]:
    """Where module ``name`` uses another package module's private name: ``from .x import _y``, or
    ``x._y`` on a module it imported (``from . import x``, ``import pkg.x as x``, ``import pkg.x``)."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # a local name -> the package module (or package) it stands for
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _import_target(node, package)
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:  # `from . import x` names a module
                    bound[alias.asname or alias.name] = f"{target}.{alias.name}"
                elif target in modules and target != name and _is_private(alias.name):
                    found.append((node.lineno, f"imports {alias.name} from {target}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in modules:
                    bound[alias.asname] = alias.name
                elif alias.name.split(".")[0] in {module.split(".")[0] for module in modules}:
                    bound[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def dotted(node: ast.expr) -> str | None:
        """The module an expression such as ``pkg.x`` or ``x`` names, if it names one."""
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = dotted(node.value)
            return f"{parent}.{node.attr}" if parent and f"{parent}.{node.attr}" in modules else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = dotted(node.value)
            if owner is not None and owner != name:
                found.append((node.lineno, f"uses {owner}.{node.attr}"))
    return [f"{name}:{line} {what}" for line, what in sorted(found)]


def test_private_finder_finds_both_forms() -> None:
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"}
    source = ("from .a import _helper, public\nfrom . import a\nfrom .sub import c\nimport pkg.a as alias\n"
              "import pkg.sub.c\na._one()\nc._two\nalias._three\npkg.sub.c._four\nfrom . import __version__\n"
              "a.public(_local=1)\nself._own\n")
    found = _private_uses("pkg.b", "pkg", source, modules)
    assert [line.split(" ", 1)[1] for line in found] == [
        "imports _helper from pkg.a", "uses pkg.a._one", "uses pkg.sub.c._two", "uses pkg.a._three",
        "uses pkg.sub.c._four"]
    nested = _private_uses("pkg.sub.c", "pkg.sub", "from ..a import _helper\nfrom .. import a\na._x\n",
                           modules)
    assert nested == ["pkg.sub.c:1 imports _helper from pkg.a", "pkg.sub.c:3 uses pkg.a._x"]


def test_no_module_uses_another_modules_private_names() -> None:
    modules = _package_modules()
    found = [use for name, path in sorted(modules.items())
             for use in _private_uses(name, _package_of(name, path), path.read_text(encoding="utf-8"),
                                      set(modules))]
    assert found == []


def test_pyproject_uses_an_spdx_license_string() -> None:
    """``license = { text = ... }`` makes every install print setuptools deprecation warnings."""
    import tomllib

    text = (PACKAGE_DIR.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    project = tomllib.loads(text)["project"]
    assert isinstance(project["license"], str)
