"""The tracker's runs always end, in a real SQLite MLflow store: FINISHED when the block completes,
FAILED on an error, KILLED on Ctrl-C; a run evaluation logs into keeps its status and end time; a
training that resumes continues its run, or backfills a new one when that run is gone."""

from __future__ import annotations

import pytest

from superres.tracking import BACKFILLED_TAG, Resume, Tracker


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
