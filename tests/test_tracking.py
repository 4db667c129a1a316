"""The tracker's runs always end, in a real SQLite MLflow store: FINISHED when the block completes,
FAILED on an error, KILLED on Ctrl-C; a run evaluation logs into keeps its status and end time; a
training that resumes continues its run, or backfills a new one when that run is gone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pytest
import torch
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from superres.inference import OVERLAP, TILE, for_inference, super_resolve, super_resolve_tiled
from superres.models import create_model
from superres.models.weights import Weights, save_weights
from superres.serving import log_model
from superres.tracking import (
    BACKFILLED_TAG,
    CHAMPION,
    DIRTY_TAG,
    EXPERIMENT_KIND,
    KIND_TAG,
    LOGGED_MODEL,
    MODEL_TRAINING,
    NODE_INPUTS,
    PARENT_TAG,
    PIPELINE,
    DataInput,
    Resume,
    Tracker,
    download_model,
    dvc_inputs,
    parse_model_uri,
    process_command,
    source_tags,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (making one takes seconds); each test has its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracker(store, request):
    return Tracker(store, request.node.name)


def runs(tracker):
    return tracker.client.search_runs([tracker.experiment_id])


def test_a_run_that_completes_ends_finished(tracker):
    with tracker.run("edsr", {"scale": 2}, {"superres.seed": "0"}) as run_id:
        tracker.log_metrics(run_id, {"test/psnr_y": 30.0})
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["scale"] == "2"
    assert run.data.tags["superres.seed"] == "0" and run.data.metrics["test/psnr_y"] == 30.0


def test_an_error_in_the_block_ends_the_run_failed_and_goes_on(tracker):
    with pytest.raises(ZeroDivisionError), tracker.run("report", {}) as run_id:
        tracker.log_metrics(run_id, {"x": 1.0})
        1 / 0  # noqa: B018
    (run,) = runs(tracker)
    assert run.info.run_id == run_id and run.info.status == "FAILED" and run.info.end_time is not None


def test_ctrl_c_in_the_block_ends_the_run_killed(tracker):
    with pytest.raises(KeyboardInterrupt), tracker.run("edsr", {}) as run_id:
        raise KeyboardInterrupt
    assert tracker.client.get_run(run_id).info.status == "KILLED"


def test_a_finished_run_logged_into_keeps_its_end_time_unless_the_block_fails(tracker):
    with tracker.run("edsr", {}) as run_id:
        pass
    ended = tracker.client.get_run(run_id).info.end_time
    with tracker.resumed(run_id):
        tracker.log_metrics(run_id, {"test/psnr_y": 31.0})
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time == ended and run.data.metrics["test/psnr_y"] == 31.0
    with pytest.raises(RuntimeError), tracker.resumed(run_id):
        raise RuntimeError("the evaluation broke")
    assert tracker.client.get_run(run_id).info.status == "FAILED"  # its record is incomplete
    with tracker.resumed(run_id):  # evaluated again, completely
        pass
    assert tracker.client.get_run(run_id).info.status == "FINISHED"


def test_a_resumed_training_continues_its_killed_run(tracker):
    with pytest.raises(KeyboardInterrupt), tracker.training_run("edsr", {}, {}) as first:
        raise KeyboardInterrupt
    with tracker.training_run("edsr", {}, {"superres.machine.device": "cpu"}, Resume(4, first)) as run_id:
        assert tracker.client.get_run(run_id).info.status == "RUNNING"
    run = tracker.client.get_run(run_id)
    assert run_id == first and run.info.status == "FINISHED" and run.data.tags["superres.machine.device"] == "cpu"
    assert len(runs(tracker)) == 1


def test_a_resumed_training_whose_run_is_gone_backfills_a_new_run(tracker):
    history = [{"step": 2, "train_loss": 0.5, "val_psnr_y": 20.0}, {"step": 4, "train_loss": 0.25, "val_psnr_y": 21.0}]
    with pytest.raises(ValueError), tracker.training_run("edsr", {}, {}, Resume(4, "f" * 32, history)) as run_id:
        raise ValueError("diverged")
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags[BACKFILLED_TAG] == "true"
    curve = tracker.client.get_metric_history(run_id, "val/psnr_y")
    assert [(m.step, m.value) for m in curve] == [(2, 20.0), (4, 21.0)]


def test_a_run_whose_parameters_cannot_be_logged_does_not_stay_open(tracker, monkeypatch):
    def broken(run_id, params):
        raise OSError("the store went away")

    monkeypatch.setattr(tracker, "log_params", broken)
    with pytest.raises(OSError):
        tracker.start_run("edsr", {"scale": 2})
    (run,) = runs(tracker)
    assert run.info.status == "FAILED"


def test_the_store_is_the_sqlite_file_of_the_folder_given(tmp_path, monkeypatch):
    from superres.pipelines.datasets import TrackingStoreDataset

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert TrackingStoreDataset(str(tmp_path)).load() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert TrackingStoreDataset(str(tmp_path)).load() == "sqlite:///elsewhere.db"


# --- what MLflow's UI and tools expect ---------------------------------------------------------


def test_the_experiment_opens_on_the_runs_table(store, tmp_path):
    """MLflow 3 picks an experiment's first view by its kind: model training shows the runs. A store
    made before the tag gets it when the project next opens it."""
    tracker = Tracker(store, "kind-new")
    assert tracker.client.get_experiment(tracker.experiment_id).tags[EXPERIMENT_KIND] == MODEL_TRAINING
    client = MlflowClient(store)
    old = client.create_experiment("kind-old")
    assert EXPERIMENT_KIND not in client.get_experiment(old).tags
    Tracker(store, "kind-old")
    assert client.get_experiment(old).tags[EXPERIMENT_KIND] == MODEL_TRAINING


def weights_folder(folder, seed=0):
    torch.manual_seed(seed)
    net = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
    save_weights(folder, Weights(net.state_dict(), {"architecture": "edsr", "scale": 2,
                                                    "model": {"n_resblocks": 1, "n_feats": 8}}))
    return net


def test_a_logged_model_upscales_as_superres_upscale_does(tracker, store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # MLflow's own loaders read the default store
    net = weights_folder(tmp_path / "weights")
    with tracker.run("edsr", {}) as run_id:
        model_id = log_model(tracker, run_id, tmp_path / "weights")
    run = tracker.client.get_run(run_id)
    assert [output.model_id for output in run.outputs.model_outputs] == [model_id]  # the Models column
    logged = tracker.client.get_logged_model(model_id)
    assert logged.name == LOGGED_MODEL and logged.source_run_id == run_id
    assert logged.experiment_id == tracker.experiment_id
    loaded = mlflow.pyfunc.load_model(f"models:/{model_id}")
    signature = loaded.metadata.signature
    assert signature.inputs.inputs[0].type == np.dtype(np.uint8) and signature.inputs.inputs[0].shape == (-1, -1, -1, 3)
    assert {param.name: param.default for param in signature.params.params} == {"tile": TILE, "overlap": OVERLAP}
    requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{model_id}")).read_text()
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements.split()
    assert any(line.startswith("superres==") for line in requirements.split())
    images = (np.random.default_rng(0).random((2, 150, 40, 3)) * 255).astype(np.uint8)  # two tiles high
    device = torch.device("cpu")
    expected = [super_resolve_tiled(for_inference(net, "edsr", device), image, tile=TILE, overlap=OVERLAP,
                                    device=device) for image in images]
    np.testing.assert_array_equal(loaded.predict(images), np.stack(expected))
    whole = loaded.predict(images[:1], params={"tile": 0})
    np.testing.assert_array_equal(whole[0], super_resolve(for_inference(net, "edsr", device), images[0], device))
    with pytest.raises(MlflowException, match="uint8"):
        loaded.predict(images.astype(np.float32))


def test_logging_a_model_leaves_mlflows_default_store_to_the_environment(tracker, store, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'before.db'}")
    weights_folder(tmp_path / "weights")
    with tracker.run("edsr", {}) as run_id:
        log_model(tracker, run_id, tmp_path / "weights")  # into the tracker's store, through MLflow's default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'after.db'}")
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'after.db'}"  # not pinned to a value of the moment
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'chosen.db'}")  # a notebook's own choice wins over the variable
    try:
        with tracker.run("edsr", {}) as run_id:
            log_model(tracker, run_id, tmp_path / "weights")
        assert tracker.client.get_run(run_id).outputs.model_outputs  # logged into the tracker's store all the same
        assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'chosen.db'}"
    finally:
        mlflow.set_tracking_uri(None)


def test_the_champion_alias_moves_only_when_the_best_model_changes(tracker, store, tmp_path):
    name = f"champion-{tracker.experiment_id}"
    ids = []
    for seed in (0, 1):
        weights_folder(tmp_path / f"w{seed}", seed)
        with tracker.run("edsr", {}) as run_id:
            log_model(tracker, run_id, tmp_path / f"w{seed}")
        ids.append(run_id)
    first = tracker.register_champion(name, ids[0], {"architecture": "edsr"})
    assert first["version"] == "1" and first["alias"] == CHAMPION
    assert tracker.register_champion(name, ids[0])["version"] == "1"  # the same model: no new version
    assert tracker.register_champion(name, ids[1])["version"] == "2"
    assert tracker.client.get_model_version_by_alias(name, CHAMPION).run_id == ids[1]
    with tracker.run("edsr", {}) as bare:
        pass
    assert tracker.register_champion(name, bare) is None  # no MLflow Model: nothing to register
    folder = download_model(f"models:/{name}@{CHAMPION}", tmp_path / "download", store)
    assert (folder / "weights.safetensors").is_file() and (folder / "config.json").is_file()


@pytest.mark.parametrize(("uri", "parsed"), [("models:/a/3", ("a", "3", "")), ("models:/a-x2@champion",
                                                                                  ("a-x2", "", "champion"))])
def test_a_model_uri_names_a_version_or_an_alias(uri, parsed):
    assert parse_model_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["models:/a", "models:/@champion", "runs:/abc/model", "models:/a@"])
def test_other_model_uris_are_refused_with_the_forms_accepted(uri):
    with pytest.raises(ValueError, match="models:/NAME/VERSION or models:/NAME@ALIAS"):
        parse_model_uri(uri)


# --- lineage -----------------------------------------------------------------------------------


def test_runs_of_one_pipeline_run_are_children_of_one_run_that_tracks_them(tracker):
    token = PIPELINE.set(("4242@1.000", "dvc repro"))
    try:
        with tracker.run("edsr", {}) as first:
            parent = tracker.pipeline_run()
            assert tracker.client.get_run(parent).info.status == "RUNNING"
        with pytest.raises(RuntimeError), tracker.run("srcnn", {}) as second:
            raise RuntimeError("broke")
        other = Tracker(tracker.tracking_uri, tracker.client.get_experiment(tracker.experiment_id).name)
        with other.run("report", {}) as third:  # another stage: another process, another tracker
            pass
    finally:
        PIPELINE.reset(token)
    runs_by_id = {run.info.run_id: run for run in runs(tracker)}
    assert {runs_by_id[r].data.tags[PARENT_TAG] for r in (first, second, third)} == {parent}
    pipeline = runs_by_id[parent]
    assert pipeline.data.tags[KIND_TAG] == "pipeline" and pipeline.info.run_name.startswith("dvc repro ")
    assert pipeline.info.status == "FINISHED"  # the last stage's
    assert runs_by_id[third].data.tags["mlflow.source.name"] == "dvc repro"
    with tracker.run("edsr", {}) as alone:  # outside a pipeline: no parent
        pass
    assert PARENT_TAG not in tracker.client.get_run(alone).data.tags


def test_a_pipeline_run_takes_the_dvc_experiments_name(tracker, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "wider-edsr")
    token = PIPELINE.set(("4343@1.000", "dvc exp run"))
    try:
        with tracker.run("edsr", {}) as run_id:
            pass
    finally:
        PIPELINE.reset(token)
    parent = tracker.client.get_run(tracker.client.get_run(run_id).data.tags[PARENT_TAG])
    assert parent.info.run_name == "wider-edsr" and parent.data.tags["dvc.exp_name"] == "wider-edsr"


def test_a_run_records_the_dvc_outputs_its_node_reads(tracker, tmp_path):
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "prepare": {"cmd": "x", "outs": [
            {"path": "data/05_model_input/train", "hash": "md5", "md5": "9aa00dbd935625e9592ad00ae9eb7da5.dir"},
            {"path": "data/05_model_input/val", "hash": "md5", "md5": "2266438a67302d3c947a628390a6b237.dir"},
            {"path": "data/03_primary/split.csv", "hash": "md5", "md5": "0123456789abcdef0123456789abcdef"}]}}}))
    inputs = dvc_inputs(tmp_path, [tmp_path / "data/05_model_input/train", tmp_path / "data/05_model_input/val/lr",
                                   tmp_path / "data/05_model_input/val/hr", tmp_path / "data/06_models/edsr",
                                   tmp_path / "data/03_primary/split.csv"])
    assert inputs == [DataInput("data/05_model_input/train", "9aa00dbd935625e9592ad00ae9eb7da5"),
                      DataInput("data/05_model_input/val", "2266438a67302d3c947a628390a6b237")]
    assert dvc_inputs(tmp_path / "nowhere", [tmp_path]) == []  # no dvc.lock: nothing known
    token = NODE_INPUTS.set(("train", tuple(inputs)))
    try:
        with tracker.run("edsr", {}) as run_id:
            pass
    finally:
        NODE_INPUTS.reset(token)
    recorded = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert {(d.dataset.name, d.dataset.digest) for d in recorded} == {(i.path, i.digest) for i in inputs}
    assert {tag.value for d in recorded for tag in d.tags if tag.key == "mlflow.data.context"} == {"train"}


def test_the_source_is_the_commit_and_whether_tracked_files_changed(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    assert source_tags(str(tmp_path)) == {}  # not a git repository
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *command], cwd=tmp_path, env=env, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # DVC rewrites it as stages end
    (tmp_path / "new.txt").write_text("untracked\n")
    source_tags.cache_clear()
    assert source_tags(str(tmp_path)) == {"mlflow.source.git.commit": commit, DIRTY_TAG: "false",
                                          "mlflow.source.git.branch": "main"}
    (tmp_path / "params.yaml").write_text("a: 2\n")  # dvc exp run -S
    source_tags.cache_clear()
    assert source_tags(str(tmp_path))[DIRTY_TAG] == "true"


@pytest.mark.parametrize(("argv", "command"), [
    (["/v/bin/python", "/v/bin/dvc", "repro"], "dvc repro"),
    (["/v/bin/dvc", "exp", "run", "-S", "x=1"], "dvc exp run"),
    (["python3", "-m", "kedro", "run", "--pipelines=edsr"], "kedro run"),
])
def test_a_pipeline_is_named_by_its_command(argv, command):
    assert process_command(argv) == command
