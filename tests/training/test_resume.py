"""Resuming a killed training run: the resumed run ends with exactly the weights of a run that
was never interrupted, and its training time adds up over the stretches. The run is killed for
real (SIGKILL) in a subprocess; and the real `kedro run` of a training stage, stopped by SIGTERM
or SIGKILL, leaves one MLflow run that the next run continues and finishes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from superres.data.degrade import degrade
from superres.data.imageio import write_png
from superres.errors import SuperresError
from superres.models import create_model
from superres.training import checkpoint, distributed
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import seed_everything, train

# Trains the tiny EDSR on the arrays of folder argv[1], checkpointing into argv[2]/ckpt<rank>;
# argv[3] is the train config as JSON, plus "hang_at": an iteration at which it sleeps (to be killed),
# "pause": {iteration: seconds} short sleeps, and "metadata" to store with the checkpoints.
SCRIPT = """
import json, os, sys, time
from pathlib import Path
import numpy as np, torch
from superres.models import create_model
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import seed_everything, train

torch.set_num_threads(1)
data, out, params = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
hang_at, rank, logged = params.pop("hang_at", None), int(os.environ.get("RANK", "0")), []
pause, metadata = {int(k): v for k, v in params.pop("pause", {}).items()}, params.pop("metadata", None)

class Hang:
    def on_log(self, step, metrics):
        logged.append(step)
        time.sleep(pause.get(step, 0))
        if step == hang_at:
            time.sleep(600)

config = TrainConfig.from_params(params)
seed_everything(config.seed)
model = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
patches = PatchDataset(np.load(data / "lr.npy", mmap_mode="r"), np.load(data / "hr.npy", mmap_mode="r"))
val = [(np.load(data / "val_lr.npy"), np.load(data / "val_hr.npy"))]
result = train(model, patches, val, config, scale=2, callbacks=[Hang()], checkpoint_dir=out / f"ckpt{rank}",
               metadata=metadata)
torch.save({"model": model.state_dict(), "best": result.state_dict, "logged": logged}, out / f"rank{rank}.pt")
"""

PARAMS = {"iterations": 8, "batch_size": 4, "lr": 1e-3, "val_every": 3, "log_every": 1, "checkpoint_every": 2,
          "scheduler": "multistep", "milestones": [3, 6], "ema": 0.9}


def write_data(folder: Path) -> None:
    """Patches of a smooth random image and one validation pair, as .npy files."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:48] / 48
    hr = ((np.stack([np.sin(5 * x + c) * np.cos(4 * y + rng.uniform(0, 3)) for c in range(3)], -1) + 1) * 127.5)
    hr = hr.round().astype(np.uint8)
    lr = degrade(hr, 2)
    corners = [(i, j) for i in (0, 8, 16) for j in (0, 8, 16)]
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "lr.npy", np.stack([lr[i : i + 8, j : j + 8].transpose(2, 0, 1) for i, j in corners]))
    hr_patches = [hr[2 * i : 2 * i + 16, 2 * j : 2 * j + 16].transpose(2, 0, 1) for i, j in corners]
    np.save(folder / "hr.npy", np.stack(hr_patches))
    np.save(folder / "val_lr.npy", lr)
    np.save(folder / "val_hr.npy", hr)


