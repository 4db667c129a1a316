"""`superres upscale` on real files: outputs, refusing to overwrite, bad files, unknown models."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from superres.commands import main
from superres.models import create_model
from superres.models.weights import Weights, save_weights


def test_upscale_files_and_folders(tmp_path):
    weights = tmp_path / "weights"
    model = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
    save_weights(weights, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": {"n_resblocks": 1, "n_feats": 8}}))
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(photos / "a.jpg")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)).save(photos / "sub" / "gray.png")
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
    forced = runner.invoke(main, ["upscale", str(photos / "a.jpg"), "-o", str(out), "--model", str(weights), "--overwrite"])
    assert forced.exit_code == 0


def test_unknown_model_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path), "--model", "nope"])
    assert result.exit_code != 0 and "kedro run --pipelines=nope" in result.output
