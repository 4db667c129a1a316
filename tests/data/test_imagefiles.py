"""The user's image files: which are collected, their formats, alpha and metadata kept through a read and a write.

``superres upscale`` runs them end to end in test_commands.py; these call the library directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.data.imagefiles import FORMATS, collect_images, format_of, read_source, write_result
from superres.errors import InvalidImageError


def test_collect_images_keeps_subfolders_and_names(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt"):
        (tmp_path / "in" / name).write_bytes(b"")
    single = tmp_path / "single.tif"
    found = collect_images([tmp_path / "in", single])
    assert found == [(tmp_path / "in" / "a.JPG", Path("a.JPG")), (tmp_path / "in" / "b.png", Path("b.png")),
                     (tmp_path / "in" / "sub" / "c.webp", Path("sub/c.webp")), (single, Path("single.tif"))]


@pytest.mark.parametrize(("name", "fmt"), [("a.jpeg", "jpg"), ("a.TIF", "tiff"), ("a.webp", "webp"),
                                           ("a.bmp", "png"), ("a", "png")])
def test_format_of_keeps_a_known_format_else_png(name: str, fmt: str) -> None:
    assert format_of(Path(name)) == fmt and fmt in FORMATS


def test_alpha_and_metadata_survive_a_read_and_a_write(tmp_path: Path) -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 128
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.fromarray(rgba).save(tmp_path / "in.png", exif=exif.tobytes(), icc_profile=b"not checked by PNG")
    source = read_source(tmp_path / "in.png", max_pixels=1000)
    assert source.pixels.shape == (6, 8, 3) and source.alpha is not None and (source.alpha == 128).all()
    assert source.icc_profile == b"not checked by PNG" and source.exif

    doubled = np.repeat(np.repeat(source.pixels, 2, axis=0), 2, axis=1)
    write_result(tmp_path / "out.png", source, [(0, doubled[:5]), (5, doubled[5:])], (16, 12), "png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "RGBA" and out.size == (16, 12) and out.info.get("icc_profile") == source.icc_profile
        np.testing.assert_array_equal(np.asarray(out)[..., :3], doubled)
    write_result(tmp_path / "out.jpg", source, [(0, doubled)], (16, 12), "jpg")  # no alpha: composited on white
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_read_source_names_the_setting_that_holds_its_limit(tmp_path: Path) -> None:
    Image.new("L", (40, 30)).save(tmp_path / "big.png")
    with pytest.raises(InvalidImageError, match=r"above the limit of 100 \(--limit\)"):
        read_source(tmp_path / "big.png", max_pixels=100, setting="--limit")
    assert read_source(tmp_path / "big.png", max_pixels=1200).pixels.shape == (30, 40, 1)
