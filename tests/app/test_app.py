"""The web app: its image functions directly, and its page through Streamlit's AppTest."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from superres.app.core import compare, decode_upload, find_models, match_original, png_bytes, zoom
from superres.data.degrade import bicubic_resize
from superres.errors import InvalidImageError
from superres.inference import for_inference, super_resolve
from superres.models import create_model
from superres.models.weights import Weights, load_model, save_weights


def save_edsr(folder, scale: int, seed: int | None = None) -> None:
    """A tiny EDSR with random weights, saved as the pipelines save a trained one."""
    cfg = {"n_resblocks": 1, "n_feats": 8}
    if seed is not None:
        torch.manual_seed(seed)
    model = create_model("edsr", scale=scale, **cfg)
    config = {"architecture": "edsr", "scale": scale, "model": cfg, **({} if seed is None else {"seed": seed})}
    save_weights(folder, Weights(model.state_dict(), config))


@pytest.fixture
def models(tmp_path):
    """A models folder as training leaves it: two EDSRs (x2, x4), a bicubic and a folder without weights."""
    root = tmp_path / "models"
    save_edsr(root / "edsr", 4)
    save_edsr(root / "edsr_x2", 2)
    (root / "bicubic").mkdir()
    (root / "bicubic" / "config.json").write_text('{"architecture": "bicubic", "scale": 4}')
    (root / "bicubic" / "weights.safetensors").write_bytes(b"")
    (root / "srcnn").mkdir()  # not trained yet
    return root


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image with some texture, uint8 H x W x 3."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    noise = np.random.default_rng(seed).normal(0, 0.03, (height, width, 3))
    image = np.stack([np.sin(6 * xx), np.cos(5 * yy), np.sin(4 * (xx + yy))], axis=2) * 0.4 + 0.5 + noise
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_find_models_lists_trained_models_but_not_the_baseline(models):
    found = {m.name: m for m in find_models(models)}
    assert sorted(found) == ["edsr", "edsr_x2"]
    assert (found["edsr"].scale, found["edsr_x2"].scale) == (4, 2)
    assert found["edsr_x2"].label == "edsr_x2 (edsr, x2)"


@pytest.fixture
def seeded(tmp_path):
    """A project trained with seeds 0 and 1 (x4), with a stale seed2 left from an earlier run with three seeds."""
    root = tmp_path / "project"
    for seed in (0, 1, 2):
        save_edsr(root / "data" / "06_models" / "edsr" / f"seed{seed}", 4, seed=seed)
    (root / "data" / "06_models" / "edsr" / "seed0" / "checkpoints").mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    (root / "params.yaml").write_text("seeds: [0, 1]\n")
    return root


def test_find_models_offers_each_seed_of_params_yaml(seeded):
    models = seeded / "data" / "06_models"
    found = find_models(models, (0, 1))
    assert [m.label for m in found] == ["edsr/seed0 (x4)", "edsr/seed1 (x4)"]
    assert [m.folder for m in found] == [models / "edsr" / "seed0", models / "edsr" / "seed1"]
    assert [m.name for m in find_models(models)] == ["edsr/seed0", "edsr/seed1", "edsr/seed2"]  # no filter


def test_decode_upload_limits_have_friendly_messages():
    data = png(photo(40, 50))
    assert decode_upload(data, "a.png", max_bytes=len(data), max_pixels=2000).shape == (40, 50, 3)
    with pytest.raises(InvalidImageError, match=r"a\.png is .* MB, above the limit"):
        decode_upload(data, "a.png", max_bytes=len(data) - 1, max_pixels=2000)
    too_many = r"a\.png: image is 50 x 40 = 2000 pixels, above the limit of 1999 \(superres app --max-pixels\)"
    with pytest.raises(InvalidImageError, match=too_many):
        decode_upload(data, "a.png", max_bytes=len(data), max_pixels=1999)
    with pytest.raises(InvalidImageError, match=r"notes\.txt: not a supported image"):
        decode_upload(b"hello", "notes.txt", max_bytes=100, max_pixels=100)


def test_compare_measures_both_against_the_original(models):
    model, _ = load_model(models / "edsr")
    hr = photo(192, 256)
    lr = bicubic_resize(hr, 1 / 4)
    result = compare(model, 4, lr, hr)
    assert result.bicubic.shape == result.sr.shape == hr.shape
    assert np.array_equal(result.sr, compare(model, 4, lr).sr)
    tiled = compare(model, 4, lr, tile=16).sr  # 4 x 3 tiles, each seen with its neighbours' context
    assert np.abs(tiled.astype(int) - super_resolve(model, lr).astype(int)).max() <= 1
    bicubic, sr = result.metrics["bicubic"], result.metrics["model"]
    # a smooth image: bicubic is close to the original; random weights are not
    assert bicubic["psnr_y"] > 25 and sr["psnr_y"] < bicubic["psnr_y"]
    assert 0 < sr["ssim_y"] < bicubic["ssim_y"] <= 1
    assert compare(model, 4, lr).metrics is None


def test_the_original_must_match_the_upscaled_size():
    lr = photo(10, 12)
    assert match_original(photo(42, 50), lr.shape, 4).shape == (40, 48, 3)  # modcropped
    gray = match_original(photo(40, 48)[:, :, :1], lr.shape, 4)
    assert gray.shape == (40, 48, 3)  # a gray original of a colour image is compared in colour
    with pytest.raises(InvalidImageError, match=r"HR original is 40 x 40 pixels, but x4 of the 12 x 10 image is 48"):
        match_original(photo(40, 40), lr.shape, 4)


def test_png_bytes_and_zoom():
    image = photo(30, 40)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(image)))), image)
    crop = zoom(image, (1.0, 0.0), 8, 32)  # the top right corner, each pixel 4 x 4
    assert crop.shape == (32, 32, 3)
    assert np.array_equal(crop[::4, ::4], image[:8, -8:])


def run_page(argv: list[str]) -> None:
    from superres.app.page import main

    main(argv)


def app_test(models, **limits) -> AppTest:
    argv = ["--models", str(models), *[f"--{k.replace('_', '-')}={v}" for k, v in limits.items()]]
    return AppTest.from_function(run_page, args=(argv,), default_timeout=30)


def test_page_upscales_measures_and_offers_the_png(models, monkeypatch):
    stored: dict[str, bytes] = {}
    real_store = MemoryMediaFileStorage.load_and_get_id

    def remember(self, data, mimetype, kind, filename=None):  # keeps what the page hands to the browser
        file_id = real_store(self, data, mimetype, kind, filename)
        stored[file_id] = data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", remember)
    at = app_test(models).run()
    assert not at.exception
    assert at.selectbox(key="scale").options == ["x2", "x4"] and at.selectbox(key="scale").value == 4
    assert at.selectbox(key="model").options == ["edsr (x4)"]
    assert "Upload an image" in at.info[0].value

    at.selectbox(key="scale").set_value(2).run()
    assert at.selectbox(key="model").options == ["edsr_x2 (edsr, x2)"]
    hr = photo(48, 40)
    lr = bicubic_resize(hr, 1 / 2)
    at.file_uploader(key="lr").set_value(("small.png", png(lr), "image/png")).run()
    assert not at.exception and not at.error
    assert not at.metric  # no original, no metrics
    at.file_uploader(key="hr").set_value(("orig.png", png(hr), "image/png")).run()
    assert not at.exception and not at.error
    expected = compare(for_inference(load_model(models / "edsr_x2")[0], "edsr", torch.device("cpu")), 2, lr, hr)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PSNR-Y edsr_x2"] == f"{expected.metrics['model']['psnr_y']:.2f} dB"
    assert metrics["PSNR-Y bicubic"] == f"{expected.metrics['bicubic']['psnr_y']:.2f} dB"
    assert metrics["SSIM-Y edsr_x2"] == f"{expected.metrics['model']['ssim_y']:.4f}"

    button = at.get("download_button")[0]
    assert button.proto.label == "Download the edsr_x2 result (PNG)"
    offered = stored[button.proto.url.rsplit("/", 1)[-1].split(".")[0]]
    assert offered.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(offered))), expected.sr)
    assert [img.captions for img in at.get("image")][:2] == [["Bicubic x2"], ["edsr_x2 x2"]]


def test_page_refuses_too_large_uploads_with_a_message(models):
    at = app_test(models, max_pixels=999, max_upload_mb=0.01).run()
    at.file_uploader(key="lr").set_value(("big.png", png(photo(40, 25)), "image/png")).run()
    assert "big.png: image is 25 x 40 = 1000 pixels, above the limit of 999" in at.error[0].value
    noise = np.random.default_rng(0).integers(0, 256, (90, 90, 3), dtype=np.uint8)  # ~24 kB, does not compress
    at.file_uploader(key="lr").set_value(("heavy.png", png(noise), "image/png")).run()
    assert "heavy.png is 0.0 MB, above the limit of 0.0 MB" in at.error[0].value
    assert not at.get("download_button")


def test_page_says_what_to_do_without_models(tmp_path):
    at = app_test(tmp_path).run()
    assert "No trained models" in at.warning[0].value and "--models" in at.warning[0].value


def test_page_offers_the_seeds_of_the_project(seeded, monkeypatch):
    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)
    at = AppTest.from_function(run_page, args=(["--project", str(seeded)],), default_timeout=30).run()
    assert not at.exception
    assert at.selectbox(key="model").options == ["edsr/seed0 (x4)", "edsr/seed1 (x4)"]
    at.selectbox(key="model").set_value(find_models(seeded / "data" / "06_models", (0, 1))[1]).run()
    hr = photo(32, 24)
    at.file_uploader(key="lr").set_value(("small.png", png(bicubic_resize(hr, 1 / 4)), "image/png")).run()
    assert not at.exception and not at.error
    button = at.get("download_button")[0]
    assert button.proto.label == "Download the edsr/seed1 result (PNG)"


def test_page_without_a_project_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_function(run_page, args=([],), default_timeout=30).run()
    assert not at.exception
    assert f"no folder from {tmp_path.resolve()} up to /" in at.warning[0].value
    assert "--models FOLDER" in at.warning[0].value


def test_app_command_needs_a_models_folder(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from superres.commands import main

    result = CliRunner().invoke(main, ["app", "--models", str(tmp_path / "none")])
    assert result.exit_code != 0 and f"--models {tmp_path / 'none'}: no such folder" in result.output
    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    outside = CliRunner().invoke(main, ["app"])
    assert outside.exit_code != 0 and f"no folder from {tmp_path.resolve()} up to /" in outside.output
    assert "--project DIR" in outside.output and "--models FOLDER" in outside.output
