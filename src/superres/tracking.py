"""MLflow, behind one small adapter: the only module of the project that imports MLflow.

One run per architecture and seed (run name = the architecture key, tags
``superres.architecture`` and ``superres.seed``) in one experiment. Training opens
the run and logs parameters, the curves (metric per step) and the weights; evaluation logs its
metrics and pictures into that same run. A training resumed from its checkpoint reopens the run
the checkpoint names, so a killed and resumed training is still one run. When the run training
opened is not in the store (DVC restored the trained weights from its run cache, or the store
was reset), evaluation opens a new run for the architecture and backfills it from the files
training left: parameters from ``config.json`` and the validation curve from ``history.csv``, so
the record stays complete.

Every run is opened within a ``with`` block (:meth:`Tracker.run`, :meth:`Tracker.training_run`,
:meth:`Tracker.resumed`) that ends it whatever happens: FINISHED when the block completes, FAILED
on an error, KILLED on Ctrl-C (``KeyboardInterrupt``), so no run is left RUNNING.

The store is ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<root>/mlflow.db`` with artifacts
in ``<root>/mlartifacts``, where ``<root>`` is the project (``DVC_ROOT`` when DVC runs the stage,
which ``dvc exp run --temp/--queue`` points at the project rather than at its temporary copy).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from superres.interrupts import deferred

log = logging.getLogger(__name__)

EXPERIMENT = "superres"
KIND_TAG = "superres.kind"  # "architecture", "pretrained", "report" or "pipeline"
ARCHITECTURE_TAG = "superres.architecture"
SEED_TAG = "superres.seed"
BACKFILLED_TAG = "superres.backfilled"  # "true" on a run recorded afresh from the files or checkpoint a training left
# The experiment's kind for MLflow: model training, not GenAI. (MLflow 3.17's UI picks its first view
# from a switch of its own, the `workflowType` URL parameter, which the link `make mlflow` prints sets.)
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
HISTORY_CURVES = {"train_loss": "train/loss", "val_psnr_y": "val/psnr_y"}  # history column -> MLflow metric


def run_tags(architecture: str, seed: int) -> dict[str, str]:
    """The tags that group the runs of one architecture over its seeds (MLflow's "group by")."""
    return {ARCHITECTURE_TAG: architecture, SEED_TAG: str(seed)}


def default_tracking_uri(project_root: str | os.PathLike[str]) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's SQLite store."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(os.environ.get("DVC_ROOT") or project_root).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store live beside it, whatever the working directory."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"n_feats": 64}}`` -> ``{"model.n_feats": "64"}``."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class _Uninterrupted:
    """An MlflowClient whose calls each run to their end: Ctrl-C or SIGTERM during one acts after it
    (:func:`superres.interrupts.deferred`), so that an interrupt never leaves the store's
    transaction half done and the run can still be ended KILLED."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            with deferred():
                return method(*args, **kwargs)

        return call


class Tracker:
    """A client bound to the project's store and experiment."""

    def __init__(self, tracking_uri: str, experiment: str = EXPERIMENT) -> None:
        self.tracking_uri = tracking_uri
        self.client = _Uninterrupted(MlflowClient(tracking_uri=tracking_uri))
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(experiment, _artifact_root(tracking_uri),
                                                               tags={EXPERIMENT_KIND: MODEL_TRAINING})
        else:
            self.experiment_id = found.experiment_id
            if found.tags.get(EXPERIMENT_KIND) is None:  # a store made before the tag: the UI guessed
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
        self._parents: dict[str, str] = {}  # pipeline key -> its run
        self._children: set[str] = set()  # the runs opened or reopened here within a pipeline run

    def start_run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str] = ()) -> str:
        """Open a run named ``name`` (an architecture key, or ``report``) and log ``params``; the caller
        ends it (:meth:`end_run`). Prefer ``with`` :meth:`run`, which always does."""
        all_tags = {KIND_TAG: "architecture", **self._lineage_tags(), **dict(tags)}
        parent = self.pipeline_run()
        if parent:
            all_tags[PARENT_TAG] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        if parent:
            self._children.add(run.info.run_id)
            self._track_parent(RunStatus.to_string(RunStatus.RUNNING))
        with self._ended_on_error(run.info.run_id):  # a run whose parameters could not be logged does not stay open
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def _lineage_tags(self) -> dict[str, str]:
        """The DVC experiment, the code (git) and the command behind a run opened now."""
        tags = {f"dvc.{env.lower().removeprefix('dvc_')}": os.environ[env]
                for env in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV") if os.environ.get(env)}
        tags.update(source_tags(str(Path.cwd())))
        pipeline = PIPELINE.get()
        if pipeline:
            tags.update({"mlflow.source.type": "LOCAL", "mlflow.source.name": pipeline[1]})
        return tags

    def pipeline_run(self) -> str | None:
        """The run that stands for the pipeline run this process belongs to (:data:`PIPELINE`),
        opened by its first stage and named after the DVC experiment when there is one; the runs the
        stages open are its children. None outside a pipeline."""
        pipeline = PIPELINE.get()
        if pipeline is None:
            return None
        key, command = pipeline
        if key not in self._parents:
            found = self.client.search_runs([self.experiment_id], f"tags.`{PIPELINE_TAG}` = '{key}'", max_results=1)
            if found:
                self._parents[key] = found[0].info.run_id
            else:
                name = os.environ.get("DVC_EXP_NAME") or f"{command} {time.strftime('%Y-%m-%d %H:%M:%S')}"
                tags = {KIND_TAG: "pipeline", PIPELINE_TAG: key, **self._lineage_tags()}
                self._parents[key] = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        return self._parents[key]

    def _track_parent(self, status: str) -> None:
        """The pipeline run shows where its stages are: RUNNING while one runs, then the status of
        the last one to end (its end time too)."""
        parent = self.pipeline_run()
        if parent is None:
            return
        if status == RunStatus.to_string(RunStatus.RUNNING):
            self.client.update_run(parent, status=status)
        else:
            self.client.set_terminated(parent, status)

    def log_inputs(self, run_id: str) -> None:
        """Record the DVC outputs the running node reads (:data:`NODE_INPUTS`) as datasets of the
        run, with their DVC hash as digest: MLflow's Dataset column."""
        context, inputs = NODE_INPUTS.get()
        if not inputs:
            return
        datasets = [
            DatasetInput(Dataset(name=data.path, digest=data.digest[:36], source_type="dvc",
                                 source=json.dumps({"uri": data.path, "md5": data.digest})),
                         tags=[InputTag("mlflow.data.context", context)])
            for data in inputs
        ]
        self.client.log_inputs(run_id, datasets=datasets)

    def latest_run(self, architecture: str, seed: int) -> str | None:
        """The newest run of ``architecture`` and ``seed`` that logged an MLflow Model, or None."""
        runs = self.client.search_runs([self.experiment_id], f"tags.`{ARCHITECTURE_TAG}` = '{architecture}' and "
                                       f"tags.`{SEED_TAG}` = '{seed}'", order_by=["attributes.start_time DESC"])
        return next((run.info.run_id for run in runs if run.outputs and run.outputs.model_outputs), None)

    def register_champion(self, name: str, run_id: str, tags: Mapping[str, str] = ()) -> dict[str, str] | None:
        """Make the MLflow Model of run ``run_id`` the version of the registered model ``name`` that the
        alias ``champion`` names: a new version with ``tags``, unless the alias holds that model already.
        Returns what is registered (name, version, alias, model and run ids); None when the run logged
        no MLflow Model."""
        run = self.client.get_run(run_id)
        outputs = run.outputs.model_outputs if run.outputs else []
        if not outputs:
            return None
        model_id = outputs[-1].model_id
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, description="The best network of superres's latest report "
                                                "at this scale: its alias champion names it.")
        try:
            current = self.client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            current = None
        if current is not None and current.source == f"models:/{model_id}":
            version = str(current.version)
        else:
            with self.default_store():
                version = str(self.client.create_model_version(name, f"models:/{model_id}", run_id=run_id,
                                                               tags=dict(tags), model_id=model_id).version)
            self.client.set_registered_model_alias(name, CHAMPION, version)
        return {"name": name, "version": version, "alias": CHAMPION, "model_id": model_id, "run_id": run_id}

    @contextmanager
    def default_store(self) -> Iterator[None]:
        """MLflow's model logging and registering go through its default client and experiment in
        places (a LoggedModel is made in the default experiment): within the block, both are this
        tracker's."""
        saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
        os.environ.update(MLFLOW_TRACKING_URI=self.tracking_uri, MLFLOW_EXPERIMENT_ID=self.experiment_id)
        pinned = mlflow.get_tracking_uri()  # differs when code set it with mlflow.set_tracking_uri, which wins
        if pinned != self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            if pinned != self.tracking_uri:
                mlflow.set_tracking_uri(pinned)  # (which also writes MLFLOW_TRACKING_URI: put back below)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(k, v[:6000]) for k, v in sorted(flatten(params).items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_points(self, run_id: str, points: Iterable[Metric]) -> None:
        """Write metric points (name, value, time, step), NaN left out, 1000 per call (MLflow's limit)."""
        batch = [point for point in points if not math.isnan(point.value)]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self.log_points(run_id, (Metric(k, float(v), now, step) for k, v in metrics.items()))

    def log_history(self, run_id: str, rows: Iterable[Mapping[str, float]], keys: Mapping[str, str]) -> None:
        """Log curves from history rows: ``keys`` maps a column to its metric name."""
        now = int(time.time() * 1000)
        self.log_points(run_id, (Metric(name, float(row[col]), now, int(row["step"]))
                                 for row in rows for col, name in keys.items() if col in row))

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def end_run(self, run_id: str, failed: bool = False, killed: bool = False) -> None:
        """End the run FINISHED, FAILED (an error) or KILLED (interrupted: Ctrl-C, SIGTERM)."""
        status = RunStatus.KILLED if killed else RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(run_id, RunStatus.to_string(status))
        if run_id in self._children:
            self._track_parent(RunStatus.to_string(status))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set ``tags`` (flattened as parameters are) on a run; unlike a parameter, a tag may change
        when a stage runs again."""
        self.client.log_batch(run_id, tags=[RunTag(k, v[:6000]) for k, v in sorted(flatten(tags).items())])

    def reopen_run(self, run_id: str, tags: Mapping[str, str] = ()) -> None:
        """Mark an interrupted run RUNNING again (a training resumed from its checkpoint continues
        its run) and set ``tags`` (those of the machine now training it)."""
        self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        tags = {**self._lineage_tags(), **dict(tags)}
        parent = self.pipeline_run()
        if parent:  # the pipeline run that completes it
            tags[PARENT_TAG] = parent
            self._children.add(run_id)
            self._track_parent(RunStatus.to_string(RunStatus.RUNNING))
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def find_run(self, run_id: str | None) -> str | None:
        """``run_id`` if that run exists in this store and experiment, else None."""
        if not run_id:
            return None
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return None
        if run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            return None
        return run_id

    @contextmanager
    def run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str] = (), *,
            backfill: Iterable[Mapping[str, float]] | None = None) -> Iterator[str]:
        """Open a new run named ``name`` with ``params`` and ``tags`` for the block; yields its id and
        ends it as :meth:`resumed` does. ``backfill``: rows of a training history (``step`` and the
        columns of :data:`HISTORY_CURVES`) logged first as the run's curves, the run tagged
        ``superres.backfilled``."""
        tags = dict(tags)
        if backfill is not None:
            tags[BACKFILLED_TAG] = "true"
        run_id = self.start_run(name, params, tags=tags)
        with self.resumed(run_id):
            if backfill is not None:
                self.log_history(run_id, backfill, HISTORY_CURVES)
            yield run_id

    @contextmanager
    def resumed(self, run_id: str) -> Iterator[str]:
        """Log into the existing run ``run_id`` within the block, then end it whatever happens:
        FINISHED when the block completes (a run already FINISHED keeps its status and end time),
        FAILED on an error, KILLED on ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM made into one).
        The exception goes on."""
        with self._ended_on_error(run_id):
            self.log_inputs(run_id)
            yield run_id
        if self.client.get_run(run_id).info.status != RunStatus.to_string(RunStatus.FINISHED):
            self.end_run(run_id)

    @contextmanager
    def training_run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                     resume: Resume | None = None) -> Iterator[str]:
        """The run of a training, for the block; yields its id and ends it as :meth:`resumed` does.

        A fresh training (``resume`` None) opens a new run. A training that resumes from a checkpoint
        continues the run the checkpoint names, reopened (RUNNING again, with ``tags``: those of the
        machine training now), when that run is still in the store (killed, or left RUNNING by a
        SIGKILL); otherwise it opens a new run, backfilled with the validation curve the checkpoint
        holds."""
        if resume is None:
            with self.run(name, params, tags) as run_id:
                yield run_id
            return
        previous = self.find_run(resume.run_id)
        if previous is None:
            with self.run(name, params, tags, backfill=resume.history) as run_id:
                log.warning("%s: the MLflow run of the checkpoint of iteration %d is not in the store; recording a "
                            "new run, backfilled with the %d validations the checkpoint holds", name, resume.step,
                            len(resume.history))
                yield run_id
            return
        with self.resumed(previous):
            self.reopen_run(previous, tags)
            log.info("%s: continuing the MLflow run %s from the checkpoint of iteration %d", name, previous,
                     resume.step)
            yield previous

    @contextmanager
    def _ended_on_error(self, run_id: str) -> Iterator[None]:
        """End ``run_id`` FAILED on an error in the block, KILLED on ``KeyboardInterrupt``; re-raise."""
        try:
            yield
        except KeyboardInterrupt:
            self.end_run(run_id, killed=True)
            raise
        except BaseException:
            self.end_run(run_id, failed=True)
            raise


@dataclass(frozen=True)
class Resume:
    """Where a training resumes from its checkpoint: the checkpoint's iteration, the run the
    checkpoint names (None when it names none) and the validation history it holds (rows with
    ``step`` and the columns of :data:`HISTORY_CURVES`)."""

    step: int
    run_id: str | None = None
    history: list[Mapping[str, float]] = field(default_factory=list)


class MlflowCallback:
    """Training callback: logs the loss, the learning rate and every other number the trainer
    reports (the loss terms of a GAN) every ``log_every`` iterations as ``train/<key>``
    (``train_loss`` as ``train/loss``), and the validation PSNR-Y at each validation.

    The training numbers are written in batches, at most every ``flush_seconds`` and at each
    validation, rather than one SQLite transaction per ``log_every`` (8-15 ms each: 6% of a short
    SRCNN training, BENCHMARKS.md). Use it as a context manager, or call :meth:`flush`: leaving the block writes what is
    left, also when training fails or is interrupted."""

    def __init__(self, tracker: Tracker, run_id: str, flush_seconds: float = 5.0) -> None:
        self.tracker, self.run_id, self.flush_seconds = tracker, run_id, flush_seconds
        self.pending: list[Metric] = []
        self.flushed = time.monotonic()

    def __enter__(self) -> MlflowCallback:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.flush()
            return
        try:  # keep the training's own error, not one of writing its last numbers
            self.flush()
        except Exception as error:
            log.warning("MLflow run %s: the last training numbers were not written: %s", self.run_id, error)

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending += [
            Metric("train/loss" if key == "train_loss" else f"train/{key}", float(value), now, step)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        if time.monotonic() - self.flushed >= self.flush_seconds:
            self.flush()

    def on_validation(self, step: int, metrics: dict[str, float]) -> None:
        self.flush()
        self.tracker.log_metrics(self.run_id, {"val/psnr_y": metrics["val_psnr_y"]}, step)

    def on_train_end(self, result: object) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the training numbers logged since the last flush."""
        pending, self.pending, self.flushed = self.pending, [], time.monotonic()
        self.tracker.log_points(self.run_id, pending)


