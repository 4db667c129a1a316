"""Tests of the ingest: every fetched file accepted or rejected with a reason, and its report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.data.ingest import ingest
from superres.data.sources import RawItem, fetch_folder
from superres.errors import ConfigError

LIMIT = 10_000_000


def _noise(seed: int, shape: tuple[int, ...] = (24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """A folder as users have them: good images, junk, a truncated file, repeats."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    Image.fromarray(_noise(0)).save(src / "a" / "x.png")
    Image.fromarray(_noise(1)).save(src / "b" / "x.png")  # same file name, other folder
    Image.fromarray(_noise(2)).save(src / "x.png")
    Image.fromarray(_noise(3)).save(src / "x.jpg", quality=90)  # same stem as x.png
    Image.fromarray(_noise(0)).save(src / "copy_of_ax.bmp")  # same pixels as a/x.png
    Image.fromarray(_noise(2)).save(src / "zz_copy_of_x.tif")  # same pixels as the renamed x.png
    Image.fromarray(_noise(4)[:, :, 0]).save(src / "gray.png")
    Image.fromarray(np.dstack([_noise(5), np.full((24, 32), 255, np.uint8)])).save(src / "opaque.png")
    (src / "notes.txt").write_text("not an image")
    (src / "README").write_text("no suffix")
    (src / "empty.png").touch()
    whole = (src / "x.png").read_bytes()
    (src / "truncated.png").write_bytes(whole[: len(whole) // 2])
    Image.fromarray(_noise(6, (200, 300, 3))).save(src / "large.png")
    return src


def test_ingest_messy_folder(messy_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    items = fetch_folder(messy_folder, tmp_path / "raw")
    with caplog.at_level(logging.INFO, logger="superres.data.ingest"):
        records = ingest(items, max_pixels=10_000)
    assert [r.origin for r in records] == [item.origin for item in items]  # one per item, same order
    by_origin = {Path(r.origin).relative_to(messy_folder).as_posix(): r for r in records}

    def verdict(name: str) -> tuple[str, str, str]:
        r = by_origin[name]
        return r.name, r.status, r.reason

    assert verdict("a/x.png") == ("a__x.png", "accepted", "")
    assert verdict("b/x.png") == ("b__x.png", "accepted", "")
    # Items come sorted by name, so x.jpg keeps its stem and x.png, the later, is renamed.
    assert verdict("x.jpg") == ("x.jpg", "accepted", "")
    assert verdict("x.png") == ("x-2.png", "accepted", "renamed from x.png (duplicate name)")
    assert verdict("copy_of_ax.bmp") == ("copy_of_ax.bmp", "rejected", "duplicate of a__x.png")
    assert verdict("zz_copy_of_x.tif") == ("zz_copy_of_x.tif", "rejected", "duplicate of x-2.png")
    assert verdict("gray.png") == ("gray.png", "accepted", "")
    assert verdict("opaque.png") == ("opaque.png", "accepted", "fully opaque alpha channel dropped")
    assert verdict("notes.txt") == ("notes.txt", "rejected", "not an image file (suffix .txt)")
    assert verdict("README") == ("README", "rejected", "not an image file (no suffix)")
    assert verdict("empty.png") == ("empty.png", "rejected", "empty file (0 bytes)")
    _, status, reason = verdict("truncated.png")
    assert status == "rejected" and reason.startswith("cannot decode the image") and "truncated" in reason
    _, status, reason = verdict("large.png")
    assert status == "rejected"
    assert reason == "image is 300 x 200 = 60000 pixels, above the limit of 10000 (data.max_pixels)"
    assert (by_origin["large.png"].width, by_origin["large.png"].height) == (300, 200)

    sizes = {n: (by_origin[n].width, by_origin[n].height, by_origin[n].channels) for n in ["x.png", "gray.png"]}
    assert sizes == {"x.png": (32, 24, 3), "gray.png": (32, 24, 1)}
    assert (by_origin["notes.txt"].width, by_origin["notes.txt"].channels) == (0, 0)

    accepted = [r for r in records if r.status == "accepted"]
    stems = [Path(r.name).stem.casefold() for r in accepted]
    assert len(stems) == len(set(stems))
    assert "ingest: accepted 6, rejected 7 (of 13 files)" in caplog.text
    assert "rejected notes.txt: not an image file" in caplog.text


def test_rename_skips_stems_already_taken(tmp_path: Path) -> None:
    items = []
    for i, name in enumerate(["x.png", "X.jpg", "x-2.png"]):
        path = tmp_path / name.replace(".", f"{i}.")
        Image.fromarray(_noise(10 + i)).save(path, format="PNG")
        items.append(RawItem(name, path, f"test:{name}"))
    records = ingest(items, max_pixels=LIMIT)
    assert [(r.name, r.status) for r in records] == [("x.png", "accepted"), ("X-3.jpg", "accepted"),
                                                     ("x-2.png", "accepted")]
    assert records[1].reason == "renamed from X.jpg (duplicate name)"


def test_duplicate_content_across_formats(tmp_path: Path) -> None:
    pixels = _noise(7)
    Image.fromarray(pixels).save(tmp_path / "one.png")
    Image.fromarray(pixels).save(tmp_path / "two.tif")
    Image.fromarray(pixels).save(tmp_path / "three.bmp")
    items = [RawItem(p.name, p, str(p)) for p in (tmp_path / "one.png", tmp_path / "two.tif", tmp_path / "three.bmp")]
    records = ingest(items, max_pixels=LIMIT)
    assert [(r.status, r.reason) for r in records] == [
        ("accepted", ""),
        ("rejected", "duplicate of one.png"),
        ("rejected", "duplicate of one.png"),
    ]


def test_same_pixels_other_shape_is_not_a_duplicate(tmp_path: Path) -> None:
    pixels = _noise(8, (4, 6, 1))[:, :, 0]
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(pixels.reshape(6, 4)).save(tmp_path / "b.png")
    items = [RawItem(n, tmp_path / n, n) for n in ("a.png", "b.png")]
    assert [r.status for r in ingest(items, max_pixels=LIMIT)] == ["accepted", "accepted"]


def test_ingest_missing_file_and_bad_limit(tmp_path: Path) -> None:
    records = ingest([RawItem("gone.png", tmp_path / "gone.png", "test")], max_pixels=LIMIT)
    assert (records[0].status, records[0].reason) == ("rejected", "file does not exist")
    with pytest.raises(ConfigError, match="data.max_pixels"):
        ingest([], max_pixels=0)
    assert ingest([], max_pixels=LIMIT) == []


def test_files_found_but_not_fetched_are_rejected_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(_noise(0)).save(src / "x.png")
    Image.fromarray(_noise(1)).save(src / ".hidden.png")  # a good image, but hidden
    (src / "loop").symlink_to("loop")
    items = fetch_folder(src, tmp_path / "raw")
    with caplog.at_level(logging.INFO, logger="superres.data.ingest"):
        records = ingest(items, max_pixels=LIMIT)
    verdicts = {r.name: (r.status, r.reason) for r in records}
    assert verdicts == {
        "x.png": ("accepted", ""),
        ".hidden.png": ("rejected", "hidden file (its name starts with '.'); rename it to use it"),
        "loop": ("rejected", "symbolic link loop (it points to loop, which leads back to it); remove the link"),
    }
    assert "rejected .hidden.png: hidden file" in caplog.text and "rejected loop: symbolic link loop" in caplog.text
    assert "ingest: accepted 1, rejected 2 (of 3 files)" in caplog.text
