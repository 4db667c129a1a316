"""The benchmarks pipeline through Kedro's runner: a folder of HR pictures becomes LR/HR pairs at
every scale asked for, with the report of every file."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pipeline_runs import params_entries, project_params, run, write_photos

from superres.data.benchmarks import REPORT_FILE, load_pairs
from superres.data.degrade import bicubic_resize, modcrop
from superres.pipelines.benchmarks import create_pipeline
from superres.pipelines.datasets import DirectoryDataset


def test_a_folder_becomes_pairs_at_every_scale(tmp_path):
    write_photos(tmp_path / "mine", count=2, height=50, width=62)
    (tmp_path / "mine" / "broken.png").write_bytes(b"\x89PNG not really")
    params = project_params()
    params["benchmarks"].update(sets=[], folders={"mine": str(tmp_path / "mine")}, scales=[2, 3])
    pairs = DirectoryDataset(path=str(tmp_path / "benchmarks"))

    run(create_pipeline(), {"benchmark_pairs": pairs, **params_entries(params, "benchmarks", "data", "prepare")})

    root = pairs.load()
    loaded = load_pairs(root)
    assert sorted(loaded) == ["mine_x2", "mine_x3"]
    for key, scale in (("mine_x2", 2), ("mine_x3", 3)):
        assert sorted(loaded[key]) == ["photo0", "photo1"]
        load_lr, load_hr = loaded[key]["photo0"]
        hr, lr = load_hr(), load_lr()
        assert hr.shape == (50 // scale * scale, 62 // scale * scale, 3)
        np.testing.assert_array_equal(lr, bicubic_resize(modcrop(hr, scale), 1 / scale))
    report = pd.read_csv(root / REPORT_FILE, keep_default_na=False)
    broken = report[report["image"] == "broken"]
    assert set(broken["status"]) == {"rejected"} and broken["reason"].str.len().gt(0).all()
    assert set(report.loc[report["image"] != "broken", "status"]) == {"kept"}
