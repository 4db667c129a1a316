"""Where a project keeps its trained models and its report, and which weights a model name means.

``superres upscale``, ``models``, ``export`` and the web app read the project's files through this
module only, so they agree on the paths (those of ``conf/base/catalog.yml``) and on the choices:

- The project is the folder given by ``--project``, else by the ``SUPERRES_PROJECT`` environment
  variable, else the nearest folder at or above the working directory that holds ``dvc.yaml`` and
  ``params.yaml``. When none is found, the error says where it looked and how to point at one.
- Training writes one folder per architecture and seed: ``data/06_models/<arch>/seed<s>/``
  (``weights.safetensors`` + ``config.json``). An architecture key means its seed with the highest
  validation PSNR-Y (``best_val_psnr_y`` in ``config.json``; never the test split; ties go to the
  lowest seed), among the seeds ``params.yaml`` lists: a folder left from an earlier run with more
  seeds is stale and used only when named (``edsr/seed3``). A folder that itself holds the two
  files (a user's folder, or the layout before seeds) is a model of its own.
- Without a model name, the architecture is the one with the highest test PSNR-Y (the mean over
  seeds) in the latest report, ``data/08_reporting/comparison.csv``, among those with weights.
- :func:`resolve_model` turns any name ``--model`` accepts (``bicubic``, a key, ``<key>/seed<s>``,
  ``models:/NAME/VERSION``, a weights folder or a checkpoint) into a model ready to run, with a
  sentence that says where its weights come from and why these.

The paths are those of ``conf/base/catalog.yml``, here and nowhere else in the code that reads them
(``MODELS_DIR``, ``REPORTING_DIR``, ``COMPARISON``, ``METRICS_FILE``; a test checks they agree).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from superres.errors import ConfigError, SuperresError, WeightsError
from superres.models import REGISTRY, create_model
from superres.models.weights import CONFIG_FILE, WEIGHTS_FILE, load_any, load_weights

log = logging.getLogger(__name__)

PROJECT_ENV = "SUPERRES_PROJECT"
PROJECT_MARKERS = ("dvc.yaml", "params.yaml")  # both at the root of the project
PARAMS_FILE = "params.yaml"
# Relative to the project root; the catalog's "{arch}.model" folders and its comparison_table.
MODELS_DIR = Path("data/06_models")
REPORTING_DIR = Path("data/08_reporting")
COMPARISON = REPORTING_DIR / "comparison.csv"
METRICS_FILE = "metrics.json"
_SEED_FOLDER = re.compile(r"seed(\d+)")


class ProjectNotFoundError(SuperresError):
    """No superres project where the user pointed, or none above the working directory."""


@dataclass(frozen=True)
class Project:
    """A superres project: its root folder and how it was found (for messages)."""

    root: Path
    origin: str = "--project"

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def reporting_dir(self) -> Path:
        return self.root / REPORTING_DIR

    @property
    def comparison(self) -> Path:
        return self.root / COMPARISON

    def seeds(self) -> tuple[int, ...] | None:
        """The ``seeds`` of ``params.yaml``; None where it has none (then every seed folder counts)."""
        path = self.root / PARAMS_FILE
        try:
            params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path} cannot be read ({exc}); fix the file or point --project at another project"
                              ) from None
        seeds = params.get("seeds") if isinstance(params, dict) else None
        if seeds is None:
            return None
        if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ConfigError(f"{path}: seeds must be a list of integers, e.g. [0, 1, 2], not {seeds!r}")
        return tuple(seeds)


def is_project(folder: Path) -> bool:
    return all((folder / marker).is_file() for marker in PROJECT_MARKERS)


def find_project(explicit: str | Path | None = None, start: str | Path | None = None) -> Project:
    """The project named by ``explicit`` (``--project``), else by ``SUPERRES_PROJECT``, else the nearest
    folder at or above ``start`` (default: the working directory) holding ``dvc.yaml`` and ``params.yaml``."""
    markers = " and ".join(PROJECT_MARKERS)
    for origin, value in (("--project", explicit), (PROJECT_ENV, os.environ.get(PROJECT_ENV) or None)):
        if value is None:
            continue
        folder = Path(value).expanduser().resolve()
        if not is_project(folder):
            shown = f"--project {value}" if origin == "--project" else f"{PROJECT_ENV}={value}"
            raise ProjectNotFoundError(f"{shown}: {folder} is not a superres project (it lacks {markers}); "
                                       "give the folder that holds them")
        return Project(folder, origin)
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if is_project(folder):
            return Project(folder, f"found above {start}" if folder != start else "the working directory")
    raise ProjectNotFoundError(
        f"no superres project found: no folder from {start} up to {start.anchor} holds {markers}, "
        f"--project was not given and {PROJECT_ENV} is not set; run from inside the project, give --project DIR, "
        f"or set {PROJECT_ENV}=DIR (DIR: the folder holding {markers})")


@dataclass(frozen=True)
class StoredModel:
    """A folder holding ``weights.safetensors`` and ``config.json``, and what its config says."""

    name: str  # what --model names: "edsr/seed1", or a folder's own name
    folder: Path
    architecture: str
    scale: int
    seed: int | None = None
    val_psnr_y: float | None = None  # best_val_psnr_y: the validation PSNR-Y of the kept checkpoint
    stale: bool = False  # a seed folder whose seed params.yaml no longer lists

    @property
    def label(self) -> str:
        arch = self.name.split("/", 1)[0]
        if arch == self.architecture:
            return f"{self.name} (x{self.scale})"
        return f"{self.name} ({self.architecture}, x{self.scale})"


def holds_weights(folder: Path) -> bool:
    return (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def read_model(folder: Path, name: str, *, seed: int | None = None, stale: bool = False) -> StoredModel:
    """The model in ``folder`` (holding weights and config); a WeightsError when the config cannot be read."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        val = config.get("best_val_psnr_y")
        val = float(val) if val is not None and math.isfinite(float(val)) else None
        seed = seed if seed is not None else (int(config["seed"]) if config.get("seed") is not None else None)
        return StoredModel(name, folder, str(config["architecture"]), int(config["scale"]), seed, val, stale)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{folder / CONFIG_FILE}: unreadable config ({exc}); retrain the model or fix the file"
                           ) from None


