"""The import of published checkpoints as a library: known names, what the formats hold, and strict
mapping (the command's behaviour is in tests/test_commands.py, the papers' numbers in
test_reproduction.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from superres.errors import WeightsError
from superres.models import create_model
from superres.models.official import CONVERTERS, convert, import_official, official_checkpoints, read_tensors, resolve

PRETRAINED = Path(os.environ.get("SUPERRES_PRETRAINED", ROOT.parent / "shared" / "pretrained"))


def test_known_names_fill_in_what_is_not_given_and_refuse_what_contradicts():
    url, arch, scale, sha256, origin = resolve("imdn_x3", None, None, None, None)
    assert url.endswith("/IMDN_x3.pth") and (arch, scale) == ("imdn", 3) and len(sha256) == 64
    assert "Hui et al." in origin
    assert resolve("imdn_x3", "imdn", 3, None, "mine")[4] == "mine"
    with pytest.raises(WeightsError, match="imdn_x3 is the imdn x3 checkpoint .*; its scale is 3, not 2"):
        resolve("imdn_x3", None, 2, None, None)
    with pytest.raises(WeightsError, match=r"weights\.pth: give the architecture and scale .* known names: imdn_x2"):
        resolve("weights.pth", "imdn", None, None, None)
    assert resolve("weights.pth", "imdn", 2, None, None) == ("weights.pth", "imdn", 2, None, None)


def test_every_known_checkpoint_has_an_import_table_and_its_scale():
    for known in official_checkpoints().values():
        assert known.arch in CONVERTERS and known.scale in create_model(known.arch, scale=known.scale).SCALES
        assert known.url.startswith("https://github.com/")


@pytest.mark.skipif(not (PRETRAINED / "SHA256SUMS").is_file(), reason=f"no published checkpoints in {PRETRAINED}")
def test_the_known_checksums_are_those_of_the_published_files():
    sums = dict(line.split()[::-1] for line in (PRETRAINED / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert {k.sha256 for k in official_checkpoints().values()} == set(sums.values())


@pytest.mark.skipif(not (PRETRAINED / "imdn_x2.pth").is_file(), reason=f"no published checkpoints in {PRETRAINED}")
def test_a_checkpoint_for_another_scale_is_refused_by_shape():
    with pytest.raises(WeightsError, match="x3|scale"):
        import_official(PRETRAINED / "imdn_x2.pth", "imdn", 3)
    tensors, fmt = read_tensors(PRETRAINED / "imdn_x2.pth")
    assert fmt == "PyTorch state dict (legacy serialisation)" and not any(k.startswith("module.") for k in tensors)
    model, config = convert(tensors, "imdn", 2)
    assert config == {"channels": 3, "n_feats": 64, "n_blocks": 6}  # the paper's IMDN, read off the shapes
    assert torch.equal(model.state_dict()[next(iter(model.state_dict()))], next(iter(tensors.values())))


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="notes.pth"):
        read_tensors(tmp_path / "notes.pth")
    with pytest.raises(WeightsError, match="missing.pth not found"):
        read_tensors(tmp_path / "missing.pth")