# The model registry: versions of trained weights under a name, for `superres upscale --model
# models:/NAME/VERSION` (or models:/NAME@ALIAS). A version is a run's MLflow Model (the report registers
# the best of each scale: Tracker.register_champion), or its ``model/`` artifact folder (weights.safetensors
# and config.json: register_model).

MODEL_ARTIFACT = "model"


def register_model(run_id: str, name: str, tracking_uri: str) -> str:
    """Register the ``model/`` artifact folder of run ``run_id`` as a new version of ``name``;
    returns the version number."""
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/{MODEL_ARTIFACT}", run_id=run_id)
    return str(version.version)


def parse_model_uri(uri: str) -> tuple[str, str, str]:
    """``models:/NAME/VERSION`` -> ``(NAME, VERSION, "")``, ``models:/NAME@ALIAS`` -> ``(NAME, "", ALIAS)``;
    anything else raises ``ValueError``."""
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        version = ""
    else:
        name, _, version = rest.rpartition("/")
        alias = ""
    if not uri.startswith("models:/") or not name or not (version or alias) or "/" in alias:
        raise ValueError(f"{uri!r} is not a model URI of the form models:/NAME/VERSION or models:/NAME@ALIAS")
    return name, version, alias


def download_model(uri: str, destination: str | Path, tracking_uri: str) -> Path:
    """Copy the files of the registered model version ``models:/NAME/VERSION`` into ``destination``;
    returns the folder holding them. Raises ``LookupError`` when the store has no such version."""
    from mlflow.artifacts import download_artifacts

    name, version, alias = parse_model_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if alias:
            version = str(client.get_model_version_by_alias(name, alias).version)
        source = client.get_model_version_download_uri(name, version)
    except MlflowException as exc:
        what = f"{name}@{alias}" if alias else f"{name}/{version}"
        raise LookupError(f"no registered model version {what} in {tracking_uri} ({exc.message})") from None
    folder = Path(download_artifacts(artifact_uri=source, dst_path=str(destination), tracking_uri=tracking_uri))
    return weights_of(folder)


