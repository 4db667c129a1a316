"""Tests of image reading and writing, each on a real file of its kind made in tmp_path."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from superres.data.imageio import IMAGE_SUFFIXES, image_size, read_image, write_png
from superres.errors import ConfigError, InvalidImageError

LIMIT = 10_000_000


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def craft_png(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    """A PNG written byte by byte: IHDR with the given header, one IDAT of ``raw_rows``, IEND."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw_rows))
        + _png_chunk(b"IEND", b"")
    )


def mode_of(path: Path) -> str:
    """The mode Pillow opens ``path`` in: checks that a test file is of the kind it means to be."""
    with Image.open(path) as img:
        return img.mode


@pytest.fixture
def noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


# --- files that cannot be used ---------------------------------------------------------------


def test_random_bytes_with_png_suffix(tmp_path: Path) -> None:
    path = tmp_path / "random.png"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidImageError, match="random.png.*not a supported image file") as info:
        read_image(path, max_pixels=LIMIT)
    assert "convert it to PNG or remove it" in str(info.value)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file(tmp_path: Path, noise: np.ndarray, suffix: str) -> None:
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(noise).save(whole)
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError, match=rf"cut\{suffix}: cannot decode the image.*truncated") as info:
        read_image(cut, max_pixels=LIMIT)
    assert "re-download or re-export" in str(info.value)
    assert "cannot decode the image" in info.value.reason
    read_image(whole, max_pixels=LIMIT)  # the uncut file is fine


def test_truncated_file_refused_even_if_pillow_is_told_to_load_them(
    tmp_path: Path, noise: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    whole = tmp_path / "whole.jpg"
    Image.fromarray(noise).save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InvalidImageError, match="truncated"):
        read_image(cut, max_pixels=LIMIT)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(InvalidImageError, match=r"empty.png: empty file \(0 bytes\)"):
        read_image(path, max_pixels=LIMIT)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are not pixels\n" * 20)
    with pytest.raises(InvalidImageError, match="notes.jpg.*not a supported image file"):
        read_image(path, max_pixels=LIMIT)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="nothing.png: file does not exist"):
        read_image(tmp_path / "nothing.png", max_pixels=LIMIT)
    with pytest.raises(InvalidImageError, match="not a regular file"):
        read_image(tmp_path, max_pixels=LIMIT)


def test_format_outside_the_supported_list(tmp_path: Path) -> None:
    path = tmp_path / "icon.png"  # an ICO file, whatever its suffix says
    Image.new("RGB", (16, 16), (1, 2, 3)).save(path, format="ICO")
    with pytest.raises(InvalidImageError, match="not a supported image file"):
        read_image(path, max_pixels=LIMIT)


def test_float_image_refused(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)).save(path)
    assert mode_of(path) == "F"
    with pytest.raises(InvalidImageError, match="float.tif: floating-point pixels"):
        read_image(path, max_pixels=LIMIT)


def test_32_bit_values_above_16_bits_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.tif"
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(path)
    assert mode_of(path) == "I"
    with pytest.raises(InvalidImageError, match=r"deep.tif: 32-bit integer pixels with values 0\.\.70000"):
        read_image(path, max_pixels=LIMIT)


def test_bad_max_pixels(tmp_path: Path, noise: np.ndarray) -> None:
    path = tmp_path / "ok.png"
    Image.fromarray(noise).save(path)
    for bad in (0, -5, 1.5, True, None):
        with pytest.raises(ConfigError, match="data.max_pixels"):
            read_image(path, max_pixels=bad)  # type: ignore[arg-type]


# --- the pixel limit -------------------------------------------------------------------------


def test_image_above_max_pixels(tmp_path: Path, noise: np.ndarray) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(noise).save(path)
    with pytest.raises(InvalidImageError) as info:
        read_image(path, max_pixels=64 * 48 - 1)
    message = str(info.value)
    assert "big.png" in message
    assert "64 x 48 = 3072 pixels, above the limit of 3071 (data.max_pixels)" in message
    assert "raise data.max_pixels or resize the image" in message
    array, _ = read_image(path, max_pixels=64 * 48)  # exactly at the limit is fine
    assert array.shape == (48, 64, 3)
    with pytest.raises(InvalidImageError, match=r"limit of 3071 \(--max-pixels\); raise --max-pixels or"):
        read_image(path, max_pixels=64 * 48 - 1, setting="--max-pixels")  # a command names its own option
    with pytest.raises(ConfigError, match="--max-pixels must be a positive integer"):
        read_image(path, max_pixels=0, setting="--max-pixels")


