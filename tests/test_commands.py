"""The command line on real files: `superres upscale` (files and folders, formats, refusing to
overwrite, bad files, unknown models, bicubic from anywhere, the seed a key picks, registered MLflow
models), `superres models`, `superres export`, and what the command line loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageCms

from superres.commands import main
from superres.inference import for_inference, super_resolve
from superres.models import create_model
from superres.models.weights import Weights, load_model, save_weights
from superres.precision import inference_precision
from superres.serving import log_model
from superres.tracking import Tracker, register_model


def test_upscale_files_and_folders(tmp_path):
    weights = tmp_path / "weights"
    config = {"n_resblocks": 1, "n_feats": 8}
    model = create_model("edsr", scale=2, **config)
    save_weights(weights, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": config}))
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(photos / "a.jpg")
    gray = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(gray).save(photos / "sub" / "gray.png")
    (photos / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    runner = CliRunner()

    result = runner.invoke(main, ["upscale", str(photos), "-o", str(out), "--model", str(weights)])
    assert result.exit_code == 1  # the broken file fails, the others still run
    assert "broken.png" in result.output
    assert Image.open(out / "a.jpg").size == (60, 40)  # the input format is kept
    gray = Image.open(out / "sub" / "gray.png")
    assert gray.mode == "L" and gray.size == (32, 32)

    before = (out / "a.jpg").read_bytes()
    again = runner.invoke(main, ["upscale", str(photos / "a.jpg"), "-o", str(out), "--model", str(weights)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert (out / "a.jpg").read_bytes() == before
    forced = runner.invoke(main, ["upscale", str(photos / "a.jpg"), "-o", str(out), "--model", str(weights),
                                  "--overwrite"])
    assert forced.exit_code == 0


def test_unknown_model_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path), "--model", "nope"])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    assert "--model nope: no file or folder nope, and not an architecture key (autoencoder, bicubic, " in result.output
    assert "see `superres models`" in result.output


def save_seed(folder, seed: int, val: float) -> None:
    config = {"n_resblocks": 1, "n_feats": 8}
    torch.manual_seed(seed)
    model = create_model("edsr", scale=2, **config)
    save_weights(folder, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": config,
                                                      "seed": seed, "best_val_psnr_y": val}))


def test_export_finds_the_project_and_refuses_bicubic_in_one_line(tmp_path, monkeypatch):
    import onnx

    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)
    project = tmp_path / "project"
    (project / "data" / "06_models").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "params.yaml").write_text("seeds: [0, 1]\n")
    save_seed(project / "data" / "06_models" / "edsr" / "seed0", 0, 31.0)
    save_seed(project / "data" / "06_models" / "edsr" / "seed1", 1, 30.0)
    monkeypatch.chdir(tmp_path)  # outside the project
    result = CliRunner().invoke(main, ["export", "--model", "edsr", "--project", str(project), "-o", "edsr.onnx"])
    assert result.exit_code == 0, result.output
    assert "edsr/seed0 (edsr x2" in result.output
    assert onnx.load("edsr.onnx").graph.input[0].name == "input"

    bicubic = CliRunner().invoke(main, ["export", "--model", "bicubic", "--scale", "3", "-o", "bicubic.onnx"])
    assert bicubic.exit_code != 0 and len(bicubic.output.strip().splitlines()) == 1
    assert "Bicubic cannot be exported to ONNX with dynamic height and width" in bicubic.output
    assert "weights" not in bicubic.output and not (tmp_path / "bicubic.onnx").exists()


def test_the_command_line_does_not_load_the_bench():
    """The bench imports the trainer and every measurement; `superres upscale` and the rest never need it."""
    check = ("import sys, superres.commands; "
             "loaded = sorted(m for m in sys.modules if m.startswith('superres.bench')); "
             "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr



EDSR = {"n_resblocks": 1, "n_feats": 8}


def upscaled(model: torch.nn.Module, image: np.ndarray, architecture: str = "edsr") -> np.ndarray:
    """``image`` upscaled as ``superres upscale --tile 0`` does it: in the inference precision of its architecture."""
    return super_resolve(for_inference(model, architecture, torch.device("cpu")), image)


def rng_image(shape: tuple[int, ...], seed: int = 0, dtype=np.uint8, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, shape, dtype=dtype)


@pytest.fixture(autouse=True)
def no_project_variable(monkeypatch):
    """The tests say where the project is; the environment of the machine does not."""
    monkeypatch.delenv("SUPERRES_PROJECT", raising=False)


@pytest.fixture
def weights(tmp_path):
    """A small EDSR x2 with random weights, saved as the project saves trained models."""
    torch.manual_seed(0)
    folder = tmp_path / "weights"
    model = create_model("edsr", scale=2, **EDSR)
    save_weights(folder, Weights(model.state_dict(), {"architecture": "edsr", "scale": 2, "model": EDSR}))
    return folder


def save_tiny(folder, arch: str = "edsr", *, scale: int = 2, seed: int | None = None, val: float | None = None):
    """Real tiny weights (different for each seed) and a config as training writes them."""
    config = {"edsr": EDSR, "srcnn": {"f1": 4, "f2": 4}}[arch]
    torch.manual_seed(seed or 0)
    model = create_model(arch, scale=scale, **config)
    extra = {k: v for k, v in (("seed", seed), ("best_val_psnr_y", val)) if v is not None}
    save_weights(folder, Weights(model.state_dict(), {"architecture": arch, "scale": scale, "model": config, **extra}))
    return folder


def make_project(root, seeds=(0,)):
    """An empty project folder: its markers, its params.yaml seeds, and the data folders."""
    (root / "data" / "06_models").mkdir(parents=True)
    (root / "data" / "08_reporting").mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    (root / "params.yaml").write_text(f"seeds: {list(seeds)}\n")
    return root


def upscale(*args: str):
    return CliRunner().invoke(main, ["upscale", *args])








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
    project = make_project(tmp_path / "project", seeds=[0, 1])
    # vdsr is best but has no weights here; bicubic has weights but no parameters: it is not trained;
    # srcnn has weights only in a seed params.yaml no longer lists. The std column is the report's, ignored.
    (project / "data" / "08_reporting" / "comparison.csv").write_text(
        "architecture,parameters,test/psnr_y,test/psnr_y_std\n"
        "edsr,100,31.0,0.9\nsrcnn,50,32.0,0.1\nbicubic,0,33.0,0.0\nvdsr,70,35.0,0.2\nunet,60,34.0,\n")
    models = project / "data" / "06_models"
    save_weights(models / "bicubic" / "seed0", Weights({}, {"architecture": "bicubic", "scale": 2, "model": {}}))
    save_tiny(models / "srcnn" / "seed5", "srcnn", seed=5, val=40.0)
    save_tiny(models / "edsr" / "seed0", "edsr", seed=0, val=30.0)
    save_tiny(models / "edsr" / "seed1", "edsr", seed=1, val=30.5)
    monkeypatch.chdir(project)
    Image.fromarray(rng_image((8, 8, 3))).save("in.png")
    result = upscale("in.png", "-o", "out", "--tile", "0")
    assert result.exit_code == 0, result.output
    assert "with edsr/seed1" in result.output and "comparison.csv" in result.output
    assert inference_precision("edsr", torch.device("cpu")).describe() in result.output  # what it computed in
    expected = upscaled(load_model(models / "edsr" / "seed1")[0], rng_image((8, 8, 3)))
    assert np.array_equal(np.asarray(Image.open("out/in.png")), expected)


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
    expected = upscaled(model, rng_image((8, 8, 3)))
    assert np.array_equal(np.asarray(Image.open("out/in.png")), expected)

    forced = upscale("in.png", "-o", "fp32", "--model", "models:/photo-sr/1", "--tile", "0", "--precision", "fp32")
    assert forced.exit_code == 0 and "fp32, " in forced.output
    fp32 = for_inference(model, "edsr", torch.device("cpu"), "fp32")
    assert np.array_equal(np.asarray(Image.open("fp32/in.png")), super_resolve(fp32, rng_image((8, 8, 3))))
    refused = upscale("in.png", "-o", "out3", "--model", "models:/photo-sr/1", "--precision", "fp16")
    assert refused.exit_code != 0 and "fp16" in refused.output

    missing = upscale("in.png", "-o", "out2", "--model", "models:/photo-sr/7")
    assert missing.exit_code != 0 and "photo-sr/7" in missing.output

    listing = CliRunner().invoke(main, ["models"])
    assert listing.exit_code == 0
    line = next(line for line in listing.output.splitlines() if line.startswith("models:/photo-sr/1"))
    assert "edsr" in line and "x2" in line and "31.25 dB" in line

    log_model(tracker, run_id, weights)  # the run's MLflow Model, registered as the report registers it
    assert tracker.register_champion("photo-sr", run_id)["version"] == "2"
    aliased = upscale("in.png", "-o", "aliased", "--model", "models:/photo-sr@champion", "--tile", "0")
    assert aliased.exit_code == 0, aliased.output
    assert np.array_equal(np.asarray(Image.open("aliased/in.png")), expected)
    listing = CliRunner().invoke(main, ["models"]).output.splitlines()
    assert next(line for line in listing if line.startswith("models:/photo-sr/2")).endswith(
        "= models:/photo-sr@champion")
    unknown = upscale("in.png", "-o", "out4", "--model", "models:/photo-sr@best")
    assert unknown.exit_code != 0 and "photo-sr@best" in unknown.output


def test_bad_device_is_one_line(tmp_path, weights):
    source = tmp_path / "in.png"
    Image.fromarray(rng_image((8, 8, 3))).save(source)
    result = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights), "--device", "gpu")
    assert result.exit_code != 0 and "--device gpu" in result.output and len(result.output.strip().splitlines()) == 1
    if not torch.cuda.is_available():
        no_cuda = upscale(str(source), "-o", str(tmp_path / "out"), "--model", str(weights), "--device", "cuda")
        assert no_cuda.exit_code != 0 and "no CUDA device" in no_cuda.output




def superres(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed `superres` command in a process of its own, run in ``cwd``."""
    environment = {k: v for k, v in os.environ.items() if k not in ("SUPERRES_PROJECT", "MLFLOW_TRACKING_URI")}
    environment.update({"OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "superres", *args], check=False, cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def test_bicubic_from_outside_the_project_needs_nothing_trained(tmp_path):
    """A folder with no project above it: bicubic runs at x3 and at x2 without --scale, exactly bicubic."""
    assert not any((folder / "dvc.yaml").exists() for folder in (tmp_path, *tmp_path.parents))
    image = rng_image((21, 34, 3))
    Image.fromarray(image).save(tmp_path / "photo.png")
    x3 = superres("upscale", "photo.png", "-o", "x3", "--model", "bicubic", "--scale", "3", "--tile", "0",
                  cwd=tmp_path)
    assert x3.returncode == 0, x3.stderr
    written = np.asarray(Image.open(tmp_path / "x3" / "photo.png"))
    assert written.shape == (63, 102, 3)
    assert np.array_equal(written, super_resolve(create_model("bicubic", scale=3), image))
    assert "upscaled x3 with bicubic" in x3.stderr

    default = superres("upscale", "photo.png", "-o", "x2", "--model", "bicubic", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert Image.open(tmp_path / "x2" / "photo.png").size == (68, 42)
    assert "x2 by default" in default.stderr

    trained = superres("upscale", "photo.png", "-o", "edsr", "--model", "edsr", cwd=tmp_path)
    assert trained.returncode != 0 and not (tmp_path / "edsr").exists()
    error = trained.stderr.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert f"no folder from {tmp_path.resolve()} up to /" in error
    assert "--project DIR" in error and "SUPERRES_PROJECT=DIR" in error and "dvc.yaml and params.yaml" in error


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_bicubic_at_every_usual_scale(tmp_path, monkeypatch, scale):
    monkeypatch.chdir(tmp_path)
    image = rng_image((13, 9, 1))
    Image.fromarray(image[:, :, 0]).save("gray.png")
    result = upscale("gray.png", "-o", "out", "--model", "bicubic", "--scale", str(scale), "--tile", "8")
    assert result.exit_code == 0, result.output
    written = np.asarray(Image.open("out/gray.png"))
    assert written.shape == (13 * scale, 9 * scale)
    whole = super_resolve(create_model("bicubic", scale=scale), image)[:, :, 0]
    assert np.abs(written.astype(int) - whole).max() <= 1  # tiles of 8 with 32 pixels of context


@pytest.fixture
def seeded_project(tmp_path):
    """A project trained with seeds 0-2 (seed1 and seed2 tie on validation: seed1 wins), a stale seed3 left from
    an earlier run with the best validation of all, an srcnn in the layout before seeds, and each seed's test
    PSNR-Y in its metrics.json."""
    root = make_project(tmp_path / "project", seeds=[0, 1, 2])
    models = root / "data" / "06_models"
    for seed, val in ((0, 30.0), (1, 31.5), (2, 31.5), (3, 45.0)):
        save_tiny(models / "edsr" / f"seed{seed}", seed=seed, val=val)
        metrics = root / "data" / "08_reporting" / "edsr" / f"seed{seed}" / "metrics.json"
        metrics.parent.mkdir(parents=True)
        metrics.write_text(f'{{"test/psnr_y": {29 + seed}.25}}')
    (models / "edsr" / "seed0" / "history.csv").write_text("step,psnr_y\n")
    (models / "edsr" / "seed4").mkdir()  # a seed folder without weights (training under way): not a model
    save_tiny(models / "srcnn", "srcnn", seed=None, val=None)
    (root / "elsewhere" / "deep").mkdir(parents=True)
    Image.fromarray(rng_image((10, 12, 3))).save(tmp_path / "photo.png")
    return root


def expected_of(folder: Path) -> np.ndarray:
    model, config = load_model(folder)
    return upscaled(model, rng_image((10, 12, 3)), config["architecture"])


def test_architecture_key_picks_the_seed_with_the_best_validation_from_anywhere(seeded_project, tmp_path):
    """From a subfolder of the project, with --project from outside it, and with SUPERRES_PROJECT: edsr is
    seed1 (best validation among params.yaml's seeds, ties to the lowest), never the stale seed3."""
    seed1 = seeded_project / "data" / "06_models" / "edsr" / "seed1"
    outside = tmp_path / "outside"
    outside.mkdir()
    photo = str(tmp_path / "photo.png")
    runs = {
        "subfolder": superres("upscale", photo, "-o", "a", "--model", "edsr", "--tile", "0",
                              cwd=seeded_project / "elsewhere" / "deep"),
        "--project": superres("upscale", photo, "-o", "b", "--model", "edsr", "--tile", "0",
                              "--project", str(seeded_project), cwd=outside),
        "SUPERRES_PROJECT": superres("upscale", photo, "-o", "c", "--model", "edsr", "--tile", "0", cwd=outside,
                                     env={"SUPERRES_PROJECT": str(seeded_project)}),
    }
    outputs = {"subfolder": seeded_project / "elsewhere" / "deep" / "a", "--project": outside / "b",
               "SUPERRES_PROJECT": outside / "c"}
    for how, run in runs.items():
        assert run.returncode == 0, (how, run.stderr)
        assert "with edsr/seed1" in run.stderr, how
        assert "best validation PSNR-Y of 3 seeds (seed0 30.00 dB, seed1 31.50 dB, seed2 31.50 dB)" in run.stderr
        assert "seed3" not in run.stderr
        assert np.array_equal(np.asarray(Image.open(outputs[how] / "photo.png")), expected_of(seed1)), how


def test_a_named_seed_and_the_layout_before_seeds(seeded_project, tmp_path, monkeypatch):
    monkeypatch.chdir(seeded_project / "elsewhere")
    models = seeded_project / "data" / "06_models"
    photo = str(tmp_path / "photo.png")
    named = upscale(photo, "-o", "named", "--model", "edsr/seed3", "--tile", "0")
    assert named.exit_code == 0, named.output
    assert "with edsr/seed3" in named.output and "no longer lists" in named.output
    assert np.array_equal(np.asarray(Image.open("named/photo.png")), expected_of(models / "edsr" / "seed3"))

    old = upscale(photo, "-o", "old", "--model", "srcnn", "--tile", "0")
    assert old.exit_code == 0, old.output
    assert np.array_equal(np.asarray(Image.open("old/photo.png")), expected_of(models / "srcnn"))

    folder = upscale(photo, "-o", "folder", "--model", str(models / "edsr"), "--tile", "0")
    assert folder.exit_code == 0, folder.output  # a folder of seed folders given as a path: its best seed of all
    assert np.array_equal(np.asarray(Image.open("folder/photo.png")), expected_of(models / "edsr" / "seed3"))

    missing = upscale(photo, "-o", "missing", "--model", "edsr/seed4")
    assert missing.exit_code != 0 and "edsr/seed0, edsr/seed1, edsr/seed2, edsr/seed3" in missing.output
    untrained = upscale(photo, "-o", "missing", "--model", "vdsr")
    assert untrained.exit_code != 0 and f"no trained weights in {models / 'vdsr'}" in untrained.output
    assert "kedro run --pipelines=vdsr" in untrained.output and not Path("missing").exists()
    wrong_scale = upscale(photo, "-o", "missing", "--model", "edsr", "--scale", "4")
    assert wrong_scale.exit_code != 0 and "upscales x2, not x4" in wrong_scale.output and "seed1" in wrong_scale.output


def test_a_folder_with_a_checkpoint_and_its_config_still_loads(tmp_path, monkeypatch):
    """Not every folder is the project's layout: config.json beside one .pth checkpoint is a model too."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = create_model("edsr", scale=2, **EDSR).eval()
    Path("foreign").mkdir()
    torch.save({"params_ema": model.state_dict()}, "foreign/net.pth")
    Path("foreign/config.json").write_text('{"architecture": "edsr", "scale": 2, "model": {"n_resblocks": 1, '
                                           '"n_feats": 8}}')
    Image.fromarray(rng_image((8, 8, 3))).save("in.png")
    result = upscale("in.png", "-o", "out", "--model", "foreign", "--tile", "0")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open("out/in.png")), upscaled(model, rng_image((8, 8, 3))))


def test_only_stale_seeds_are_refused_with_the_names_to_give(seeded_project, monkeypatch):
    (seeded_project / "params.yaml").write_text("seeds: [7]\n")
    monkeypatch.chdir(seeded_project)
    result = upscale("missing.png", "-o", "out", "--model", "edsr")
    assert result.exit_code != 0
    assert "none of the seeds of params.yaml (7)" in result.output and "--model edsr/seed0" in result.output


def test_a_wrong_project_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    result = upscale(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--model", "edsr",
                     "--project", str(tmp_path / "empty"))
    assert result.exit_code != 0
    assert f"--project {tmp_path / 'empty'}: {tmp_path / 'empty'} is not a superres project" in result.output
    env = CliRunner(env={"SUPERRES_PROJECT": str(tmp_path / "empty")}).invoke(
        main, ["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--model", "edsr"])
    assert env.exit_code != 0 and f"SUPERRES_PROJECT={tmp_path / 'empty'}: " in env.output


def test_models_lists_each_seed_and_marks_the_one_a_key_picks(seeded_project, monkeypatch):
    monkeypatch.chdir(seeded_project / "elsewhere")
    listing = CliRunner().invoke(main, ["models"])
    assert listing.exit_code == 0, listing.output
    lines = {line.split()[0]: line for line in listing.output.splitlines()[1:]}
    assert list(lines) == ["bicubic", "edsr/seed0", "edsr/seed1", "edsr/seed2", "edsr/seed3", "srcnn"]
    assert "30.00 dB" in lines["edsr/seed0"] and "29.25 dB" in lines["edsr/seed0"]  # validation, then test
    assert lines["edsr/seed1"].endswith("<- --model edsr") and "30.25 dB" in lines["edsr/seed1"]
    assert "<- --model" not in lines["edsr/seed2"]
    assert "stale" in lines["edsr/seed3"]
    assert "x2" in lines["srcnn"] and "any" in lines["bicubic"]


# --- superres import -------------------------------------------------------------------------------


def _port_checkpoint(path: Path, zip_format: bool) -> dict[str, torch.Tensor]:
    """A checkpoint laid out as the SRCNN port's (keys features.0, map.0, reconstruction; Y only)."""
    g = torch.Generator().manual_seed(0)
    state = {"features.0.weight": torch.randn(16, 1, 9, 9, generator=g) * 0.01, "features.0.bias": torch.zeros(16),
             "map.0.weight": torch.randn(8, 16, 1, 1, generator=g) * 0.1, "map.0.bias": torch.zeros(8),
             "reconstruction.weight": torch.randn(1, 8, 5, 5, generator=g) * 0.01,
             "reconstruction.bias": torch.zeros(1)}
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    return state


@pytest.mark.parametrize("zip_format", [True, False])
def test_import_downloads_once_checks_the_sum_and_writes_a_model_folder(tmp_path, server, monkeypatch, zip_format):
    import hashlib

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    state = _port_checkpoint(server.root / "srcnn_x2.pth", zip_format)
    digest = hashlib.sha256((server.root / "srcnn_x2.pth").read_bytes()).hexdigest()
    out = tmp_path / "srcnn_port"
    args = ["import", server.url("srcnn_x2.pth"), "--arch", "srcnn", "--scale", "2", "-o", str(out), "--sha256", digest]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "srcnn x2: 6 tensors" in result.output
    model, config = load_model(out)
    assert config["model"]["color"] == "y" and config["pretrained"]["sha256"] == digest
    assert torch.equal(model.net.body[0].weight, state["features.0.weight"])
    assert torch.equal(model.net.body[4].bias, state["reconstruction.bias"])

    again = CliRunner().invoke(main, [*args, "--overwrite"])  # from the cache: no second request
    assert again.exit_code == 0, again.output
    assert server.requests["/srcnn_x2.pth"] == 1

    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    upscaled = CliRunner().invoke(main, ["upscale", str(tmp_path / "photo.png"), "-o", str(tmp_path / "up"),
                                         "--model", str(out), "--precision", "fp32"])
    assert upscaled.exit_code == 0, upscaled.output
    expected = super_resolve(for_inference(model, "srcnn", torch.device("cpu"), "fp32"), image)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "up" / "photo.png")), expected)