def seed_folders(folder: Path) -> list[tuple[int, Path]]:
    """``(seed, path)`` of the ``seed<s>`` subfolders of ``folder`` holding weights, by seed."""
    found = []
    for sub in folder.iterdir() if folder.is_dir() else ():
        match = _SEED_FOLDER.fullmatch(sub.name)
        if match and holds_weights(sub):
            found.append((int(match.group(1)), sub))
    return sorted(found)


def list_models(models_dir: Path, seeds: tuple[int, ...] | None = None, *,
                include_stale: bool = False) -> list[StoredModel]:
    """Every model under ``models_dir``: each subfolder holding weights, and each seed folder of a
    subfolder (``<arch>/seed<s>``). Seeds outside ``seeds`` are stale: left out unless ``include_stale``.
    A folder whose config cannot be read is skipped with a warning in the log."""
    found: list[StoredModel] = []
    for folder in sorted(p for p in models_dir.glob("*") if p.is_dir()):
        if holds_weights(folder):
            entries = [(folder, folder.name, None, False)]
        else:
            entries = [(sub, f"{folder.name}/{sub.name}", seed, seeds is not None and seed not in seeds)
                       for seed, sub in seed_folders(folder)]
        for path, name, seed, stale in entries:
            if stale and not include_stale:
                continue
            try:
                found.append(read_model(path, name, seed=seed, stale=stale))
            except WeightsError as exc:
                log.warning("skipping %s: %s", path, exc)
    return found


def pick_seed(candidates: list[StoredModel]) -> StoredModel:
    """The candidate with the highest validation PSNR-Y; ties (and missing values) go to the lowest seed."""
    def key(m: StoredModel) -> tuple[float, int]:
        return (m.val_psnr_y if m.val_psnr_y is not None else -math.inf, -(m.seed or 0))

    return max(candidates, key=key)


@dataclass(frozen=True)
class Choice:
    """The model a name resolved to, and why (a sentence for the log)."""

    model: StoredModel
    reason: str


def _seed_choice(name: str, folder: Path, seeds: tuple[int, ...] | None, hint: str) -> Choice:
    """The best seed of the seed folders of ``folder``, among ``seeds`` when given."""
    present = seed_folders(folder)
    current = [(s, p) for s, p in present if seeds is None or s in seeds]
    if not current:
        if present:
            names = ", ".join(p.name for _, p in present)
            raise WeightsError(f"--model {name}: the seed folders of {folder} ({names}) are none of the seeds of "
                               f"params.yaml ({', '.join(map(str, seeds or ()))}): they are left from an earlier run; "
                               f"name one (--model {name}/{present[0][1].name}) or {hint}")
        raise WeightsError(f"--model {name}: no trained weights in {folder} (neither {WEIGHTS_FILE} and {CONFIG_FILE} "
                           f"nor seed<s>/ folders holding them); {hint}")
    candidates = [read_model(p, f"{name}/{p.name}", seed=s) for s, p in current]
    best = pick_seed(candidates)
    if len(candidates) == 1:
        reason = f"its only seed{'' if seeds is None else ' of params.yaml'}"
    else:
        values = ", ".join(f"seed{m.seed} {m.val_psnr_y:.2f} dB" if m.val_psnr_y is not None else f"seed{m.seed} -"
                           for m in candidates)
        reason = f"the best validation PSNR-Y of {len(candidates)} seeds ({values})"
    return Choice(best, reason)


