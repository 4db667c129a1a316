"""The ``superres`` command: use a trained model on your own images.

Errors a user can cause become one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import click

from superres.data.imageio import IMAGE_SUFFIXES, read_image, write_png
from superres.errors import SuperresError
from superres.inference import pick_device, super_resolve
from superres.models.weights import load_model

MODELS_DIR = Path("data/06_models")
MAX_PIXELS = 100_000_000


def _model_folder(model: str) -> Path:
    """An architecture key (its trained weights in this project) or a folder of weights."""
    path = Path(model)
    if path.is_dir():
        return path
    if (MODELS_DIR / model).is_dir():
        return MODELS_DIR / model
    raise SuperresError(f"--model {model}: no folder {path} and no trained weights in {MODELS_DIR / model}; "
                        f"train it first (`kedro run --pipelines={model}`) or give a folder holding weights.safetensors and config.json")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """superres: super-resolution models trained by this project's pipelines."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the upscaled images.")
@click.option("--model", default="edsr", show_default=True, help="Architecture key of a trained model, or a weights folder.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def upscale(inputs: tuple[Path, ...], output: Path, model: str, device: str, overwrite: bool) -> None:
    """Upscale INPUTS (image files or folders) into OUTPUT as PNG."""
    try:
        net, config = load_model(_model_folder(model), pick_device(device))
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    files: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            files += [(f, f.relative_to(item)) for f in sorted(item.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files.append((item, Path(item.name)))
    failures, start = 0, time.perf_counter()
    for source, relative in files:
        target = (output / relative).with_suffix(".png")
        try:
            if target.exists() and not overwrite:
                raise SuperresError(f"{target} exists; give --overwrite to replace it")
            if target.resolve() == source.resolve():
                raise SuperresError(f"{target} is the input file itself; choose another output folder")
            image, _ = read_image(source, max_pixels=MAX_PIXELS)
            write_png(target, super_resolve(net, image))
        except SuperresError as exc:
            failures += 1
            click.echo(f"superres: {exc}", err=True)
    click.echo(f"{len(files) - failures} of {len(files)} images upscaled x{config['scale']} with {config['architecture']} "
               f"in {time.perf_counter() - start:.1f} s -> {output}", err=True)
    if failures:
        sys.exit(1)


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


if __name__ == "__main__":
    main()