def test_crafted_header_claiming_a_huge_image(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(craft_png(20000, 20000, 8, 0, b"\x00" * 100))
    assert path.stat().st_size < 200
    default = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InvalidImageError, match="20000 x 20000 = 400000000 pixels, above the limit of 40000000"):
        read_image(path, max_pixels=40_000_000)
    assert default == Image.MAX_IMAGE_PIXELS
    # Above Pillow's own default limit, image_size still reads the header without complaint.
    assert image_size(path) == (20000, 20000)
    assert default == Image.MAX_IMAGE_PIXELS


def test_pillow_limit_does_not_preempt_max_pixels(
    tmp_path: Path, noise: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 64 x 48
    path = tmp_path / "ok.png"
    Image.fromarray(noise).save(path)
    with pytest.raises(Image.DecompressionBombError), open(path, "rb") as f:
        Image.open(f)
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array, noise)
    assert notes == []
    assert Image.MAX_IMAGE_PIXELS == 100


# --- modes -----------------------------------------------------------------------------------


def test_rgb_png_round_trip(tmp_path: Path, noise: np.ndarray) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(noise).save(path)
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, noise)
    assert notes == []


def test_gray_l(tmp_path: Path) -> None:
    gray = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    assert mode_of(path) == "L"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (48, 64, 1)
    np.testing.assert_array_equal(array[:, :, 0], gray)
    assert notes == []


def test_16_bit_gray_png(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535], [128, 129, 65278, 1000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert mode_of(path) == "I;16"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (2, 4, 1) and array.dtype == np.uint8
    np.testing.assert_array_equal(array[:, :, 0], [[0, 1, 128, 255], [0, 1, 254, 4]])
    assert notes == ["16-bit scaled to 8-bit"]


def test_32_bit_integer_within_16_bits(tmp_path: Path) -> None:
    path = tmp_path / "int.tif"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32)).save(path)
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array[:, :, 0], [[0, 128, 255]])
    assert notes == ["16-bit scaled to 8-bit"]


def test_16_bit_rgb_png_is_noted(tmp_path: Path) -> None:
    row = b"\x00" + struct.pack(">6H", 65535, 0, 32768, 256, 511, 1)
    path = tmp_path / "rgb16.png"
    path.write_bytes(craft_png(2, 1, 16, 2, row))
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (1, 2, 3)
    np.testing.assert_array_equal(array[0], [[255, 0, 128], [1, 1, 0]])
    assert notes == ["16-bit per channel reduced to 8-bit (high byte kept)"]


def test_palette(tmp_path: Path) -> None:
    img = Image.new("P", (3, 2))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    img.putdata([0, 1, 2, 2, 1, 0])
    path = tmp_path / "palette.png"
    img.save(path)
    assert mode_of(path) == "P"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (2, 3, 3)
    np.testing.assert_array_equal(array[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    np.testing.assert_array_equal(array[1], [[0, 0, 255], [0, 255, 0], [255, 0, 0]])
    assert notes == ["palette converted to RGB"]


def test_palette_with_transparent_index(tmp_path: Path) -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 100, 50])
    img.putdata([0, 1])
    path = tmp_path / "palette.gif"
    img.save(path, transparency=0)
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array[0], [[255, 255, 255], [200, 100, 50]])
    assert notes == ["palette converted to RGB", "alpha composited on white"]


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array(
        [[[255, 0, 0, 0], [0, 0, 0, 128]], [[10, 20, 30, 255], [100, 200, 50, 51]]],
        dtype=np.uint8,
    )
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    assert mode_of(path) == "RGBA"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (2, 2, 3)
    # colour * a/255 + 255 * (1 - a/255), rounded
    expected = [[[255, 255, 255], [127, 127, 127]], [[10, 20, 30], [224, 244, 214]]]
    np.testing.assert_array_equal(array, expected)
    assert notes == ["alpha composited on white"]


def test_opaque_rgba_just_drops_alpha(tmp_path: Path, noise: np.ndarray) -> None:
    rgba = np.concatenate([noise, np.full((*noise.shape[:2], 1), 255, np.uint8)], axis=2)
    path = tmp_path / "opaque.png"
    Image.fromarray(rgba).save(path)
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array, noise)
    assert notes == ["fully opaque alpha channel dropped"]


