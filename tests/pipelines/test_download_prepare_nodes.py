"""The download and prepare nodes on a folder of real files, bad ones among them: every file is
reported, the bad ones rejected with a reason, and the run goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from superres.data.sources import EMBEDDED_GROUPS
from superres.errors import ConfigError, SuperresError
from superres.pipelines.download.nodes import fetch_images, ingest_images
from superres.pipelines.prepare.nodes import (
    make_lr_images,
    make_training_patches,
    select_images,
    select_split,
    split_dataset,
)

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
    Image.fromarray(photo(64, 64, 6)[..., 0].astype(np.uint16) * 257).save(src / "deep.png")  # 16-bit gray
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

    split = split_dataset(hr, data, PREPARE)
    lr = make_lr_images(hr, given_lr, PREPARE)
    assert lr["good1"]().shape == (35, 45, 3)
    patches = make_training_patches(hr, lr, split, PREPARE)
    assert patches["hr"].shape[1:] == (3, 32, 32) and patches["lr"].shape[1:] == (3, 16, 16)
    val_hr, val_lr, test_hr, _ = select_split(hr, lr, split, data, PREPARE)
    assert len(val_hr) == len(test_hr) == 1 and set(val_hr) == set(val_lr)


def test_a_validation_folder_replaces_the_val_share(tmp_path, folder):
    data = {"source": "folder", "path": str(folder), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    hr, given_lr, _ = select_images(raw, report, data, PREPARE)
    bench = tmp_path / "Set5"
    bench.mkdir()
    for i in range(2):
        Image.fromarray(photo(41, 37, 20 + i)).save(bench / f"b{i}.png")
    prepare = {**PREPARE, "val_folder": str(bench)}
    split = split_dataset(hr, data, prepare)
    assert sorted(split.loc[split["split"] == "val", "image"]) == ["val__b0", "val__b1"]
    source = split[~split["image"].str.startswith("val__")]
    assert set(source["split"]) == {"train", "test"}  # the source is split into train and test only
    val_hr, val_lr, test_hr, _ = select_split(hr, make_lr_images(hr, given_lr, prepare), split, data, prepare)
    assert val_hr["val__b0"]().shape == (40, 36, 3) and val_lr["val__b0"]().shape == (20, 18, 3)  # modcropped, degraded
    assert not set(test_hr) & set(val_hr)
    with pytest.raises(ConfigError, match="prepare.val_folder"):
        split_dataset(hr, data, {**PREPARE, "val_folder": str(tmp_path / "missing")})


def paired_folder(tmp_path, size: tuple[int, int], factor: int, lr_suffix: str = "") -> Path:
    """``pairs/high_res/p0..p2.png`` and their LR, every ``factor``-th pixel, as ``low_res/p<i><lr_suffix>.png``."""
    src = tmp_path / "pairs"
    for sub in ("high_res", "low_res"):
        (src / sub).mkdir(parents=True)
    for i in range(3):
        hr = photo(*size, i)
        Image.fromarray(hr).save(src / "high_res" / f"p{i}.png")
        Image.fromarray(hr[::factor, ::factor]).save(src / "low_res" / f"p{i}{lr_suffix}.png")
    return src


def test_paired_folder_uses_the_given_low_resolution_images(tmp_path):
    src = paired_folder(tmp_path, (64, 64), 2)
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


def test_hidden_files_links_and_loops_are_in_the_ingest_report(tmp_path):
    src = tmp_path / "photos"
    (src / ".thumbs").mkdir(parents=True)
    (src / "sub").mkdir()
    for i, name in enumerate(["a.png", ".hidden.png", ".thumbs/a_small.png", "sub/b.png"]):
        Image.fromarray(photo(40, 40, i)).save(src / name)
    (src / "loop_1").symlink_to("loop_2")
    (src / "loop_2").symlink_to("loop_1")
    (src / "sub" / "back").symlink_to("..")
    (src / "gone.png").symlink_to("nowhere.png")
    data = {"source": "folder", "path": str(src), "max_pixels": 10_000_000}
    _, report = run_download(tmp_path, data)
    rows = {row.origin: (row.name, row.status, row.reason) for row in report.itertuples()}
    loop = "symbolic link loop (it points to {}, which leads back to it); remove the link"
    assert rows == {
        "a.png": ("a.png", "accepted", ""),
        "sub/b.png": ("sub__b.png", "accepted", ""),
        ".hidden.png": (".hidden.png", "rejected", "hidden file (its name starts with '.'); rename it to use it"),
        ".thumbs/a_small.png": (".thumbs__a_small.png", "rejected",
                                "in the hidden folder .thumbs/; move it out to use it"),
        "loop_1": ("loop_1", "rejected", loop.format("loop_2")),
        "loop_2": ("loop_2", "rejected", loop.format("loop_1")),
        "sub/back": ("sub__back", "rejected",
                     "symbolic link loop (it leads to .., a folder that holds it); remove the link"),
        "gone.png": ("gone.png", "rejected",
                     "broken symbolic link (its target nowhere.png does not exist); fix or remove the link"),
    }


def test_hidden_and_unreadable_files_of_a_paired_folder_are_reported(tmp_path):
    src = tmp_path / "pairs"
    for sub in ("high_res", "low_res"):
        (src / sub).mkdir(parents=True)
    hr = photo(64, 64, 0)
    Image.fromarray(hr).save(src / "high_res" / "p0.png")
    Image.fromarray(hr[::2, ::2]).save(src / "low_res" / "p0.png")
    Image.fromarray(hr).save(src / "high_res" / ".p1.png")
    (src / "low_res" / "loop").symlink_to("loop")
    data = {"source": "paired_folder", "path": str(src), "max_pixels": 10_000_000}
    _, report = run_download(tmp_path, data)
    rejected = report[report["status"] == "rejected"]
    rejected = dict(zip(rejected["name"], rejected["reason"], strict=True))
    assert rejected == {".p1.png": "hidden file (its name starts with '.'); rename it to use it",
                        "loop": "symbolic link loop (it points to loop, which leads back to it); remove the link"}


def test_a_split_that_lists_unknown_images_is_a_clear_error(tmp_path, folder):
    data = {"source": "folder", "path": str(folder), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    hr, given_lr, _ = select_images(raw, report, data, PREPARE)
    split = pd.DataFrame({"image": [1, 2], "split": ["train", "val"]})  # 0001 read back as a number
    with pytest.raises(SuperresError, match=r"split.csv lists train image\(s\) that were not prepared \(1\)"):
        make_training_patches(hr, make_lr_images(hr, given_lr, PREPARE), split, PREPARE)


def test_the_embedded_source_keeps_its_groups_in_one_split():
    names = ["astronaut", "camera", "chelsea", "coffee", "coins", "moon", "rocket", "text",
             "motorcycle_left", "motorcycle_right"]
    hr = dict.fromkeys(names, lambda: None)
    prepare = {**PREPARE, "split": {"train": 0.6, "val": 0.2, "test": 0.2}}
    separated = 0
    for seed in range(20):
        embedded = split_dataset(hr, {"source": "embedded"}, {**prepare, "seed": seed}).set_index("image")["split"]
        assert embedded["motorcycle_left"] == embedded["motorcycle_right"]
        folder = split_dataset(hr, {"source": "folder", "path": "photos"}, {**prepare, "seed": seed})
        folder = folder.set_index("image")["split"]
        separated += folder["motorcycle_left"] != folder["motorcycle_right"]  # a folder declares no groups
    assert separated > 0 and set(EMBEDDED_GROUPS) == {"motorcycle_left", "motorcycle_right"}


@pytest.mark.parametrize(("prepare", "message"), [
    ({"split": {"train": 0.8, "val": 0.19, "test": 0.1}}, r"prepare.split: the fractions sum to 1.09"),
    ({"split": {"train": 0.9, "val": 0.0, "test": 0.1}}, r"prepare.split.val is 0 and prepare.val_folder is not set"),
    ({"split": {"train": 0.9, "val": 0.1, "test": 0.0}}, r"prepare.split.test is 0"),
    ({"patch_size": 0}, r"prepare.patch_size must be a positive multiple of prepare.scale \(2\), got 0"),
    ({"stride": 33}, r"prepare.stride must be a positive multiple"),
])
def test_prepare_parameters_are_checked_before_any_image_is_read(tmp_path, folder, prepare, message):
    data = {"source": "folder", "path": str(folder), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    for file in (raw / "folder").rglob("*"):
        if file.is_file():
            file.write_bytes(b"")  # any read would fail
    with pytest.raises(ConfigError, match=message):
        select_images(raw, report, data, {**PREPARE, **prepare})


def test_a_paired_folder_with_every_low_resolution_size_wrong_is_one_clear_error(tmp_path):
    src = paired_folder(tmp_path, (64, 96), 4, "x4")  # made at x4, prepared at x2
    data = {"source": "paired_folder", "path": str(src), "max_pixels": 10_000_000}
    raw, report = run_download(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        select_images(raw, report, data, PREPARE)
    message = str(error.value)
    assert message.startswith(f"data.path: {src}: every pair is rejected (3)")
    assert "p0: high resolution 96x64, so 48x32 expected, but its low-resolution image is 24x16" in message
    assert message.endswith("they look like x4: set prepare.scale to 4")
