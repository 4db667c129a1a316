"""End to end: the real ``dvc repro`` (Kedro, DVC, MLflow on SQLite) on a tiny profile, in a
temporary copy of the project."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
import torch
from conftest import ARCHITECTURES, SET5, run
from mlflow.tracking import MlflowClient

from superres.precision import inference_precision, training_precision

ARCHS = ARCHITECTURES

pytestmark = pytest.mark.e2e


def test_outputs_of_every_stage(project):
    root, _ = project
    report = pd.read_csv(root / "data/01_raw/ingest_report.csv")
    assert set(report["status"]) == {"accepted"} and len(report) == 8
    split = pd.read_csv(root / "data/03_primary/split.csv")
    assert sorted(split["split"].value_counts().to_dict().items()) == [("test", 1), ("train", 6), ("val", 1)]
    images = sorted(p.name for p in (root / "data/02_intermediate/images").iterdir())
    assert images == sorted(f"{n}.png" for n in split["image"])
    for arch in ARCHS:
        assert (root / f"data/06_models/{arch}/seed0/weights.safetensors").is_file()
        config = json.loads((root / f"data/06_models/{arch}/seed0/config.json").read_text())
        assert config["architecture"] == arch and config["scale"] == 2 and config["seed"] == 0
        assert config["machine"]["torch"] and config["machine"]["cpu"] and config["machine"]["threads"] >= 1
        trained = training_precision("auto", "auto", torch.device("cpu"), arch).record() if arch != "bicubic" else {}
        assert config["precision"] == trained  # what auto picked on this machine (bicubic trains nothing)
        assert (root / f"data/07_model_output/{arch}/seed0/images").is_dir()
    html = (root / "data/08_reporting/report.html").read_text()
    assert "<table" in html and html.count("data:image/png;base64,") > len(ARCHS)
    table = pd.read_csv(root / "data/08_reporting/comparison.csv")
    assert sorted(table["architecture"]) == sorted([*ARCHS, "pretrained:port_x2"]) and (table["latency_ms"] > 0).all()
    plots = sorted(p.name for p in (root / "data/08_reporting/plots").iterdir())
    assert plots == ["difference_vs_bicubic.png", "gain_over_bicubic.png", "psnr_on_benchmarks.png",
                     "psnr_vs_latency.png",
                     "psnr_vs_parameters.png", "validation_curves.png"]


BENCHMARKS = ["mine", "set5"] if SET5.is_dir() else ["mine"]
METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "mae", "mse")


def expected_keys(arch: str) -> set[str]:
    """The test split, and every benchmark at the model's scale (x2); bicubic at x3 too."""
    datasets = ["test", *(f"{b}_x2" for b in BENCHMARKS), *(f"{b}_x3" for b in BENCHMARKS if arch == "bicubic")]
    return {f"{d}/{m}" for d in datasets for m in METRICS}


def test_benchmarks_are_made_from_hr_and_reported_beside_the_published_rows(project):
    root, _ = project
    made = pd.read_csv(root / "data/05_model_input/benchmarks/report.csv")
    mine = made[made["benchmark"] == "mine"]
    assert sorted(mine["image"]) == ["clock", "hubble", "retina"] and set(mine["status"]) == {"kept"}
    for scale in (2, 3):
        hr = sorted(p.name for p in (root / f"data/05_model_input/benchmarks/mine_x{scale}/hr").iterdir())
        assert hr == ["clock.png", "hubble.png", "retina.png"]
    table = pd.read_csv(root / "data/08_reporting/benchmarks.csv")
    measured = table[table["source"] == "this run"]
    at_x2 = measured.loc[(measured.benchmark == "mine") & (measured.scale == 2), "architecture"]
    assert sorted(at_x2) == sorted([*ARCHS, "pretrained:port_x2"])
    assert list(measured.loc[measured.scale == 3, "architecture"].unique()) == ["bicubic"]
    assert (measured.loc[measured.benchmark == "mine", "images"] == 3).all()
    markdown = (root / "data/08_reporting/comparison.md").read_text()
    assert "## Benchmarks" in markdown and "mine x3" in markdown
    assert "The test split has only 1 image" in markdown  # the tiny profile says so plainly
    assert "Benchmarks" in (root / "data/08_reporting/report.html").read_text()
    if SET5.is_dir():  # the published rows sit beside the measured ones, and bicubic matches its own
        set5 = table[(table.benchmark == "set5") & (table.scale == 2)].set_index(["architecture", "source"])["psnr_y"]
        published = set5[("bicubic", "Kim et al., CVPR 2016 (VDSR)")]
        assert set5[("bicubic", "this run")] == pytest.approx(published, abs=0.03)
        assert ("edsr", "Lim et al., CVPRW 2017 (EDSR)") in set5.index


