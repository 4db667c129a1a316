"""The ``superres`` command: use a trained model on your own images.

``upscale`` runs a model over files and folders tile by tile (memory bounded by the tile), keeping
names, subfolders, gray, alpha and the ICC profile; ``models`` lists what ``--model`` can name;
``export`` writes a model as ONNX. Errors a user can cause become one line on stderr and a
non-zero exit; with many images, the others still run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn
from tqdm import tqdm

from superres.app.core import find_models
from superres.atomic import atomic_path
from superres.data.imageio import IMAGE_SUFFIXES, read_image
from superres.errors import SuperresError
from superres.inference import iter_tiled_bands, pick_device, super_resolve, tile_spans
from superres.models.weights import WEIGHTS_FILE, load_any, load_weights
from superres.profiles import apply_profile

log = logging.getLogger(__name__)

MODELS_DIR = Path("data/06_models")
COMPARISON = Path("data/08_reporting/comparison.csv")
MAX_PIXELS = 100_000_000
# --format -> (Pillow format, suffix, save options); None keeps the input's format when it is one of these.
FORMATS = {
    "png": ("PNG", ".png", {}),
    "jpg": ("JPEG", ".jpg", {"quality": 95}),
    "webp": ("WEBP", ".webp", {"lossless": True}),
    "tiff": ("TIFF", ".tif", {"compression": "tiff_lzw"}),
}
_FORMAT_OF_SUFFIX = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}
_ALPHA_FORMATS = {"png", "webp", "tiff"}
_ORIENTATION_TAG = 0x0112


def best_trained_architecture(comparison: Path = COMPARISON, models_dir: Path = MODELS_DIR) -> str:
    """The architecture of the latest report with the highest test PSNR-Y among those with trained weights."""
    try:
        with comparison.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise SuperresError(f"no --model given and no report in {comparison}; run `dvc repro` first, "
                            "or give --model (an architecture key, a weights folder or file, or models:/NAME/VERSION)"
                            ) from None
    trained = [row for row in rows  # bicubic, the baseline, has no parameters: it is not a trained model
               if (models_dir / row["architecture"] / WEIGHTS_FILE).exists() and float(row.get("parameters") or 1) > 0]
    if not trained:
        raise SuperresError(f"no architecture of {comparison} has trained weights in {models_dir}; "
                            "run `dvc repro` (or `dvc pull`) first, or give --model")
    return max(trained, key=lambda row: float(row["test/psnr_y"]))["architecture"]


def resolve_model(
    model: str | None,
    device: torch.device,
    *,
    overrides: dict[str, Any] | None = None,
    scale: int | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The model named by ``--model``: None (the best of the latest report), ``models:/NAME/VERSION``
    (a registered MLflow model), a weights folder or checkpoint file, or an architecture key (its
    trained weights in ``MODELS_DIR``). ``overrides`` (``--arch``, ``--scale``, ``--model-config``)
    complete the config of a foreign checkpoint; ``scale``, when given, must be the model's."""
    overrides = overrides or {}
    name = model or best_trained_architecture()
    if name.startswith("models:/"):
        from superres.training.tracking import default_tracking_uri, download_model  # MLflow loads slowly

        with tempfile.TemporaryDirectory() as tmp:
            try:
                folder = download_model(name, tmp, default_tracking_uri(Path.cwd()))
            except (LookupError, ValueError) as exc:
                raise SuperresError(f"--model {name}: {exc}; list the registered models with `superres models`"
                                    ) from None
            weights = load_weights(folder, device)
    elif Path(name).exists():
        weights = load_any(name, overrides, device)
    elif (MODELS_DIR / name).is_dir():
        weights = load_weights(MODELS_DIR / name, device)
    else:
        raise SuperresError(f"--model {name}: no file or folder {name} and no trained weights in {MODELS_DIR / name}; "
                            f"train it first (`kedro run --pipelines={name}`), give a weights folder or checkpoint, "
                            "or models:/NAME/VERSION (see `superres models`)")
    if scale is not None and int(weights.config["scale"]) != scale:
        raise SuperresError(f"--model {name} upscales x{weights.config['scale']}, not x{scale} (--scale); "
                            f"give --scale {weights.config['scale']} or a model trained for x{scale}")
    return weights.build(device), weights.config