def run_in_process(data: Path, checkpoint_dir: Path, resume: bool) -> tuple[torch.nn.Module, object]:
    """Train here on one thread, as the script does: float sums depend on the number of threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(data, checkpoint_dir, resume)
    finally:
        torch.set_num_threads(threads)


def _train(data: Path, checkpoint_dir: Path, resume: bool) -> tuple[torch.nn.Module, object]:
    config = TrainConfig.from_params(dict(PARAMS))
    seed_everything(config.seed)
    model = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
    patches = PatchDataset(np.load(data / "lr.npy", mmap_mode="r"), np.load(data / "hr.npy", mmap_mode="r"))
    val = [(np.load(data / "val_lr.npy"), np.load(data / "val_hr.npy"))]
    return model, train(model, patches, val, config, scale=2, checkpoint_dir=checkpoint_dir, resume=resume)


def checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0


def test_a_killed_run_resumes_exactly(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write_data(data)
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    # a pause of 1.5 s in the first stretch: the resumed run must count it, although it trains for less than that
    params = {**PARAMS, "hang_at": 5, "pause": {"1": 1.5}, "metadata": {"run": "abc", "n": [1, 2]}}
    process = subprocess.Popen([sys.executable, str(script), str(data), str(out), json.dumps(params)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = out / "ckpt0" / checkpoint.FILENAME
    deadline = time.monotonic() + 60
    while checkpoint_step(path) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert checkpoint_step(path) == 4  # it hangs in iteration 5, so iteration 4 was the last written
    assert not (out / "rank0.pt").exists()
    saved = checkpoint.peek(path)
    assert saved["metadata"] == {"run": "abc", "n": [1, 2]}  # the caller's record, as it was given
    assert saved["seconds"] >= 1.5

    started = time.perf_counter()
    resumed_model, resumed = run_in_process(data, out / "ckpt0", resume=True)
    stretch = time.perf_counter() - started
    model, uninterrupted = run_in_process(data, tmp_path / "fresh", resume=False)
    assert resumed.resumed_from == 4 and resumed.iterations == uninterrupted.iterations == 8
    assert resumed.history == uninterrupted.history
    assert resumed.best_step == uninterrupted.best_step
    for final, expected in ((resumed_model.state_dict(), model.state_dict()),
                            (resumed.state_dict, uninterrupted.state_dict)):
        assert final.keys() == expected.keys()
        assert all(torch.equal(final[k], expected[k]) for k in expected)
    # the training time is the first stretch (up to its checkpoint) plus the second
    assert saved["seconds"] < resumed.seconds <= saved["seconds"] + stretch
    assert uninterrupted.seconds < saved["seconds"]  # no pause there: the 1.5 s came from the first stretch


class Poison:
    """Makes the weights NaN after iteration ``at``: the next iteration's loss diverges."""

    def __init__(self, model: torch.nn.Module, at: int) -> None:
        self.model, self.at = model, at

    def on_log(self, step: int, metrics: dict) -> None:
        if step == self.at:
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))


