"""The documentation site builds with `mkdocs build --strict`, and its generated pages say what
the code says: the configuration reference lists every option of conf/ with its default and
comment, the API reference has a page per module. The build must import neither torch nor the
package: both are replaced by modules that raise on import for the build's process."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (it is in the dev extra: make install)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once into a temporary folder, from a folder that is not the checkout."""
    work = tmp_path_factory.mktemp("docs")
    poison = work / "poison"
    for name in ("torch", "sweep"):
        (poison / name).mkdir(parents=True)
        (poison / name / "__init__.py").write_text(
            f"raise ImportError('the docs build must not import {name}')\n"
        )
    site_dir = work / "site"
    env = {**os.environ, "PYTHONPATH": str(poison), "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
    command += ["--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site_dir)]
    built = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout}\n{built.stderr}"
    return site_dir


def page_text(site: Path, page: str) -> str:
    """A built page's text, tags removed and entities decoded, whitespace collapsed."""
    markup = (site / page / "index.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    return re.sub(r"\s+", " ", text)


def leaves(mapping: dict, prefix: str) -> dict[str, object]:
    """Dotted option names of a composed yaml file and their values."""
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(leaves(value, name))
        elif key != "defaults":
            out[name] = value
    return out


def rows(site: Path) -> dict[str, list[tuple[str, str]]]:
    """The configuration reference's table rows (option -> [(default, comment)]), as text."""
    markup = (site / "reference/configuration/index.html").read_text()
    found: dict[str, list[tuple[str, str]]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", markup, flags=re.S):
        cells = [
            re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", cell))).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        ]
        if len(cells) == 3:
            found.setdefault(cells[0], []).append((cells[1], cells[2]))
    return found


@pytest.mark.parametrize(
    ("path", "package", "known"),
    [
        (
            "conf/cluster/local.yaml",
            "cluster",
            {"cluster.torch_threads": ("1", "Torch threads inside each Ray task")},
        ),
        (
            "conf/task/voc.yaml",
            "task",
            {"task.kind.hflip": ("0.5", "Probability of a horizontal flip of a training image.")},
        ),
        (
            "conf/experiment/nightly.yaml",
            "",  # @package _global_
            {
                "tracking.on_unreachable": ("defer", "does not stop it"),
                "experiment.tolerance": ("0.0", "Values without an interval"),
            },
        ),
    ],
)
def test_config_reference_lists_every_option(site, path, package, known):
    options = leaves(yaml.safe_load((ROOT / path).read_text()), package)
    table = rows(site)
    for name, value in options.items():
        written = "null" if value is None else str(value).lower()
        defaults = [default.lower().replace("'", "") for default, _ in table.get(name, [])]
        assert written in defaults, f"{path}: {name} = {written!r} not in the reference"
    for name, (default, comment) in known.items():
        assert any(d == default and comment in c for d, c in table[name]), (name, table[name])


def test_config_reference_covers_every_file(site):
    text = page_text(site, "reference/configuration")
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        assert path.relative_to(ROOT).as_posix() in text


def test_api_reference_has_a_page_per_module(site):
    modules = [p for p in (ROOT / "sweep").rglob("*.py") if p.name != "__init__.py"]
    for module in modules:
        assert (site / "reference/api" / module.relative_to(ROOT).with_suffix("")).is_dir()
    jxl = page_text(site, "reference/api/sweep/codecs/jxl")
    assert "sweep.codecs.jxl" in jxl and "JxlCodec" in jxl
    assert "Lossy JPEG XL at a target Butteraugli distance" in jxl


def test_pages_of_the_site_exist(site):
    for page in ("getting-started", "tasks/detection", "analyses/budget", "nightly"):
        assert (site / page / "index.html").is_file()
    # The dashboard's screenshots are used where they are.
    assert "dashboard/runs.png" in (site / "cluster/mlflow/index.html").read_text()
    assert (site / "dashboard/runs.png").is_file()
