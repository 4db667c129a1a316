"""`superres upscale` on real files: outputs, refusing to overwrite, bad files, unknown models; what the
command line loads."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from superres.commands import main
from superres.models import create_model
from superres.models.weights import Weights, save_weights


def test_upscale_files_and_folders(tmp_path):
    weights = tmp_path / "weights"
    config = {"n_resblocks": 1, "n_feats": 8}
    model = create_model("edsr", scale=2, **config)
    save_weights(weights, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": config}))
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(photos / "a.jpg")
    gray = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(gray).save(photos / "sub" / "gray.png")
    (photos / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    runner = CliRunner()

    result = runner.invoke(main, ["upscale", str(photos), "-o", str(out), "--model", str(weights)])
    assert result.exit_code == 1  # the broken file fails, the others still run
    assert "broken.png" in result.output
    assert Image.open(out / "a.jpg").size == (60, 40)  # the input format is kept
    gray = Image.open(out / "sub" / "gray.png")
    assert gray.mode == "L" and gray.size == (32, 32)

    before = (out / "a.jpg").read_bytes()
    again = runner.invoke(main, ["upscale", str(photos / "a.jpg"), "-o", str(out), "--model", str(weights)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert (out / "a.jpg").read_bytes() == before
    forced = runner.invoke(main, ["upscale", str(photos / "a.jpg"), "-o", str(out), "--model", str(weights),
                                  "--overwrite"])
    assert forced.exit_code == 0


def test_unknown_model_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path), "--model", "nope"])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    assert "--model nope: no file or folder nope, and not an architecture key (autoencoder, bicubic, " in result.output
    assert "see `superres models`" in result.output


def save_seed(folder, seed: int, val: float) -> None:
    config = {"n_resblocks": 1, "n_feats": 8}
    torch.manual_seed(seed)
    model = create_model("edsr", scale=2, **config)
    save_weights(folder, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": config,
                                                      "seed": seed, "best_val_psnr_y": val}))


def test_export_finds_the_project_and_refuses_bicubic_in_one_line(tmp_path, monkeypatch):
    import onnx

    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)
    project = tmp_path / "project"
    (project / "data" / "06_models").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "params.yaml").write_text("seeds: [0, 1]\n")
    save_seed(project / "data" / "06_models" / "edsr" / "seed0", 0, 31.0)
    save_seed(project / "data" / "06_models" / "edsr" / "seed1", 1, 30.0)
    monkeypatch.chdir(tmp_path)  # outside the project
    result = CliRunner().invoke(main, ["export", "--model", "edsr", "--project", str(project), "-o", "edsr.onnx"])
    assert result.exit_code == 0, result.output
    assert "edsr/seed0 (edsr x2" in result.output
    assert onnx.load("edsr.onnx").graph.input[0].name == "input"

    bicubic = CliRunner().invoke(main, ["export", "--model", "bicubic", "--scale", "3", "-o", "bicubic.onnx"])
    assert bicubic.exit_code != 0 and len(bicubic.output.strip().splitlines()) == 1
    assert "Bicubic cannot be exported to ONNX with dynamic height and width" in bicubic.output
    assert "weights" not in bicubic.output and not (tmp_path / "bicubic.onnx").exists()


def test_the_command_line_does_not_load_the_bench():
    """The bench imports the trainer and every measurement; `superres upscale` and the rest never need it."""
    check = ("import sys, superres.commands; "
             "loaded = sorted(m for m in sys.modules if m.startswith('superres.bench')); "
             "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
