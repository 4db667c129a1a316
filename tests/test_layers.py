"""The layers of DESIGN.md, checked by import-linter's contracts in pyproject.toml (``[tool.importlinter]``):
the tree keeps them, and a copy of the tree with a forbidden import breaks the contract that names it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path, src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` run in ``project`` (its pyproject.toml), on the package ``superres`` found in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package and of pyproject.toml, to add bad imports to."""
    shutil.copytree(ROOT / "src" / "superres", tmp_path / "src" / "superres",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(copy: Path, module: str, statement: str) -> None:
    path = copy / "src" / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}\n")


@pytest.mark.parametrize(("module", "statement", "contract", "chain"), [
    ("superres.models.edsr", "import kedro", "The library runs without Kedro, DVC, Streamlit or MLflow",
     "superres.models.edsr -> kedro"),
    ("superres.data.imageio", "import mlflow", "Only the tracking and serving modules import MLflow",
     "superres.data.imageio -> mlflow"),
    ("superres.data.imageio", "import superres.training.trainer",
     "Layers: each module imports only the layers below it",
     "superres.data.imageio -> superres.training.trainer"),
    ("superres.pipelines.report.nodes", "import superres.pipelines.prepare.nodes",
     "The pipelines do not import each other", "superres.pipelines.report.nodes -> superres.pipelines.prepare.nodes"),
])
def test_a_forbidden_import_breaks_its_contract(copy, module, statement, contract, chain):
    add_import(copy, module, statement)
    result = lint_imports(copy, copy / "src")
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert chain in result.stdout, result.stdout


def test_a_new_module_must_be_placed_in_a_layer(copy):
    (copy / "src" / "superres" / "newcomer.py").write_text('"""A module no layer names."""\n')
    result = lint_imports(copy, copy / "src")
    assert result.returncode != 0, result.stdout
    assert "superres.newcomer" in result.stdout + result.stderr, result.stdout
