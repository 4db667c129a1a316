"""The Kedro project: explicit registry, one pipeline per architecture, one source of params."""

from __future__ import annotations

from pathlib import Path

import yaml

from superres.models import REGISTRY
from superres.pipeline_registry import register_pipelines

ROOT = Path(__file__).resolve().parents[1]


def test_every_architecture_has_a_pipeline_that_trains_then_evaluates():
    pipelines = register_pipelines()
    for key in REGISTRY:
        nodes = pipelines[key].nodes
        assert [n.name for n in nodes] == [f"{key}.train", f"{key}.evaluate"]
        assert f"params:{key}.model" in nodes[0].inputs and f"params:{key}.train" in nodes[0].inputs
        assert "params:train" in nodes[0].inputs and "train_patches" in nodes[0].inputs
        assert f"{key}.metrics" in nodes[1].outputs
    assert {"download", "prepare", "report", "__default__"} <= set(pipelines)


def test_every_architecture_in_params_has_a_model_and_a_section():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in params["architectures"]:
        assert key in REGISTRY, f"{key} is listed in params.yaml but has no model module"
        assert set(params[key]) >= {"model", "train"}
    assert set(REGISTRY) <= set(params), "every registered architecture needs a params section"


def test_kedro_reads_the_root_params_file_and_nothing_else():
    from kedro.config import OmegaConfigLoader

    from superres.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(ROOT / "conf"), **CONFIG_LOADER_ARGS)
    assert loader["parameters"] == yaml.safe_load((ROOT / "params.yaml").read_text())
    assert not list((ROOT / "conf").rglob("parameters*")), "parameters belong in params.yaml only"
