"""Weights: safetensors folders, and foreign PyTorch checkpoints read only with weights_only=True."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from superres.commands import main
from superres.errors import WeightsError
from superres.models import create_model
from superres.models.weights import Weights, load_any, load_checkpoint, save_weights

CONFIG = {"architecture": "edsr", "scale": 2, "model": {"n_resblocks": 1, "n_feats": 8}}


class CreatesAFile:
    """Unpickling this runs ``open(path, "w")``: the kind of pickle a checkpoint must never be."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("edsr", scale=2, **CONFIG["model"])


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrap", ["plain", "params", "params_ema", "module", "state_dict"])
def test_foreign_checkpoint_wrappings(tmp_path, model, wrap):
    state = model.state_dict()
    checkpoint = {
        "plain": state,
        "params": {"params": state, "iter": 10},
        "params_ema": {"params": {k: torch.zeros_like(v) for k, v in state.items()}, "params_ema": state},
        "module": {f"module.{k}": v for k, v in state.items()},
        "state_dict": {"state_dict": state, "optimizer": {"lr": 0.1}, "epoch": 3},
    }[wrap]
    torch.save(checkpoint, tmp_path / "net.pth")
    loaded = load_checkpoint(tmp_path / "net.pth", CONFIG).build()
    assert same_weights(loaded, model)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, model):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"params": model.state_dict(), "payload": CreatesAFile(str(marker))}, path)
    # The file is really malicious: an unsafe load creates the marker.
    probe = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)
    assert marker.exists()
    marker.unlink()

    with pytest.raises(WeightsError, match="evil.pth refused"):
        load_checkpoint(path, CONFIG)
    assert not marker.exists()


def test_checkpoint_needs_a_config(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "net.pt")
    with pytest.raises(WeightsError, match="--arch"):
        load_any(tmp_path / "net.pt")
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    assert same_weights(load_any(tmp_path).build(), model)  # a folder: config.json + one checkpoint
    assert same_weights(load_any(tmp_path / "net.pt").build(), model)  # the file, config.json beside it


def test_mismatched_or_not_a_checkpoint(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "net.pth")
    wrong = {**CONFIG, "model": {"n_resblocks": 2, "n_feats": 8}}
    with pytest.raises(WeightsError, match="do not match the edsr architecture"):
        load_checkpoint(tmp_path / "net.pth", wrong).build()
    (tmp_path / "junk.pth").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth"):
        load_checkpoint(tmp_path / "junk.pth", CONFIG)
    torch.save({"lr": torch.tensor(0.1), "note": "hello"}, tmp_path / "nostate.pth")
    with pytest.raises(WeightsError, match="no state dict of tensors"):
        load_checkpoint(tmp_path / "nostate.pth", CONFIG)


def test_safetensors_folder_still_loads(tmp_path, model):
    save_weights(tmp_path, Weights(model.state_dict(), CONFIG))
    assert same_weights(load_any(tmp_path).build(), model)


def test_upscale_with_a_foreign_checkpoint(tmp_path, model):
    torch.save({"params_ema": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "net.pth")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    args = ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "net.pth")]
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code != 0 and "--arch" in missing.output
    config = json.dumps(CONFIG["model"])
    result = CliRunner().invoke(main, [*args, "--arch", "edsr", "--scale", "2", "--model-config", config])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "in.png").size == (20, 16)

    marker = tmp_path / "marker"
    torch.save({"params": model.state_dict(), "x": CreatesAFile(str(marker))}, tmp_path / "evil.pth")
    args[-1] = str(tmp_path / "evil.pth")
    evil = CliRunner().invoke(main, [*args, "--arch", "edsr", "--scale", "2", "--overwrite"])
    assert evil.exit_code != 0 and "refused" in evil.output and not marker.exists()