def resolve_trained(project: Project, name: str) -> Choice:
    """The trained weights ``name`` means in ``project``: ``<arch>`` (its best seed, or a folder holding
    weights itself) or ``<arch>/seed<s>`` (that seed)."""
    hint = (f"train it (`kedro run --pipelines={name.split('/')[0]}` in {project.root}), give a weights folder "
            f"or checkpoint, or point --project at another project (this one: {project.origin})")
    arch, _, seed_part = name.partition("/")
    folder = project.models_dir / arch
    if seed_part:
        match = _SEED_FOLDER.fullmatch(seed_part)
        path = folder / seed_part
        if not match or not holds_weights(path):
            present = ", ".join(f"{arch}/{p.name}" for _, p in seed_folders(folder)) or "none"
            raise WeightsError(f"--model {name}: no trained weights in {path} (seeds with weights: {present}); {hint}")
        seeds = project.seeds()
        stale = seeds is not None and int(match.group(1)) not in seeds
        if stale:
            log.warning("%s: seed %s is not among the seeds of %s (%s): weights of an earlier run", path,
                        match.group(1), project.root / PARAMS_FILE, ", ".join(map(str, seeds)))
        reason = "as named" + (", a seed params.yaml no longer lists" if stale else "")
        return Choice(read_model(path, name, seed=int(match.group(1)), stale=stale), reason)
    if holds_weights(folder):
        return Choice(read_model(folder, name), "its folder")
    return _seed_choice(name, folder, project.seeds(), hint)


def resolve_folder(folder: Path) -> Choice:
    """A folder given as a path, holding ``seed<s>/`` folders: the best of them on validation (every seed counts)."""
    return _seed_choice(str(folder), folder, None, f"give a folder holding {WEIGHTS_FILE} and {CONFIG_FILE}")


def has_weights(project: Project, architecture: str, seeds: tuple[int, ...] | None) -> bool:
    """Whether ``architecture`` has weights ``resolve_trained`` would use (a seed among ``seeds``, or its own
    folder)."""
    folder = project.models_dir / architecture
    return holds_weights(folder) or any(seeds is None or s in seeds for s, _ in seed_folders(folder))


def best_trained_architecture(project: Project) -> str:
    """The architecture of the latest report with the highest test PSNR-Y (the mean over seeds) among
    those with trained weights. Bicubic, which has no parameters, is not a trained model."""
    comparison = project.comparison
    try:
        with comparison.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise SuperresError(f"no --model given and no report in {comparison}; run `dvc repro` in {project.root} "
                            "first, or give --model (an architecture key, a weights folder or file, "
                            "models:/NAME@champion, or bicubic)") from None

    seeds = project.seeds()

    def score(row: dict[str, str]) -> float | None:
        try:
            value = float(row.get("test/psnr_y") or "nan")
            trained = float(row.get("parameters") or 1) > 0
        except ValueError:
            return None
        return value if trained and math.isfinite(value) and has_weights(project, row["architecture"], seeds) else None

    scored = [(score(row), row["architecture"]) for row in rows if row.get("architecture")]
    scored = [(value, arch) for value, arch in scored if value is not None]
    if not scored:
        raise SuperresError(f"no architecture of {comparison} has trained weights in {project.models_dir}; "
                            "run `dvc repro` (or `dvc pull`) first, or give --model")
    return max(scored, key=lambda pair: pair[0])[1]  # the first of equals


