"""``kedro viz run`` in a copy of the project: its REST API and its flowchart in Chromium show every
pipeline of the registry, each architecture as a namespace (``edsr`` holding ``edsr.seed0``...).

Debian's ``chromium`` is driven by Playwright, as in the web app's browser test; the browser test is
skipped only where that browser is not installed. The screenshot is kept in the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, copy_project, serving
from PIL import Image

pytest.importorskip("kedro_viz", reason="kedro-viz is not installed (the `viz` and `dev` extras install it)")

ARCHITECTURE = "edsr"  # the pipeline the browser test expands

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    """A free local port below 32768: kedro-viz refuses ports above 49151 (where Linux hands out
    ephemeral ports) and moves on to the next one when the port it is given is taken."""
    for _ in range(100):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free local port in 20000-32000")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Viz:
    def __init__(self, url: str, registry: dict):
        self.url = url
        self.registry = registry  # name -> kedro Pipeline, as the project registers them

    def namespaces(self, name: str = "__default__") -> set[str]:
        """Every namespace of a pipeline's nodes and every prefix of it (``edsr``, ``edsr.seed0``)."""
        names = {node.namespace for node in self.registry[name].nodes if node.namespace}
        return {".".join(ns.split(".")[:i + 1]) for ns in names for i in range(ns.count(".") + 1)}


@pytest.fixture(scope="module")
def viz(tmp_path_factory) -> Iterator[Viz]:
    """``kedro viz run`` (no autoreload, no hooks, no browser) on a free local port in a copy of the
    project; killed with its children at the end."""
    copy = tmp_path_factory.mktemp("viz_project")
    copy_project(copy)
    cwd = Path.cwd()
    os.chdir(copy)  # the registry reads params.yaml of the project it is run in
    try:
        from superres.pipeline_registry import register_pipelines

        registry = register_pipelines()
    finally:
        os.chdir(cwd)
    port = free_port()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
           "HOME": str(copy / "home"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "kedro", "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/api/main", copy, env, copy / "viz.log", seconds=60):
        yield Viz(url, registry)


def test_the_api_serves_every_pipeline_of_the_registry(viz):
    from superres.models import REGISTRY

    main = get_json(f"{viz.url}/api/main")
    assert sorted(p["id"] for p in main["pipelines"]) == sorted(viz.registry)
    assert {"download", "prepare", "benchmarks", "pretrained", "report", *REGISTRY} < set(viz.registry)
    assert set(REGISTRY) <= set(main["modular_pipelines"]), "each architecture should be a namespace"
    assert viz.namespaces() <= set(main["modular_pipelines"])
    for name, pipeline in viz.registry.items():
        served = get_json(f"{viz.url}/api/pipelines/{name}")
        assert served["selected_pipeline"] == name
        tasks = {node["full_name"] for node in served["nodes"] if node["type"] == "task"}
        assert tasks == {node.name for node in pipeline.nodes}, name


@pytest.mark.skipif(not CHROMIUM.is_file(),
                    reason=f"{CHROMIUM} not installed (Debian package `chromium`; `make test` installs it)")
def test_the_flowchart_in_chromium_draws_the_architectures(viz, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from superres.models import REGISTRY

    top_level = {ns for ns in viz.namespaces() if "." not in ns}
    assert set(REGISTRY) <= top_level
    assert len(viz.namespaces(ARCHITECTURE)) >= 2, "an architecture holds one namespace per seed"
    served = get_json(f"{viz.url}/api/pipelines/{ARCHITECTURE}")["nodes"]
    tasks = [node for node in served if node["type"] == "task"]
    assert {task["full_name"] for task in tasks} == {node.name for node in viz.registry[ARCHITECTURE].nodes}
    shot = tmp_path / "kedro-viz.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(viz.url)
            # The default pipeline: one collapsed node per namespace, the architectures among them.
            namespaces = page.locator("g.pipeline-node[data-node-type=modularPipeline]")
            for namespace in sorted(top_level):
                label = page.locator(f'g.pipeline-node[data-node-type=modularPipeline][data-id="{namespace}"] text')
                expect(label).to_have_text(namespace, timeout=45_000)
            expect(namespaces).to_have_count(len(top_level))

            # The pipeline list: every registered pipeline, by name.
            selector = page.locator("[data-test=kedro-pipeline-selector]")
            selector.locator(".dropdown__label").click()
            options = selector.get_by_role("option")
            expect(options).to_have_count(len(viz.registry))
            assert set(options.all_text_contents()) == set(viz.registry)

            # One architecture's pipeline, its namespaces expanded down to its nodes (train, evaluate per seed).
            selector.get_by_role("option", name=ARCHITECTURE, exact=True).click()
            expect(page).to_have_url(re.compile(rf"[?&]pid={ARCHITECTURE}(&|$)"))
            for namespace in sorted(viz.namespaces(ARCHITECTURE), key=lambda ns: ns.count(".")):
                node = page.locator(f'g.pipeline-node[data-node-type=modularPipeline][data-id="{namespace}"]')
                expect(node).to_be_visible(timeout=20_000)
                node.click()
                expect(node).to_have_count(0, timeout=20_000)
            for task in tasks:  # drawn under their short names (train, evaluate), found by id
                label = page.locator(f'g.pipeline-node[data-node-type=task][data-id="{task["id"]}"] text')
                expect(label).to_have_text(task["name"], timeout=20_000)
            for hint in (page.locator(".feature-hints__close"), page.get_by_role("button", name="Dismiss")):
                if hint.count() and hint.first.is_visible():  # kedro-viz's tour and banner, for a clear picture
                    hint.first.dispatch_event("click")  # a click event even where another layer sits on top
            page.screenshot(path=shot)
        finally:
            browser.close()
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (1000, 1600, 3)
    assert image.std() > 10, f"the screenshot {shot} should show the flowchart, not a blank page"
