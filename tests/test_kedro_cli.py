"""``kedro run`` on a copy of the project: a folder of number-named images goes through download
and prepare with the real catalog (the split written and read back as files), every file under
the folder is in the ingest report, and a user's error ends the run with one line on stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from kedro.io import AbstractDataset, DataCatalog, DatasetError
from PIL import Image

from superres.cli import project_error
from superres.errors import ConfigError

NAMES = [f"{i:04d}" for i in range(6)] + ["nan"]  # DIV2K names its files 0001.png...; "nan" reads as a number too


def kedro(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kedro", "run", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict[str, str], Path, subprocess.CompletedProcess]:
    """A copy of the project, after `kedro run --pipelines=download,prepare` on a folder of
    number-named images with a hidden image, a hidden folder and symbolic link loops in it."""
    base = tmp_path_factory.mktemp("kedro_cli")
    project = base / "project"
    project.mkdir()
    for name in ("pyproject.toml", "params.yaml", "conf", "src"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, project / name)
    photos = base / "photos"
    (photos / ".thumbs").mkdir(parents=True)
    for i, name in enumerate([*NAMES, ".hidden", ".thumbs/0000"]):
        pixels = np.random.default_rng(i).integers(0, 256, (64, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"{name}.png")
    (photos / "loop_1").symlink_to("loop_2")
    (photos / "loop_2").symlink_to("loop_1")
    (photos / "back").symlink_to(".")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", HOME=str(base / "home"))
    result = kedro(project, env, "--pipelines=download,prepare", f"--params=data.source=folder,data.path={photos}")
    return project, env, photos, result


def test_number_named_images_go_through_download_and_prepare(prepared):
    project, _, _, result = prepared
    assert result.returncode == 0, result.stderr[-4000:]
    text = (project / "data/03_primary/split.csv").read_text()
    assert "\n0001," in text and "\nnan," in text  # written as names
    split = pd.read_csv(project / "data/03_primary/split.csv", dtype=str, keep_default_na=False)
    assert sorted(split["image"]) == sorted(NAMES)
    for which in ("val", "test"):
        expected = sorted(split.loc[split["split"] == which, "image"])
        assert expected, which
        for kind in ("hr", "lr"):
            assert sorted(p.stem for p in (project / f"data/05_model_input/{which}/{kind}").glob("*.png")) == expected
    patches = np.load(project / "data/05_model_input/train/hr.npy", mmap_mode="r")
    assert patches.shape == (4 * (split["split"] == "train").sum(), 3, 48, 48)  # 2 x 2 patches of 48 px in 64 x 80


def test_every_file_under_the_folder_is_in_the_ingest_report(prepared):
    project, _, _, result = prepared
    assert result.returncode == 0, result.stderr[-4000:]
    report = pd.read_csv(project / "data/01_raw/ingest_report.csv", dtype=str, keep_default_na=False)
    status = dict(zip(report["origin"], report["status"], strict=True))
    reason = dict(zip(report["origin"], report["reason"], strict=True))
    assert status == {**{f"{n}.png": "accepted" for n in NAMES}, ".hidden.png": "rejected",
                      ".thumbs/0000.png": "rejected", "loop_1": "rejected", "loop_2": "rejected", "back": "rejected"}
    assert reason[".hidden.png"].startswith("hidden file")
    assert reason[".thumbs/0000.png"].startswith("in the hidden folder .thumbs/")
    assert reason["loop_1"].startswith("symbolic link loop") and reason["back"].startswith("symbolic link loop")


@pytest.mark.parametrize(("params", "line"), [
    ("prepare.split.val=0.24", "Error: prepare.split: the fractions sum to 1.09 (train 0.7, val 0.24, test 0.15), "
                               "not 1; change them so that they add up to 1"),
    ("data.source=ftp", "Error: data.source: 'ftp' is not a known source; choose one of embedded, folder, "
                        "paired_folder, url"),
])
def test_a_users_error_is_one_line_on_stderr_and_exit_status_1(prepared, params, line):
    project, env, _, _ = prepared
    pipeline = "prepare" if params.startswith("prepare") else "download"
    result = kedro(project, env, f"--pipelines={pipeline}", f"--params={params}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == line


def test_a_model_parameter_error_names_its_key_in_one_line(prepared):
    project, env, _, _ = prepared
    result = kedro(project, env, "--pipelines=edsr", "--params=edsr.model.n_feats=-3")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: edsr.model.n_feats must be a positive integer, got -3; change it in params.yaml")


def test_any_other_error_keeps_its_traceback(prepared):
    project, env, _, _ = prepared
    result = kedro(project, env, "--pipelines=no_such_pipeline")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "no_such_pipeline" in result.stderr.strip().splitlines()[-1]


class _Refusing(AbstractDataset):
    """A dataset whose load raises the project's error, as the project's datasets do."""

    def load(self):
        raise ConfigError("data.path: no such folder; check the path")

    def save(self, data):
        raise NotImplementedError

    def _describe(self):
        return {}


def test_the_projects_error_is_found_inside_kedros_wrapping():
    catalog = DataCatalog({"refusing": _Refusing()})
    with pytest.raises(DatasetError) as wrapped:
        catalog.load("refusing")
    assert not isinstance(wrapped.value, ConfigError)
    found = project_error(wrapped.value)
    assert isinstance(found, ConfigError) and str(found) == "data.path: no such folder; check the path"
    assert project_error(ValueError("a bug")) is None
