"""The train and evaluate nodes with a real MLflow store: one run per architecture, evaluation
logs into the run training opened, and a run missing from the store is recorded anew."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from superres.data.degrade import degrade
from superres.errors import WeightsError
from superres.pipelines.architecture.nodes import evaluate_model, train_model

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
    patches, lr, hr = data
    return train_model(patches, lr, hr, checkpoints, model or {"n_resblocks": 1, "n_feats": 8}, overrides or {"iterations": 6},
                       {**TRAIN, "checkpoint_every": 2}, {"scale": 2}, {"cache_dir": cache_dir}, TRACKING, "tiny",
                       architecture=architecture)


def test_evaluation_logs_into_the_training_run(store, data, tmp_path):
    weights, history, run = run_train(data, tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints").exists()  # the run completed: its resumable state is gone
    assert weights.config["train"]["iterations"] == 6  # the section's override wins over the shared value
    assert list(history["step"]) == [2, 4, 6]
    _, lr, hr = data
    images, per_image, metrics, timing = evaluate_model(weights, history, run, lr, hr, {"save_images": True}, TRACKING, architecture="edsr")
    assert sorted(images) == ["im0", "im1"] and list(per_image["image"]) == ["im0", "im1"]
    assert json.loads(json.dumps(metrics)) == metrics
    assert timing["latency_ms"] > 0 and timing["device"] == "cpu"
    runs = store.search_runs([store.get_experiment_by_name("superres").experiment_id])
    assert [r.info.run_id for r in runs] == [run["run_id"]]
    assert runs[0].data.metrics["test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
    assert runs[0].info.run_name == "edsr" and runs[0].info.status == "FINISHED"


def test_a_run_missing_from_the_store_is_backfilled(store, data, tmp_path):
    weights, history, _ = run_train(data, tmp_path / "checkpoints")
    _, lr, hr = data
    evaluate_model(weights, history, {"run_id": "f" * 32}, lr, hr, {"save_images": False}, TRACKING, architecture="edsr")
    runs = store.search_runs([store.get_experiment_by_name("superres").experiment_id], "tags.`superres.backfilled` = 'true'")
    assert len(runs) == 1 and runs[0].info.run_name == "edsr"
    assert runs[0].data.params["model.n_feats"] == "8"
    assert [m.step for m in store.get_metric_history(runs[0].info.run_id, "val/psnr_y")] == [2, 4, 6]
    assert "test/ssim_y" in runs[0].data.metrics


GAN = {"iterations": 4, "gan_start": 3, "gan_weight": 5e-3, "perceptual_weight": 1.0,
       "discriminator": {"name": "vgg", "n_feats": 8}}


def test_a_gan_without_vgg_weights_trains_without_the_perceptual_term_and_says_so(store, data, tmp_path):
    missing = tmp_path / "nowhere" / "vgg19.pth"
    weights, _, run = run_train(data, tmp_path / "checkpoints", "srgan", {"n_blocks": 1, "n_feats": 8},
                                {**GAN, "perceptual_weights": str(missing)}, cache_dir=str(tmp_path / "cache"))
    assert weights.config["train"]["perceptual_weight"] == 0.0
    assert weights.config["notes"][0].startswith("perceptual loss off") and "pixel and adversarial" in weights.config["notes"][0]
    mlflow_run = store.get_run(run["run_id"])
    assert "perceptual loss off" in mlflow_run.data.tags["superres.notes"]
    assert {"train/adversarial", "train/discriminator"} <= set(mlflow_run.data.metrics)  # the GAN stage ran


def test_a_profile_that_requires_vgg_weights_refuses_to_start(store, data, tmp_path):
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(WeightsError, match="perceptual_required"):
        run_train(data, tmp_path / "checkpoints", "srgan", {"n_blocks": 1, "n_feats": 8},
                  {**GAN, "perceptual_weights": str(missing), "perceptual_required": True})
    assert store.get_experiment_by_name("superres") is None  # refused before any run was opened
