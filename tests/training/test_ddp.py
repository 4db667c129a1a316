"""Multi-process training under ``torchrun``: two CPU processes with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch
from conftest import free_port
from test_resume import SCRIPT, write_data

from superres.models import create_model
from superres.training import checkpoint
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset
from superres.training.trainer import seed_everything, train

PARAMS = {"iterations": 4, "batch_size": 2, "lr": 1e-3, "val_every": 2, "log_every": 1, "checkpoint_every": 2,
          "device": "cpu"}


def test_two_processes_end_with_identical_weights_and_only_rank_0_writes(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write_data(data)
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", str(script), str(data), str(out), json.dumps(PARAMS)]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(torch.equal(ranks[0]["model"][k], ranks[1]["model"][k]) for k in ranks[0]["model"])
    assert (out / "ckpt0" / checkpoint.FILENAME).exists() and not (out / "ckpt1").exists()
    assert ranks[0]["logged"] == [1, 2, 3, 4] and ranks[1]["logged"] == []  # only rank 0 calls the callbacks
    assert checkpoint.load(out / "ckpt0" / checkpoint.FILENAME)["step"] == 4

    # the second rank's batches counted: one process alone ends elsewhere
    config = TrainConfig.from_params(dict(PARAMS))
    seed_everything(config.seed)
    model = create_model("edsr", scale=2, n_resblocks=1, n_feats=8)
    patches = PatchDataset(np.load(data / "lr.npy"), np.load(data / "hr.npy"))
    train(model, patches, [(np.load(data / "val_lr.npy"), np.load(data / "val_hr.npy"))], config, scale=2)
    assert not torch.equal(model.head.weight, ranks[0]["model"]["head.weight"])
