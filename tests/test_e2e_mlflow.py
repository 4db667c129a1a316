"""MLflow as its users know it, on the store of the tiny project's real ``dvc repro``: the runs
nested under the run of their pipeline, with their code and data; the best network registered and
served by MLflow's own tools; the runs table in Chromium.

Debian's ``chromium`` is driven by Playwright (``make test`` installs it), as in the web app's browser
test; the browser test is skipped only where that browser is not installed. Its screenshot is kept in
the test's ``tmp_path``."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ARCHITECTURES, CHROMIUM, CHROMIUM_ARGS, free_port, run, serving
from mlflow.tracking import MlflowClient
from PIL import Image

from superres.data.imageio import write_png

pytestmark = pytest.mark.e2e

CHAMPION = "models:/superres-x2@champion"


def store(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def first_pipeline_run(client: MlflowClient, experiment_id: str):
    """The run of the fixture's own ``dvc repro`` (the first pipeline run of the store)."""
    return client.search_runs([experiment_id], "tags.`superres.kind` = 'pipeline'",
                              order_by=["attributes.start_time ASC"])[0]


def test_every_run_of_one_dvc_repro_is_a_child_of_its_pipeline_run_with_the_code_it_ran(project):
    root, env = project
    client = MlflowClient(store(root))
    experiment = client.get_experiment_by_name("superres")
    parent = first_pipeline_run(client, experiment.experiment_id)
    assert parent.info.run_name.startswith("dvc repro ") and parent.info.status == "FINISHED"
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert {r.info.run_name for r in children} >= {*ARCHITECTURES, "report", "pretrained:port_x2"}
    commit = run(["git", "rev-parse", "HEAD"], root, env).stdout.strip()
    for child in [parent, *children]:
        assert child.data.tags["mlflow.source.git.commit"] == commit
        assert child.data.tags["superres.git.dirty"] == "false"  # dvc.lock changes as stages end: not counted
        assert child.data.tags["mlflow.source.name"] == "dvc repro"


def test_a_run_records_the_data_it_read_with_the_dvc_hashes(project):
    root, _ = project
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    hashes = {out["path"]: out["md5"].removesuffix(".dir") for stage in lock["stages"].values()
              for out in stage.get("outs", [])}
    client = MlflowClient(store(root))
    experiment = client.get_experiment_by_name("superres")
    parent = first_pipeline_run(client, experiment.experiment_id)
    (edsr,) = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                                                             "and attributes.run_name = 'edsr'")
    recorded = {(d.dataset.name, d.dataset.digest, next(t.value for t in d.tags if t.key == "mlflow.data.context"))
                for d in edsr.inputs.dataset_inputs}
    data = "data/05_model_input"
    expected = {(f"{data}/train", "train"), (f"{data}/val", "train"), (f"{data}/test", "evaluate"),
                (f"{data}/benchmarks", "evaluate")}
    assert recorded == {(path, hashes[path], context) for path, context in expected}


def test_the_best_network_is_registered_and_upscales_as_its_folder_does(project, tmp_path):
    root, env = project
    champion = json.loads((root / "data/08_reporting/mlflow_run.json").read_text())["champion"]
    table = pd.read_csv(root / "data/08_reporting/comparison.csv")
    trained = table[(table["parameters"] > 0) & ~table["architecture"].str.startswith("pretrained:")]
    assert champion["architecture"] == trained.loc[trained["test/psnr_y"].idxmax(), "architecture"]
    assert champion["name"] == "superres-x2" and champion["alias"] == "champion"
    photo = (np.indices((60, 70)).sum(axis=0)[..., None] * [3, 5, 7] % 256).astype(np.uint8)
    write_png(tmp_path / "in" / "photo.png", photo)
    outputs = {}
    for label, model in (("registered", f"models:/superres-x2/{champion['version']}"),
                         ("folder", f"{champion['architecture']}/seed{champion['seed']}")):
        run(["superres", "upscale", str(tmp_path / "in"), "-o", str(tmp_path / label), "--model", model], root, env)
        outputs[label] = np.asarray(Image.open(tmp_path / label / "photo.png"))
    assert outputs["registered"].shape == (120, 140, 3)
    np.testing.assert_array_equal(outputs["registered"], outputs["folder"])


def test_mlflow_serves_the_champion_and_answers_as_superres_upscale(project, tmp_path):
    root, env = project
    served_env = {**env, "MLFLOW_TRACKING_URI": store(root), "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    photo = (np.indices((150, 40)).sum(axis=0)[..., None] * [2, 3, 5] % 256).astype(np.int64)
    photo = np.clip(photo + rng.integers(-8, 9, photo.shape), 0, 255).astype(np.uint8)  # two tiles high
    write_png(tmp_path / "in" / "photo.png", photo)
    run(["superres", "upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", CHAMPION], root,
        served_env)
    expected = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", CHAMPION, "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/ping", tmp_path, served_env, tmp_path / "serve.log"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         data=json.dumps({"inputs": photo[None].tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = np.asarray(json.loads(response.read())["predictions"], dtype=np.uint8)
    assert answer.shape == (1, 300, 80, 3)
    np.testing.assert_array_equal(answer[0], expected)


@pytest.mark.skipif(not CHROMIUM.is_file(),
                    reason=f"{CHROMIUM} not installed (Debian package `chromium`; `make test` installs it)")
def test_the_mlflow_ui_lists_the_architectures_with_their_test_psnr(project, tmp_path):
    from playwright.sync_api import sync_playwright

    root, env = project
    client = MlflowClient(store(root))
    experiment = client.get_experiment_by_name("superres")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parent = first_pipeline_run(client, experiment.experiment_id)
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store(root), "--host", "127.0.0.1",
               "--port", str(port)]
    shot = tmp_path / "mlflow-ui.png"
    quiet = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no pool of GenAI job workers
    with serving(command, f"http://127.0.0.1:{port}/health", tmp_path, quiet, tmp_path / "ui.log") as health, \
            sync_playwright() as playwright:
        url = health.removesuffix("/health")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{url}/#/experiments/{experiment.experiment_id}?workflowType=machine_learning")
            name_cells = page.locator('[role="gridcell"][col-id*="Run Name"]')
            name_cells.filter(has_text=parent.info.run_name).first.wait_for(timeout=90_000)
            assistant = page.locator('button[aria-label*="lose"]')
            if assistant.count():
                assistant.first.click()
            name_cells.filter(has_text=parent.info.run_name).locator("button").first.click()  # the nested runs
            page.get_by_text("edsr", exact=True).first.wait_for(timeout=30_000)
            page.get_by_role("button", name="Columns", exact=True).click()
            page.get_by_placeholder("Search columns").fill("test/psnr_y")  # not <arch>.test/psnr_y of the report
            page.locator(".du-bois-light-tree-title").filter(has_text=re.compile(r"^test/psnr_y$")).first.click()
            page.keyboard.press("Escape")
            page.get_by_role("columnheader", name="test/psnr_y", exact=True).first.wait_for(timeout=30_000)
            names = {cell.strip() for cell in name_cells.all_inner_texts()}
            page.screenshot(path=shot)
        finally:
            browser.close()
    assert set(ARCHITECTURES) <= {name.split("\n")[-1] for name in names}
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (1000, 1600, 3) and image.std() > 10, f"{shot} should show the runs table"