def report_metric(project: Project, model: StoredModel, key: str = "test/psnr_y") -> float | None:
    """``key`` of the model's ``metrics.json`` (``data/08_reporting/<arch>/seed<s>/``), None where there is none."""
    try:
        relative = model.folder.relative_to(project.models_dir)
        metrics = json.loads((project.reporting_dir / relative / METRICS_FILE).read_text(encoding="utf-8"))
        return float(metrics[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- what a model name means, ready to run -----------------------------------------------------

BICUBIC_SCALE = 2  # bicubic's factor when no scale is given


@dataclass
class ResolvedModel:
    """The model ``--model`` named, ready to run, with how to name it and where it came from."""

    net: nn.Module
    config: dict[str, Any]
    name: str  # as the summary line names it: edsr/seed1, bicubic, a folder, models:/NAME/VERSION
    origin: str  # where its weights come from, and why these


def _is_trained_name(name: str) -> bool:
    """An architecture key or ``<key>/seed<s>``: the project's trained weights, whatever the working directory holds."""
    arch, slash, rest = name.partition("/")
    return arch in REGISTRY and (not slash or re.fullmatch(r"seed\d+", rest) is not None)


def _from_project(name: str | None, project: Path | None, device: torch.device) -> ResolvedModel:
    """The trained weights of the project for ``name`` (an architecture key, ``<key>/seed<s>``, or None: the
    best architecture of the latest report)."""
    try:
        found = find_project(project)
    except ProjectNotFoundError as exc:
        if name is None:
            hint = " (--model bicubic needs no project)"
        else:
            hint = f" (for the folder {name} here, write ./{name})" if Path(name).exists() else ""
        what = f"--model {name}" if name else "no --model given"
        raise SuperresError(f"{what}: the trained weights are in a project, and {exc}{hint}") from None
    why = ""
    if name is None:
        name = best_trained_architecture(found)
        why = f"the best test PSNR-Y (mean over seeds) of {found.comparison}; "
    choice = resolve_trained(found, name)
    weights = load_weights(choice.model.folder, device)
    return ResolvedModel(weights.build(device), weights.config, choice.model.name,
                         f"{choice.model.folder} ({why}{choice.reason})")


def _registered(name: str, project: Path | None, device: torch.device) -> ResolvedModel:
    """A registered MLflow model ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` from MLFLOW_TRACKING_URI, else
    the project's store."""
    from superres.tracking import default_tracking_uri, download_model  # MLflow loads slowly

    if os.environ.get("MLFLOW_TRACKING_URI"):
        root = Path.cwd()  # unused: the environment names the store
    else:
        try:
            root = find_project(project).root
        except ProjectNotFoundError as exc:
            raise SuperresError(f"--model {name}: the registered models are in the project's MLflow store "
                                f"(or MLFLOW_TRACKING_URI), and {exc}") from None
    uri = default_tracking_uri(root)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = download_model(name, tmp, uri)
        except (LookupError, ValueError) as exc:
            raise SuperresError(f"--model {name}: {exc}; list the registered models with `superres models`") from None
        weights = load_weights(folder, device)
    return ResolvedModel(weights.build(device), weights.config, name, f"the MLflow store {uri}")


def resolve_model(
    model: str | None,
    device: torch.device,
    *,
    overrides: dict[str, Any] | None = None,
    scale: int | None = None,
    project: Path | None = None,
) -> ResolvedModel:
    """The model named by ``--model``: ``bicubic`` (no weights: any ``scale``, default x2), an architecture
    key or ``<key>/seed<s>`` (the trained weights of the project: ``project``, ``SUPERRES_PROJECT`` or the
    one above the working directory), None (the best of the project's latest report),
    ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (a registered MLflow model), or a weights folder or
    checkpoint file.
    ``overrides`` (``--arch``, ``--scale``, ``--model-config``) complete the config of a foreign
    checkpoint; ``scale``, when given, must be the model's."""
    if model == "bicubic":
        factor = scale or BICUBIC_SCALE
        net = create_model("bicubic", scale=factor).to(device).eval()
        origin = "built in, no weights" + ("" if scale else f" (x{BICUBIC_SCALE} by default; --scale N for another)")
        return ResolvedModel(net, {"architecture": "bicubic", "scale": factor, "model": {}}, "bicubic", origin)
    if model is None or _is_trained_name(model):
        resolved = _from_project(model, project, device)
    elif model.startswith("models:/"):
        resolved = _registered(model, project, device)
    elif Path(model).is_dir() and not holds_weights(Path(model)) and seed_folders(Path(model)):
        choice = resolve_folder(Path(model))  # a folder of seed folders: its best seed on validation
        weights = load_weights(choice.model.folder, device)
        origin = f"{choice.model.folder} ({choice.reason})"
        resolved = ResolvedModel(weights.build(device), weights.config, model, origin)
    elif Path(model).exists():
        weights = load_any(model, overrides or {}, device)
        resolved = ResolvedModel(weights.build(device), weights.config, model, model)
    else:
        raise SuperresError(f"--model {model}: no file or folder {model}, and not an architecture key "
                            f"({', '.join(sorted(REGISTRY))}; or KEY/seedN); see `superres models`")
    if scale is not None and int(resolved.config["scale"]) != scale:
        factor = resolved.config["scale"]
        raise SuperresError(f"--model {model or resolved.name} ({resolved.origin}) upscales x{factor}, not x{scale} "
                            f"(--scale); give --scale {factor}, a model trained for x{scale}, or --model bicubic")
    return resolved
