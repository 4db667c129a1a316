"""The download and prepare nodes on a folder of real files, bad ones among them: every file is
reported, the bad ones rejected with a reason, and the run goes on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from superres.errors import ConfigError
from superres.pipelines.download.nodes import fetch_images, ingest_images
from superres.pipelines.prepare.nodes import make_lr_images, make_training_patches, select_images, select_split, split_dataset

PREPARE = {"scale": 2, "patch_size": 32, "stride": 32, "seed": 0, "split": {"train": 0.6, "val": 0.2, "test": 0.2},
           "degradation": {"blur_sigma": 0.0, "noise_sigma": 0.0, "grayscale": False, "jpeg_quality": None}}


def photo(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "photos"
    (src / "nested").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(photo(70 + i, 90, i)).save(src / f"good{i}.png")
    Image.fromarray(photo(65, 80, 9)).save(src / "nested" / "good0.png")          # same name, other folder
    Image.fromarray(photo(20, 20, 5)).save(src / "tiny.png")                       # smaller than a patch
    Image.fromarray((photo(64, 64, 6)[..., 0].astype(np.uint16) * 257)).save(src / "deep.png")  # 16-bit gray
    data = (src / "good1.png").read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    (src / "notes.txt").write_text("not an image")
    (src / "empty.jpg").write_bytes(b"")
    return src


def run_download(tmp_path, data):
    raw = tmp_path / "raw"
    raw.mkdir()
    fetch_images(data)(raw)
    return raw, ingest_images(raw, data)


def test_every_file_is_reported_and_the_bad_ones_rejected(tmp_path, folder):
    data = {"source": "folder", "path": str(folder), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    status = dict(zip(report["name"], report["status"], strict=True))
    assert len(report) == 10
    assert {k for k, v in status.items() if v == "rejected"} == {"truncated.png", "notes.txt", "empty.jpg"}
    reasons = dict(zip(report["name"], report["reason"], strict=True))
    assert "not an image" in reasons["notes.txt"] and "16-bit" in reasons["deep.png"]
    assert "nested__good0.png" in status  # a name collision is renamed, not dropped

    hr, given_lr, prepared = select_images(raw, report, data, PREPARE)
    kept = prepared.set_index("name")
    assert kept.loc["tiny", "status"] == "rejected" and "smaller than one training patch" in kept.loc["tiny", "reason"]
    assert set(hr) == {"good0", "good1", "good2", "good3", "nested__good0", "deep"} and not given_lr
    assert hr["good1"]().shape == (70, 90, 3) and hr["deep"]().shape == (64, 64, 1)  # modcropped; gray stays gray

    split = split_dataset(prepared, PREPARE)
    lr = make_lr_images(hr, given_lr, PREPARE)
    assert lr["good1"]().shape == (35, 45, 3)
    patches = make_training_patches(hr, lr, split, PREPARE)
    assert patches["hr"].shape[1:] == (3, 32, 32) and patches["lr"].shape[1:] == (3, 16, 16)
    val_hr, val_lr, test_hr, test_lr = select_split(hr, lr, split, data, PREPARE)
    assert len(val_hr) == len(test_hr) == 1 and set(val_hr) == set(val_lr)


def test_a_validation_folder_replaces_the_val_share(tmp_path, folder):
    data = {"source": "folder", "path": str(folder), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    hr, given_lr, prepared = select_images(raw, report, data, PREPARE)
    bench = tmp_path / "Set5"
    bench.mkdir()
    for i in range(2):
        Image.fromarray(photo(41, 37, 20 + i)).save(bench / f"b{i}.png")
    prepare = {**PREPARE, "val_folder": str(bench)}
    split = split_dataset(prepared, prepare)
    assert sorted(split.loc[split["split"] == "val", "image"]) == ["val__b0", "val__b1"]
    source = split[~split["image"].str.startswith("val__")]
    assert set(source["split"]) == {"train", "test"}  # the source is split into train and test only
    val_hr, val_lr, test_hr, _ = select_split(hr, make_lr_images(hr, given_lr, prepare), split, data, prepare)
    assert val_hr["val__b0"]().shape == (40, 36, 3) and val_lr["val__b0"]().shape == (20, 18, 3)  # modcropped, degraded
    assert not set(test_hr) & set(val_hr)
    with pytest.raises(ConfigError, match="prepare.val_folder"):
        split_dataset(prepared, {**PREPARE, "val_folder": str(tmp_path / "missing")})


def test_paired_folder_uses_the_given_low_resolution_images(tmp_path):
    src = tmp_path / "pairs"
    for sub in ("high_res", "low_res"):
        (src / sub).mkdir(parents=True)
    for i in range(3):
        hr = photo(64, 64, i)
        Image.fromarray(hr).save(src / "high_res" / f"p{i}.png")
        Image.fromarray(hr[::2, ::2]).save(src / "low_res" / f"p{i}.png")
    Image.fromarray(photo(64, 64, 7)).save(src / "high_res" / "alone.png")
    Image.fromarray(photo(64, 64, 8)).save(src / "high_res" / "odd.png")
    Image.fromarray(photo(30, 32, 8)).save(src / "low_res" / "odd.png")  # not 64/2 high
    data = {"source": "paired_folder", "path": str(src), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    alone = report[report["name"] == "alone.png"]
    assert alone["status"].tolist() == ["rejected"] and "no low-resolution file" in alone["reason"].iloc[0]
    hr, given_lr, prepared = select_images(raw, report, data, PREPARE)
    assert set(hr) == set(given_lr) == {"p0", "p1", "p2"}
    odd = prepared.set_index("name").loc["odd"]
    assert odd["status"] == "rejected" and "32x30, not 32x32" in odd["reason"]
    assert np.array_equal(given_lr["p1"](), photo(64, 64, 1)[::2, ::2])


def test_a_missing_folder_or_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="data.source"):
        fetch_images({"source": "ftp", "max_pixels": 1})
    with pytest.raises(ConfigError, match="data.path is required"):
        fetch_images({"source": "folder", "path": None, "max_pixels": 1})
    with pytest.raises(ConfigError, match="does not exist"):
        fetch_images({"source": "folder", "path": str(tmp_path / "nowhere"), "max_pixels": 1})(tmp_path)
