"""Resuming a killed training run: the resumed run ends with exactly the weights of a run that
was never interrupted. The run is killed for real (SIGKILL) in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from superres.data.degrade import degrade
from superres.models import create_model
from superres.training import checkpoint
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import seed_everything, train

# Trains the tiny EDSR on the arrays of folder argv[1], checkpointing into argv[2]/ckpt<rank>;
# argv[3] is the train config as JSON, plus "hang_at": an iteration at which it sleeps (to be killed).
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

class Hang:
    def on_log(self, step, metrics):
        logged.append(step)
        if step == hang_at:
            time.sleep(600)

config = TrainConfig.from_params(params)
seed_everything(config.seed)
model = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
patches = PatchDataset(np.load(data / "lr.npy", mmap_mode="r"), np.load(data / "hr.npy", mmap_mode="r"))
val = [(np.load(data / "val_lr.npy"), np.load(data / "val_hr.npy"))]
result = train(model, patches, val, config, scale=2, callbacks=[Hang()], checkpoint_dir=out / f"ckpt{rank}")
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
    np.save(folder / "hr.npy", np.stack([hr[2 * i : 2 * i + 16, 2 * j : 2 * j + 16].transpose(2, 0, 1) for i, j in corners]))
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
    process = subprocess.Popen([sys.executable, str(script), str(data), str(out), json.dumps({**PARAMS, "hang_at": 5})],
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

    resumed_model, resumed = run_in_process(data, out / "ckpt0", resume=True)
    model, uninterrupted = run_in_process(data, tmp_path / "fresh", resume=False)
    assert resumed.resumed_from == 4 and resumed.iterations == uninterrupted.iterations == 8
    assert resumed.history == uninterrupted.history
    assert resumed.best_step == uninterrupted.best_step
    for final, expected in ((resumed_model.state_dict(), model.state_dict()), (resumed.state_dict, uninterrupted.state_dict)):
        assert final.keys() == expected.keys()
        assert all(torch.equal(final[k], expected[k]) for k in expected)
