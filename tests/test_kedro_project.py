"""The Kedro project: explicit registry, one pipeline per architecture, one source of params."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from superres.errors import ConfigError
from superres.models import REGISTRY
from superres.pipeline_registry import register_pipelines


def test_every_architecture_has_a_pipeline_that_trains_then_evaluates(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "superres"\n')
    (tmp_path / "params.yaml").write_text("seeds: [0]\n")
    monkeypatch.chdir(tmp_path)
    pipelines = register_pipelines()
    for key in REGISTRY:
        nodes = pipelines[key].nodes
        assert [n.name for n in nodes] == [f"{key}.seed0.train", f"{key}.seed0.evaluate"]
        assert f"params:{key}.model" in nodes[0].inputs and f"params:{key}.train" in nodes[0].inputs
        assert "params:train" in nodes[0].inputs and "train_patches" in nodes[0].inputs
        assert f"{key}.seed0.metrics" in nodes[1].outputs
    assert {"download", "prepare", "report", "__default__"} <= set(pipelines)


def test_each_seed_of_the_params_is_a_namespace_of_every_architecture_pipeline(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "superres"\n')
    (tmp_path / "params.yaml").write_text("seeds: [3, 0, 7]\n")
    monkeypatch.chdir(tmp_path)
    pipelines = register_pipelines()
    names = [n.name for n in pipelines["edsr"].nodes]
    assert sorted(names) == sorted(f"edsr.seed{s}.{step}" for s in (3, 0, 7) for step in ("train", "evaluate"))
    seed7 = pipelines["edsr"].only_nodes_with_namespaces(["edsr.seed7"])
    assert {n.name for n in seed7.nodes} == {"edsr.seed7.train", "edsr.seed7.evaluate"}
    # every seed reads the same architecture section and shared data
    assert all("params:edsr.model" in n.inputs for n in pipelines["edsr"].nodes if n.name.endswith(".train"))


@pytest.mark.parametrize("seeds", ["[]", "[0, 0]", "[-1]", "[1.5]", "zero"])
def test_bad_seeds_are_refused_naming_the_key(tmp_path, monkeypatch, seeds):
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "superres"\n')
    (tmp_path / "params.yaml").write_text(f"seeds: {seeds}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="seeds"):
        register_pipelines()


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
