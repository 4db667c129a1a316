"""Tests of the raw-image sources: scikit-image, folders, paired folders, URLs.

URLs are fetched against a real HTTP server on 127.0.0.1 serving a folder of tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import Server
from PIL import Image
from test_download import make_tar, make_zip

from superres.data.imageio import read_image
from superres.data.sources import (
    EMBEDDED_IMAGES,
    KNOWN_ARCHIVES,
    RawItem,
    fetch_embedded,
    fetch_folder,
    fetch_paired_folder,
    fetch_url,
)
from superres.errors import ConfigError, DownloadError

LIMIT = 10_000_000
GRAY_EMBEDDED = {"brick", "camera", "clock", "coins", "grass", "gravel", "moon", "page", "text"}


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- scikit-image ----------------------------------------------------------------------------


def test_fetch_embedded_all(tmp_path: Path) -> None:
    items = fetch_embedded(tmp_path / "raw")
    assert [item.name for item in items] == [f"{name}.png" for name in EMBEDDED_IMAGES]
    assert len(EMBEDDED_IMAGES) == 18 and "cell" not in EMBEDDED_IMAGES  # cell: nothing to super-resolve
    for item in items:
        assert item.path == tmp_path / "raw" / item.name
        assert item.origin.startswith("skimage.data.")
        array, notes = read_image(item.path, max_pixels=LIMIT)
        assert notes == [], item.name
        channels = 1 if item.path.stem in GRAY_EMBEDDED else 3
        assert array.ndim == 3 and array.shape[2] == channels, item.name
        assert min(array.shape[:2]) >= 150
        assert array.std() > 5, item.name  # a photograph, not a flat image


def test_fetch_embedded_is_lossless(tmp_path: Path) -> None:
    import skimage.data

    items = fetch_embedded(tmp_path, ["camera", "motorcycle_right", "chelsea"])
    assert [item.name for item in items] == ["camera.png", "motorcycle_right.png", "chelsea.png"]
    np.testing.assert_array_equal(read_image(items[0].path, max_pixels=LIMIT)[0][:, :, 0], skimage.data.camera())
    np.testing.assert_array_equal(read_image(items[1].path, max_pixels=LIMIT)[0], skimage.data.stereo_motorcycle()[1])
    np.testing.assert_array_equal(read_image(items[2].path, max_pixels=LIMIT)[0], skimage.data.chelsea())


def test_fetch_embedded_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.names: unknown embedded image\(s\) 'lena'.*valid names: astronaut"):
        fetch_embedded(tmp_path, ["camera", "lena"])
    assert not any(tmp_path.iterdir())  # nothing written before the check
    with pytest.raises(ConfigError, match="data.names is empty"):
        fetch_embedded(tmp_path, [])


# --- folders ---------------------------------------------------------------------------------


def test_fetch_folder_recursive(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    (src / "a").mkdir(parents=True)
    (src / "b" / "deep").mkdir(parents=True)
    (src / ".git").mkdir()
    (src / "a" / "x.png").write_bytes(png_bytes((255, 0, 0)))
    (src / "b" / "x.png").write_bytes(png_bytes((0, 255, 0)))
    (src / "b" / "deep" / "y.jpg").write_bytes(png_bytes((0, 0, 255)))  # a PNG with a .jpg name
    (src / "top.png").write_bytes(png_bytes((9, 9, 9)))
    (src / "notes.txt").write_text("hello")
    (src / ".DS_Store").write_bytes(b"\x00\x01")
    (src / "a" / ".hidden.png").write_bytes(png_bytes((1, 1, 1)))
    (src / ".git" / "config").write_text("[core]")

    dest = tmp_path / "raw"
    items = fetch_folder(src, dest)
    fetched = [item for item in items if not item.rejected]
    assert [item.name for item in fetched] == ["a__x.png", "b__deep__y.jpg", "b__x.png", "notes.txt", "top.png"]
    for item in fetched:
        relative = item.name.replace("__", "/")
        assert item.path == dest / relative
        assert item.path.read_bytes() == (src / relative).read_bytes()
        assert item.origin == str(src / relative)
        assert item.note == ""
    assert {p.name for p in dest.rglob("*") if p.is_file()} == {"x.png", "y.jpg", "top.png", "notes.txt"}
    # the hidden files are not copied, but they are items, with the reason
    hidden = {Path(item.origin).relative_to(src).as_posix(): item.rejected for item in items if item.rejected}
    assert hidden == {".DS_Store": "hidden file (its name starts with '.'); rename it to use it",
                      "a/.hidden.png": "hidden file (its name starts with '.'); rename it to use it",
                      ".git/config": "in the hidden folder .git/; move it out to use it"}


def test_fetch_folder_reports_links_it_cannot_follow(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (src / "a.png").write_bytes(png_bytes((1, 2, 3)))
    (tmp_path / "elsewhere" / "b.png").write_bytes(png_bytes((4, 5, 6)))
    (src / "link_to_a.png").symlink_to("a.png")                  # a link to a file: fetched
    (src / "linked").symlink_to(tmp_path / "elsewhere")          # a link to a folder: followed
    (src / "loop_1").symlink_to("loop_2")                        # a loop of two links
    (src / "loop_2").symlink_to("loop_1")
    (src / "sub" / "up").symlink_to("..")                        # a folder link back to a parent
    (src / "gone.png").symlink_to("nowhere.png")                 # broken
    os.mkfifo(src / "pipe")
    items = fetch_folder(src, tmp_path / "raw")
    verdicts = {Path(item.origin).relative_to(src).as_posix(): item.rejected for item in items}
    assert verdicts == {
        "a.png": "",
        "link_to_a.png": "",
        "linked/b.png": "",
        "loop_1": "symbolic link loop (it points to loop_2, which leads back to it); remove the link",
        "loop_2": "symbolic link loop (it points to loop_1, which leads back to it); remove the link",
        "sub/up": "symbolic link loop (it leads to .., a folder that holds it); remove the link",
        "gone.png": "broken symbolic link (its target nowhere.png does not exist); fix or remove the link",
        "pipe": "not a regular file (a named pipe)",
    }
    copied = {item.name: item.path for item in items if not item.rejected}
    assert copied["link_to_a.png"].read_bytes() == (src / "a.png").read_bytes()
    assert not copied["link_to_a.png"].is_symlink()  # a copy of the target, not of the link
    assert copied["linked__b.png"].read_bytes() == (tmp_path / "elsewhere" / "b.png").read_bytes()


def test_fetch_folder_flattened_name_collision(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.png").write_bytes(png_bytes((1, 2, 3)))
    (src / "a__x.png").write_bytes(png_bytes((4, 5, 6)))
    items = fetch_folder(src, tmp_path / "raw")
    names = [item.name for item in items]
    assert len(set(names)) == 2
    assert "a__x.png" in names and "a__x-2.png" in names
    renamed = next(item for item in items if item.name == "a__x-2.png")
    assert renamed.note == "renamed from a__x.png (name collision)"


def test_fetch_folder_missing_empty_and_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.path: folder .*nowhere does not exist"):
        fetch_folder(tmp_path / "nowhere", tmp_path / "raw")
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / ".DS_Store").write_text("x")
    with pytest.raises(ConfigError, match=r"data.path: folder .*empty has no files \(1 skipped: hidden"):
        fetch_folder(tmp_path / "empty", tmp_path / "raw")
    (tmp_path / "file.png").write_bytes(png_bytes((0, 0, 0)))
    with pytest.raises(ConfigError, match="is not a folder"):
        fetch_folder(tmp_path / "file.png", tmp_path / "raw")


def test_fetch_folder_with_dest_inside_src(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(png_bytes((1, 1, 1)))
    items = fetch_folder(tmp_path, tmp_path / "raw")
    assert [item.name for item in items] == ["x.png"]
    assert fetch_folder(tmp_path, tmp_path / "raw") == items  # the copies are not picked up


def _paired_tree(root: Path) -> None:
    for name in ["0001.png", "0002.png", "0003.png", "sub/0005.png"]:
        (root / "high_res" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "high_res" / name).write_bytes(png_bytes((10, 20, 30)))
    for name in ["0001.png", "0002x4.png", "0004.png", "sub/0005.jpg"]:
        (root / "low_res" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "low_res" / name).write_bytes(png_bytes((10, 20, 30), (4, 3)))


@pytest.mark.parametrize("layout", ["train", "direct"])
def test_fetch_paired_folder(tmp_path: Path, layout: str) -> None:
    src = tmp_path / "dataset"
    base = src / "train" if layout == "train" else src
    _paired_tree(base)
    dest = tmp_path / "raw"
    pairs, unmatched = fetch_paired_folder(src, dest)
    assert [(hr.name, lr.name) for hr, lr in pairs] == [
        ("0001.png", "0001.png"),
        ("0002.png", "0002x4.png"),
        ("sub__0005.png", "sub__0005.jpg"),
    ]
    for hr, lr in pairs:
        assert hr.path.parent.is_relative_to(dest / "hr") and hr.path.is_file()
        assert lr.path.parent.is_relative_to(dest / "lr") and lr.path.is_file()
    assert pairs[2][0].path == dest / "hr" / "sub" / "0005.png"
    assert unmatched == [
        (base / "high_res" / "0003.png", "no low-resolution file with stem '0003'"),
        (base / "low_res" / "0004.png", "no high-resolution file with stem '0004'"),
    ]
    assert not (dest / "hr" / "0003.png").exists()


def test_fetch_paired_folder_same_stem_twice(tmp_path: Path) -> None:
    _paired_tree(tmp_path / "d")
    (tmp_path / "d" / "high_res" / "0001.jpg").write_bytes(png_bytes((1, 1, 1)))
    pairs, unmatched = fetch_paired_folder(tmp_path / "d", tmp_path / "raw")
    assert "0001.png" not in [hr.name for hr, _ in pairs]
    reasons = dict(unmatched)
    assert "another high-resolution file has the stem '0001' (0001.jpg)" in reasons[tmp_path / "d/high_res/0001.png"]
    assert reasons[tmp_path / "d/low_res/0001.png"] == "no high-resolution file with stem '0001'"


def test_fetch_paired_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        fetch_paired_folder(tmp_path / "nowhere", tmp_path / "raw")
    (tmp_path / "d" / "high_res").mkdir(parents=True)
    with pytest.raises(ConfigError, match="has no high_res/ and low_res/ folders"):
        fetch_paired_folder(tmp_path / "d", tmp_path / "raw")
    (tmp_path / "d" / "low_res").mkdir()
    with pytest.raises(ConfigError, match="have no files"):
        fetch_paired_folder(tmp_path / "d", tmp_path / "raw")
    (tmp_path / "d" / "high_res" / "a.png").write_bytes(png_bytes((1, 1, 1)))
    (tmp_path / "d" / "low_res" / "b.png").write_bytes(png_bytes((1, 1, 1)))
    with pytest.raises(ConfigError, match="no file of .* has a partner"):
        fetch_paired_folder(tmp_path / "d", tmp_path / "raw")


IMAGES = {
    "photos/a.png": png_bytes((255, 0, 0)),
    "photos/b.png": png_bytes((0, 255, 0)),
    "photos/sub/c.png": png_bytes((0, 0, 255)),
    "photos/.DS_Store": b"\x00",
    "__MACOSX/photos/._a.png": b"\x00\x05\x16\x07",
}
EXPECTED_NAMES = ["photos__a.png", "photos__b.png", "photos__sub__c.png"]


@pytest.mark.parametrize(("filename", "maker"), [("images.zip", make_zip), ("images.tar.gz", make_tar)])
def test_fetch_url(server: Server, tmp_path: Path, filename: str, maker) -> None:
    archive = maker(server.root / filename, IMAGES)
    cache, dest = tmp_path / "cache", tmp_path / "raw"
    items = fetch_url(server.url(filename), dest, cache_dir=cache, sha256=sha256_of(archive))
    assert [item.name for item in items if not item.rejected] == EXPECTED_NAMES
    hidden = {item.name: item.rejected for item in items if item.rejected}  # listed, with the reason
    assert hidden == {"photos__.DS_Store": "hidden file (its name starts with '.'); rename it to use it",
                      "__MACOSX__photos__._a.png": "hidden file (its name starts with '.'); rename it to use it"}
    for item in items:
        if item.rejected:
            continue
        relative = item.name.replace("__", "/")
        assert item.path == dest / relative
        assert item.path.read_bytes() == IMAGES[relative]
        assert item.origin == f"{server.url(filename)}#{relative}"
        assert read_image(item.path, max_pixels=LIMIT)[0].shape == (6, 8, 3)
    assert (cache / filename).is_file()
    # A re-run into a fresh folder uses the cached archive.
    again = fetch_url(server.url(filename), tmp_path / "raw2", cache_dir=cache)
    assert [item.name for item in again if not item.rejected] == EXPECTED_NAMES
    assert server.requests[f"/{filename}"] == 1


def test_fetch_url_single_image(server: Server, tmp_path: Path) -> None:
    (server.root / "one.png").write_bytes(png_bytes((5, 6, 7)))
    items = fetch_url(server.url("one.png"), tmp_path / "raw", cache_dir=tmp_path / "cache")
    assert items == [RawItem("one.png", tmp_path / "raw" / "one.png", server.url("one.png"))]
    assert items[0].path.read_bytes() == png_bytes((5, 6, 7))


def test_fetch_url_not_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a URL nor a known archive name.*div2k_train_hr"):
        fetch_url("div2k_everything", tmp_path / "raw", cache_dir=tmp_path / "cache")


def test_known_archives() -> None:
    assert KNOWN_ARCHIVES["div2k_train_hr"]["url"] == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip"
    assert KNOWN_ARCHIVES["div2k_valid_hr"]["url"] == "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"


def test_fetch_url_with_traversal_archive(server: Server, tmp_path: Path) -> None:
    make_zip(server.root / "evil.zip", {"a.png": png_bytes((1, 1, 1)), "../../evil.png": b"x"})
    with pytest.raises(DownloadError, match="points outside the archive"):
        fetch_url(server.url("evil.zip"), tmp_path / "raw", cache_dir=tmp_path / "cache")
    assert not list(tmp_path.rglob("evil.png"))
