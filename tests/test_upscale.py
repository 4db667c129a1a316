"""`superres upscale` end to end on real files, tiled inference, and `superres models`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageCms

from superres.commands import main
from superres.inference import super_resolve, super_resolve_tiled, tile_spans
from superres.models import create_model
from superres.models.weights import Weights, load_model, save_weights
from superres.training.tracking import Tracker, register_model

EDSR = {"n_resblocks": 1, "n_feats": 8}


def rng_image(shape: tuple[int, ...], seed: int = 0, dtype=np.uint8, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape, dtype=dtype)


@pytest.fixture
def weights(tmp_path):
    """A small EDSR x2 with random weights, saved as the project saves trained models."""
    torch.manual_seed(0)
    folder = tmp_path / "weights"
    model = create_model("edsr", scale=2, **EDSR)
    save_weights(folder, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": EDSR}))
    return folder


def upscale(*args: str):
    return CliRunner().invoke(main, ["upscale", *args])


@pytest.mark.parametrize(("architecture", "config"),
                         [("edsr", {"n_resblocks": 2, "n_feats": 8}), ("srcnn", {"f1": 8, "f2": 4})])
@pytest.mark.parametrize("channels", [3, 1])
def test_tiled_matches_untiled(architecture, config, channels):
    torch.manual_seed(0)
    model = create_model(architecture, scale=2, **config).eval()
    image = rng_image((45, 71, channels))  # several tiles of 16, sizes no multiple of the tile
    whole = super_resolve(model, image)
    tiled = super_resolve_tiled(model, image, tile=16, overlap=16)
    assert tiled.shape == whole.shape == (90, 142, channels)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_small_overlap_has_no_seams():
    """With too little context tiles differ from the whole image, but the blend spreads the error: no
    row or column at a tile boundary stands out."""
    torch.manual_seed(0)
    model = create_model("edsr", scale=2, n_resblocks=4, n_feats=8).eval()
    image = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, axis=0).repeat(3, axis=2)
    whole = super_resolve(model, image).astype(int)
    tiled = super_resolve_tiled(model, image, tile=16, overlap=4).astype(int)
    column_error = np.abs(tiled - whole).mean(axis=(0, 2))
    assert column_error.max() <= 1.0


def test_tile_spans_cover_the_image_once():
    spans = tile_spans(100, 32, 8)
    cores = [(a, b) for _, _, a, b in spans]
    assert cores[0][0] == 0 and cores[-1][1] == 100 and all(b == c for (_, b), (c, _) in zip(cores, cores[1:]))
    assert all(max(a - 8, 0) == s and min(b + 8, 100) == e for s, e, a, b in spans)


def test_folders_formats_gray_alpha_16bit_exif_icc(tmp_path, weights):
    photos, out = tmp_path / "photos", tmp_path / "out"
    (photos / "deep" / "er").mkdir(parents=True)
    rgb = rng_image((20, 30, 3))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(photos / "colour.png", icc_profile=icc)
    Image.fromarray(rng_image((16, 12), 1)).save(photos / "deep" / "gray.png")
    rgba = rng_image((10, 14, 4), 2)
    Image.fromarray(rgba, "RGBA").save(photos / "deep" / "er" / "alpha.png")
    Image.fromarray(rng_image((9, 11), 3, np.uint16, 65536).astype(np.uint16)).save(photos / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.fromarray(rgb).save(photos / "turned.jpg", exif=exif.tobytes())
    (photos / "notes.txt").write_text("not an image, skipped")

    result = upscale(str(photos), "-o", str(out), "--model", str(weights), "--tile", "8", "--overlap", "4")
    assert result.exit_code == 0, result.output
    assert "5 of 5 images upscaled x2" in result.output and "megapixels" in result.output

    colour = Image.open(out / "colour.png")
    assert colour.mode == "RGB" and colour.size == (60, 40) and colour.info.get("icc_profile") == icc
    gray = Image.open(out / "deep" / "gray.png")
    assert gray.mode == "L" and gray.size == (24, 32)
    alpha = Image.open(out / "deep" / "er" / "alpha.png")
    assert alpha.mode == "RGBA" and alpha.size == (28, 20)
    expected_alpha = Image.fromarray(rgba[..., 3]).resize((28, 20), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(alpha)[..., 3], np.asarray(expected_alpha))
    sixteen = Image.open(out / "sixteen.png")
    assert sixteen.mode == "L" and sixteen.size == (22, 18)
    turned = Image.open(out / "turned.jpg")
    assert turned.format == "JPEG" and turned.size == (40, 60)  # upright: 20 x 30 turned to 30 x 20, doubled
    assert turned.getexif().get(0x0112, 1) == 1
    assert not (out / "notes.txt").exists()


@pytest.mark.parametrize(("fmt", "suffix", "pillow"),
                         [("jpg", ".jpg", "JPEG"), ("webp", ".webp", "WEBP"), ("tiff", ".tif", "TIFF")])
def test_output_formats(tmp_path, weights, fmt, suffix, pillow):
    source = tmp_path / "in.png"
    Image.fromarray(rng_image((12, 10, 4)), "RGBA").save(source)
    result = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights), "--format", fmt)
    assert result.exit_code == 0, result.output
    written = Image.open(tmp_path / "out" / f"in{suffix}")
    assert written.format == pillow and written.size == (20, 24)
    assert written.mode == ("RGB" if fmt == "jpg" else "RGBA")  # JPEG has no alpha: composited on white


def test_never_overwrites(tmp_path, weights):
    source = tmp_path / "in.png"
    Image.fromarray(rng_image((8, 8, 3))).save(source)
    before = source.read_bytes()
    into_itself = upscale(str(source), "-o", str(tmp_path), "--model", str(weights), "--overwrite")
    assert into_itself.exit_code == 1 and "is an input file" in into_itself.output
    assert source.read_bytes() == before

    assert upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights)).exit_code == 0
    written = (tmp_path / "out" / "in.png").read_bytes()
    again = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights))
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert (tmp_path / "out" / "in.png").read_bytes() == written


def test_bad_inputs_name_the_file_and_the_others_run(tmp_path, weights):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(rng_image((8, 8, 3))).save(photos / "good.png")
    (photos / "broken.png").write_bytes(b"not a png")
    Image.fromarray(rng_image((64, 64, 3))).save(photos / "bomb.png")  # above --max-pixels below
    Image.fromarray(rng_image((6, 6, 3))).save(photos / "small.png")
    result = upscale(str(photos), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out"), "--model", str(weights),
                     "--max-pixels", "1000")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("superres:")]
    assert len(errors) == 3
    assert any("broken.png" in e for e in errors)
    bomb = next(e for e in errors if "bomb.png" in e)  # the option to change is this command's, not params.yaml's
    assert "above the limit of 1000 (--max-pixels); raise --max-pixels" in bomb and "data.max_pixels" not in bomb
    assert any("missing.png" in e for e in errors)
    assert (tmp_path / "out" / "good.png").exists() and (tmp_path / "out" / "small.png").exists()


def test_unknown_model_and_wrong_scale_are_one_line(tmp_path, weights):
    source = tmp_path / "in.png"
    Image.fromarray(rng_image((8, 8, 3))).save(source)
    unknown = upscale(str(source), "-o", str(tmp_path / "out"), "--model", "nope")
    assert unknown.exit_code != 0 and "--model nope" in unknown.output and len(unknown.output.strip().splitlines()) == 1
    wrong = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights), "--scale", "4")
    assert wrong.exit_code != 0 and "x2, not x4" in wrong.output and str(weights) in wrong.output
    assert not (tmp_path / "out").exists()


def test_default_model_is_the_best_of_the_latest_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "08_reporting").mkdir(parents=True)
    # vdsr is best but has no weights here; bicubic has weights but no parameters: it is not trained
    (tmp_path / "data" / "08_reporting" / "comparison.csv").write_text(
        "architecture,parameters,test/psnr_y\nedsr,100,31.0\nsrcnn,50,32.0\nbicubic,0,33.0\nvdsr,70,35.0\n")
    models = tmp_path / "data" / "06_models"
    save_weights(models / "bicubic", Weights({}, {"architecture": "bicubic", "scale": 2, "model": {}}))
    for arch, config in (("edsr", EDSR), ("srcnn", {"f1": 4, "f2": 4})):
        model = create_model(arch, scale=2, **config)
        save_weights(models / arch, Weights(model.state_dict(), {"architecture": arch, "scale": 2, "model": config}))
    Image.fromarray(rng_image((8, 8, 3))).save("in.png")
    result = upscale("in.png", "-o", "out")
    assert result.exit_code == 0, result.output
    assert "with srcnn" in result.output

    listing = CliRunner().invoke(main, ["models"])
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.output.splitlines()[1:]] == ["bicubic", "edsr", "srcnn"]


def test_registered_mlflow_model(tmp_path, monkeypatch, weights):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(uri)
    run_id = tracker.start_run("edsr", {"architecture": "edsr", "scale": 2})
    tracker.log_artifacts(run_id, weights, "model")
    tracker.log_metrics(run_id, {"test/psnr_y": 31.25})
    tracker.end_run(run_id)
    assert register_model(run_id, "photo-sr", uri) == "1"

    Image.fromarray(rng_image((8, 8, 3))).save("in.png")
    result = upscale("in.png", "-o", "out", "--model", "models:/photo-sr/1", "--tile", "0")
    assert result.exit_code == 0, result.output
    model, _ = load_model(weights)
    expected = super_resolve(model, rng_image((8, 8, 3)))
    assert np.array_equal(np.asarray(Image.open("out/in.png")), expected)

    missing = upscale("in.png", "-o", "out2", "--model", "models:/photo-sr/7")
    assert missing.exit_code != 0 and "photo-sr/7" in missing.output

    listing = CliRunner().invoke(main, ["models"])
    assert listing.exit_code == 0
    line = next(line for line in listing.output.splitlines() if line.startswith("models:/photo-sr/1"))
    assert "edsr" in line and "x2" in line and "31.25 dB" in line


def test_bad_device_is_one_line(tmp_path, weights):
    source = tmp_path / "in.png"
    Image.fromarray(rng_image((8, 8, 3))).save(source)
    result = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights), "--device", "gpu")
    assert result.exit_code != 0 and "--device gpu" in result.output and len(result.output.strip().splitlines()) == 1
    if not torch.cuda.is_available():
        no_cuda = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights), "--device", "cuda")
        assert no_cuda.exit_code != 0 and "no CUDA device" in no_cuda.output


def test_tiled_x4_in_several_bands_per_tile_row():
    torch.manual_seed(0)
    model = create_model("edsr", scale=4, n_resblocks=1, n_feats=8).eval()
    image = rng_image((150, 77, 3))  # tile rows of 64 + context give more output rows than one band holds
    tiled = super_resolve_tiled(model, image, tile=64, overlap=16)
    assert tiled.shape == (600, 308, 3)
    assert np.abs(tiled.astype(int) - super_resolve(model, image)).max() <= 1
