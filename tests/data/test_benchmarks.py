"""Tests of the benchmark test sets: the checked ``benchmarks`` parameters, LR/HR pairs written
from a local folder and from a known archive served by a real HTTP server on 127.0.0.1, the
report of every file found, and reading the pairs back."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SET5, Server
from PIL import Image

from superres.data.benchmarks import (
    KNOWN_BENCHMARKS,
    REPORT_FILE,
    Benchmark,
    benchmark_plan,
    load_pairs,
    split_key,
    write_benchmarks,
)
from superres.data.degrade import bicubic_resize, degrade, modcrop
from superres.data.imageio import read_image
from superres.errors import ConfigError, DownloadError, InvalidImageError
from superres.metrics import image_metrics

LIMIT = 10_000_000


def photo(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A uint8 H x W x C image with some structure (a gradient plus noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 160, width)[None, :, None] + np.linspace(0, 60, height)[:, None, None]
    return np.clip(ramp + rng.integers(0, 36, (height, width, channels)), 0, 255).astype(np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)
    return path


def read(path: Path) -> np.ndarray:
    return read_image(path, max_pixels=LIMIT)[0]


def assert_pair(root: Path, key: str, name: str, source: np.ndarray, scale: int) -> None:
    """``root/key/{hr,lr}/name.png`` are the modcropped source and exactly its degraded copy."""
    hr, lr = read(root / key / "hr" / f"{name}.png"), read(root / key / "lr" / f"{name}.png")
    expected = modcrop(source, scale)
    assert hr.shape == expected.shape and hr.shape[0] % scale == 0 and hr.shape[1] % scale == 0
    np.testing.assert_array_equal(hr, expected)
    wanted = degrade(expected, scale)
    assert lr.shape == wanted.shape == (hr.shape[0] // scale, hr.shape[1] // scale, hr.shape[2])
    assert lr.tobytes() == wanted.tobytes()


def png_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.png")}


# --- the plan --------------------------------------------------------------------------------


def test_plan_of_sets_and_folders(tmp_path: Path) -> None:
    plan, scales = benchmark_plan({"sets": ["set14", "set5"], "folders": {"mine": tmp_path, "home_2": "~/pics"}}, 4)
    assert plan == [
        Benchmark("set14", url=KNOWN_BENCHMARKS["set14"]["url"]),
        Benchmark("set5", url=KNOWN_BENCHMARKS["set5"]["url"]),
        Benchmark("mine", folder=tmp_path),
        Benchmark("home_2", folder=Path.home() / "pics"),
    ]
    folders = ["benchmarks.folders.mine", "benchmarks.folders.home_2"]
    assert [b.parameter for b in plan] == ["benchmarks.sets", "benchmarks.sets", *folders]
    assert scales == [4]


@pytest.mark.parametrize(("scales", "default", "expected"), [(None, 4, [4]), (None, 2, [2]), (3, 4, [3]),
                                                             ([4, 2, 4], 3, [2, 4]), ([8, 2, 3, 4], 4, [2, 3, 4, 8])])
def test_plan_scales(scales: object, default: int, expected: list[int]) -> None:
    assert benchmark_plan({"sets": ["set5"], "scales": scales}, default)[1] == expected


def test_plan_of_nothing() -> None:
    assert benchmark_plan(None, 4) == ([], [4])
    assert benchmark_plan({"sets": None, "folders": None}, 2) == ([], [2])


@pytest.mark.parametrize("scales", [5, "two", ["two"], [2, 5], [], "24", [2.5], True])
def test_plan_bad_scales(scales: object) -> None:
    with pytest.raises(ConfigError, match=r"benchmarks.scales must be null or a list of 2, 3, 4 and 8, got "):
        benchmark_plan({"sets": ["set5"], "scales": scales}, 4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sets": ["set5"], "scale": [2]}, r"benchmarks: unknown key\(s\) scale; known: sets, folders, scales"),
        ({"sets": ["set6"]},
         r"benchmarks.sets: 'set6' is not a known benchmark; known: set5, set14, bsd100, urban100, manga109"),
        ({"sets": ["Set5"]}, r"'Set5' is not a known benchmark.*benchmarks.folders"),
        ({"sets": [{"set5": "x"}]}, r"\{'set5': 'x'\} is not a known benchmark"),
        ({"sets": "set5"}, r"benchmarks.sets must be a list of names \(set5, set14"),
        ({"folders": ["photos"]}, r"benchmarks.folders must map a name to a folder"),
        ({"folders": {"My Photos": "p"}}, r"benchmarks.folders: 'My Photos' is not a usable benchmark name"),
        ({"folders": {"mine_x4": "p"}}, r"benchmarks.folders: 'mine_x4' is not a usable.*not ending in _x<digits>"),
        ({"folders": {"4k": "p"}}, r"'4k' is not a usable benchmark name"),
        ({"folders": {7: "p"}}, r"7 is not a usable benchmark name"),
        ({"folders": {"mine": None}}, r"benchmarks.folders.mine: give a folder of HR images"),
        ({"sets": ["set5"], "folders": {"set5": "p"}}, r"benchmarks: set5 named twice \(in sets and in folders\)"),
    ],
)
def test_plan_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        benchmark_plan(params, 4)


@pytest.mark.parametrize("is_file", [False, True])
def test_missing_folder_names_its_parameter(tmp_path: Path, is_file: bool) -> None:
    folder = tmp_path / "photos"
    if is_file:
        folder.write_text("a file, not a folder")
    plan, scales = benchmark_plan({"folders": {"mine": folder}}, 4)
    with pytest.raises(ConfigError, match=r"benchmarks.folders.mine: .*photos is not a folder; give a folder of HR"):
        write_benchmarks(tmp_path / "out", plan, scales, max_pixels=LIMIT)
    assert not (tmp_path / "out").exists()


# --- a local folder --------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, np.ndarray]:
    """A folder of HR images of every kind ``write_benchmarks`` has to tell apart."""
    images = {
        "photo.png": photo(30, 27, seed=1),  # kept at x2 (30 x 26) and x4 (28 x 24)
        "gray.png": photo(24, 33, channels=1, seed=2),
        "small.png": photo(17, 18, seed=3),  # 16 px once modcropped: enough for x2 (15), not x4 (19)
        "tiny.png": photo(12, 40, seed=4),  # too small at every scale
        "a/leaf.png": photo(20, 20, seed=5),
        "b/leaf.png": photo(20, 20, seed=6),
    }
    for name, array in images.items():
        save(tmp_path / "hr" / name, array)
    (tmp_path / "hr" / "notes.txt").write_text("not an image")
    return images


def test_folder_benchmark(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    root = tmp_path / "bench"
    plan, scales = benchmark_plan({"folders": {"mine": tmp_path / "hr"}, "scales": [4, 2]}, 4)
    report = write_benchmarks(root, plan, scales, max_pixels=LIMIT)

    assert sorted(p.name for p in root.iterdir()) == ["mine_x2", "mine_x4", REPORT_FILE]
    names = {"photo.png": "photo", "gray.png": "gray", "small.png": "small", "a/leaf.png": "a__leaf",
             "b/leaf.png": "b__leaf"}
    for scale, expected in ((2, set(names.values())), (4, set(names.values()) - {"small"})):
        assert png_names(root / f"mine_x{scale}" / "hr") == png_names(root / f"mine_x{scale}" / "lr") == expected
    for source, name in names.items():
        for scale in (2, 4) if name != "small" else (2,):
            assert_pair(root, f"mine_x{scale}", name, folder[source], scale)
    assert read(root / "mine_x4" / "hr" / "gray.png").shape == (24, 32, 1)  # gray stays one channel
    assert read(root / "mine_x4" / "lr" / "gray.png").shape == (6, 8, 1)

    np.testing.assert_array_equal(pd.read_csv(root / REPORT_FILE, keep_default_na=False).to_numpy(),
                                  report.fillna("").to_numpy())
    rows = report.set_index("image")
    assert len(report) == 7 and set(report["benchmark"]) == {"mine"}
    assert rows.loc["photo", "status"] == "kept" and rows.loc["photo", "reason"] == ""
    assert rows.loc["photo", ["width", "height", "channels"]].tolist() == [27, 30, 3]
    assert rows.loc["gray", ["width", "height", "channels"]].tolist() == [33, 24, 1]
    assert rows.loc["small", "status"] == "kept" and rows.loc["small", "reason"] == "too small for x4"
    assert rows.loc["tiny", "status"] == "rejected"
    assert rows.loc["tiny", "reason"] == "smaller than the 11x11 SSIM window once the border is shaved"
    assert rows.loc["notes", "status"] == "rejected" and "not an image file" in rows.loc["notes", "reason"]
    assert rows.loc["a__leaf", "origin"].endswith(str(Path("hr", "a", "leaf.png")))


def test_a_scale_too_large_for_some_images(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    """At x8 only the images with 27 px (11 + 2 * 8) after modcrop are kept; the others say so."""
    save(tmp_path / "hr" / "big.png", photo(40, 48, seed=9))
    plan, scales = benchmark_plan({"folders": {"mine": tmp_path / "hr"}, "scales": [2, 8]}, 4)
    report = write_benchmarks(tmp_path / "bench", plan, scales, max_pixels=LIMIT).set_index("image")
    assert png_names(tmp_path / "bench" / "mine_x8" / "hr") == {"big"}
    assert_pair(tmp_path / "bench", "mine_x8", "big", read(tmp_path / "hr" / "big.png"), 8)
    assert report.loc["big", "reason"] == ""
    assert report.loc["photo", "reason"] == "too small for x8"


@pytest.mark.parametrize(("files", "expected"), [
    (["x.png", "x.bmp"], {"x", "x-2"}),  # one stem, two formats, in one folder
    (["X.png", "x.bmp"], {"X", "x-2"}),  # names that only differ in case would clash on some file systems
    (["a/leaf.png", "a__leaf.png", "b/leaf.png"], {"a__leaf", "a__leaf-2", "b__leaf"}),
])
def test_clashing_names_stay_distinct(tmp_path: Path, files: list[str], expected: set[str]) -> None:
    for seed, name in enumerate(files):
        save(tmp_path / "hr" / name, photo(24, 24, seed=seed))
    plan, scales = benchmark_plan({"folders": {"mine": tmp_path / "hr"}}, 2)
    report = write_benchmarks(tmp_path / "bench", plan, scales, max_pixels=LIMIT)
    hr = tmp_path / "bench" / "mine_x2" / "hr"
    assert png_names(hr) == set(report["image"]) == expected
    assert {read(hr / f"{n}.png").tobytes() for n in expected} == {read(tmp_path / "hr" / f).tobytes() for f in files}


def test_folder_with_no_usable_image(tmp_path: Path) -> None:
    save(tmp_path / "hr" / "tiny.png", photo(14, 14))
    (tmp_path / "hr" / "readme.md").write_text("nothing here")
    plan, scales = benchmark_plan({"folders": {"mine": tmp_path / "hr"}}, 2)
    with pytest.raises(ConfigError, match=r"benchmarks.folders.mine: mine has no usable image \(2 files found"):
        write_benchmarks(tmp_path / "bench", plan, scales, max_pixels=LIMIT)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "hr").mkdir()
    plan, scales = benchmark_plan({"folders": {"mine": tmp_path / "hr"}}, 2)
    with pytest.raises(ConfigError, match=r"benchmarks.folders.mine: .*has no files"):
        write_benchmarks(tmp_path / "bench", plan, scales, max_pixels=LIMIT)


# --- a known benchmark, downloaded -----------------------------------------------------------


def make_set5_archive(server: Server, tmp_path: Path) -> dict[str, np.ndarray]:
    """``Set5_HR.tar.gz`` on the server, laid out as the public archive: ``Set5_HR/<image>.png``."""
    images = {"baby": photo(32, 36, seed=1), "bird": photo(26, 22, seed=2)}
    for name, array in images.items():
        save(tmp_path / "src" / "Set5_HR" / f"{name}.png", array)
    with tarfile.open(server.root / "Set5_HR.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "Set5_HR", arcname="Set5_HR")
    return images


def test_known_benchmark_downloaded_and_cached(tmp_path: Path, server: Server, monkeypatch, caplog) -> None:
    images = make_set5_archive(server, tmp_path)
    monkeypatch.setitem(KNOWN_BENCHMARKS["set5"], "url", server.url("Set5_HR.tar.gz"))
    plan, scales = benchmark_plan({"sets": ["set5"], "scales": [2, 4]}, 4)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="superres.data.benchmarks"):
        report = write_benchmarks(tmp_path / "first", plan, scales, max_pixels=LIMIT, cache_dir=cache)
    assert "benchmark set5: 2 images used, the published set has 5" in caplog.text
    assert server.requests["/Set5_HR.tar.gz"] == 1
    assert (cache / "Set5_HR.tar.gz").read_bytes() == (server.root / "Set5_HR.tar.gz").read_bytes()
    for scale in scales:
        assert png_names(tmp_path / "first" / f"set5_x{scale}" / "hr") == {"baby", "bird"}
        for name, array in images.items():
            assert_pair(tmp_path / "first", f"set5_x{scale}", name, array, scale)
    assert report["status"].tolist() == ["kept", "kept"]
    assert report["origin"].tolist() == [server.url(f"Set5_HR.tar.gz#Set5_HR/{n}.png") for n in ("baby", "bird")]

    again = write_benchmarks(tmp_path / "second", plan, scales, max_pixels=LIMIT, cache_dir=cache)
    assert server.requests["/Set5_HR.tar.gz"] == 1  # the cached archive is reused
    pd.testing.assert_frame_equal(again, report)
    for scale in scales:
        for name in images:
            for side in ("hr", "lr"):
                part = Path(f"set5_x{scale}", side, f"{name}.png")
                np.testing.assert_array_equal(read(tmp_path / "second" / part), read(tmp_path / "first" / part))


def test_known_benchmark_not_found(tmp_path: Path, server: Server, monkeypatch) -> None:
    monkeypatch.setitem(KNOWN_BENCHMARKS["set5"], "url", server.url("missing.tar.gz"))
    plan, scales = benchmark_plan({"sets": ["set5"]}, 4)
    with pytest.raises(DownloadError, match=r"^benchmark set5: .*HTTP 404.*\(or leave it out of benchmarks.sets\)$"):
        write_benchmarks(tmp_path / "bench", plan, scales, max_pixels=LIMIT, cache_dir=tmp_path / "cache")
    assert server.requests["/missing.tar.gz"] == 1
    assert not (tmp_path / "bench").exists()


# --- reading the pairs back ------------------------------------------------------------------


def test_load_pairs(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    root = tmp_path / "bench"
    folders = {"mine": tmp_path / "hr", "other": tmp_path / "hr" / "a"}
    plan, scales = benchmark_plan({"folders": folders, "scales": [2, 4]}, 4)
    write_benchmarks(root, plan, scales, max_pixels=LIMIT)
    pairs = load_pairs(root)
    assert list(pairs) == ["mine_x2", "mine_x4", "other_x2", "other_x4"]
    assert list(pairs["mine_x2"]) == ["a__leaf", "b__leaf", "gray", "photo", "small"]
    assert list(pairs["other_x4"]) == ["leaf"]
    for key, images in pairs.items():
        for name, (load_lr, load_hr) in images.items():
            np.testing.assert_array_equal(load_lr(), read(root / key / "lr" / f"{name}.png"))
            np.testing.assert_array_equal(load_hr(), read(root / key / "hr" / f"{name}.png"))
            assert load_hr().shape[0] == load_lr().shape[0] * split_key(key)[1]

    lazy = load_pairs(root)  # nothing is decoded until asked for
    (root / "mine_x4" / "hr" / "photo.png").write_bytes(b"no longer a png")
    with pytest.raises(InvalidImageError):
        lazy["mine_x4"]["photo"][1]()
    np.testing.assert_array_equal(lazy["mine_x4"]["photo"][0](), read(root / "mine_x4" / "lr" / "photo.png"))


def test_load_pairs_of_nothing(tmp_path: Path) -> None:
    assert load_pairs(tmp_path / "missing") == {}
    (tmp_path / "stray").mkdir()
    (tmp_path / REPORT_FILE).write_text("benchmark\n")
    assert load_pairs(tmp_path) == {}


def test_split_key() -> None:
    assert split_key("set5_x4") == ("set5", 4)
    assert split_key("my_x2_photos_x3") == ("my_x2_photos", 3)
    for bad in ("set5", "set5_x", "set5_4", "set5_xa", "_x4"):
        with pytest.raises(ValueError, match="is not a benchmark key"):
            split_key(bad)


# --- the real Set5 ---------------------------------------------------------------------------

DATASETS = SET5.parent
# The published bicubic PSNR-Y (Kim et al. 2016, Lim et al. 2017): {set: {scale: dB}}, and the image count.
PUBLISHED_BICUBIC_PSNR_Y = {"Set5": ({2: 33.66, 4: 28.42}, 5), "Set14": ({2: 30.24, 4: 26.00}, 14)}


@pytest.mark.parametrize("folder", sorted(PUBLISHED_BICUBIC_PSNR_Y))
def test_a_folder_benchmark_reproduces_the_published_bicubic_psnr(tmp_path: Path, folder: str) -> None:
    """Set14 holds a gray image (bridge): measured on its one channel, as the literature does."""
    if not (DATASETS / folder).is_dir():
        pytest.skip(f"{folder} not found at {DATASETS / folder} (set SUPERRES_BENCHMARKS to its parent)")
    published, count = PUBLISHED_BICUBIC_PSNR_Y[folder]
    plan, scales = benchmark_plan({"folders": {"local": DATASETS / folder}, "scales": sorted(published)}, 4)
    write_benchmarks(tmp_path, plan, scales, max_pixels=LIMIT)
    pairs = load_pairs(tmp_path)
    assert list(pairs) == [f"local_x{s}" for s in sorted(published)]
    for key, images in pairs.items():
        scale = split_key(key)[1]
        assert len(images) == count
        psnr = [image_metrics(bicubic_resize(load_lr(), scale), load_hr(), scale)["psnr_y"]
                for load_lr, load_hr in images.values()]
        assert np.mean(psnr) == pytest.approx(published[scale], abs=0.03)
