"""The notebooks run top to bottom against the tiny-profile project of the ``project`` fixture
(after a real ``dvc repro``) and show what they are for; the comparison notebook also against an
MLflow store of per-seed runs made here, whose means and spreads are known.

Each one is executed with nbclient in a kernel started from this interpreter, in the project copy,
with the fixture's environment and ``MLFLOW_TRACKING_URI`` pointing at the copy's store.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from conftest import ARCHITECTURES, ROOT
from nbclient import NotebookClient

NOTEBOOKS = ROOT / "notebooks"
ARCHS = ARCHITECTURES


def _python3_kernel_is_this_interpreter() -> bool:
    """Whether the ``python3`` kernelspec Jupyter finds starts ``sys.executable``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False
    command = spec.argv[0] if spec.argv else ""
    major, minor = sys.version_info[:2]
    if command in {"python", f"python{major}", f"python{major}.{minor}"}:
        return True  # jupyter_client starts these bare names with sys.executable
    return os.path.abspath(command) == os.path.abspath(sys.executable)


@pytest.fixture
def python3_kernel(monkeypatch, tmp_path) -> None:
    """Jupyter's ``python3`` kernel starts this interpreter (installed in a temporary prefix if not)."""
    if not _python3_kernel_is_this_interpreter():
        from ipykernel.kernelspec import install

        prefix = tmp_path / "jupyter"
        install(kernel_name="python3", prefix=str(prefix))
        paths = [str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]
        monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(p for p in paths if p))
        assert _python3_kernel_is_this_interpreter()


@pytest.fixture
def kernel_root(project, monkeypatch, python3_kernel) -> Path:
    """The project copy; the kernel (which inherits os.environ) gets the fixture's environment."""
    root, env = project
    kernel_path = os.environ.get("JUPYTER_PATH")
    for key in set(os.environ) - set(env):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if kernel_path:
        monkeypatch.setenv("JUPYTER_PATH", kernel_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


def execute(name: str, root: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # Importing streamlit (the web app's tests) sets MPLBACKEND=Agg in this process; a kernel that
    # inherited it would draw no inline figures.
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(root)}}).execute()
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return nb


def tagged(nb: nbformat.NotebookNode, tag: str) -> list:
    """The outputs of the one code cell tagged ``tag``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}"
    return cells[0].outputs


def text(outputs: list) -> str:
    parts = []
    for output in outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def has_image(outputs: list) -> bool:
    return any("image/png" in output.get("data", {}) for output in outputs)


@pytest.mark.e2e
def test_exploration_notebook(kernel_root):
    root = kernel_root
    nb = execute("exploration.ipynb", root)

    with open(root / "data/03_primary/split.csv", newline="") as f:
        splits = [row["split"] for row in csv.DictReader(f)]
    counts = text(tagged(nb, "split-counts"))
    for split in ("train", "val", "test"):
        assert re.search(rf"^{split}\s+{splits.count(split)}\s*$", counts, re.M), counts

    with open(root / "data/01_raw/ingest_report.csv", newline="") as f:
        accepted = sum(row["status"] == "accepted" for row in csv.DictReader(f))
    assert re.search(rf"^accepted\s+{accepted}\s*$", text(tagged(nb, "ingest-counts")), re.M)

    patches = text(tagged(nb, "patches"))
    for kind in ("lr", "hr"):
        assert str(np.load(root / f"data/05_model_input/train/{kind}.npy", mmap_mode="r").shape) in patches

    assert has_image(tagged(nb, "test-pairs"))


@pytest.mark.e2e
def test_comparison_notebook(kernel_root):
    nb = execute("comparison.ipynb", kernel_root)

    table = text(tagged(nb, "runs-table"))
    for architecture in ARCHS:
        assert re.search(rf"^{architecture}\s", table, re.M), table
    assert "test/psnr_y" in table and "test/ssim_y" in table

    assert has_image(tagged(nb, "psnr-bar"))
    assert has_image(tagged(nb, "val-curves"))

    benchmarks = text(tagged(nb, "benchmarks"))  # the tiny profile evaluates on a folder at x2 and x3
    assert "mine_x2" in benchmarks and "mine_x3" in benchmarks, benchmarks
    assert re.search(r"^bicubic\s+\d+\.\d\d / 0\.\d{4}", benchmarks, re.M), benchmarks


def test_comparison_notebook_gives_the_mean_and_spread_over_the_seeds_of_params(tmp_path, monkeypatch, python3_kernel):
    """Runs of seeds 0 and 1 of params.yaml count, the newest of each; a stale seed, an older run of
    the same seed and the report's run do not."""
    from superres.tracking import KIND_TAG, Tracker, run_tags

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"seeds": [0, 1], "architectures": ["bicubic", "edsr"], "prepare": {"scale": 2}}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)

    def run(arch: str, seed: int, psnr_y: float, name: str | None = None, tags=None) -> None:
        params = {"architecture": arch, "model": {"n_feats": 8}, "train": {"seed": seed}}
        run_id = tracker.start_run(name or arch, params, tags=tags or run_tags(arch, seed))
        steps = [0] if arch == "bicubic" else [10, 20]
        tracker.log_history(run_id, [{"step": s, "val_psnr_y": psnr_y + s / 100} for s in steps],
                            {"val_psnr_y": "val/psnr_y"})
        tracker.log_metrics(run_id, {"parameters": 0 if arch == "bicubic" else 1234, "test/psnr_y": psnr_y,
                                     "test/ssim_y": 0.9, "mine_x2/psnr_y": psnr_y + 1, "mine_x2/ssim_y": 0.95})
        tracker.end_run(run_id)

    run("edsr", 0, 20.0)  # an older run of seed 0: the newer one counts
    time.sleep(0.05)
    for seed in (0, 1):
        run("bicubic", seed, 30.0)
    run("edsr", 0, 31.0)
    run("edsr", 1, 31.4)
    run("edsr", 5, 40.0)  # a seed params.yaml does not ask for
    run("edsr", 0, 99.0, name="report", tags={KIND_TAG: "report"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    nb = execute("comparison.ipynb", tmp_path)
    table = text(tagged(nb, "runs-table"))
    edsr = re.search(r"^edsr\s+2\s+1234\s+n_feats=8\s+([\d.]+)\s+([\d.]+)", table, re.M)
    assert edsr, table
    assert float(edsr.group(1)) == pytest.approx(31.2) and float(edsr.group(2)) == pytest.approx(0.2828, abs=1e-4)
    assert re.search(r"^bicubic\s+2\s+0\s", table, re.M), table
    assert has_image(tagged(nb, "psnr-bar")) and has_image(tagged(nb, "val-curves"))
    benchmarks = text(tagged(nb, "benchmarks"))
    assert re.search(r"^edsr\s+32\.20 / 0\.9500\s+2\s*$", benchmarks, re.M), benchmarks


@pytest.mark.parametrize("name", ["exploration.ipynb", "comparison.ipynb"])
def test_notebooks_are_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs before committing"