def test_metrics_are_dvc_metrics_with_the_literature_keys(project):
    root, env = project
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], root, env).stdout)
    metrics = {}
    for entry in shown.values():
        for path, content in entry["data"].items():
            metrics[path] = content["data"]
    for arch in ARCHS:
        values = metrics[f"data/08_reporting/{arch}/seed0/metrics.json"]
        assert set(values) == expected_keys(arch)
        # 40 iterations barely train a model: the bounds catch a broken pipeline, whose black or garbage
        # images score under 10 dB
        assert 10 < values["test/psnr_y"] < 60 and 0 < values["test/ssim_y"] <= 1
        assert 10 < values["mine_x2/psnr_y"] < 60 and 0 < values["mine_x2/ssim_y"] <= 1


def test_mlflow_has_one_run_per_architecture_with_the_same_keys(project):
    root, _ = project
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superres")
    runs = client.search_runs([experiment.experiment_id], "tags.`superres.kind` = 'architecture'")
    assert sorted(r.info.run_name for r in runs) == sorted(ARCHS)
    dvc_metrics = {a: json.loads((root / f"data/08_reporting/{a}/seed0/metrics.json").read_text()) for a in ARCHS}
    for run_ in runs:
        arch = run_.info.run_name
        for key in expected_keys(arch):  # the same keys and values in DVC and MLflow
            assert run_.data.metrics[key] == pytest.approx(dvc_metrics[arch][key])
        assert run_.data.params["architecture"] == arch and run_.data.params["seed"] == "0"
        assert run_.data.tags["superres.architecture"] == arch and run_.data.tags["superres.seed"] == "0"
        assert run_.data.tags["superres.machine.torch"] and run_.data.tags["superres.machine.cpu"]
        inference = inference_precision(arch, torch.device("cpu"))
        assert run_.data.tags["superres.inference.amp"] == inference.record()["amp"]
        if arch != "bicubic":
            assert run_.data.tags["superres.precision.amp"] in ("bf16", "off")
        artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
        assert {"model", "evaluation"} <= artifacts
    edsr = next(r for r in runs if r.info.run_name == "edsr")
    curve = client.get_metric_history(edsr.info.run_id, "val/psnr_y")
    assert [m.step for m in curve] == [20, 40]
    assert len(client.get_metric_history(edsr.info.run_id, "train/loss")) == 8


def test_the_report_is_a_run_of_its_own(project):
    root, _ = project
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superres")
    report = client.search_runs([experiment.experiment_id], "attributes.run_name = 'report'",
                                order_by=["attributes.start_time DESC"])[0]
    artifacts = {a.path for a in client.list_artifacts(report.info.run_id)}
    assert {"comparison.csv", "benchmarks.csv", "comparison.md", "report.html", "plots"} <= artifacts
    edsr = json.loads((root / "data/08_reporting/edsr/seed0/metrics.json").read_text())
    assert report.data.metrics["edsr.test/psnr_y"] == pytest.approx(edsr["test/psnr_y"])
    assert report.data.metrics["edsr.mine_x2/psnr_y"] == pytest.approx(edsr["mine_x2/psnr_y"])


