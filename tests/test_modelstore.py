"""The model store: the catalog's paths, and what a model name resolves to (the CLI runs it end to end in
test_commands.py)."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import ROOT

from superres.errors import SuperresError
from superres.models import create_model
from superres.models.weights import Weights, save_weights
from superres.modelstore import COMPARISON, METRICS_FILE, MODELS_DIR, REPORTING_DIR, resolve_model

CPU = torch.device("cpu")


def test_store_paths_are_the_catalogs():
    """The paths modelstore reads are where the catalog has training, evaluation and the report write."""
    catalog = yaml.safe_load((ROOT / "conf" / "base" / "catalog.yml").read_text())
    model = next(entry for entry in catalog.values()
                 if isinstance(entry, dict) and entry.get("type", "").endswith("WeightsDataset"))
    assert model["path"] == f"{MODELS_DIR}/{{arch}}/seed{{seed}}"
    metrics = [entry["filepath"] for name, entry in catalog.items()
               if name.endswith(".metrics") and not name.startswith("pretrained.")]
    assert metrics == [f"{REPORTING_DIR}/{{arch}}/seed{{seed}}/{METRICS_FILE}"]
    assert catalog["comparison_table"]["filepath"] == str(COMPARISON)


def test_bicubic_needs_no_project_and_takes_any_scale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = resolve_model("bicubic", CPU)
    assert (default.name, default.config["scale"]) == ("bicubic", 2) and "--scale N for another" in default.origin
    assert resolve_model("bicubic", CPU, scale=3).config == {"architecture": "bicubic", "scale": 3, "model": {}}


def test_a_weights_folder_resolves_and_its_scale_is_checked(tmp_path):
    config = {"n_resblocks": 1, "n_feats": 8}
    save_weights(tmp_path / "w", Weights(create_model("edsr", scale=2, **config).state_dict(),
                                         {"architecture": "edsr", "scale": 2, "model": config}))
    resolved = resolve_model(str(tmp_path / "w"), CPU)
    assert resolved.name == resolved.origin == str(tmp_path / "w") and resolved.config["scale"] == 2
    assert not resolved.net.training
    with pytest.raises(SuperresError, match=r"upscales x2, not x4 \(--scale\); give --scale 2"):
        resolve_model(str(tmp_path / "w"), CPU, scale=4)


def test_a_key_outside_any_project_says_how_to_point_at_one(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuperresError, match=r"--model edsr: the trained weights are in a project, and no superres"):
        resolve_model("edsr", CPU)
    with pytest.raises(SuperresError, match=r"no --model given: .*\(--model bicubic needs no project\)"):
        resolve_model(None, CPU)