def test_a_divergence_keeps_the_last_checkpoint_and_tears_the_process_group_down(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_data(data)
    torn_down = []
    monkeypatch.setattr(distributed, "teardown", torn_down.append)
    config = TrainConfig.from_params(dict(PARAMS))
    seed_everything(config.seed)
    model = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
    patches = PatchDataset(np.load(data / "lr.npy"), np.load(data / "hr.npy"))
    val = [(np.load(data / "val_lr.npy"), np.load(data / "val_hr.npy"))]
    with pytest.raises(SuperresError, match="diverged at iteration 6"):
        train(model, patches, val, config, scale=2, callbacks=[Poison(model, 5)], checkpoint_dir=tmp_path / "ckpt")
    assert len(torn_down) == 1 and isinstance(torn_down[0], distributed.Context)
    assert checkpoint_step(tmp_path / "ckpt" / checkpoint.FILENAME) == 4


# --- the real `kedro run` of a training stage, stopped by SIGTERM or SIGKILL, then run again -------

STAGE = ["-m", "kedro", "run", "--pipelines=srcnn", "--tags=train"]
ITERATIONS = 300
SRCNN_TRAIN = {"iterations": ITERATIONS, "batch_size": 4, "val_every": 10, "log_every": 10, "checkpoint_every": 10}


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the project with SRCNN's seeds 0 and 1 on a tiny profile, its prepared data
    written directly (the training stage alone runs), and a SQLite MLflow store of its own."""
    from conftest import copy_project, tiny_params

    copy = tmp_path_factory.mktemp("project")
    copy_project(copy)
    params = tiny_params(yaml.safe_load((copy / "params.yaml").read_text()))
    params["seeds"] = [0, 1]
    params["srcnn"]["train"] = dict(SRCNN_TRAIN)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    arrays = tmp_path_factory.mktemp("arrays")
    write_data(arrays)
    model_input = copy / "data" / "05_model_input"
    (model_input / "train").mkdir(parents=True)
    for name in ("lr", "hr"):
        shutil.copy(arrays / f"{name}.npy", model_input / "train" / f"{name}.npy")
        write_png(model_input / "val" / name / "smooth.png", np.load(arrays / f"val_{name}.npy"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", OMP_NUM_THREADS="1", HOME=str(copy / "home"))
    env.pop("WORLD_SIZE", None)
    return copy, env


def start_stage(root: Path, env: dict, seed: int, log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the training
        return subprocess.Popen([sys.executable, *STAGE, f"--namespaces=srcnn.seed{seed}"], cwd=root, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop_late_in_training(process: subprocess.Popen, checkpoints: Path, sig: signal.Signals, log: Path) -> dict:
    """Send ``sig`` once the checkpoint has passed two thirds of the iterations (so the first stretch
    outweighs the rest); return that checkpoint as it stays."""
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        paths = list(checkpoints.glob(f"*/{checkpoint.FILENAME}"))
        if paths and checkpoint_step(paths[0]) >= 2 * ITERATIONS // 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, f"the training ended before it was stopped:\n{log.read_text()[-4000:]}"
    process.send_signal(sig)
    process.wait(timeout=120)
    (path,) = checkpoints.glob(f"*/{checkpoint.FILENAME}")
    return checkpoint.peek(path)


def seed_runs(root: Path, seed: int) -> list:
    store = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("superres")
    return store.search_runs([experiment.experiment_id],
                             f"tags.`superres.architecture` = 'srcnn' and tags.`superres.seed` = '{seed}'")


def check_the_completed_run(root: Path, env: dict, seed: int, run_id: str, saved: dict) -> None:
    """Run the stage again to completion: it continues ``run_id`` and ends it FINISHED, with every
    validation in its curve and the training time of both stretches."""
    done = subprocess.run([sys.executable, *STAGE, f"--namespaces=srcnn.seed{seed}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    (run,) = seed_runs(root, seed)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    store = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    steps = {m.step for m in store.get_metric_history(run_id, "val/psnr_y")}
    assert steps == set(range(10, ITERATIONS + 1, 10))
    folder = root / "data" / "06_models" / "srcnn" / f"seed{seed}"
    config = json.loads((folder / "config.json").read_text())
    assert config["notes"] == [f"resumed from the checkpoint of iteration {saved['step']}"]
    assert config["train_seconds"] > saved["seconds"]  # the first stretch (up to its checkpoint) and the second
    assert run.data.metrics["train/seconds"] == pytest.approx(config["train_seconds"], abs=1e-3)
    assert json.loads((folder / "mlflow_run.json").read_text())["run_id"] == run_id
    assert not (folder / "checkpoints").exists()


def test_sigterm_ends_the_run_killed_and_the_next_run_continues_it(tiny_project, tmp_path):
    root, env = tiny_project
    checkpoints = root / "data" / "06_models" / "srcnn" / "seed0" / "checkpoints"
    process = start_stage(root, env, 0, tmp_path / "stage.log")
    saved = stop_late_in_training(process, checkpoints, signal.SIGTERM, tmp_path / "stage.log")
    output = (tmp_path / "stage.log").read_text()
    assert process.returncode not in (0, -signal.SIGTERM), output[-4000:]  # handled, and still a failure
    assert "stopped by SIGTERM" in output and "ended KILLED" in output
    (run,) = seed_runs(root, 0)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert saved["metadata"] == {"mlflow_run_id": run.info.run_id}
    check_the_completed_run(root, env, 0, run.info.run_id, saved)


def test_after_sigkill_the_run_stays_running_and_the_next_run_continues_it(tiny_project, tmp_path):
    root, env = tiny_project
    checkpoints = root / "data" / "06_models" / "srcnn" / "seed1" / "checkpoints"
    process = start_stage(root, env, 1, tmp_path / "stage.log")
    saved = stop_late_in_training(process, checkpoints, signal.SIGKILL, tmp_path / "stage.log")
    assert process.returncode == -signal.SIGKILL
    (run,) = seed_runs(root, 1)
    assert run.info.status == "RUNNING"  # nothing can run on SIGKILL
    assert saved["metadata"] == {"mlflow_run_id": run.info.run_id}
    check_the_completed_run(root, env, 1, run.info.run_id, saved)