def test_gray_with_alpha_stays_gray(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    Image.fromarray(np.array([[[0, 0], [100, 255], [0, 128]]], dtype=np.uint8), mode="LA").save(path)
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (1, 3, 1)
    np.testing.assert_array_equal(array[0, :, 0], [255, 100, 127])
    assert notes == ["alpha composited on white"]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    img = Image.new("CMYK", (32, 16), (0, 0, 0, 0))  # white
    img.paste((255, 0, 0, 0), (0, 0, 16, 16))  # cyan on the left half
    path = tmp_path / "cmyk.jpg"
    img.save(path, quality=95)
    assert mode_of(path) == "CMYK"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (16, 32, 3)
    np.testing.assert_allclose(array[8, 4], [0, 255, 255], atol=8)
    np.testing.assert_allclose(array[8, 28], [255, 255, 255], atol=8)
    assert notes == ["CMYK converted to RGB"]


def test_lab_tiff(tmp_path: Path) -> None:
    path = tmp_path / "lab.tif"
    Image.new("LAB", (4, 2), (255, 128, 128)).save(path)  # L = 100: white
    assert mode_of(path) == "LAB"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (2, 4, 3)
    assert (array >= 250).all()
    assert notes == ["LAB converted to RGB"]


def test_one_bit(tmp_path: Path) -> None:
    bits = np.zeros((4, 6), dtype=bool)
    bits[1, 2] = bits[3, 5] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    assert mode_of(path) == "1"
    array, notes = read_image(path, max_pixels=LIMIT)
    assert array.shape == (4, 6, 1)
    np.testing.assert_array_equal(array[:, :, 0], bits.astype(np.uint8) * 255)
    assert notes == ["1-bit converted to gray"]


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [
        (6, (0, -1)),  # rotate 90 degrees clockwise to show: stored top-left lands top-right
        (8, (-1, 0)),  # rotate 90 degrees counter-clockwise: stored top-left lands bottom-left
        (3, (-1, -1)),  # rotate 180 degrees: stored top-left lands bottom-right
    ],
)
def test_exif_orientation(tmp_path: Path, orientation: int, corner: tuple[int, int]) -> None:
    stored = np.full((40, 64, 3), 255, dtype=np.uint8)  # 64 wide, 40 high
    stored[:16, :16] = (255, 0, 0)  # a red square in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    array, notes = read_image(path, max_pixels=LIMIT)
    assert notes == [f"EXIF orientation {orientation} applied"]
    assert array.shape == ((40, 64, 3) if orientation == 3 else (64, 40, 3))
    rows = slice(0, 12) if corner[0] == 0 else slice(-12, None)
    cols = slice(0, 12) if corner[1] == 0 else slice(-12, None)
    np.testing.assert_allclose(array[rows, cols].mean(axis=(0, 1)), [255, 0, 0], atol=12)
    # the opposite corner is white
    rows = slice(-12, None) if corner[0] == 0 else slice(0, 12)
    cols = slice(-12, None) if corner[1] == 0 else slice(0, 12)
    np.testing.assert_allclose(array[rows, cols].mean(axis=(0, 1)), [255, 255, 255], atol=12)
    assert image_size(path) == (64, 40)  # the stored size, from the header


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array[0, 0], [255, 0, 0])
    assert notes == ["palette converted to RGB", "first of 3 frames used"]


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".webp", ".ppm"])
def test_other_lossless_formats(tmp_path: Path, noise: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"image{suffix}"
    Image.fromarray(noise).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array, noise)
    assert notes == []


def test_pgm_is_gray(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "image.pgm"
    Image.fromarray(gray).save(path)
    array, notes = read_image(path, max_pixels=LIMIT)
    np.testing.assert_array_equal(array[:, :, 0], gray)
    assert notes == []


# --- writing, sizes, suffixes ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_write_png_round_trip(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "deep" / "er" / "out.png"
    write_png(path, array)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.png"]  # no temporary file left
    back, notes = read_image(path, max_pixels=LIMIT)
    expected = array if array.ndim == 3 else array[:, :, None]
    np.testing.assert_array_equal(back, expected)
    assert notes == []
    assert image_size(path) == (7, 5)


def test_write_png_overwrites_and_is_deterministic(tmp_path: Path, noise: np.ndarray) -> None:
    path = tmp_path / "out.png"
    write_png(path, np.zeros((3, 3), np.uint8))
    write_png(path, noise)
    first = path.read_bytes()
    write_png(path, noise)
    assert path.read_bytes() == first
    np.testing.assert_array_equal(read_image(path, max_pixels=LIMIT)[0], noise)


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((4,), np.uint8),
     np.zeros((0, 4), np.uint8)],
)
def test_write_png_refuses_other_arrays(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(ValueError, match="write_png"):
        write_png(tmp_path / "bad.png", array)
    assert not (tmp_path / "bad.png").exists()
    assert list(tmp_path.iterdir()) == []


def test_image_size_of_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(InvalidImageError, match="bad.png"):
        image_size(path)
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(InvalidImageError, match="empty file"):
        image_size(empty)


def test_image_suffixes() -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm"} == IMAGE_SUFFIXES
    assert isinstance(IMAGE_SUFFIXES, frozenset)
