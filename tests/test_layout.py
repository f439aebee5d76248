"""The package's shape (README, "Layout"): layers that import only downward, no import
circle, short functions. Read from the source, every import counted (also those inside
functions)."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "memomentum"

# Lowest first. A module may import its own layer (without a circle) and the layers below.
LAYERS = [
    {"base"},  # the small rules every layer shares: errors, atomic writes, the seed check, counting, the core count
    {"store"},  # images packed once into a store and read back in whole batches
    {"data"},  # the dataset registry and one reader per format (benchmarks, Clothing1M, folders, tables, ...)
    {"noise"},  # the benchmark protocol on the clean labels: the noise generators, the seeded split
    {"testing"},  # small files in each dataset's on-disk format, for the tests and benchmarks
    {"training"},  # the tensor path: engine, sources, models, weights, processes, threads
    {"config"},  # the run's settings, checked against the data's and models' names
    {"method"},  # Me-Momentum's rules, both procedures, verdicts, difficulty
    {"runner"},  # one run and its directory
    {"entrypoints"},  # what a user calls: run(), the estimator, predict, report, grid, table, consensus, review
    {"cli", "__main__", "__init__"},
]
# A function's size is counted in the lines on which its statements start (its docstring not counted), not in
# physical lines: `ruff format` spreads one call over a line per argument. 45 is what 60 physical lines held in
# the code's earlier compact layout (the longest function then had 44).
MAX_FUNCTION_STATEMENT_LINES = 45


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package in the folder ``package``, by dotted name."""
    out = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("memomentum"):
                continue
            for alias in node.names:  # "from . import x" imports the module x when there is one
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("memomentum")}
    return {m for m in found if m in modules and m != name}


def _layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else "__init__"
    if name == "memomentum.__main__":
        top = "__main__"
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def _graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Which package modules each module imports."""
    modules = _modules(package)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import of a module from a higher layer, as ``"importer -> imported"``."""
    return sorted(f"{a} -> {b}" for a, targets in _graph(package).items() for b in targets if _layer(b) > _layer(a))


def _import_circles(package: Path = PACKAGE) -> list[list[str]]:
    graph = _graph(package)
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return circles


def test_every_module_belongs_to_a_layer():
    for name in _graph():
        _layer(name)  # raises StopIteration for a module in no layer


def test_modules_import_only_their_own_layer_and_the_ones_below():
    assert _upward_imports() == []


def test_there_is_no_import_circle():
    assert _import_circles() == []


def _copy_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of the package's modules with ``files`` (paths inside the package) added."""
    copy = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_data", "templates"))
    for name, text in files.items():
        (copy / name).write_text(text)
    return copy


@pytest.mark.parametrize(
    "planted, found",
    [
        ("from ..entrypoints import api\n", "memomentum.base.planted -> memomentum.entrypoints.api"),
        ("def later():\n    import memomentum.cli\n", "memomentum.base.planted -> memomentum.cli"),
        ("from memomentum.config import RunConfig\n", "memomentum.base.planted -> memomentum.config"),
    ],
)
def test_the_layer_check_finds_a_planted_upward_import(tmp_path, planted, found):
    package = _copy_with(tmp_path, {"base/planted.py": planted})
    assert _upward_imports(package) == [found]  # and nothing else: the copy itself is clean


def test_the_circle_check_finds_a_planted_circle(tmp_path):
    package = _copy_with(tmp_path, {"base/ping.py": "from . import pong\n", "base/pong.py": "from .ping import x\n"})
    assert _import_circles(package) == [["memomentum.base.ping", "memomentum.base.pong", "memomentum.base.ping"]]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    """What one module needs of another is public there: no ``from .x import _y`` and no
    ``x._y`` on an imported package module."""
    modules = _modules()
    reached = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        module_aliases = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("memomentum")):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        module_aliases.add(alias.asname or alias.name)
                    elif _private(alias.name):
                        reached.append(f"{name} imports {alias.name} from {target}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
            ):
                reached.append(f"{name} uses {node.value.id}.{node.attr}")
    assert reached == []


def _statement_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    starts = {node.lineno for node in ast.walk(function) if isinstance(node, ast.stmt) and node is not function}
    if ast.get_docstring(function) is not None:
        starts.discard(function.body[0].lineno)
    return len(starts)


def test_no_function_has_more_than_45_statement_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = _statement_lines(node)
                if lines > MAX_FUNCTION_STATEMENT_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_statement_lines_do_not_count_a_call_spread_over_lines_or_the_docstring():
    compact = ast.parse('def f(a):\n    """Doc."""\n    g(a, b=1)\n    return a\n').body[0]
    spread = ast.parse(
        'def f(a):\n    """Doc,\n    two lines."""\n    g(\n        a,\n        b=1,\n    )\n    return a\n'
    ).body[0]
    assert _statement_lines(compact) == _statement_lines(spread) == 2


@pytest.mark.parametrize(
    "module",
    [
        "memomentum",
        "memomentum.config",
        "memomentum.entrypoints.report",
        "memomentum.runner.files",
        "memomentum.data.registry",
    ],
)
def test_light_modules_load_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_public_functions_show_their_real_signatures_without_loading_torch():
    # help(memomentum.run) must list the options, not `**kwargs`; importing and reading it must not load torch
    code = (
        "import inspect, sys; from memomentum import run, find_label_issues, load; "
        "print(inspect.signature(run)); print('torch' in sys.modules)"
    )
    shown, torch_loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    import memomentum
    import memomentum.entrypoints.api
    import memomentum.entrypoints.estimator
    import memomentum.entrypoints.predictor

    assert shown == str(inspect.signature(memomentum.entrypoints.api.run)) and torch_loaded == "False"
    for wrapper, real in [
        (memomentum.run, memomentum.entrypoints.api.run),
        (memomentum.find_label_issues, memomentum.entrypoints.api.find_label_issues),
        (memomentum.load, memomentum.entrypoints.predictor.load),
    ]:
        assert inspect.signature(wrapper) == inspect.signature(real), wrapper.__name__
    assert memomentum.MeMomentumClassifier is memomentum.entrypoints.estimator.MeMomentumClassifier