def test_a_published_checkpoint_is_imported_measured_and_compared(project):
    """params.yaml's `pretrained` entry (a port's checkpoint whose network computes bicubic on Y): its
    own DVC stage imports it, measures it as the trained models are measured, records an MLflow run
    with the same keys, and the report shows its row beside them."""
    root, env = project
    assert "pretrained@port_x2" in run(["dvc", "stage", "list"], root, env).stdout
    config = json.loads((root / "data/06_models/pretrained/port_x2/config.json").read_text())
    assert config["architecture"] == "srcnn" and config["model"]["color"] == "y"
    assert config["pretrained"]["origin"] == "a port" and config["pretrained"]["source"].endswith("srcnn_x2.pth")
    metrics = json.loads((root / "data/08_reporting/pretrained/port_x2/metrics.json").read_text())
    assert set(metrics) == {f"{d}/{m}" for d in ["test", *(f"{b}_x2" for b in BENCHMARKS)] for m in METRICS}
    bicubic = json.loads((root / "data/08_reporting/bicubic/seed0/metrics.json").read_text())
    for key in ("test/psnr_y", "mine_x2/psnr_y"):  # bicubic on Y, and the chroma by bicubic: bicubic's PSNR-Y
        assert metrics[key] == pytest.approx(bicubic[key], abs=0.05)
    table = pd.read_csv(root / "data/08_reporting/comparison.csv").set_index("architecture")
    assert table.loc["pretrained:port_x2", "test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
    assert "pretrained: a port weights, measured here" in table.loc["pretrained:port_x2", "notes"]
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superres")
    (record,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'pretrained:port_x2'")
    assert record.data.tags["superres.kind"] == "pretrained"
    assert record.data.metrics["test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])
    report = client.search_runs([experiment.experiment_id], "attributes.run_name = 'report'",
                                order_by=["attributes.start_time DESC"])[0]
    assert report.data.metrics["pretrained:port_x2.test/psnr_y"] == pytest.approx(metrics["test/psnr_y"])


def test_second_repro_is_a_fast_no_op(project):
    root, env = project
    start = time.perf_counter()
    out = run(["dvc", "repro"], root, env).stdout
    elapsed = time.perf_counter() - start
    assert "Data and pipelines are up to date" in out
    assert elapsed < 10  # the target (2 s) is measured by benchmark; this only guards a regression


def test_split_manifest_is_byte_identical_when_prepare_reruns(project):
    root, env = project
    before = (root / "data/03_primary/split.csv").read_bytes()
    run(["dvc", "repro", "--force", "--single-item", "prepare"], root, env)
    assert (root / "data/03_primary/split.csv").read_bytes() == before


def test_experiment_reruns_only_the_changed_architecture_and_logs_to_the_project_store(project):
    root, env = project
    out = run(["dvc", "exp", "run", "--temp", "-S", "edsr.model.n_feats=8"], root, env)
    text = out.stdout + out.stderr
    assert "Running stage 'train@edsr-0'" in text
    assert "Running stage 'train@srcnn-0'" not in text and "Running stage 'prepare'" not in text
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superres")
    edsr_runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'edsr'")
    assert len(edsr_runs) == 2
    newest = max(edsr_runs, key=lambda r: r.info.start_time)
    assert newest.data.params["model.n_feats"] == "8"
    assert "test/psnr_y" in newest.data.metrics
    parent = client.get_run(newest.data.tags["mlflow.parentRunId"])  # the experiment's own pipeline run
    assert parent.info.run_name == newest.data.tags["dvc.exp_name"] and parent.data.tags["superres.kind"] == "pipeline"
    first = min(edsr_runs, key=lambda r: r.info.start_time)
    assert first.data.tags["mlflow.parentRunId"] != parent.info.run_id
    assert not (root / ".dvc/tmp/exps/mlflow.db").exists()


def test_one_architecture_runs_alone_with_either_spelling_of_the_option(project):
    root, env = project
    for option in ("--pipelines=bicubic", "--pipeline=bicubic"):
        out = run(["kedro", "run", option, "--tags=evaluate"], root, env)
        assert "bicubic.seed0.evaluate" in out.stdout + out.stderr


def test_five_seeds_run_end_to_end_and_each_seed_is_a_run_of_its_own(project):
    root, env = project
    out = run(["dvc", "exp", "run", "--temp", "-S", "seeds=[0,1,2,3,4]", "-S", "architectures=[bicubic,edsr]"], root,
              env)
    text = out.stdout + out.stderr
    for seed in (1, 2, 3, 4):
        assert f"Running stage 'train@edsr-{seed}'" in text and f"Running stage 'evaluate@edsr-{seed}'" in text
    assert "Running stage 'train@edsr-0'" not in text  # seed 0 is unchanged: restored, not retrained
    assert "Running stage 'report'" in text
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superres")
    edsr = client.search_runs([experiment.experiment_id], "tags.`superres.architecture` = 'edsr'")
    seeds = sorted(int(r.data.tags["superres.seed"]) for r in edsr if "test/psnr_y" in r.data.metrics)
    assert set(seeds) == {0, 1, 2, 3, 4}
    values = {r.data.tags["superres.seed"]: r.data.metrics["test/psnr_y"] for r in edsr
              if r.data.tags["superres.seed"] != "0"}
    assert len(set(values.values())) == 4, "each seed trains another model"
    report = client.search_runs([experiment.experiment_id], "attributes.run_name = 'report'",
                                order_by=["attributes.start_time DESC"])[0]
    all_five = [r.data.metrics["test/psnr_y"] for r in edsr  # not the n_feats=8 experiment of another test
                if "test/psnr_y" in r.data.metrics and r.data.params["model.n_feats"] != "8"]
    assert len(all_five) == 5
    assert report.data.metrics["edsr.seeds"] == 5
    assert report.data.metrics["edsr.test/psnr_y"] == pytest.approx(sum(all_five) / 5)
    assert report.data.metrics["edsr.test/psnr_y_std"] > 0