def test_import_refuses_a_wrong_sum_and_keeps_what_was_there(tmp_path, server, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _port_checkpoint(server.root / "srcnn_x2.pth", True)
    out = tmp_path / "kept"
    out.mkdir()
    (out / "weights.safetensors").write_bytes(b"earlier weights")
    url = server.url("srcnn_x2.pth")
    result = CliRunner().invoke(main, ["import", url, "--arch", "srcnn", "--scale", "2", "-o", str(out)])
    assert result.exit_code != 0 and "already holds weights.safetensors; give --overwrite" in result.output
    result = CliRunner().invoke(main, ["import", url, "--arch", "srcnn", "--scale", "2", "-o", str(out),
                                       "--overwrite", "--sha256", "0" * 64])
    assert result.exit_code != 0 and "checksum mismatch" in result.output
    assert (out / "weights.safetensors").read_bytes() == b"earlier weights"


def test_import_names_what_does_not_fit(tmp_path):
    checkpoint = tmp_path / "edsr.pth"
    torch.save(create_model("edsr", scale=2, n_resblocks=1, n_feats=8).state_dict(), checkpoint)
    result = CliRunner().invoke(main, ["import", str(checkpoint), "--arch", "edsr", "--scale", "2"])
    assert result.exit_code != 0 and "no import table for 'edsr'; the architectures with one: " in result.output
    _port_checkpoint(checkpoint, True)
    result = CliRunner().invoke(main, ["import", str(checkpoint), "--arch", "fsrcnn", "--scale", "2",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code != 0 and "FSRCNN checkpoint lacks first_part.0.weight" in result.output
    assert not (tmp_path / "out" / "weights.safetensors").exists()
    missing = CliRunner().invoke(main, ["import", str(tmp_path / "nope.pth"), "--arch", "srcnn", "--scale", "2"])
    assert missing.exit_code != 0 and "nope.pth not found" in missing.output


class _Payload:
    """Unpickling this would run a shell command: the import must not run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_import_of_a_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    checkpoint = tmp_path / "evil.pth"
    torch.save({"model": _Payload(marker), "weights": torch.zeros(2)}, checkpoint)
    result = CliRunner().invoke(main, ["import", str(checkpoint), "--arch", "vdsr", "--scale", "2",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code != 0, result.output
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