def weights_of(folder: Path) -> Path:
    """The weights folder of an MLflow Model (an :class:`Upscaler` names it in its MLmodel), or ``folder``."""
    from mlflow.models import Model

    if not (folder / "MLmodel").is_file():
        return folder
    artifacts = Model.load(str(folder / "MLmodel")).flavors.get("python_function", {}).get("artifacts") or {}
    return folder / artifacts["weights"]["path"] if "weights" in artifacts else folder


def registered_models(tracking_uri: str) -> list[dict[str, Any]]:
    """Every version of every registered model: name, version, its aliases, architecture, scale and the
    test PSNR-Y of the run it came from (None where the run has not been evaluated)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    rows = []
    for model in client.search_registered_models():
        for version in client.search_model_versions(f"name='{model.name}'"):
            params, metrics = {}, {}
            if version.run_id:
                try:
                    run = client.get_run(version.run_id)
                    params, metrics = run.data.params, run.data.metrics
                except MlflowException:
                    log.warning("the run %s of model %s/%s is not in the store",
                                version.run_id, model.name, version.version)
            aliases = sorted(a for a, number in (model.aliases or {}).items() if str(number) == str(version.version))
            rows.append({"name": model.name, "version": str(version.version), "aliases": aliases,
                         "architecture": params.get("architecture"), "scale": params.get("scale"),
                         "test/psnr_y": metrics.get("test/psnr_y")})
    return sorted(rows, key=lambda row: (row["name"], int(row["version"])))


# --- the registered networks ---------------------------------------------------------------------
# Each training run logs its network as an MLflow Model (superres.serving.log_model); the report
# registers the best of each scale (Tracker.register_champion).

LOGGED_MODEL = "upscaler"  # the name of each training run's MLflow Model
CHAMPION = "champion"  # the alias of the best registered version of each scale


def registered_name(scale: int) -> str:
    """The registered model that holds the best network of each report at ``scale``."""
    return f"superres-x{scale}"


# --- lineage: the code, the data and the pipeline run behind each run ----------------------------

PIPELINE_TAG = "superres.pipeline"  # on a pipeline run: the process it stands for (see pipeline_process)
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under its parent
DIRTY_TAG = "superres.git.dirty"
MODEL_INPUT = "05_model_input"  # the Kedro data layer whose DVC outputs a run records as its datasets


@dataclass(frozen=True)
class DataInput:
    """A DVC output a stage read: its path (as dvc.lock names it) and its DVC hash."""

    path: str
    digest: str


# Set by the project's Kedro hooks (superres.hooks) while a pipeline and each of its nodes run:
# the pipeline run (a key and its command line, see pipeline_process) whose children the runs opened
# are, and the node's name and the DVC outputs it reads, which the runs it opens or continues record
# as their datasets. Unset (a node called from Python), a run has no parent and no datasets.
PIPELINE: ContextVar[tuple[str, str] | None] = ContextVar("superres_pipeline", default=None)
NODE_INPUTS: ContextVar[tuple[str, tuple[DataInput, ...]]] = ContextVar("superres_node_inputs", default=("", ()))


def dvc_inputs(root: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]) -> list[DataInput]:
    """The DVC outputs of the model-input layer that hold ``paths``, with the hashes ``dvc.lock`` at
    ``root`` records for them (the stage that wrote each one has ended); none without a ``dvc.lock``."""
    root = Path(root).resolve()
    try:
        stages = yaml.load((root / "dvc.lock").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        return []
    outs = {out["path"]: out.get("md5", "").removesuffix(".dir")
            for stage in (stages or {}).get("stages", {}).values() for out in stage.get("outs", [])
            if MODEL_INPUT in Path(out["path"]).parts and out.get("md5")}
    found: dict[str, DataInput] = {}
    for path in paths:
        relative = Path(path).resolve()
        if not relative.is_relative_to(root):
            continue
        relative = relative.relative_to(root)
        for candidate in (relative, *relative.parents):
            if candidate.as_posix() in outs:
                found[candidate.as_posix()] = DataInput(candidate.as_posix(), outs[candidate.as_posix()])
                break
    return sorted(found.values(), key=lambda data: data.path)


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def source_tags(folder: str) -> dict[str, str]:
    """The code a run ran: the git commit (MLflow's Source column), branch and remote, and whether
    tracked files differed from it (``superres.git.dirty``; ``dvc.lock`` aside, which DVC rewrites as
    each stage ends, and ``params.yaml`` counted, which ``dvc exp run -S`` changes). None outside git."""
    commit = _git(Path(folder), "rev-parse", "HEAD")
    if not commit:
        return {}
    changed = _git(Path(folder), "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)dvc.lock")
    tags = {"mlflow.source.git.commit": commit, DIRTY_TAG: "true" if changed else "false"}
    branch = _git(Path(folder), "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    remote = _git(Path(folder), "config", "--get", "remote.origin.url")
    if remote:
        tags["mlflow.source.git.repoURL"] = remote
    return tags


def _is_dvc(command: list[str]) -> bool:
    """``dvc ...`` or ``python -m dvc ...``."""
    return any(Path(arg).name == "dvc" for arg in command[:3]) or command[1:3] == ["-m", "dvc"]


def pipeline_process() -> tuple[str, str]:
    """The pipeline run this process belongs to, as a key and its command line: the nearest ``dvc``
    process above it (``dvc repro`` or ``dvc exp run`` starts each stage as a process of its own),
    else this process (``kedro run``)."""
    import psutil

    own = psutil.Process()
    chosen = own
    try:
        for process in [own, *own.parents()]:
            if _is_dvc(process.cmdline()):
                chosen = process
                break
        command = process_command(chosen.cmdline())
        return f"{chosen.pid}@{chosen.create_time():.3f}", command
    except psutil.Error:
        return f"{own.pid}@{own.create_time():.3f}", "python"


def process_command(argv: list[str]) -> str:
    """``dvc repro``, ``dvc exp run``, ``kedro run``: the program and its subcommand(s), without the
    interpreter and the options."""
    words = [Path(arg).name for arg in argv if not arg.startswith("-")]
    while words and words[0].startswith("python"):
        words = words[1:]
    return " ".join(words[:3] if words[1:2] == ["exp"] else words[:2]) or "python"