@dataclass
class Source:
    """An input image: upright uint8 pixels (H x W x 1 or 3), its alpha (H x W) if it has a
    transparent one, and the metadata still true after upscaling."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None


def read_source(path: Path, max_pixels: int) -> Source:
    """Read ``path`` with the project's checks (size limit before decoding, EXIF orientation, 16-bit
    reduced to 8-bit); keep its alpha channel apart, and its ICC profile and EXIF (orientation reset).
    Metadata that cannot be read is left out (logged): the pixels are what matters."""
    source = Source(read_image(path, max_pixels=max_pixels, setting="--max-pixels")[0])
    try:
        with warnings.catch_warnings(), Image.open(path) as img:  # read_image has checked its size and format
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            exif = img.getexif()
            if _ORIENTATION_TAG in exif:
                exif[_ORIENTATION_TAG] = 1  # the pixels are upright now
            source.icc_profile, source.exif = img.info.get("icc_profile"), exif.tobytes() if len(exif) else None
            if "A" in img.getbands() or "transparency" in img.info:
                gray = source.pixels.shape[2] == 1
                upright = np.asarray(ImageOps.exif_transpose(img).convert("LA" if gray else "RGBA"))
                if (upright[..., -1] < 255).any():  # the colour itself, not read_image's composite on white
                    source.pixels = np.ascontiguousarray(upright[..., :-1])
                    source.alpha = np.ascontiguousarray(upright[..., -1])
    except Exception as exc:  # Pillow raises many types on odd metadata; read_image already vouched for the pixels
        log.warning("%s: metadata and alpha not kept (%s)", path, exc)
    return source


def write_result(
    target: Path, source: Source, bands: Iterable[tuple[int, np.ndarray]], size: tuple[int, int], fmt: str
) -> None:
    """Assemble the SR bands into one image of ``size`` (width, height), add the alpha channel
    upscaled with bicubic (composited on white for JPEG), and save it atomically as ``fmt`` with
    the source's ICC profile and EXIF."""
    gray = source.pixels.shape[2] == 1
    result = Image.new("L" if gray else "RGB", size)
    for top, band in bands:
        result.paste(Image.fromarray(band[:, :, 0] if gray else band), (0, top))
    if source.alpha is not None:
        alpha = Image.fromarray(source.alpha).resize(size, Image.Resampling.BICUBIC)
        if fmt in _ALPHA_FORMATS:
            result.putalpha(alpha)
        else:
            result = Image.composite(result, Image.new(result.mode, size, 255), alpha)
    pillow_format, _, options = FORMATS[fmt]
    metadata = {k: v for k, v in (("icc_profile", source.icc_profile), ("exif", source.exif)) if v}
    with atomic_path(target) as tmp:
        try:
            result.save(tmp, format=pillow_format, **options, **metadata)
        except (OSError, ValueError) as exc:
            raise SuperresError(f"{target}: cannot be written as {fmt} ({exc}); choose another --format") from None


