"""The per-architecture pipeline through Kedro's runner: a tiny EDSR (seed 0) trains and is evaluated
beside bicubic, on patches and pairs made in the test, with MLflow on a SQLite store in the test's
folder (:func:`pipeline_runs.zoo_run`)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from pipeline_runs import ZOO, zoo_run

from superres.data.degrade import bicubic_resize

METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "mae", "mse")


def test_edsr_trains_and_is_evaluated_beside_bicubic(tmp_path_factory):
    out, entries = zoo_run(tmp_path_factory.getbasetemp() / "zoo")
    weights = out["edsr.seed0.model"]
    assert {k: weights.config[k] for k in ("architecture", "seed", "scale", "iterations")} == {
        "architecture": "edsr", "seed": 0, "scale": 2, "iterations": 4}
    history = out["edsr.seed0.history"]
    assert list(history.columns) == ["step", "train_loss", "lr", "val_psnr_y"]
    assert history.dropna(subset=["val_psnr_y"])["step"].tolist() == [2, 4]
    assert not entries["edsr.seed0.checkpoints"].exists()  # a completed training leaves no working state

    for arch in ZOO:
        metrics = out[f"{arch}.seed0.metrics"]
        for key in (*(f"test/{m}" for m in METRICS), *(f"mine_x2/{m}" for m in METRICS)):
            assert np.isfinite(metrics[key]), (arch, key)
        per_image = out[f"{arch}.seed0.per_image_metrics"]
        assert sorted(per_image["image"]) == ["t1", "t2", "t3"]
        assert per_image["psnr_y"].mean() == pytest.approx(metrics["test/psnr_y"])
        assert set(out[f"{arch}.seed0.benchmark_metrics"]["image"]) == {"b1"}
        assert out[f"{arch}.seed0.timing"]
        assert {n: a.shape for n, a in out[f"{arch}.seed0.sr_images"].items()} == dict.fromkeys(
            ("t1", "t2", "t3"), (40, 48, 3))

    # bicubic is the MATLAB bicubic of the LR picture
    np.testing.assert_array_equal(out["bicubic.seed0.sr_images"]["t1"], bicubic_resize(entries["test_lr"]["t1"](), 2))

    # one MLflow run per architecture and seed, finished, holding the test metrics
    client = mlflow.MlflowClient(tracking_uri=entries["tracking_uri"])
    for arch in ZOO:
        record = client.get_run(out[f"{arch}.seed0.mlflow_run"]["run_id"])
        assert record.info.status == "FINISHED"
        assert record.data.tags["superres.architecture"] == arch and record.data.tags["superres.seed"] == "0"
        assert record.data.metrics["test/psnr_y"] == pytest.approx(out[f"{arch}.seed0.metrics"]["test/psnr_y"])
