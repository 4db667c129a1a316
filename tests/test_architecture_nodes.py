"""The train and evaluate nodes with a real MLflow store: one run per architecture, evaluation
logs into the run training opened, and a run missing from the store is recorded anew."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from superres.data.degrade import degrade
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


def run_train(data):
    patches, lr, hr = data
    return train_model(patches, lr, hr, {"n_resblocks": 1, "n_feats": 8}, {"iterations": 6}, TRAIN,
                       {"scale": 2}, TRACKING, "tiny", architecture="edsr")


def test_evaluation_logs_into_the_training_run(store, data):
    weights, history, run = run_train(data)
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


def test_a_run_missing_from_the_store_is_backfilled(store, data):
    weights, history, _ = run_train(data)
    _, lr, hr = data
    evaluate_model(weights, history, {"run_id": "f" * 32}, lr, hr, {"save_images": False}, TRACKING, architecture="edsr")
    runs = store.search_runs([store.get_experiment_by_name("superres").experiment_id], "tags.`superres.backfilled` = 'true'")
    assert len(runs) == 1 and runs[0].info.run_name == "edsr"
    assert runs[0].data.params["model.n_feats"] == "8"
    assert [m.step for m in store.get_metric_history(runs[0].info.run_id, "val/psnr_y")] == [2, 4, 6]
    assert "test/ssim_y" in runs[0].data.metrics
