"""The optional extras: ``app`` (Streamlit) and ``export`` (onnx, onnxruntime, onnxscript). The pipeline and
the other commands run without them; ``superres export`` and ``superres app`` name the extra to install;
``superres bench`` runs its torch engines and skips the ONNX Runtime ones.

Nothing is uninstalled: a ``sitecustomize`` on ``PYTHONPATH`` makes the subprocess see the blocked packages as
absent (``sys.modules[name] = None``: ``import`` raises ``ModuleNotFoundError``, ``find_spec`` gives ``None``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

import superres.export
from superres.bench.engines import ENGINES, measure_engines
from superres.bench.report import _precision_tables
from superres.bench.timing import QUICK
from superres.errors import SuperresError

APP = ("streamlit",)
EXPORT = ("onnx", "onnxruntime", "onnxscript")
EXTRAS = APP + EXPORT

SITECUSTOMIZE = """\
import os, sys
for name in os.environ.get("SUPERRES_TEST_ABSENT", "").split(","):
    if name:
        sys.modules[name] = None  # as if not installed
"""


def run_without(absent: tuple[str, ...], args: list[str], tmp_path: Path, cwd: Path | None = None
                ) -> subprocess.CompletedProcess:
    """``python ARGS`` in a process that sees the packages ``absent`` as not installed."""
    site = tmp_path / "absent-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path,
           "SUPERRES_TEST_ABSENT": ",".join(absent), "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    env.pop("SUPERRES_PROJECT", None)
    return subprocess.run([sys.executable, *args], cwd=cwd or tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def command(*args: str) -> list[str]:
    """The arguments of `python` that run `superres ARGS`."""
    return ["-c", "import sys; from superres.commands import main; main(sys.argv[1:], prog_name='superres')", *args]


def test_the_blocker_blocks(tmp_path):
    result = run_without(EXTRAS, ["-c", "import importlib.util as u; import superres.export as e; "
                                        "print([u.find_spec(n) for n in ('streamlit', 'onnx')], "
                                        "e.missing_onnx_packages()); import onnx"], tmp_path)
    assert "[None, None] ['onnx', 'onnxruntime', 'onnxscript']" in result.stdout
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_the_pipeline_imports_without_the_extras(tmp_path):
    """What `kedro run` loads (settings, hooks, the registry and every pipeline and node module) and the
    `superres` command import none of the extras, and load without them."""
    check = """
import importlib, pkgutil, sys
import superres.cli, superres.commands, superres.hooks, superres.pipeline_registry, superres.settings
import superres.pipelines
for module in pkgutil.walk_packages(superres.pipelines.__path__, "superres.pipelines."):
    importlib.import_module(module.name)
pipelines = superres.pipeline_registry.register_pipelines()
assert "__default__" in pipelines and "report" in pipelines, sorted(pipelines)
loaded = sorted(n for n, m in sys.modules.items() if m is not None and n.split(".")[0] in EXTRAS)
assert not loaded, loaded
print("ok", len(pipelines))
""".replace("EXTRAS", repr(EXTRAS))
    result = run_without(EXTRAS, ["-c", check], tmp_path, cwd=ROOT)  # the registry reads the project's params.yaml
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


def test_upscale_runs_without_the_extras(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    result = run_without(EXTRAS, command("upscale", "a.png", "-o", "out", "--model", "bicubic", "--scale", "2"),
                         tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Image.open(tmp_path / "out" / "a.png").size == (20, 24)


@pytest.mark.parametrize("absent", [EXPORT, ("onnxscript",)], ids=["all", "onnxscript"])
def test_export_names_its_extra(tmp_path, absent):
    result = run_without(absent, command("export", "--model", "bicubic", "-o", "model.onnx"), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: superres export needs the ONNX packages ({', '.join(absent)} not installed): "
        "pip install 'superres[export]' (in a checkout: pip install -e '.[export]')"]
    assert not (tmp_path / "model.onnx").exists()


def test_app_names_its_extra(tmp_path):
    result = run_without(APP, command("app", "--models", str(tmp_path)), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: superres app needs Streamlit (not installed): pip install 'superres[app]' "
        "(in a checkout: pip install -e '.[app]')"]


def test_export_library_names_its_extra(monkeypatch):
    monkeypatch.setattr(superres.export, "missing_onnx_packages", lambda: ["onnx"])
    with pytest.raises(SuperresError, match=r"ONNX export needs the ONNX packages \(onnx not "):
        superres.export.export_onnx(None, "never.onnx")  # type: ignore[arg-type]


def test_bench_skips_the_onnxruntime_engine_without_the_extra(monkeypatch):
    """The torch engines are measured, each ONNX Runtime row says it was skipped, and the table says so."""
    monkeypatch.setattr(superres.export, "missing_onnx_packages", lambda: ["onnxruntime"])
    peak = {"matmul_n": 256, "conv": "-", **{f"{op}_{p}_tflops": 1.0 for op in ("matmul", "conv", "peak")
                                             for p in ("fp32", "bf16")}}
    rows = measure_engines({"edsr": {"n_resblocks": 1, "n_feats": 8}}, QUICK, peak)
    assert {(r["scale"], r["engine"]) for r in rows} == {(s, e) for s in (2, 4) for e in ENGINES}
    for row in rows:
        if row["engine"] == "onnxruntime":
            assert row["skipped"] == "onnxruntime not installed: " + superres.export.INSTALL_EXPORT
        else:
            assert "error" not in row and "skipped" not in row and row["output_mp_per_s"] > 0
    table = "\n".join(_precision_tables({"peak": peak, "engines": rows}))
    assert table.count("| skipped: not installed |") == 2
