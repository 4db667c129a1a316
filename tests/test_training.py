"""The training loop, its configuration, weights on disk and the MLflow tracker."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from superres.data.degrade import degrade
from superres.errors import ConfigError, WeightsError
from superres.models import create_model
from superres.models.weights import Weights, load_model, load_weights, save_weights
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.tracking import MlflowCallback, Tracker
from superres.training.trainer import seed_everything, train


def smooth_image(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([np.sin(6 * x + rng.uniform(0, 3)) * np.cos(5 * y + c) for c in range(3)], -1)
    return ((image + 1) * 127.5).round().astype(np.uint8)


@pytest.fixture(scope="module")
def data():
    images = [smooth_image(64, s) for s in range(3)]
    lrs = [degrade(im, 2) for im in images]
    lr = np.stack([l[i : i + 8, j : j + 8].transpose(2, 0, 1) for l in lrs for i in (0, 16) for j in (0, 16)])
    hr = np.stack([h[2 * i : 2 * i + 16, 2 * j : 2 * j + 16].transpose(2, 0, 1) for h in images for i in (0, 16) for j in (0, 16)])
    return PatchDataset(lr, hr), [(lrs[0], images[0])]


def small_edsr():
    return create_model("edsr", scale=2, n_resblocks=1, n_feats=8)


def test_training_lowers_the_loss_and_keeps_the_best_weights(data):
    patches, val = data
    config = TrainConfig(iterations=30, batch_size=4, lr=1e-3, val_every=10, log_every=5)
    result = train(small_edsr(), patches, val, config, scale=2)
    assert [row["step"] for row in result.history] == [10, 20, 30]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_psnr_y == max(row["val_psnr_y"] for row in result.history)
    assert result.iterations == 30


def test_seeded_runs_are_repeatable(data):
    patches, val = data
    config = TrainConfig(iterations=6, batch_size=4, val_every=3)
    runs = []
    for _ in range(2):
        seed_everything(config.seed)  # as the train node does, before the model is built
        runs.append(train(small_edsr(), patches, val, config, scale=2).state_dict)
    a, b = runs
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_stops(data):
    patches, val = data
    config = TrainConfig(iterations=200, batch_size=2, lr=1e-9, val_every=1, early_stopping=2)
    result = train(small_edsr(), patches, val, config, scale=2)
    assert result.stopped_early and result.iterations < 200


def test_divergence_is_a_clear_error(data):
    patches, val = data
    model = small_edsr()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(Exception, match="diverged at iteration 1"):
        train(model, patches, val, TrainConfig(iterations=3, batch_size=2), scale=2)


def test_bicubic_trains_nothing_but_validates(data):
    patches, val = data
    result = train(create_model("bicubic", scale=2), patches, val, TrainConfig(iterations=5), scale=2)
    assert result.iterations == 0 and len(result.history) == 1 and result.state_dict == {}


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_params({"iterations": 5, "learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="train.iterations"):
        TrainConfig.from_params({"iterations": 0})
    assert TrainConfig.from_params({"lr": 1e-3}, lr=5e-4).lr == 5e-4


def test_weights_roundtrip_and_clear_errors(tmp_path):
    model = small_edsr()
    config = {"architecture": "edsr", "scale": 2, "model": {"n_resblocks": 1, "n_feats": 8}}
    save_weights(tmp_path, Weights(model.state_dict(), config))
    loaded, loaded_config = load_model(tmp_path)
    assert loaded_config == config
    x = torch.rand(1, 3, 6, 6)
    assert torch.equal(loaded(x), model.eval()(x))
    (tmp_path / "weights.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(WeightsError, match="weights.safetensors"):
        load_weights(tmp_path)
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "missing")
    config["model"]["n_feats"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_weights(tmp_path / "b", Weights(model.state_dict(), {**config, "model": {"n_resblocks": 1, "n_feats": 8}}))
    (tmp_path / "b" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="do not match"):
        load_model(tmp_path / "b")


def test_tracker_records_runs_in_sqlite(tmp_path, data):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "exp")
    run_id = tracker.start_run("edsr", {"model": {"n_feats": 8}, "scale": 2})
    patches, val = data
    train(small_edsr(), patches, val, TrainConfig(iterations=4, batch_size=2, val_every=2, log_every=2), scale=2,
          callbacks=[MlflowCallback(tracker, run_id)])
    tracker.end_run(run_id)
    run = tracker.client.get_run(run_id)
    assert run.info.run_name == "edsr" and run.data.params["model.n_feats"] == "8"
    assert [m.step for m in tracker.client.get_metric_history(run_id, "val/psnr_y")] == [2, 4]
    assert tracker.find_run(run_id) == run_id and tracker.find_run("0" * 32) is None
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
