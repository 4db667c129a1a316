"""The train and evaluate nodes with a real MLflow store: one run per architecture, evaluation
logs into the run training opened, and a run missing from the store is recorded anew; an
interrupted training continues its run when resumed; the benchmark sets are measured at the
model's own scale, bicubic at every scale."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from superres.data.benchmarks import benchmark_plan, load_pairs, write_benchmarks
from superres.data.degrade import bicubic_resize, degrade
from superres.data.imageio import write_png
from superres.errors import WeightsError
from superres.metrics import image_metrics
from superres.models.weights import Weights
from superres.pipelines.architecture.nodes import evaluate_model, train_model
from superres.tracking import MlflowCallback, Tracker
from superres.training import checkpoint

TRAIN = {"iterations": 4, "batch_size": 2, "lr": 1e-3, "val_every": 2, "log_every": 2}
TRACKING = {"experiment": "superres"}


def lazy(images):
    return {name: (lambda im=im: im) for name, im in images.items()}


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(uri)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    hr = {f"im{i}": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(2)}
    lr = {name: degrade(im, 2) for name, im in hr.items()}
    patches = {"lr": np.stack([lr["im0"].transpose(2, 0, 1)] * 4), "hr": np.stack([hr["im0"].transpose(2, 0, 1)] * 4)}
    return patches, lazy(lr), lazy(hr)


def run_train(data, checkpoints, architecture="edsr", model=None, overrides=None, cache_dir=None):
    """The train node, recording into the store MLFLOW_TRACKING_URI names (as the catalog's tracking_uri would)."""
    patches, lr, hr = data
    return train_model(patches, lr, hr, checkpoints, model or {"n_resblocks": 1, "n_feats": 8},
                       overrides or {"iterations": 6},
                       {**TRAIN, "checkpoint_every": 2}, {"scale": 2}, {"cache_dir": cache_dir}, TRACKING,
                       os.environ["MLFLOW_TRACKING_URI"], "tiny", architecture=architecture)


def test_evaluation_logs_into_the_training_run(store, data, tmp_path):
    weights, history, run = run_train(data, tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints").exists()  # the run completed: its resumable state is gone
    assert weights.config["train"]["iterations"] == 6  # the section's override wins over the shared value
    assert list(history["step"]) == [2, 4, 6]
    _, lr, hr = data
    images, per_image, per_benchmark, metrics, timing = evaluate_model(
        weights, history, run, lr, hr, {}, {"save_images": True}, TRACKING, store.tracking_uri, architecture="edsr")
    assert sorted(images) == ["im0", "im1"] and list(per_image["image"]) == ["im0", "im1"]
    assert per_benchmark.empty and all(key.startswith("test/") for key in metrics)  # no benchmark written
    assert json.loads(json.dumps(metrics)) == metrics
    assert timing["latency_ms"] > 0 and timing["device"] == "cpu"
    runs = store.search_runs([store.get_experiment_by_name("superres").experiment_id])
    assert [r.info.run_id for r in runs] == [run["run_id"]]
    assert runs[0].data.metrics["test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
    assert runs[0].info.run_name == "edsr" and runs[0].info.status == "FINISHED"


def test_a_run_missing_from_the_store_is_backfilled(store, data, tmp_path):
    weights, history, _ = run_train(data, tmp_path / "checkpoints")
    _, lr, hr = data
    evaluate_model(weights, history, {"run_id": "f" * 32}, lr, hr, {}, {"save_images": False}, TRACKING,
                   store.tracking_uri, architecture="edsr")
    runs = store.search_runs([store.get_experiment_by_name("superres").experiment_id],
                             "tags.`superres.backfilled` = 'true'")
    assert len(runs) == 1 and runs[0].info.run_name == "edsr"
    assert runs[0].data.params["model.n_feats"] == "8"
    assert [m.step for m in store.get_metric_history(runs[0].info.run_id, "val/psnr_y")] == [2, 4, 6]
    assert "test/ssim_y" in runs[0].data.metrics


def test_an_evaluation_that_cannot_be_logged_leaves_the_run_failed(store, data, tmp_path, monkeypatch):
    weights, history, run = run_train(data, tmp_path / "checkpoints")
    _, lr, hr = data

    def broken(self, run_id, folder, artifact_path=None):
        raise OSError("disk full")

    monkeypatch.setattr(Tracker, "log_artifacts", broken)
    with pytest.raises(OSError, match="disk full"):
        evaluate_model(weights, history, run, lr, hr, {}, {"save_images": False}, TRACKING, store.tracking_uri,
                       architecture="edsr")
    assert store.get_run(run["run_id"]).info.status == "FAILED"  # its record lacks the evaluation


# --- a training interrupted and resumed: one MLflow run, the whole curve, the whole time ------------


def interrupt_at(monkeypatch, step):
    """Ctrl-C (as SIGTERM becomes in the node) at the validation of ``step``, before it is logged."""
    logged = MlflowCallback.on_validation

    def on_validation(self, at, metrics):
        if at == step:
            raise KeyboardInterrupt
        logged(self, at, metrics)

    monkeypatch.setattr(MlflowCallback, "on_validation", on_validation)


def experiment_runs(store):
    return store.search_runs([store.get_experiment_by_name("superres").experiment_id])


def saved_checkpoint(checkpoints):
    (path,) = checkpoints.glob(f"*/{checkpoint.FILENAME}")
    return checkpoint.peek(path)


def test_an_interrupted_training_continues_its_mlflow_run(store, data, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_at(patch, 4)
        with pytest.raises(KeyboardInterrupt):
            run_train(data, tmp_path / "checkpoints")
    (killed,) = experiment_runs(store)
    assert killed.info.status == "KILLED"
    saved = saved_checkpoint(tmp_path / "checkpoints")  # the checkpoint of iteration 2 stays, naming the run
    assert saved["step"] == 2 and saved["metadata"] == {"mlflow_run_id": killed.info.run_id}

    weights, history, run = run_train(data, tmp_path / "checkpoints")
    (finished,) = experiment_runs(store)  # still one run: the same, reopened and finished
    assert finished.info.run_id == killed.info.run_id == run["run_id"] == weights.config["mlflow_run_id"]
    assert finished.info.status == "FINISHED"
    assert [m.step for m in store.get_metric_history(run["run_id"], "val/psnr_y")] == [2, 4, 6]
    assert weights.config["notes"] == ["resumed from the checkpoint of iteration 2"]
    assert weights.config["train_seconds"] > saved["seconds"]  # the first stretch counts
    assert finished.data.metrics["train/seconds"] == pytest.approx(weights.config["train_seconds"], abs=1e-3)
    assert list(history["step"]) == [2, 4, 6]
    assert not (tmp_path / "checkpoints").exists()


def test_a_resumed_training_whose_run_is_gone_records_a_new_run_with_the_checkpoint_history(
        store, data, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_at(patch, 4)
        with pytest.raises(KeyboardInterrupt):
            run_train(data, tmp_path / "checkpoints")
    other = MlflowClient(f"sqlite:///{tmp_path / 'other.db'}")  # the store was reset meanwhile
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other.tracking_uri)
    _, _, run = run_train(data, tmp_path / "checkpoints")
    (recorded,) = experiment_runs(other)
    assert recorded.info.run_id == run["run_id"] and recorded.info.status == "FINISHED"
    assert recorded.data.tags["superres.backfilled"] == "true"
    assert [m.step for m in other.get_metric_history(run["run_id"], "val/psnr_y")] == [2, 4, 6]


GAN = {"iterations": 4, "gan_start": 3, "gan_weight": 5e-3, "perceptual_weight": 1.0,
       "discriminator": {"name": "vgg", "n_feats": 8}}


def test_a_gan_without_vgg_weights_trains_without_the_perceptual_term_and_says_so(store, data, tmp_path):
    missing = tmp_path / "nowhere" / "vgg19.pth"
    weights, _, run = run_train(data, tmp_path / "checkpoints", "srgan", {"n_blocks": 1, "n_feats": 8},
                                {**GAN, "perceptual_weights": str(missing)}, cache_dir=str(tmp_path / "cache"))
    assert weights.config["train"]["perceptual_weight"] == 0.0
    note = weights.config["notes"][0]
    assert note.startswith("perceptual loss off") and "pixel and adversarial" in note
    mlflow_run = store.get_run(run["run_id"])
    assert "perceptual loss off" in mlflow_run.data.tags["superres.notes"]
    assert {"train/adversarial", "train/discriminator"} <= set(mlflow_run.data.metrics)  # the GAN stage ran


def test_a_profile_that_requires_vgg_weights_refuses_to_start(store, data, tmp_path):
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(WeightsError, match="perceptual_required"):
        run_train(data, tmp_path / "checkpoints", "srgan", {"n_blocks": 1, "n_feats": 8},
                  {**GAN, "perceptual_weights": str(missing), "perceptual_required": True})
    assert store.get_experiment_by_name("superres") is None  # refused before any run was opened


# --- the benchmark sets ----------------------------------------------------------------------

BENCHMARK_COLUMNS = ["dataset", "benchmark", "scale", "image", "psnr_y", "ssim_y", "psnr_rgb", "mae", "mse"]


@pytest.fixture
def bench(tmp_path):
    """A folder of two smooth HR images of different sizes made into pairs at x2 and x3."""
    folder = tmp_path / "photos"
    rng = np.random.default_rng(1)
    for name, (h, w) in {"wide": (30, 44), "tall": (40, 32)}.items():
        y, x = np.mgrid[0:h, 0:w]
        smooth = np.stack([128 + 90 * np.sin(x / 5 + c) * np.cos(y / 7 - c) for c in range(3)], axis=-1)
        write_png(folder / f"{name}.png", np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8))
    plan = benchmark_plan({"folders": {"mine": folder}, "scales": [2, 3]}, 2)
    write_benchmarks(tmp_path / "bench", *plan, max_pixels=10**7)
    return tmp_path / "bench"


def run_metrics(store, run_id):
    return store.get_run(run_id).data.metrics


def test_a_trained_model_is_measured_on_the_benchmarks_at_its_own_scale_only(store, data, bench, tmp_path):
    weights, history, run = run_train(data, tmp_path / "checkpoints")
    _, lr, hr = data
    _, _, per_benchmark, metrics, _ = evaluate_model(weights, history, run, lr, hr, load_pairs(bench),
                                                     {"save_images": False}, TRACKING, store.tracking_uri,
                                                     architecture="edsr")
    keys = {"psnr_y", "ssim_y", "psnr_rgb", "mae", "mse"}
    assert {k for k in metrics if k.startswith("mine_")} == {f"mine_x2/{m}" for m in keys}
    assert {k.split("/")[0] for k in metrics} == {"test", "mine_x2"}
    assert list(per_benchmark.columns) == BENCHMARK_COLUMNS
    assert sorted(per_benchmark["image"]) == ["tall", "wide"] and set(per_benchmark["dataset"]) == {"mine_x2"}
    assert metrics["mine_x2/psnr_y"] == pytest.approx(per_benchmark["psnr_y"].mean())
    logged = run_metrics(store, run["run_id"])
    assert logged["mine_x2/psnr_y"] == pytest.approx(metrics["mine_x2/psnr_y"])
    assert logged["mine_x2/ssim_y"] == pytest.approx(metrics["mine_x2/ssim_y"])
    assert not [k for k in logged if k.startswith("mine_x3")]


def read_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_bicubic_is_measured_on_the_benchmarks_at_every_scale(store, data, bench):
    weights = Weights({}, {"architecture": "bicubic", "scale": 2, "model": {}, "parameters": 0})
    tracker = Tracker(store.tracking_uri, TRACKING["experiment"])
    run_id = tracker.start_run("bicubic", {"architecture": "bicubic", "scale": 2})
    tracker.end_run(run_id)
    history = pd.DataFrame(columns=["step", "train_loss", "lr", "val_psnr_y"])
    _, lr, hr = data
    _, _, per_benchmark, metrics, _ = evaluate_model(weights, history, {"run_id": run_id}, lr, hr, load_pairs(bench),
                                                     {"save_images": False}, TRACKING, store.tracking_uri,
                                                     architecture="bicubic")
    assert {k.split("/")[0] for k in metrics} == {"test", "mine_x2", "mine_x3"}
    assert list(per_benchmark.columns) == BENCHMARK_COLUMNS
    measured = sorted(zip(per_benchmark["scale"], per_benchmark["image"], strict=True))
    assert measured == [(2, "tall"), (2, "wide"), (3, "tall"), (3, "wide")]
    assert set(per_benchmark["benchmark"]) == {"mine"}
    # the same numbers as the reference bicubic applied to the pairs on disk, at x3 too
    x3 = bench / "mine_x3"
    psnr_y = [image_metrics(bicubic_resize(read_rgb(x3 / "lr" / f"{n}.png"), 3), read_rgb(x3 / "hr" / f"{n}.png"),
                            3)["psnr_y"] for n in ("tall", "wide")]
    expected = np.mean(psnr_y)
    assert metrics["mine_x3/psnr_y"] == pytest.approx(expected)
    assert metrics["mine_x2/psnr_y"] != pytest.approx(metrics["mine_x3/psnr_y"], abs=1e-3)
    logged = run_metrics(store, run_id)
    assert logged["mine_x3/psnr_y"] == pytest.approx(metrics["mine_x3/psnr_y"])
    assert logged["mine_x2/psnr_y"] == pytest.approx(metrics["mine_x2/psnr_y"])
