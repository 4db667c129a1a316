"""The ``superres`` command: use a trained model on your own images.

``upscale`` runs a model over files and folders tile by tile (memory bounded by the tile), keeping
names, subfolders, gray, alpha and the ICC profile; ``evaluate`` measures a model on benchmark sets or
any folder of HR images (:mod:`superres.evaluation`); ``models`` lists what ``--model`` can name;
``export`` writes a model as ONNX. They run from any folder: ``--model bicubic`` needs nothing
trained, and trained weights are looked up in the project (:mod:`superres.modelstore`). Errors a user
can cause become one line on stderr and a non-zero exit; with many images, the others still run.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch
from tqdm import tqdm

from superres.atomic import write_text
from superres.data.download import file_sha256
from superres.data.imagefiles import FORMATS, collect_images, format_of, read_source, write_result
from superres.errors import SuperresError
from superres.inference import (
    OVERLAP,
    TILE,
    for_inference,
    iter_tiled_bands,
    pick_device,
    super_resolve,
    tile_spans,
)
from superres.models import REGISTRY, count_parameters
from superres.modelstore import (
    BICUBIC_SCALE,
    MODELS_DIR,
    PROJECT_ENV,
    ProjectNotFoundError,
    find_project,
    list_models,
    pick_seed,
    report_metric,
    resolve_model,
)
from superres.precision import INFERENCE_CHOICES, INFERENCE_TOLERANCE_DB
from superres.profiles import apply_profile

log = logging.getLogger(__name__)

MAX_PIXELS = 100_000_000


PROJECT_HELP = (f"The superres project (the folder holding dvc.yaml and params.yaml) whose trained models "
                f"--model names. Default: ${PROJECT_ENV}, else the nearest such folder at or above the working "
                "directory.")


def project_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--project", default=None, type=click.Path(path_type=Path), help=PROJECT_HELP)(command)


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name a model, shared by ``upscale`` and ``export``."""
    options = [
        click.option("--model", default=None,
                     help="bicubic (no weights, any --scale); an architecture key: its trained weights in the "
                          "project, the seed with the best validation PSNR-Y; KEY/seedN: that seed; a weights "
                          "folder; a .pth/.pt checkpoint; or a registered MLflow model, models:/NAME/VERSION or "
                          "models:/NAME@ALIAS (models:/superres-x2@champion). Default: the best architecture of the "
                          "project's latest report."),
        click.option("--arch", default=None, help="Architecture of a foreign .pth/.pt checkpoint."),
        click.option("--scale", default=None, type=click.IntRange(min=2),
                     help=f"Upscaling factor: bicubic's (default {BICUBIC_SCALE}), a trained model's (checked: "
                          "each has one), or that of a foreign checkpoint."),
        click.option("--model-config", default=None,
                     help="JSON constructor arguments of a foreign checkpoint's model."),
    ]
    for option in reversed(options):
        command = option(command)
    return project_option(command)


