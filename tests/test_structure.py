"""The package's shape: no module imports itself through others (lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import imdb_sentiment

PACKAGE_DIR = Path(imdb_sentiment.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
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


def test_pyproject_uses_an_spdx_license_string() -> None:
    """``license = { text = ... }`` makes every install print setuptools deprecation warnings."""
    import tomllib

    text = (PACKAGE_DIR.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    project = tomllib.loads(text)["project"]
    assert isinstance(project["license"], str)