def _collect(inputs: tuple[Path, ...]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for every input file and every image under an input folder."""
    files: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            files += [(f, f.relative_to(item)) for f in sorted(item.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files.append((item, Path(item.name)))
    return files


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name a model, shared by ``upscale`` and ``export``."""
    options = [
        click.option("--model", default=None,
                     help="Architecture key (its trained weights), weights folder, .pth/.pt checkpoint, or "
                          "models:/NAME/VERSION. Default: the best model of the latest report."),
        click.option("--arch", default=None, help="Architecture of a foreign .pth/.pt checkpoint."),
        click.option("--scale", default=None, type=click.IntRange(min=1),
                     help="Upscaling factor: the model's (checked), or that of a foreign checkpoint."),
        click.option("--model-config", default=None,
                     help="JSON constructor arguments of a foreign checkpoint's model."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _device(name: str) -> torch.device:
    """``--device``: a name torch knows, whose backend this machine has."""
    try:
        device = pick_device(name)
    except RuntimeError as exc:
        raise SuperresError(f"--device {name}: {exc}; give auto, cpu, cuda or mps") from None
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if device.type in available and not available[device.type]():
        raise SuperresError(f"--device {name}: this machine has no {device.type.upper()} device; give auto or cpu")
    return device


def _overrides(arch: str | None, scale: int | None, model_config: str | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {"architecture": arch, "scale": scale}
    if model_config is not None:
        try:
            overrides["model"] = json.loads(model_config)
        except json.JSONDecodeError as exc:
            raise SuperresError(f"--model-config is not valid JSON ({exc}); give e.g. '{{\"n_feats\": 64}}'") from None
    return {k: v for k, v in overrides.items() if v is not None}



@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """superres: super-resolution models trained by this project's pipelines."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the upscaled images.")
@model_options
@click.option("--tile", default=128, show_default=True, type=click.IntRange(min=0),
              help="Tile size in input pixels (0: the whole image at once).")
@click.option("--overlap", default=32, show_default=True, type=click.IntRange(min=0), help="Context around each tile.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--format", "fmt", default=None, type=click.Choice(sorted(FORMATS)),
              help="Output format. Default: the input's when png, jpg, webp or tiff, else png.")
@click.option("--max-pixels", default=MAX_PIXELS, show_default=True, type=click.IntRange(min=1),
              help="Larger inputs are refused before decoding (decompression bombs).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (never an input file).")
def upscale(inputs: tuple[Path, ...], output: Path, model: str | None, arch: str | None, scale: int | None,
            model_config: str | None, tile: int, overlap: int, device: str, fmt: str | None, max_pixels: int,
            overwrite: bool) -> None:
    """Upscale INPUTS (image files, or folders searched recursively) into OUTPUT, keeping names and subfolders."""
    try:
        torch_device = _device(device)
        net, config = resolve_model(model, torch_device, overrides=_overrides(arch, scale, model_config), scale=scale)
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    factor, files = int(config["scale"]), _collect(inputs)
    sources = {f.resolve() for f, _ in files}
    failures, megapixels, start = 0, 0.0, time.perf_counter()
    for source_path, relative in tqdm(files, desc="images", unit="image", disable=None):
        out_format = fmt or _FORMAT_OF_SUFFIX.get(source_path.suffix.lower(), "png")
        target = (output / relative).with_suffix(FORMATS[out_format][1])
        try:
            if target.resolve() in sources:
                raise SuperresError(f"{target} is an input file; choose another output folder or --format")
            if target.exists() and not overwrite:
                raise SuperresError(f"{target} exists; give --overwrite to replace it")
            source = read_source(source_path, max_pixels)
            height, width = source.pixels.shape[:2]
            size = (width * factor, height * factor)
            if tile:
                count = len(tile_spans(height, tile, overlap)) * len(tile_spans(width, tile, overlap))
                with tqdm(total=count, desc=source_path.name, unit="tile", leave=False, disable=None) as bar:
                    bands = iter_tiled_bands(net, source.pixels, tile=tile, overlap=overlap, device=torch_device,
                                             on_tile=bar.update)
                    write_result(target, source, bands, size, out_format)
            else:
                write_result(target, source, [(0, super_resolve(net, source.pixels, torch_device))], size, out_format)
            megapixels += size[0] * size[1] / 1e6
        except SuperresError as exc:
            failures += 1
            click.echo(f"superres: {exc}", err=True)
    click.echo(f"{len(files) - failures} of {len(files)} images upscaled x{factor} with {config['architecture']}: "
               f"{megapixels:.1f} megapixels written in {time.perf_counter() - start:.1f} s -> {output}", err=True)
    if failures:
        sys.exit(1)


def _report_psnr(architecture: str) -> float | None:
    try:
        metrics = Path("data/08_reporting") / architecture / "metrics.json"
        return json.loads(metrics.read_text(encoding="utf-8"))["test/psnr_y"]
    except (OSError, ValueError, KeyError):
        return None


@main.command()
def models() -> None:
    """List the models `upscale --model` can use: trained weights and registered MLflow models."""
    from superres.training.tracking import default_tracking_uri, registered_models  # MLflow loads slowly

    trained = find_models(MODELS_DIR, include_baseline=True)
    rows = [(m.name, m.architecture, m.scale, _report_psnr(m.name)) for m in trained]

    uri = default_tracking_uri(Path.cwd())
    if os.environ.get("MLFLOW_TRACKING_URI") or Path("mlflow.db").exists():  # never create an empty store
        for row in registered_models(uri):
            name = f"models:/{row['name']}/{row['version']}"
            rows.append((name, row["architecture"], row["scale"], row["test/psnr_y"]))
    if not rows:
        click.echo(f"no trained weights in {MODELS_DIR} and no registered models in {uri}; run `dvc repro` first",
                   err=True)
        return
    click.echo(f"{'--model':<32} {'architecture':<14} {'scale':>5} {'test PSNR-Y':>12}")
    for name, architecture, scale, psnr in rows:
        psnr_text = f"{float(psnr):.2f} dB" if psnr is not None else "-"
        click.echo(f"{name:<32} {architecture or '-':<14} {'x' + str(scale) if scale else '-':>5} {psnr_text:>12}")


@main.command()
@model_options
@click.option("--format", "fmt", default="onnx", show_default=True, type=click.Choice(["onnx"]), help="Export format.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="File to write (model.onnx).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def export(model: str | None, arch: str | None, scale: int | None, model_config: str | None, fmt: str, output: Path,
           overwrite: bool) -> None:
    """Export a model for other runtimes: ONNX with dynamic height and width."""
    from superres.export import export_onnx  # imports onnx, which `upscale` does not need

    try:
        if output.exists() and not overwrite:
            raise SuperresError(f"{output} exists; give --overwrite to replace it")
        overrides = _overrides(arch, scale, model_config)
        net, config = resolve_model(model, torch.device("cpu"), overrides=overrides, scale=scale)
        export_onnx(net, output)
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{config['architecture']} x{config['scale']} exported to {output} ({fmt})", err=True)


@main.command()
@click.option("--models", default=str(MODELS_DIR), show_default=True, type=click.Path(path_type=Path),
              help="Folder whose subfolders hold trained weights.")
@click.option("--port", default=8501, show_default=True, type=int, help="Port of the web server.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest accepted upload, in MB.")
@click.option("--max-pixels", default=1_000_000, show_default=True, type=click.IntRange(min=1),
              help="Largest accepted image to upscale, in pixels.")
def app(models: Path, port: int, address: str, device: str, max_upload_mb: float, max_pixels: int) -> None:
    """Serve the web app: upload an image, compare bicubic with a model, download the result."""
    from superres.app import SCRIPT

    if not models.is_dir():
        raise click.ClickException(f"--models {models}: no such folder; train a model first (`kedro run --pipelines=edsr`) "
                                   "or give the folder holding the model folders")
    command = [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.port", str(port),
               "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
               "--server.maxUploadSize", str(max(1, math.ceil(max_upload_mb))),
               "--", "--models", str(models.resolve()), "--device", device, "--max-upload-mb", str(max_upload_mb),
               "--max-pixels", str(max_pixels)]
    try:
        sys.exit(subprocess.call(command))
    except KeyboardInterrupt:
        sys.exit(130)


from superres.bench import bench  # noqa: E402 - the benchmark command lives in its own module

main.add_command(bench)


@main.command()
@click.argument("name")
@click.option("--params", "params_path", default="params.yaml", show_default=True, type=click.Path(path_type=Path),
              help="The parameters file to switch.")
def profile(name: str, params_path: Path) -> None:
    """Switch params.yaml to the profile NAME (default, paper: conf/profiles/NAME.yaml)."""
    try:
        changed = apply_profile(name, params_path)
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{params_path}: profile {name} ({len(changed)} settings changed: {', '.join(changed) or 'none'}); "
               "run `dvc repro` to train and evaluate with it")


if __name__ == "__main__":
    main()