def precision_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--precision``: of inference, shared by ``upscale`` and ``evaluate``."""
    return click.option(
        "--precision", default="auto", show_default=True, type=click.Choice(INFERENCE_CHOICES),
        help="auto: bf16 where the device computes it natively and the architecture keeps its PSNR-Y within "
             f"{INFERENCE_TOLERANCE_DB} dB of fp32, else fp32 (as the evaluate stage); bf16 or fp32 force it.")(command)


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
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the upscaled images.")
@model_options
@click.option("--tile", default=TILE, show_default=True, type=click.IntRange(min=0),
              help="Tile size in input pixels (0: the whole image at once).")
@click.option("--overlap", default=OVERLAP, show_default=True, type=click.IntRange(min=0),
              help="Context around each tile.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--format", "fmt", default=None, type=click.Choice(sorted(FORMATS)),
              help="Output format. Default: the input's when png, jpg, webp or tiff, else png.")
@click.option("--max-pixels", default=MAX_PIXELS, show_default=True, type=click.IntRange(min=1),
              help="Larger inputs are refused before decoding (decompression bombs).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (never an input file).")
@precision_option
def upscale(inputs: tuple[Path, ...], output: Path, model: str | None, arch: str | None, scale: int | None,
            model_config: str | None, project: Path | None, tile: int, overlap: int, device: str, fmt: str | None,
            max_pixels: int, overwrite: bool, precision: str) -> None:
    """Upscale INPUTS (image files, or folders searched recursively) into OUTPUT, keeping names and subfolders.

    `--model bicubic --scale N` works anywhere, with nothing trained (x2 without --scale)."""
    try:
        torch_device = _device(device)
        resolved = resolve_model(model, torch_device, overrides=_overrides(arch, scale, model_config), scale=scale,
                                 project=project)
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    net = for_inference(resolved.net, resolved.config.get("architecture"), torch_device, precision)
    factor, files = int(resolved.config["scale"]), collect_images(inputs)
    click.echo(f"model: {resolved.name} x{factor}, {resolved.origin}; {net.precision.describe()}", err=True)
    sources = {f.resolve() for f, _ in files}
    failures, megapixels, start = 0, 0.0, time.perf_counter()
    for source_path, relative in tqdm(files, desc="images", unit="image", disable=None):
        out_format = fmt or format_of(source_path)
        target = (output / relative).with_suffix(FORMATS[out_format][1])
        try:
            if target.resolve() in sources:
                raise SuperresError(f"{target} is an input file; choose another output folder or --format")
            if target.exists() and not overwrite:
                raise SuperresError(f"{target} exists; give --overwrite to replace it")
            source = read_source(source_path, max_pixels, "--max-pixels")
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
    click.echo(f"{len(files) - failures} of {len(files)} images upscaled x{factor} with {resolved.name}: "
               f"{megapixels:.1f} megapixels written in {time.perf_counter() - start:.1f} s -> {output}", err=True)
    if failures:
        sys.exit(1)


@main.command()
@project_option
def models(project: Path | None) -> None:
    """List what `upscale --model` can name: bicubic, each seed of the project's trained models, registered
    MLflow models. The seed an architecture key picks is marked."""
    from superres.tracking import default_tracking_uri, registered_models  # MLflow loads slowly

    rows: list[tuple[str, str, str, float | None, float | None, str]] = [
        ("bicubic", "bicubic", "any", None, None, f"no weights: --scale N, x{BICUBIC_SCALE} without")]
    try:
        found = find_project(project)
    except ProjectNotFoundError as exc:
        if project is not None or os.environ.get(PROJECT_ENV):
            raise click.ClickException(str(exc)) from None
        found = None
        click.echo(f"superres: no trained models listed: {exc}", err=True)
    try:
        if found is not None:
            seeds = found.seeds()
            trained = [m for m in list_models(found.models_dir, seeds, include_stale=True)
                       if m.architecture != "bicubic"]  # the baseline is listed once, above
            current = [m for m in trained if "/" in m.name and not m.stale]  # seed folders --model KEY picks from
            best = {arch: pick_seed([m for m in current if m.name.split("/")[0] == arch])
                    for arch in {m.name.split("/")[0] for m in current}}
            for m in trained:
                arch = m.name.split("/")[0]
                note = ("stale: seed not in params.yaml seeds" if m.stale
                        else f"<- --model {arch}" if best.get(arch) is m else "")
                rows.append((m.name, m.architecture, f"x{m.scale}", m.val_psnr_y, report_metric(found, m), note))
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None

    if os.environ.get("MLFLOW_TRACKING_URI") or (found is not None and (found.root / "mlflow.db").exists()):
        uri = default_tracking_uri(found.root if found is not None else Path.cwd())  # never creates an empty store
        for row in registered_models(uri):
            scale = f"x{row['scale']}" if row["scale"] else "-"
            aliases = ", ".join(f"models:/{row['name']}@{alias}" for alias in row["aliases"])
            rows.append((f"models:/{row['name']}/{row['version']}", row["architecture"] or "-", scale, None,
                         row["test/psnr_y"], f"= {aliases}" if aliases else ""))
    click.echo(f"{'--model':<28} {'architecture':<13} {'scale':>5} {'val PSNR-Y':>11} {'test PSNR-Y':>12}  note")
    for name, architecture, scale, val, test, note in rows:
        val_text, test_text = (f"{float(v):.2f} dB" if v is not None else "-" for v in (val, test))
        click.echo(f"{name:<28} {architecture:<13} {scale:>5} {val_text:>11} {test_text:>12}  {note}".rstrip())


@main.command()
@model_options
@click.option("--format", "fmt", default="onnx", show_default=True, type=click.Choice(["onnx"]), help="Export format.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="File to write (model.onnx).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def export(model: str | None, arch: str | None, scale: int | None, model_config: str | None, project: Path | None,
           fmt: str, output: Path, overwrite: bool) -> None:
    """Export a model for other runtimes: ONNX with dynamic height and width."""
    from superres.export import export_onnx, require_onnx  # the ONNX packages: the `export` extra

    try:
        require_onnx("superres export")
        if output.exists() and not overwrite:
            raise SuperresError(f"{output} exists; give --overwrite to replace it")
        overrides = _overrides(arch, scale, model_config)
        resolved = resolve_model(model, torch.device("cpu"), overrides=overrides, scale=scale, project=project)
        export_onnx(resolved.net, output)
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{resolved.name} ({resolved.config['architecture']} x{resolved.config['scale']}, {resolved.origin}) "
               f"exported to {output} ({fmt})", err=True)


@main.command(name="import")
@click.argument("source")
@click.option("--arch", default=None,
              help="The project's architecture the weights are for, one with an import table: srcnn, fsrcnn, "
                   "vdsr, lapsrn_lai, imdn, rlfn, span. Known names set it.")
@click.option("--scale", default=None, type=click.IntRange(min=2),
              help="The upscaling factor the weights were trained for. Known names set it.")
@click.option("-o", "--output", default=None, type=click.Path(path_type=Path),
              help="Folder to write weights.safetensors and config.json into. Default: <arch>_x<scale>.")
@click.option("--sha256", default=None, help="Expected SHA-256 of the checkpoint (checked before it is read).")
@click.option("--origin", default=None,
              help="Who published the weights, kept in config.json (e.g. 'Hui et al. 2019').")
@click.option("--overwrite", is_flag=True, help="Replace the weights already in the output folder.")
def import_(source: str, arch: str | None, scale: int | None, output: Path | None, sha256: str | None,
            origin: str | None, overwrite: bool) -> None:
    """Import the published weights SOURCE into the project's format. SOURCE is a path, an http(s) URL
    (downloaded once), or a known name such as imdn_x2 (the authors' URL and checksum; see the README).

    Reads PyTorch state dicts (zip or legacy), pickled whole modules (inertly: nothing in the file runs) and
    MatConvNet .mat files; maps every tensor to the architecture with an explicit table and refuses a
    checkpoint that does not fill it exactly. The folder it writes is what --model and the pipelines take."""
    from superres.models.official import fetch, import_official, resolve
    from superres.models.weights import CONFIG_FILE, WEIGHTS_FILE, save_weights

    try:
        name = source
        source, arch, scale, sha256, origin = resolve(source, arch, scale, sha256, origin)
        output = output if output is not None else Path(f"{arch}_x{scale}")
        if (output / WEIGHTS_FILE).exists() and not overwrite:
            raise SuperresError(f"{output} already holds {WEIGHTS_FILE}; give --overwrite to replace it, or another -o")
        if output.exists() and not output.is_dir():
            raise SuperresError(f"{output} is a file; give a folder with -o")
        start = time.perf_counter()
        path = fetch(source, sha256)
        record = {"source": source, "sha256": file_sha256(path), **({"origin": origin} if origin else {}),
                  **({"name": name} if name != source else {})}
        weights = import_official(path, arch, scale, record)
        seconds = time.perf_counter() - start
        output.mkdir(parents=True, exist_ok=True)
        save_weights(output, weights)
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    parameters = count_parameters(weights.build())
    pretrained = weights.config["pretrained"]
    click.echo(f"{arch} x{scale}: {pretrained['tensors']} tensors, {parameters:,} parameters from {path.name} "
               f"({pretrained['format']}) in {seconds:.2f} s -> {output}/{WEIGHTS_FILE} + {CONFIG_FILE}", err=True)


@main.command()
@click.argument("model")
@click.option("--benchmarks", "folders", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A folder of HR images (made into LR/HR pairs as the benchmarks stage does: modcrop, MATLAB "
                   "bicubic down), or one the benchmarks stage wrote (<set>_x<scale>/{hr,lr}/). Repeatable.")
@click.option("--arch", default=None, help="Architecture of a foreign .pth/.pt checkpoint.")
@click.option("--scale", default=None, type=click.IntRange(min=2),
              help=f"Upscaling factor: bicubic's (default {BICUBIC_SCALE}), a trained model's (checked), or that of "
                   "a foreign checkpoint.")
@click.option("--model-config", default=None, help="JSON constructor arguments of a foreign checkpoint's model.")
@project_option
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--max-pixels", default=MAX_PIXELS, show_default=True, type=click.IntRange(min=1),
              help="Largest HR image read, in pixels (checked from the header before decoding).")
@click.option("--json", "json_path", default=None, type=click.Path(path_type=Path),
              help="Also write the metrics to this JSON file (the keys of metrics.json: <set>_x<scale>/psnr_y...).")
@precision_option
def evaluate(model: str, folders: tuple[Path, ...], arch: str | None, scale: int | None, model_config: str | None,
             project: Path | None, device: str, max_pixels: int, json_path: Path | None, precision: str) -> None:
    """Measure MODEL on benchmark sets as the pipelines do: PSNR-Y and SSIM-Y with `scale` pixels shaved.

    MODEL is what `upscale --model` takes: bicubic, an architecture key (or KEY/seedN), a weights folder,
    a .pth/.pt checkpoint or models:/NAME/VERSION (or @ALIAS). A trained model is measured at its own scale; bicubic
    on a folder of pairs at every scale it holds. Prints one line per set."""
    import tempfile

    from superres.evaluation import evaluate_model, folder_pairs  # the benchmark code `upscale` does not need

    try:
        torch_device = _device(device)
        resolved = resolve_model(model, torch_device, overrides=_overrides(arch, scale, model_config), scale=scale,
                                 project=project)
        with tempfile.TemporaryDirectory(prefix="superres-evaluate-") as work:
            try:
                sets = folder_pairs(folders, [int(resolved.config["scale"])], work, max_pixels=max_pixels)
            except SuperresError as exc:
                raise SuperresError(f"--benchmarks: {exc}") from None
            evaluation = evaluate_model(resolved.net, benchmarks=sets, config=resolved.config, device=torch_device,
                                        latency=False, name=resolved.name, precision=precision)
        if evaluation.per_benchmark.empty:
            raise SuperresError(f"--benchmarks: no set at x{resolved.config['scale']}, the scale of {resolved.name} "
                                f"(found {', '.join(sets) or 'none'}); give HR images or pairs at that scale")
    except SuperresError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{resolved.name} ({resolved.config['architecture']} x{resolved.config['scale']}, {resolved.origin}; "
               f"{evaluation.precision.describe()})", err=True)
    click.echo(f"{'set':<24} {'scale':>5} {'images':>6} {'PSNR-Y':>10} {'SSIM-Y':>7}")
    for key, rows in evaluation.per_benchmark.groupby("dataset", sort=True):
        psnr_y, ssim_y = (evaluation.means[f"{key}/{metric}"] for metric in ("psnr_y", "ssim_y"))
        click.echo(f"{key:<24} {'x' + str(rows['scale'].iloc[0]):>5} {len(rows):>6} {psnr_y:>7.2f} dB {ssim_y:>7.4f}")
    if json_path is not None:
        record = {"model": resolved.name, "architecture": resolved.config["architecture"],
                  "scale": int(resolved.config["scale"]), "precision": evaluation.timing["precision"],
                  "metrics": evaluation.metrics}
        write_text(json_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        click.echo(f"metrics written to {json_path}", err=True)


@main.command()
@click.option("--models", default=None, type=click.Path(path_type=Path),
              help="Folder whose subfolders hold trained weights (each seed of <arch>/seed<s>/ is offered). "
                   f"Default: {MODELS_DIR} of the project, the seeds params.yaml lists.")
@project_option
@click.option("--port", default=8501, show_default=True, type=int, help="Port of the web server.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest accepted upload, in MB.")
@click.option("--max-pixels", default=1_000_000, show_default=True, type=click.IntRange(min=1),
              help="Largest accepted image to upscale, in pixels.")
def app(models: Path | None, project: Path | None, port: int, address: str, device: str, max_upload_mb: float,
        max_pixels: int) -> None:
    """Serve the web app: upload an image, compare bicubic with a model, download the result."""
    from superres.app import SCRIPT

    if importlib.util.find_spec("streamlit") is None:  # the `app` extra
        raise click.ClickException("superres app needs Streamlit (not installed): pip install 'superres[app]' "
                                   "(in a checkout: pip install -e '.[app]')")
    if models is not None:
        if not models.is_dir():
            raise click.ClickException(f"--models {models}: no such folder; train a model first "
                                       "(`kedro run --pipelines=edsr`) or give the folder holding the model folders")
        where = ["--models", str(models.resolve())]
    else:
        try:
            where = ["--project", str(find_project(project).root)]
        except SuperresError as exc:
            raise click.ClickException(f"{exc}; or give --models FOLDER") from None
    command = [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.port", str(port),
               "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
               "--server.maxUploadSize", str(max(1, math.ceil(max_upload_mb))),
               "--", *where, "--device", device, "--max-upload-mb", str(max_upload_mb),
               "--max-pixels", str(max_pixels)]
    try:
        sys.exit(subprocess.call(command))
    except KeyboardInterrupt:
        sys.exit(130)


@main.command()
@click.option("--quick", is_flag=True,
              help="Tiny sizes and few steps: proves the command works (well under a minute).")
@click.option("-o", "--output", default="bench.json", show_default=True, type=click.Path(path_type=Path),
              help="JSON file of every figure.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--arch", "archs", multiple=True,
              help="Train only these architectures (repeatable; default: all, --quick: srcnn and edsr).")
@click.option("--no-append", is_flag=True, help="Do not append a section to BENCHMARKS.md.")
def bench(quick: bool, output: Path, device: str, archs: tuple[str, ...], no_append: bool) -> None:
    """Measure training, data loading, degradation, inference and pipeline speed; write OUTPUT and a
    BENCHMARKS.md section."""
    # The bench imports the trainer and every measurement: only this command loads it.
    from superres.bench.report import BENCHMARKS_FILE, append_section, markdown_section
    from superres.bench.run import run_bench
    from superres.export import INSTALL_EXPORT, missing_onnx_packages

    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device is available; use --device cpu or auto")
    unknown = sorted(set(archs) - set(REGISTRY))
    if unknown:
        raise click.ClickException(f"--arch {', '.join(unknown)}: unknown; known architectures: {', '.join(REGISTRY)}")
    command = "superres bench" + (" --quick" if quick else "") + (f" --device {device}" if device != "auto" else "")
    command += "".join(f" --arch {a}" for a in archs)
    root = Path.cwd()
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(auto if device == "auto" else device)
    missing = missing_onnx_packages()
    if missing and chosen.type == "cpu":  # the upscale engines run on the CPU; the torch ones without the extra
        click.echo(f"superres bench: {', '.join(missing)} not installed: the ONNX Runtime upscale rows are skipped; "
                   f"{INSTALL_EXPORT}", err=True)
    result = run_bench(quick=quick, device=chosen, root=root, command=command, archs=archs)
    write_text(output, json.dumps(result, indent=2) + "\n")
    section = markdown_section(result)
    if not no_append:
        append_section(root / BENCHMARKS_FILE, section)
    click.echo(section)
    click.echo(f"figures written to {output}" + ("" if no_append else f"; section appended to {BENCHMARKS_FILE}"),
               err=True)


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
