"""The house's shape, held by a test: the import-linter contracts of pyproject.toml, no import
circle (function-level and TYPE_CHECKING imports included), no module over 400 lines."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("sweep", "benchmarks", "reliability")
MAX_LINES = 400
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, wherever the import sits (a function, an
    `if TYPE_CHECKING:` block); `from package import name` counts as importing the package,
    and the submodule when `name` is one."""
    files = [path for package in PACKAGES for path in sorted((root / package).rglob("*.py"))]
    modules = {module_name(path, root): path for path in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*stem, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_anywhere():
    assert cycles(import_graph(REPO)) == []


def test_the_circle_check_sees_an_import_hidden_in_a_function():
    graph = import_graph(REPO)
    graph["sweep.errors"] = {*graph["sweep.errors"], "sweep.config.build"}
    assert any("sweep.errors" in circle for circle in cycles(graph))


def test_no_module_over_400_lines():
    large = {
        str(path.relative_to(REPO)): lines
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert large == {}


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=root,
        # A wide terminal: a contract's name and its verdict stay on one line.
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root), "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (make install)")
def test_the_layer_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (make install)")
@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # A stage kind reaching up into the engine, a lazy import in a function.
        ("sweep/stages/kind.py", "def _up():\n    from sweep.engine import execute\n", "layers"),
        # The outputs running the grid; an experiment importing another.
        ("sweep/report/results.py", "from sweep.session import grid\n", "layers"),
        ("sweep/experiments/grid.py", "from sweep.experiments.budget import cells\n", "import"),
        # A codec importing torch (every encode worker would pay for it).
        ("sweep/codecs/jpeg.py", "import torch\n", "Codecs"),
        ("sweep/tasks/base.py", "import mlflow\n", "Workers never import tracking"),
    ],
)
def test_a_contract_catches_an_import_that_breaks_it(tmp_path, module, line, contract):
    for name in (*PACKAGES, "pyproject.toml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    with (tmp_path / module).open("a") as stream:
        stream.write("\n" + line)
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert broken and any(contract in row for row in broken), result.stdout[-2000:]
